package esfake

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
)

func (f *Server) bulk(body []byte) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bulks++
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var items []any
	hasErrors := false
	for sc.Scan() {
		var action map[string]struct {
			Index         string `json:"_index"`
			ID            string `json:"_id"`
			IfSeqNo       *int64 `json:"if_seq_no"`
			IfPrimaryTerm *int64 `json:"if_primary_term"`
		}
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil || len(action) != 1 {
			return nil, bad("bulk: bad action line %q", sc.Text())
		}
		for name, meta := range action {
			var src json.RawMessage
			if name != "delete" {
				if !sc.Scan() {
					return nil, bad("bulk: %s without a document", name)
				}
				src = append(json.RawMessage(nil), sc.Bytes()...)
			}
			if (meta.IfSeqNo == nil) != (meta.IfPrimaryTerm == nil) {
				return nil, bad("bulk: if_seq_no without if_primary_term")
			}
			item := f.apply(name, meta.Index, meta.ID, meta.IfSeqNo, src)
			if st := item["status"].(int); st >= 300 {
				hasErrors = true
			}
			items = append(items, map[string]any{name: item})
		}
	}
	return map[string]any{"took": 1, "errors": hasErrors, "items": items}, nil
}

func itemError(index, id string, status int, typ, reason string) map[string]any {
	return map[string]any{"_index": index, "_id": id, "status": status,
		"error": map[string]any{"type": typ, "reason": reason, "index": index, "shard": "0"}}
}

func (f *Server) apply(action, index, id string, ifSeq *int64, src json.RawMessage) map[string]any {
	key := action + " " + index + " " + id
	f.attempts[key]++
	if f.BulkHook != nil {
		if st, typ := f.BulkHook(action, index, id, f.attempts[key]); st != 0 {
			return itemError(index, id, st, typ, "injected by the test; Preview of field's value: 'secret'")
		}
	}
	ix, ok := f.indices[index]
	if !ok {
		var err error
		if ix, err = f.createIndex(index); err != nil {
			fe := err.(*fakeError)
			return itemError(index, id, fe.status, fe.typ, fe.reason)
		}
	}
	cur := ix.docs[id]
	if ifSeq != nil && (cur == nil || cur.seqNo != *ifSeq) {
		return itemError(index, id, 409, "version_conflict_engine_exception",
			fmt.Sprintf("[%s]: version conflict, required seqNo [%d], primary term [1]", id, *ifSeq))
	}
	switch action {
	case "create", "index":
		if action == "create" && cur != nil {
			return itemError(index, id, 409, "version_conflict_engine_exception",
				fmt.Sprintf("[%s]: version conflict, document already exists (current version [%d])", id, cur.ver))
		}
		var doc map[string]any
		if err := json.Unmarshal(src, &doc); err != nil {
			return itemError(index, id, 400, "document_parsing_exception", "not a JSON object")
		}
		if err := validate(ix.mapping, doc, ""); err != nil {
			return itemError(index, id, 400, err.typ, err.reason)
		}
		ix.seq++
		d := &fakeDoc{source: src, doc: doc, seqNo: ix.seq, ver: 1}
		status, result := 201, "created"
		if cur != nil {
			d.ver = cur.ver + 1
			status, result = 200, "updated"
		}
		ix.docs[id] = d
		return map[string]any{"_index": index, "_id": id, "_version": d.ver, "result": result,
			"_seq_no": d.seqNo, "_primary_term": 1, "status": status}
	case "delete":
		if cur == nil {
			return map[string]any{"_index": index, "_id": id, "result": "not_found", "status": 404}
		}
		ix.seq++
		delete(ix.docs, id)
		return map[string]any{"_index": index, "_id": id, "result": "deleted", "_seq_no": ix.seq, "_primary_term": 1, "status": 200}
	}
	return itemError(index, id, 400, "illegal_argument_exception", "unsupported action "+action)
}
