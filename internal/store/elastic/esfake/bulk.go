package esfake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

// writeOp is one write of a bulk request or of a single-document request.
type writeOp struct {
	action    string // index, create or delete
	index, id string
	ifSeq     *int64
	ifTerm    *int64
	src       json.RawMessage
}

// bulk serves POST /_bulk: every item is parsed first (a malformed line
// fails the whole request), then applied in order; the refresh parameter
// applies to the indices the items changed.
func (f *Server) bulk(ctx context.Context, q url.Values, body []byte) (any, error) {
	for k := range q {
		if k != "refresh" {
			return nil, bad("fake: _bulk parameter %s", k)
		}
	}
	policy, err := refreshPolicy(q)
	if err != nil {
		return nil, err
	}
	ops, err := parseBulk(body)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.bulks++
	items := make([]any, 0, len(ops))
	hasErrors := false
	touched := map[*fakeIndex]bool{}
	for _, op := range ops {
		item, ix := f.apply(op)
		if ix != nil {
			touched[ix] = true
		}
		if st := item["status"].(int); st >= 300 {
			hasErrors = true
		} else if policy == "true" {
			item["forced_refresh"] = true
		}
		items = append(items, map[string]any{op.action: item})
	}
	wait := f.afterWrite(policy, touched)
	f.mu.Unlock()
	if err := f.awaitRefresh(ctx, wait); err != nil {
		return nil, err
	}
	return map[string]any{"took": 1, "errors": hasErrors, "items": items}, nil
}

// parseBulk reads the action and document lines of a bulk body.
func parseBulk(body []byte) ([]writeOp, error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var ops []writeOp
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
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
			op := writeOp{action: name, index: meta.Index, id: meta.ID, ifSeq: meta.IfSeqNo, ifTerm: meta.IfPrimaryTerm}
			switch name {
			case "index", "create":
				if !sc.Scan() {
					return nil, bad("bulk: %s without a document", name)
				}
				op.src = append(json.RawMessage(nil), sc.Bytes()...)
			case "delete":
			case "update":
				return nil, bad("fake: bulk update is unsupported")
			default:
				return nil, bad("Malformed action/metadata line [%d], expected one of [create, delete, index, update] but found [%s]", len(ops)+1, name)
			}
			if (op.ifSeq == nil) != (op.ifTerm == nil) {
				return nil, bad("bulk: if_seq_no without if_primary_term")
			}
			ops = append(ops, op)
		}
	}
	return ops, nil
}

func itemError(index, id string, status int, typ, reason string) map[string]any {
	return map[string]any{"_index": index, "_id": id, "status": status,
		"error": map[string]any{"type": typ, "reason": reason, "index": index, "shard": "0"}}
}

// apply applies one write, with f.mu held, and returns its bulk item and
// the index it changed, if any.
func (f *Server) apply(op writeOp) (map[string]any, *fakeIndex) {
	index, id := op.index, op.id
	key := op.action + " " + index + " " + id
	f.attempts[key]++
	if f.BulkHook != nil {
		if st, typ := f.BulkHook(op.action, index, id, f.attempts[key]); st != 0 {
			return itemError(index, id, st, typ, "injected by the test; Preview of field's value: 'secret'"), nil
		}
	}
	ix, ok := f.indices[index]
	if !ok {
		var err error
		if ix, err = f.createIndex(index); err != nil {
			fe := err.(*fakeError)
			return itemError(index, id, fe.status, fe.typ, fe.reason), nil
		}
	}
	cur := ix.docs[id]
	if op.ifSeq != nil && (cur == nil || cur.seqNo != *op.ifSeq) {
		return itemError(index, id, 409, "version_conflict_engine_exception",
			fmt.Sprintf("[%s]: version conflict, required seqNo [%d], primary term [1]", id, *op.ifSeq)), nil
	}
	switch op.action {
	case "create", "index":
		if op.action == "create" && cur != nil {
			return itemError(index, id, 409, "version_conflict_engine_exception",
				fmt.Sprintf("[%s]: version conflict, document already exists (current version [%d])", id, cur.ver)), nil
		}
		var doc map[string]any
		if err := json.Unmarshal(op.src, &doc); err != nil {
			return itemError(index, id, 400, "document_parsing_exception", "not a JSON object"), nil
		}
		if err := validate(ix.mapping, doc, ""); err != nil {
			return itemError(index, id, 400, err.typ, err.reason), nil
		}
		ix.seq++
		d := &fakeDoc{source: op.src, doc: doc, seqNo: ix.seq, ver: 1}
		status, result := 201, "created"
		if cur != nil {
			d.ver = cur.ver + 1
			status, result = 200, "updated"
		}
		f.changed(ix, id, d)
		return map[string]any{"_index": index, "_id": id, "_version": d.ver, "result": result,
			"_seq_no": d.seqNo, "_primary_term": 1, "status": status}, ix
	case "delete":
		if cur == nil {
			return map[string]any{"_index": index, "_id": id, "result": "not_found", "status": 404}, nil
		}
		ix.seq++
		f.changed(ix, id, nil)
		return map[string]any{"_index": index, "_id": id, "result": "deleted", "_seq_no": ix.seq, "_primary_term": 1, "status": 200}, ix
	}
	return itemError(index, id, 400, "illegal_argument_exception", "unsupported action "+op.action), nil
}
