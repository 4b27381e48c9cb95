package esfake

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Writes. Each document has a version: with internal versioning (the
// default) 1 when created and one more on every write, deletes included;
// with version_type external (or external_gte) the version the request
// gives, which must be greater than (or equal to) the current one, else 409.
// A delete leaves a tombstone with the document's last version for
// index.gc_deletes (60s by default): writes within that time are checked
// against it, as if the document still had that version; an external
// delete of a document that does not exist leaves one too (with the version
// of the request, result not_found). Requests Elasticsearch would refuse
// before doing anything (create with external versioning, an _id longer
// than 512 bytes, ...) fail whole, with action_request_validation_exception.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-index_.html#index-versioning
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-delete.html#delete-versioning
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/index-modules.html#dynamic-index-settings (index.gc_deletes)
// https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/mapping-id-field
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/optimistic-concurrency-control.html

// maxIDBytes is the longest _id Elasticsearch takes.
const maxIDBytes = 512

// defaultGCDeletes is index.gc_deletes when the settings do not set it.
const defaultGCDeletes = 60 * time.Second

// The version types of writes, and Elasticsearch's sentinel versions.
const (
	versionInternal    = "internal"
	versionExternal    = "external"
	versionExternalGTE = "external_gte"

	versionMatchAny     = -3 // no version given
	versionMatchDeleted = -4 // what create asks: that the document does not exist
)

// writeOp is one write of a bulk request or of a single-document request.
type writeOp struct {
	action      string // index, create or delete
	index, id   string
	ifSeq       *int64
	ifTerm      *int64
	version     int64 // versionMatchAny when not given
	versionType string
	src         json.RawMessage
}

// tombstone is what a delete leaves: the version for later writes to be
// checked against, until index.gc_deletes has passed.
type tombstone struct {
	ver int64
	at  time.Time
}

// docState is what a write of an id finds.
type docState int

const (
	absent  docState = iota // never written, or deleted longer than gc_deletes ago
	live                    // a document
	deleted                 // a tombstone
)

// bulk serves POST /_bulk: every item is parsed and validated first (a
// malformed line or an invalid item fails the whole request, nothing
// applied), then applied in order; the refresh parameter applies to the
// indices the items changed.
func (f *Server) bulk(ctx context.Context, q url.Values, body []byte) (any, error) {
	if err := checkParams("_bulk", q, "refresh"); err != nil {
		return nil, err
	}
	policy, err := refreshPolicy(q)
	if err != nil {
		return nil, err
	}
	ops, err := parseBulk(body)
	if err != nil {
		return nil, err
	}
	var invalid []string
	for _, op := range ops {
		invalid = append(invalid, op.validate()...)
	}
	if len(ops) == 0 {
		invalid = append(invalid, "no requests added")
	}
	if len(invalid) > 0 {
		return nil, validationFailed(invalid)
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
		if st := item["status"].(int); st >= 300 && !(op.action == "delete" && item["result"] == "not_found") {
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
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-bulk.html
func parseBulk(body []byte) ([]writeOp, error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var ops []writeOp
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var action map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil || len(action) != 1 {
			return nil, bad("Malformed action/metadata line [%d], expected a simple value for field [%s]", line, sc.Text())
		}
		for name, raw := range action {
			var meta struct {
				Index         string  `json:"_index"`
				ID            string  `json:"_id"`
				IfSeqNo       *int64  `json:"if_seq_no"`
				IfPrimaryTerm *int64  `json:"if_primary_term"`
				Version       *int64  `json:"version"`
				VersionType   *string `json:"version_type"`
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&meta); err != nil {
				return nil, bad("Action/metadata line [%d] contains an unknown parameter or a bad value: %v", line, err)
			}
			op := writeOp{action: name, index: meta.Index, id: meta.ID, ifSeq: meta.IfSeqNo, ifTerm: meta.IfPrimaryTerm, version: versionMatchAny}
			if meta.Version != nil {
				op.version = *meta.Version
			}
			var err error
			if op.versionType, err = parseVersionType(meta.VersionType); err != nil {
				return nil, err
			}
			switch name {
			case "index", "create":
				if !sc.Scan() {
					return nil, bad("bulk: %s without a document", name)
				}
				line++
				op.src = append(json.RawMessage(nil), sc.Bytes()...)
			case "delete":
			case "update":
				return nil, bad("fake: bulk update is unsupported")
			default:
				return nil, bad("Malformed action/metadata line [%d], expected one of [create, delete, index, update] but found [%s]", line, name)
			}
			if op.index == "" {
				return nil, bad("fake: bulk item without _index")
			}
			ops = append(ops, op)
		}
	}
	return ops, nil
}

// parseVersionType reads a version_type: internal (when nil), external
// (also external_gt) or external_gte.
func parseVersionType(v *string) (string, error) {
	if v == nil {
		return versionInternal, nil
	}
	switch *v {
	case "internal", "external", "external_gte":
		return *v, nil
	case "external_gt":
		return versionExternal, nil
	}
	return "", bad("No version type match [%s]", *v)
}

// validate returns why Elasticsearch would refuse op before applying
// anything (IndexRequest.validate and DeleteRequest.validate).
func (op writeOp) validate() []string {
	var errs []string
	version := op.version
	if op.action == "create" {
		if version == versionMatchAny {
			version = versionMatchDeleted
		}
		switch {
		case op.versionType != versionInternal:
			return []string{"create operations only support internal versioning. use index instead"}
		case version != versionMatchDeleted:
			return []string{"create operations do not support explicit versions. use index instead"}
		case op.ifSeq != nil || op.ifTerm != nil:
			return []string{"create operations do not support compare and set. use index instead"}
		}
	}
	if op.action == "delete" && op.id == "" {
		errs = append(errs, "id is missing")
	}
	if op.id == "" && op.action != "delete" && (op.versionType != versionInternal || version != versionMatchAny && version != versionMatchDeleted) {
		errs = append(errs, "an id must be provided if version type or value are set")
	}
	valid := version > 0 || version == versionMatchAny || version == versionMatchDeleted
	if op.versionType != versionInternal {
		valid = version >= 0
	}
	if !valid {
		errs = append(errs, fmt.Sprintf("illegal version value [%d] for version type [%s]", version, strings.ToUpper(op.versionType)))
	}
	if op.versionType == versionInternal && version != versionMatchAny && version != versionMatchDeleted {
		errs = append(errs, "internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead")
	}
	if op.ifSeq != nil && (op.versionType != versionInternal || version != versionMatchAny) {
		errs = append(errs, "compare and write operations can not use versioning")
	}
	if op.ifSeq != nil && op.ifTerm == nil {
		errs = append(errs, "ifSeqNo is set, but primary term is [0]")
	}
	if op.ifSeq == nil && op.ifTerm != nil {
		errs = append(errs, fmt.Sprintf("ifSeqNo is unassigned, but primary term is [%d]", *op.ifTerm))
	}
	// Only index and create check the length: no document can have a
	// longer id, so a delete of one finds nothing.
	if op.action != "delete" && len(op.id) > maxIDBytes {
		errs = append(errs, fmt.Sprintf("id [%s] is too long, must be no longer than %d bytes but was: %d", op.id, maxIDBytes, len(op.id)))
	}
	return errs
}

func itemError(index, id string, status int, typ, reason string) map[string]any {
	return map[string]any{"_index": index, "_id": id, "status": status,
		"error": map[string]any{"type": typ, "reason": reason, "index": index, "shard": "0"}}
}

func conflict(index, id, why string) map[string]any {
	return itemError(index, id, 409, "version_conflict_engine_exception", fmt.Sprintf("[%s]: version conflict, %s", id, why))
}

// autoID is an id Elasticsearch would generate: 20 URL-safe characters.
func autoID() string {
	b := make([]byte, 15)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// current returns what a write of id finds: the live document's version,
// or the version of a delete within gc_deletes.
func (ix *fakeIndex) current(id string) (int64, docState) {
	if d := ix.docs[id]; d != nil {
		return d.ver, live
	}
	if t, ok := ix.tombs[id]; ok {
		if time.Since(t.at) <= ix.gcDeletes {
			return t.ver, deleted
		}
		delete(ix.tombs, id)
	}
	return 0, absent
}

// nextVersion checks op against the current version of its document and
// returns the version the write gives it, or why it conflicts.
func (op writeOp) nextVersion(cur int64, state docState) (int64, string) {
	switch op.versionType {
	case versionExternal:
		if state != absent && cur >= op.version {
			return 0, fmt.Sprintf("current version [%d] is higher or equal to the one provided [%d]", cur, op.version)
		}
		return op.version, ""
	case versionExternalGTE:
		if state != absent && cur > op.version {
			return 0, fmt.Sprintf("current version [%d] is higher than the one provided [%d]", cur, op.version)
		}
		return op.version, ""
	}
	if op.action == "create" && state == live {
		return 0, fmt.Sprintf("document already exists (current version [%d])", cur)
	}
	if state == absent {
		return 1, ""
	}
	return cur + 1, ""
}

// writeIndex resolves the index a write goes to: an index, or the one
// index of an alias; a missing one is created from its template, except for
// a delete with internal versioning (Elasticsearch does not create an index
// to delete from it).
func (f *Server) writeIndex(op writeOp) (*fakeIndex, *fakeError) {
	if ix, ok := f.indices[op.index]; ok {
		return ix, nil
	}
	switch names := f.concrete(op.index); len(names) {
	case 1:
		return f.indices[names[0]], nil
	case 0:
	default:
		return nil, bad("no write index is defined for alias [%s]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index", op.index)
	}
	if op.action == "delete" && op.versionType == versionInternal {
		return nil, indexNotFound(op.index)
	}
	ix, err := f.createIndex(op.index)
	if err != nil {
		return nil, err.(*fakeError)
	}
	return ix, nil
}

// apply applies one valid write, with f.mu held, and returns its bulk item
// and the index it changed, if any.
func (f *Server) apply(op writeOp) (map[string]any, *fakeIndex) {
	if op.id == "" && op.action != "delete" {
		op.id = autoID()
	}
	index, id := op.index, op.id
	key := op.action + " " + index + " " + id
	f.attempts[key]++
	if f.BulkHook != nil {
		if st, typ := f.BulkHook(op.action, index, id, f.attempts[key]); st != 0 {
			return itemError(index, id, st, typ, "injected by the test; Preview of field's value: 'secret'"), nil
		}
	}
	ix, fe := f.writeIndex(op)
	if fe != nil {
		return itemError(index, id, fe.status, fe.typ, fe.reason), nil
	}
	index = ix.name
	if op.ifSeq != nil {
		cur := ix.docs[id]
		if cur == nil {
			return conflict(index, id, fmt.Sprintf("required seqNo [%d], primary term [%d] but no document was found", *op.ifSeq, *op.ifTerm)), nil
		}
		if cur.seqNo != *op.ifSeq || *op.ifTerm != 1 {
			return conflict(index, id, fmt.Sprintf("required seqNo [%d], primary term [%d]. current document has seqNo [%d] and primary term [1]",
				*op.ifSeq, *op.ifTerm, cur.seqNo)), nil
		}
	}
	cur, state := ix.current(id)
	ver, why := op.nextVersion(cur, state)
	if why != "" {
		return conflict(index, id, why), nil
	}
	switch op.action {
	case "create", "index":
		var doc map[string]any
		if err := json.Unmarshal(op.src, &doc); err != nil || doc == nil {
			return itemError(index, id, 400, "document_parsing_exception", "[1:1] failed to parse: not a JSON object"), nil
		}
		if err := validate(ix.mapping, doc, ""); err != nil {
			return itemError(index, id, 400, err.typ, err.reason), nil
		}
		ix.seq++
		d := &fakeDoc{source: op.src, doc: doc, seqNo: ix.seq, ver: ver}
		status, result := 201, "created"
		if state == live {
			status, result = 200, "updated"
		}
		delete(ix.tombs, id)
		f.changed(ix, id, d)
		return map[string]any{"_index": index, "_id": id, "_version": ver, "result": result,
			"_seq_no": d.seqNo, "_primary_term": 1, "status": status}, ix
	case "delete":
		ix.seq++
		f.changed(ix, id, nil)
		ix.tombs[id] = tombstone{ver: ver, at: time.Now()}
		status, result := 200, "deleted"
		if state != live {
			status, result = 404, "not_found"
		}
		return map[string]any{"_index": index, "_id": id, "_version": ver, "result": result,
			"_seq_no": ix.seq, "_primary_term": 1, "status": status}, ix
	}
	return itemError(index, id, 400, "illegal_argument_exception", "unsupported action "+op.action), nil
}
