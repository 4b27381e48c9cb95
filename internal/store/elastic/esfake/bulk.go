package esfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatreport/chatreport/internal/jsonenc"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
	src         []byte
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
// indices the items changed. The answer is written item by item, without
// building a map of each.
func (f *Server) bulk(ctx context.Context, q url.Values, body []byte) (any, error) {
	if err := checkParams("_bulk", q, "refresh", "filter_path"); err != nil {
		return nil, err
	}
	filter, err := parseFilterPath(q)
	if err != nil {
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
	results := make([]writeResult, len(ops))
	hasErrors := false
	touched := map[*fakeIndex]bool{}
	f.mu.Lock()
	f.bulks++
	for i, op := range ops {
		res := f.apply(op)
		if res.changed != nil {
			touched[res.changed] = true
		}
		if res.failed() {
			hasErrors = true
		} else if policy == "true" {
			res.forcedRefresh = true
		}
		results[i] = res
	}
	wait := f.afterWrite(policy, touched)
	f.mu.Unlock()
	if err := f.awaitRefresh(ctx, wait); err != nil {
		return nil, err
	}
	return rawJSON(appendBulkAnswer(make([]byte, 0, 200*len(ops)), ops, results, hasErrors, filter)), nil
}

// appendBulkAnswer writes the answer of a bulk request, item by item,
// without building a map of each, and keeps what filter keeps.
func appendBulkAnswer(b []byte, ops []writeOp, results []writeResult, hasErrors bool, filter *filterPath) []byte {
	top := openObject(b, filter)
	if top.member("took") {
		top.b = append(top.b, '1')
	}
	if top.member("errors") {
		top.b = strconv.AppendBool(top.b, hasErrors)
	}
	whole, under := true, false
	if filter != nil {
		whole, under = filter.match([]string{"items"})
	}
	if !whole && !under {
		return top.close()
	}
	mark, n := len(top.b), top.n
	top.name("items")
	top.b = append(top.b, '[')
	kept := 0
	for i := range results {
		start := len(top.b)
		if kept > 0 {
			top.b = append(top.b, ',')
		}
		// An item is {"<action>":{…}}; an array adds no name to the path.
		item := openObject(top.b, filter, "items")
		if whole {
			item.f = nil
		}
		item.nested(ops[i].action, func(o *object) { results[i].write(o, true) })
		if item.n == 0 {
			top.b = item.b[:start] // left empty: left out
			continue
		}
		top.b = item.close()
		kept++
	}
	if kept == 0 && !whole {
		top.b, top.n = top.b[:mark], n
		return top.close()
	}
	top.b = append(top.b, ']')
	return top.close()
}

// parseBulk reads the action and document lines of a bulk body; a
// document line is kept as its bytes, copied.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-bulk.html
func parseBulk(body []byte) ([]writeOp, error) {
	// Most operations are two lines: room for them all at once.
	ops := make([]writeOp, 0, bytes.Count(body, []byte{'\n'})/2+1)
	line := 0
	next := func() ([]byte, bool) {
		if len(body) == 0 {
			return nil, false
		}
		l := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			l, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line++
		return bytes.TrimSuffix(l, []byte{'\r'}), true
	}
	var r actionReader
	for {
		l, ok := next()
		if !ok {
			return ops, nil
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		op, err := r.read(l, line)
		if err != nil {
			return nil, err
		}
		if op.action != "delete" {
			src, ok := next()
			if !ok {
				return nil, bad("bulk: %s without a document", op.action)
			}
			// Copied without clearing first (make and copy together
			// compile to one allocation that is not zeroed), to the
			// length of the source, not a size class above it.
			op.src = make([]byte, len(src))
			copy(op.src, src)
		}
		ops = append(ops, op)
	}
}

// parseVersionType reads a version_type: internal (when not set), external
// (also external_gt) or external_gte.
func parseVersionType(v string, set bool) (string, error) {
	if !set {
		return versionInternal, nil
	}
	switch v {
	case "internal", "external", "external_gte":
		return v, nil
	case "external_gt":
		return versionExternal, nil
	}
	return "", bad("No version type match [%s]", v)
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

// writeResult is the outcome of one write: a bulk item, or the answer of
// a single-document write.
type writeResult struct {
	index, id string
	status    int
	result    string // created, updated, deleted, not_found; "" on failure
	ver       int64
	seqNo     int64
	err       *fakeError // the failure, with its status
	// changed is the index the write changed, if any.
	changed       *fakeIndex
	forcedRefresh bool
}

// failed tells whether the write is an error of a bulk answer (a delete
// that found nothing is not).
func (r *writeResult) failed() bool { return r.err != nil }

func itemError(index, id string, status int, typ, reason string) writeResult {
	return writeResult{index: index, id: id, status: status, err: &fakeError{status: status, typ: typ, reason: reason}}
}

func conflict(index, id, why string) writeResult {
	return itemError(index, id, 409, "version_conflict_engine_exception", fmt.Sprintf("[%s]: version conflict, %s", id, why))
}

// appendJSON writes r as Elasticsearch answers a write: a bulk item (with
// its status) or the body of a single-document write.
func (r *writeResult) appendJSON(b []byte, withStatus bool) []byte {
	o := openObject(b, nil)
	r.write(&o, withStatus)
	return o.close()
}

// write writes r's members into o, those o's filter keeps.
func (r *writeResult) write(o *object, withStatus bool) {
	if o.member("_index") {
		o.b = appendString(o.b, r.index)
	}
	if o.member("_id") {
		o.b = appendString(o.b, r.id)
	}
	if r.err != nil {
		if o.member("status") {
			o.b = strconv.AppendInt(o.b, int64(r.status), 10)
		}
		o.nested("error", func(e *object) {
			if e.member("type") {
				e.b = appendString(e.b, r.err.typ)
			}
			if e.member("reason") {
				e.b = appendString(e.b, r.err.reason)
			}
			if e.member("index") {
				e.b = appendString(e.b, r.index)
			}
			if e.member("shard") {
				e.b = append(e.b, `"0"`...)
			}
		})
		return
	}
	if o.member("_version") {
		o.b = strconv.AppendInt(o.b, r.ver, 10)
	}
	if o.member("result") {
		o.b = append(o.b, '"')
		o.b = append(o.b, r.result...)
		o.b = append(o.b, '"')
	}
	o.nested("_shards", func(sh *object) {
		for _, name := range [...]string{"total", "successful"} {
			if sh.member(name) {
				sh.b = append(sh.b, '1')
			}
		}
		if sh.member("failed") {
			sh.b = append(sh.b, '0')
		}
	})
	if o.member("_seq_no") {
		o.b = strconv.AppendInt(o.b, r.seqNo, 10)
	}
	if o.member("_primary_term") {
		o.b = append(o.b, '1')
	}
	if r.forcedRefresh && o.member("forced_refresh") {
		o.b = append(o.b, "true"...)
	}
	if withStatus && o.member("status") {
		o.b = strconv.AppendInt(o.b, int64(r.status), 10)
	}
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte { return jsonenc.AppendString(b, s, false) }

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
		if ix.closed {
			return nil, indexClosed(ix.name)
		}
		return ix, nil
	}
	switch names := f.concrete(op.index); len(names) {
	case 1:
		if f.indices[names[0]].closed {
			return nil, indexClosed(names[0])
		}
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

// apply applies one valid write, with f.mu held.
func (f *Server) apply(op writeOp) writeResult {
	if op.id == "" && op.action != "delete" {
		op.id = autoID()
	}
	index, id := op.index, op.id
	if f.BulkHook != nil {
		// Attempts are counted while a hook is set, for the hook.
		key := op.action + " " + index + " " + id
		f.attempts[key]++
		if st, typ := f.BulkHook(op.action, index, id, f.attempts[key]); st != 0 {
			// Elasticsearch's reasons quote the document's _id (a mapping
			// error names it, a version conflict begins with it) and
			// preview the offending value: so does the injected one.
			return itemError(index, id, st, typ, fmt.Sprintf("injected by the test for document with id '%s'. Preview of field's value: 'secret'", id))
		}
	}
	ix, fe := f.writeIndex(op)
	if fe != nil {
		r := itemError(index, id, fe.status, fe.typ, fe.reason)
		r.err.index = fe.index
		return r
	}
	index = ix.name
	if op.ifSeq != nil {
		cur := ix.docs[id]
		if cur == nil {
			return conflict(index, id, fmt.Sprintf("required seqNo [%d], primary term [%d] but no document was found", *op.ifSeq, *op.ifTerm))
		}
		if cur.seqNo != *op.ifSeq || *op.ifTerm != 1 {
			return conflict(index, id, fmt.Sprintf("required seqNo [%d], primary term [%d]. current document has seqNo [%d] and primary term [1]",
				*op.ifSeq, *op.ifTerm, cur.seqNo))
		}
	}
	cur, state := ix.current(id)
	ver, why := op.nextVersion(cur, state)
	if why != "" {
		return conflict(index, id, why)
	}
	switch op.action {
	case "create", "index":
		d := &fakeDoc{source: op.src}
		if f.uncheckedDocs {
			if !beginsObject(op.src) {
				return itemError(index, id, 400, "document_parsing_exception", "[1:1] failed to parse: not a JSON object")
			}
		} else {
			doc, fe := decodeSource(op.src)
			if fe != nil {
				return itemError(index, id, fe.status, fe.typ, fe.reason)
			}
			d.doc = doc
			if err := validate(ix.mapping, d.doc, ""); err != nil {
				return itemError(index, id, 400, err.typ, err.reason)
			}
		}
		ix.seq++
		d.seqNo, d.ver = ix.seq, ver
		status, result := 201, "created"
		if state == live {
			status, result = 200, "updated"
		}
		delete(ix.tombs, id)
		f.changed(ix, id, d)
		return writeResult{index: index, id: id, ver: ver, result: result, seqNo: d.seqNo, status: status, changed: ix}
	case "delete":
		ix.seq++
		f.changed(ix, id, nil)
		ix.tombs[id] = tombstone{ver: ver, at: time.Now()}
		status, result := 200, "deleted"
		if state != live {
			status, result = 404, "not_found"
		}
		return writeResult{index: index, id: id, ver: ver, result: result, seqNo: ix.seq, status: status, changed: ix}
	}
	return itemError(index, id, 400, "illegal_argument_exception", "unsupported action "+op.action)
}

// beginsObject tells whether src begins as a JSON object: all that is
// checked of a document written without mapping checks.
func beginsObject(src []byte) bool {
	src = bytes.TrimLeft(src, " \t\r\n")
	return len(src) > 0 && src[0] == '{'
}

// decodeSource decodes a source for the mapping checks. A member name
// repeated within one object, at any depth, is refused as Elasticsearch
// refuses it: its JSON parser is Jackson with STRICT_DUPLICATE_DETECTION
// on (JsonXContentImpl), whose "Duplicate field 'a'" the parser wraps in an
// x_content_parse_exception (JsonXContentParser.nextToken), which
// DocumentParser wraps in a 400 document_parsing_exception "failed to
// parse: ..." (wrapInDocumentParsingException). Elasticsearch's reason
// also describes Jackson's source and gives its own positions; the fake's
// are byte columns, and it names only the root cause.
// https://github.com/elastic/elasticsearch/blob/main/libs/x-content/impl/src/main/java/org/elasticsearch/xcontent/provider/json/JsonXContentImpl.java
// https://github.com/elastic/elasticsearch/blob/main/server/src/main/java/org/elasticsearch/index/mapper/DocumentParser.java
// go-json-experiment's Unmarshal rejects duplicate names by default, in
// the same pass that decodes the source: no second parse, and it decodes
// the store's event and session sources in about 0.7× the time
// encoding/json took.
//
// Bytes that are not UTF-8 are refused, as Jackson's UTF-8 parser refuses
// them ("Invalid UTF-8 start byte", "... middle byte"). A surrogate, escaped
// ("\ud800") or encoded in three bytes (ED A0 80), is accepted, as the
// Jackson 2 of Elasticsearch 8 accepts it in a string: it only builds
// UTF-16 chars (checks came later: encoded surrogates in jackson-core 2.21,
// FasterXML/jackson-core#363; escaped ones in field names, #1541, #1683);
// the fake reads it as U+FFFD, as Lucene's UTF-8 conversion of an indexed
// term does. Whether that Jackson also takes overlong encodings (C0 80) is
// not checked: the fake refuses them.
func decodeSource(src []byte) (map[string]any, *fakeError) {
	if bad := invalidUTF8(src); bad >= 0 {
		at := lineColumn(src, int64(bad))
		return nil, &fakeError{status: 400, typ: "document_parsing_exception",
			reason: fmt.Sprintf("%s failed to parse: Invalid UTF-8 byte 0x%02x", at, src[bad])}
	}
	var doc map[string]any
	err := jsonv2.Unmarshal(src, &doc, jsontext.AllowInvalidUTF8(true))
	var se *jsontext.SyntacticError
	if errors.As(err, &se) && errors.Is(err, jsontext.ErrDuplicateName) {
		at := lineColumn(src, se.ByteOffset)
		return nil, &fakeError{status: 400, typ: "document_parsing_exception",
			reason: fmt.Sprintf("%s failed to parse: %s Duplicate field '%s'", at, at, se.JSONPointer.LastToken())}
	}
	if err != nil || doc == nil {
		return nil, &fakeError{status: 400, typ: "document_parsing_exception", reason: "[1:1] failed to parse: not a JSON object"}
	}
	return doc, nil
}

// invalidUTF8 is the offset of src's first byte that does not begin a
// valid UTF-8 sequence, or -1. A surrogate's three bytes (ED A0–BF 80–BF),
// which Go's decoder refuses, count as valid (decodeSource).
func invalidUTF8(src []byte) int {
	if utf8.Valid(src) {
		return -1
	}
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && n == 1 {
			if !encodedSurrogate(src[i:]) {
				return i
			}
			n = 3
		}
		i += n
	}
	return -1
}

// encodedSurrogate tells whether b begins with a surrogate code point
// (U+D800–U+DFFF) encoded as UTF-8 would encode any other.
func encodedSurrogate(b []byte) bool {
	return len(b) >= 3 && b[0] == 0xED && b[1] >= 0xA0 && b[1] <= 0xBF && b[2] >= 0x80 && b[2] <= 0xBF
}

// lineColumn is "[line:column]" of the byte at offset in src, from 1.
func lineColumn(src []byte, offset int64) string {
	before := src[:min(max(offset, 0), int64(len(src)))]
	line := 1 + bytes.Count(before, []byte{'\n'})
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("[%d:%d]", line, col)
}
