// Package esstandin is a lean stand-in for Elasticsearch, for the bench's
// ingest scenario: it keeps the promises the store's write path relies on
// (docs/elasticsearch.md, "Write path") and no stronger ones, and spends as
// little CPU as it can on them, so that it takes from the measured ingester
// about what a cluster on another machine would: nothing but the network.
//
// What it keeps, per (index, id):
//
//   - the document's _source as the bytes that were written (never parsed:
//     a read answers exactly those bytes), its _version, _seq_no (one
//     counter per index) and _primary_term (always 1);
//   - realtime reads: GET <index>/_doc/<id> and _mget (both the "docs" and
//     the "ids" form) read the live documents, refreshed or not
//     (realtime=false reads what a search sees);
//   - conditional writes in _bulk (and single-document writes): if_seq_no
//     with if_primary_term (409 on mismatch or when there is no document),
//     create (409 when the document exists), and version with version_type
//     external (index and delete apply only when the version is higher than
//     the document's or than a delete's tombstone, kept for gc_deletes;
//     otherwise 409) or external_gte; internal versions count writes;
//   - near-real-time search: _search and _count see what the last refresh
//     made visible; indices refresh every refresh interval (1 s by default,
//     never when negative), on POST _refresh, and for a write with
//     refresh=true (before it answers); a write with refresh=wait_for
//     answers after the next refresh.
//
// Reads take _source_includes of top-level field names (the write path
// reads the event_refs of session documents, not their messages).
//
// What it does not do: mappings and templates (accepted and ignored: no
// document is validated), aliases (a name that is not an index is refused
// with a 400 rather than answered as empty), queries (a search answers
// every refreshed document of its targets, sorted by index and id, `from`
// and `size` applied), scoring, aggregations, points in time, update
// actions. A request it does not model is a 400, never a wrong answer.
//
// esfake (internal/store/elastic/esfake) is the full model the store's tests
// run against (mappings, aliases, queries); it decodes every document into
// maps and validates it against the mapping, which on two cores costs more
// CPU than the write path it serves (docs/performance.md).
package esstandin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// Options configure a Server. Zero values are Elasticsearch's defaults.
type Options struct {
	// RefreshInterval is index.refresh_interval of every index: 1 s when
	// zero, no periodic refresh when negative.
	RefreshInterval time.Duration
	// GCDeletes is how long a delete's version is remembered
	// (index.gc_deletes): 60 s when zero.
	GCDeletes time.Duration
	// Latency delays every answer, to model a cluster across a network.
	Latency time.Duration
}

// Server is the stand-in; it is an http.Handler. Close stops its refreshes.
type Server struct {
	opts Options

	mu        sync.Mutex
	indices   map[string]*index
	refreshes int64 // periodic refreshes of every index so far
	stop      chan struct{}
	done      chan struct{}
}

type index struct {
	name    string
	docs    map[string]*doc // live: what reads and writes see
	view    map[string]*doc // searchable: as of the last refresh
	pending map[string]*doc // changed since the last refresh; nil for a delete
	tombs   map[string]tomb
	seq     int64 // the last _seq_no given
	// refreshed is closed by the next refresh: wait_for writes wait on it.
	refreshed chan struct{}
}

// doc is one version of a document; never changed once written.
type doc struct {
	src      []byte
	ver, seq int64
}

// tomb is what a delete leaves: its version, until gc_deletes has passed.
type tomb struct {
	ver int64
	at  time.Time
}

// New returns a Server with its periodic refreshes running.
func New(o Options) *Server {
	if o.RefreshInterval == 0 {
		o.RefreshInterval = time.Second
	}
	if o.GCDeletes <= 0 {
		o.GCDeletes = 60 * time.Second
	}
	s := &Server{opts: o, indices: map[string]*index{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.schedule()
	return s
}

// Close stops the periodic refreshes and releases the writes waiting for
// one.
func (s *Server) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	<-s.done
}

// Stats are counts of what the server holds.
type Stats struct {
	Indices   int   `json:"indices"`
	Docs      int   `json:"docs"`
	Bytes     int64 `json:"source_bytes"`
	Refreshes int64 `json:"refreshes"`
}

// Stats counts the live documents and their sources.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Indices: len(s.indices), Refreshes: s.refreshes}
	for _, ix := range s.indices {
		st.Docs += len(ix.docs)
		for _, d := range ix.docs {
			st.Bytes += int64(len(d.src))
		}
	}
	return st
}

// schedule refreshes every index each interval.
func (s *Server) schedule() {
	defer close(s.done)
	if s.opts.RefreshInterval < 0 {
		<-s.stop
		return
	}
	t := time.NewTicker(s.opts.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			for _, ix := range s.indices {
				s.refreshIndex(ix)
			}
			s.refreshes++
			s.mu.Unlock()
		}
	}
}

// refreshIndex makes the changes to ix since its last refresh searchable,
// and forgets the tombstones older than gc_deletes. s.mu is held.
func (s *Server) refreshIndex(ix *index) {
	for id, d := range ix.pending {
		if d == nil {
			delete(ix.view, id)
		} else {
			ix.view[id] = d
		}
	}
	clear(ix.pending)
	close(ix.refreshed)
	ix.refreshed = make(chan struct{})
	for id, t := range ix.tombs {
		if time.Since(t.at) > s.opts.GCDeletes {
			delete(ix.tombs, id)
		}
	}
}

func (s *Server) index(name string, create bool) *index {
	ix := s.indices[name]
	if ix == nil && create {
		ix = &index{name: name, docs: map[string]*doc{}, view: map[string]*doc{}, pending: map[string]*doc{},
			tombs: map[string]tomb{}, seq: -1, refreshed: make(chan struct{})}
		s.indices[name] = ix
	}
	return ix
}

// apiError is an error answer.
type apiError struct {
	status int
	typ    string
	reason string
	index  string
}

func (e *apiError) Error() string { return e.typ + ": " + e.reason }

func (e *apiError) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.typ)
	b = append(b, `,"reason":`...)
	b = appendString(b, e.reason)
	if e.index != "" {
		b = append(b, `,"index":`...)
		b = appendString(b, e.index)
	}
	return append(b, '}')
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "illegal_argument_exception", reason: fmt.Sprintf(format, args...)}
}

func indexNotFound(name string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "index_not_found_exception", reason: "no such index [" + name + "]", index: name}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The Go client refuses answers without the product header.
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	body, err := readBody(r)
	if err != nil {
		s.fail(w, &apiError{status: 400, typ: "parse_exception", reason: "request body: " + err.Error()})
		return
	}
	if s.opts.Latency > 0 {
		time.Sleep(s.opts.Latency)
	}
	status, out, err := s.route(r, body)
	if err != nil {
		ae, ok := err.(*apiError)
		if !ok {
			ae = &apiError{status: 500, typ: "exception", reason: err.Error()}
		}
		s.fail(w, ae)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func (s *Server) fail(w http.ResponseWriter, e *apiError) {
	b := append([]byte(`{"error":`), e.appendJSON(nil)...)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, '}')
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	if r.ContentLength > 0 {
		b := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, b)
		return b, err
	}
	return io.ReadAll(r.Body)
}

var acknowledged = []byte(`{"acknowledged":true}`)

func (s *Server) route(r *http.Request, body []byte) (int, []byte, error) {
	// Each segment is unescaped on its own: an id may hold a slash.
	var parts []string
	if p := strings.Trim(r.URL.EscapedPath(), "/"); p != "" {
		for _, seg := range strings.Split(p, "/") {
			u, err := url.PathUnescape(seg)
			if err != nil {
				return 0, nil, badRequest("bad path %s", r.URL.EscapedPath())
			}
			parts = append(parts, u)
		}
	}
	q := r.URL.Query()
	last := ""
	if len(parts) > 0 {
		last = parts[len(parts)-1]
	}
	m := r.Method
	switch {
	case len(parts) == 0 && (m == http.MethodHead || m == http.MethodGet):
		return 200, []byte(`{"name":"standin","cluster_name":"chatreport-bench","version":{"number":"8.19.0"},"tagline":"You Know, for Search"}`), nil
	case last == "_bulk" && len(parts) <= 2 && (m == http.MethodPost || m == http.MethodPut):
		def := ""
		if len(parts) == 2 {
			def = parts[0]
		}
		return s.bulk(r, q, def, body)
	case last == "_mget" && len(parts) <= 2 && (m == http.MethodPost || m == http.MethodGet):
		def := ""
		if len(parts) == 2 {
			def = parts[0]
		}
		return s.mget(q, def, body)
	case (last == "_search" || last == "_count") && len(parts) <= 2 && (m == http.MethodPost || m == http.MethodGet):
		target := ""
		if len(parts) == 2 {
			target = parts[0]
		}
		return s.search(q, target, body, last == "_count")
	case last == "_refresh" && len(parts) <= 2 && (m == http.MethodPost || m == http.MethodGet):
		target := ""
		if len(parts) == 2 {
			target = parts[0]
		}
		return s.refreshAPI(target)
	case len(parts) == 2 && (parts[0] == "_component_template" || parts[0] == "_index_template") && m == http.MethodPut:
		return 200, acknowledged, nil // no mappings are modelled
	case len(parts) == 1 && !strings.HasPrefix(parts[0], "_") && m == http.MethodPut:
		return s.createIndex(parts[0])
	case len(parts) == 1 && !strings.HasPrefix(parts[0], "_") && m == http.MethodHead:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.indices[parts[0]] == nil {
			return 404, nil, nil
		}
		return 200, nil, nil
	case len(parts) == 3 && parts[1] == "_doc" && m == http.MethodGet:
		return s.get(q, parts[0], parts[2])
	case len(parts) == 3 && (parts[1] == "_doc" || parts[1] == "_create") && (m == http.MethodPut || m == http.MethodPost || m == http.MethodDelete):
		return s.writeOne(r, q, parts[0], parts[1], parts[2], body)
	}
	return 0, nil, badRequest("stand-in: %s %s is not modelled", m, r.URL.Path)
}

func (s *Server) createIndex(name string) (int, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indices[name] != nil {
		return 0, nil, &apiError{status: 400, typ: "resource_already_exists_exception", reason: "index [" + name + "] already exists", index: name}
	}
	s.index(name, true)
	b := append([]byte(`{"acknowledged":true,"shards_acknowledged":true,"index":`), appendString(nil, name)...)
	return 200, append(b, '}'), nil
}

// op is one write.
type op struct {
	action      string // index, create or delete
	index, id   string
	ifSeq       *int64
	ifTerm      *int64
	version     *int64
	versionType string // "", internal, external, external_gt, external_gte
	src         []byte
}

// meta is an action line's object; unknown fields are ignored, as
// Elasticsearch ignores none of the ones the store sends.
type meta struct {
	Index         string `json:"_index"`
	ID            string `json:"_id"`
	IfSeqNo       *int64 `json:"if_seq_no"`
	IfPrimaryTerm *int64 `json:"if_primary_term"`
	Version       *int64 `json:"version"`
	VersionType   string `json:"version_type"`
}

type actionLine struct {
	Index  *meta `json:"index"`
	Create *meta `json:"create"`
	Delete *meta `json:"delete"`
	Update *meta `json:"update"`
}

// scanAction reads an action line of the usual shape, {"<action>":
// {"<field>": <string, integer or null>, ...}}, without encoding/json: it
// is most of the stand-in's work otherwise. ok is false for anything else,
// strings with escapes included.
func scanAction(l []byte, action *string) (m meta, ok bool) {
	i := 0
	ws := func() {
		for i < len(l) && (l[i] == ' ' || l[i] == '\t' || l[i] == '\r' || l[i] == '\n') {
			i++
		}
	}
	char := func(c byte) bool {
		ws()
		if i < len(l) && l[i] == c {
			i++
			return true
		}
		return false
	}
	str := func() (string, bool) {
		if !char('"') {
			return "", false
		}
		start := i
		for i < len(l) && l[i] != '"' {
			if l[i] == '\\' || l[i] < 0x20 {
				return "", false
			}
			i++
		}
		if i == len(l) {
			return "", false
		}
		i++
		return string(l[start : i-1]), true
	}
	if !char('{') {
		return m, false
	}
	name, ok := str()
	if !ok || !char(':') || !char('{') {
		return m, false
	}
	switch name {
	case "index", "create", "delete", "update":
		*action = name
	default:
		return m, false
	}
	if char('}') {
		return m, char('}') && i == len(l)
	}
	for {
		field, ok := str()
		if !ok || !char(':') {
			return m, false
		}
		ws()
		if i == len(l) {
			return m, false
		}
		switch c := l[i]; {
		case c == '"':
			v, ok := str()
			if !ok {
				return m, false
			}
			switch field {
			case "_index":
				m.Index = v
			case "_id":
				m.ID = v
			case "version_type":
				m.VersionType = v
			default:
				return m, false
			}
		case c == '-' || c >= '0' && c <= '9':
			start := i
			for i++; i < len(l) && l[i] >= '0' && l[i] <= '9'; i++ {
			}
			n, err := strconv.ParseInt(string(l[start:i]), 10, 64)
			if err != nil {
				return m, false
			}
			switch field {
			case "if_seq_no":
				m.IfSeqNo = &n
			case "if_primary_term":
				m.IfPrimaryTerm = &n
			case "version":
				m.Version = &n
			default:
				return m, false
			}
		case bytes.HasPrefix(l[i:], []byte("null")):
			i += 4
		default:
			return m, false
		}
		if char('}') {
			break
		}
		if !char(',') {
			return m, false
		}
	}
	return m, char('}') && i == len(l)
}

// maxIDBytes is the longest _id Elasticsearch takes.
const maxIDBytes = 512

// validate returns why Elasticsearch would refuse o before applying
// anything.
func (o *op) validate() string {
	external := o.versionType == "external" || o.versionType == "external_gt" || o.versionType == "external_gte"
	switch {
	case o.versionType != "" && o.versionType != "internal" && !external:
		return "No version type match [" + o.versionType + "]"
	case o.action == "create" && (external || o.version != nil):
		return "create operations only support internal versioning. use index instead"
	case o.action == "create" && o.ifSeq != nil:
		return "create operations do not support compare and set. use index instead"
	case o.index == "":
		return "index is missing"
	case o.id == "":
		return "an id is required (the stand-in does not generate ids)"
	case o.action != "delete" && len(o.id) > maxIDBytes:
		return fmt.Sprintf("id [%s] is too long, must be no longer than %d bytes but was: %d", o.id, maxIDBytes, len(o.id))
	case (o.ifSeq == nil) != (o.ifTerm == nil):
		return "if_seq_no and if_primary_term go together"
	case o.ifSeq != nil && (external || o.version != nil):
		return "compare and write operations can not use versioning"
	case !external && o.version != nil:
		return "internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead"
	case external && (o.version == nil || *o.version < 0):
		return "illegal version value for version type [" + strings.ToUpper(o.versionType) + "]"
	case o.action != "delete" && (len(o.src) == 0 || o.src[0] != '{'):
		return "the document must be a JSON object"
	}
	return ""
}

// parseBulk reads the action lines of body (and keeps the document lines
// as bytes, copied).
func parseBulk(body []byte, defIndex string) ([]op, error) {
	ops := make([]op, 0, bytes.Count(body, []byte{'\n'})/2+1)
	line := 0
	next := func() ([]byte, bool) {
		for len(body) > 0 {
			i := bytes.IndexByte(body, '\n')
			var l []byte
			if i < 0 {
				l, body = body, nil
			} else {
				l, body = body[:i], body[i+1:]
			}
			line++
			if l = bytes.TrimSpace(l); len(l) > 0 {
				return l, true
			}
		}
		return nil, false
	}
	for {
		l, ok := next()
		if !ok {
			break
		}
		var o op
		m, ok := scanAction(l, &o.action)
		if !ok {
			// Whatever the quick scan does not take, encoding/json
			// reads, or says what is wrong with it.
			var a actionLine
			if err := json.Unmarshal(l, &a); err != nil {
				return nil, badRequest("Malformed action/metadata line [%d]: %v", line, err)
			}
			n := 0
			for _, c := range []struct {
				name string
				m    *meta
			}{{"index", a.Index}, {"create", a.Create}, {"delete", a.Delete}, {"update", a.Update}} {
				if c.m != nil {
					o.action, m = c.name, *c.m
					n++
				}
			}
			if n != 1 {
				return nil, badRequest("Malformed action/metadata line [%d], expected one of [create, delete, index, update]", line)
			}
		}
		if o.action == "update" {
			return nil, badRequest("stand-in: bulk update is not modelled")
		}
		o.index, o.id, o.ifSeq, o.ifTerm, o.version, o.versionType = cmpOr(m.Index, defIndex), m.ID, m.IfSeqNo, m.IfPrimaryTerm, m.Version, m.VersionType
		if o.action != "delete" {
			src, ok := next()
			if !ok {
				return nil, badRequest("The bulk request must be terminated by a newline [\\n]: %s without a document", o.action)
			}
			o.src = bytes.Clone(src)
		}
		ops = append(ops, o)
	}
	if len(ops) == 0 {
		return nil, badRequest("Validation Failed: 1: no requests added;")
	}
	var invalid []string
	for i := range ops {
		if why := ops[i].validate(); why != "" {
			invalid = append(invalid, why)
		}
	}
	if len(invalid) > 0 {
		var b strings.Builder
		b.WriteString("Validation Failed: ")
		for i, e := range invalid {
			fmt.Fprintf(&b, "%d: %s;", i+1, e)
		}
		return nil, &apiError{status: 400, typ: "action_request_validation_exception", reason: b.String()}
	}
	return ops, nil
}

// result is the outcome of one write.
type result struct {
	status  int
	result  string // created, updated, deleted, not_found; "" for an error
	index   string
	ver     int64
	seq     int64
	err     *apiError
	touched *index
}

// apply applies o; s.mu is held.
func (s *Server) apply(o *op) result {
	ix := s.indices[o.index]
	external := o.versionType == "external" || o.versionType == "external_gt" || o.versionType == "external_gte"
	if ix == nil {
		// Writes create their index; a delete with internal versioning
		// does not (Elasticsearch auto-creates for external deletes).
		if o.action == "delete" && !external {
			return result{status: 404, index: o.index, err: indexNotFound(o.index)}
		}
		ix = s.index(o.index, true)
	}
	cur := ix.docs[o.id]
	var curVer int64
	exists := cur != nil
	if exists {
		curVer = cur.ver
	} else if t, ok := ix.tombs[o.id]; ok && time.Since(t.at) <= s.opts.GCDeletes {
		curVer, exists = t.ver, true
	}
	conflict := func(why string) result {
		return result{status: 409, index: ix.name, err: &apiError{status: 409, typ: "version_conflict_engine_exception",
			reason: "[" + o.id + "]: version conflict, " + why, index: ix.name}}
	}
	if o.ifSeq != nil {
		if cur == nil {
			return conflict(fmt.Sprintf("required seqNo [%d], primary term [%d] but no document was found", *o.ifSeq, *o.ifTerm))
		}
		if cur.seq != *o.ifSeq || *o.ifTerm != 1 {
			return conflict(fmt.Sprintf("required seqNo [%d], primary term [%d]. current document has seqNo [%d] and primary term [1]", *o.ifSeq, *o.ifTerm, cur.seq))
		}
	}
	var ver int64
	switch {
	case o.versionType == "external_gte":
		if exists && curVer > *o.version {
			return conflict(fmt.Sprintf("current version [%d] is higher than the one provided [%d]", curVer, *o.version))
		}
		ver = *o.version
	case external:
		if exists && curVer >= *o.version {
			return conflict(fmt.Sprintf("current version [%d] is higher or equal to the one provided [%d]", curVer, *o.version))
		}
		ver = *o.version
	case o.action == "create" && cur != nil:
		return conflict(fmt.Sprintf("document already exists (current version [%d])", curVer))
	default:
		ver = curVer + 1
	}
	ix.seq++
	if o.action == "delete" {
		delete(ix.docs, o.id)
		ix.pending[o.id] = nil
		ix.tombs[o.id] = tomb{ver: ver, at: time.Now()}
		if cur == nil {
			return result{status: 404, result: "not_found", index: ix.name, ver: ver, seq: ix.seq, touched: ix}
		}
		return result{status: 200, result: "deleted", index: ix.name, ver: ver, seq: ix.seq, touched: ix}
	}
	d := &doc{src: o.src, ver: ver, seq: ix.seq}
	ix.docs[o.id] = d
	ix.pending[o.id] = d
	delete(ix.tombs, o.id)
	if cur == nil {
		return result{status: 201, result: "created", index: ix.name, ver: ver, seq: ix.seq, touched: ix}
	}
	return result{status: 200, result: "updated", index: ix.name, ver: ver, seq: ix.seq, touched: ix}
}

// appendItem writes a write's result as Elasticsearch answers it.
func appendItem(b []byte, o *op, r *result) []byte {
	b = append(b, `{"_index":`...)
	b = appendString(b, r.index)
	b = append(b, `,"_id":`...)
	b = appendString(b, o.id)
	if r.err != nil {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.status), 10)
		b = append(b, `,"error":`...)
		b = r.err.appendJSON(b)
		return append(b, '}')
	}
	b = append(b, `,"_version":`...)
	b = strconv.AppendInt(b, r.ver, 10)
	b = append(b, `,"result":"`...)
	b = append(b, r.result...)
	b = append(b, `","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":`...)
	b = strconv.AppendInt(b, r.seq, 10)
	b = append(b, `,"_primary_term":1,"status":`...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	return append(b, '}')
}

// refreshPolicy reads the refresh parameter of a write.
func refreshPolicy(q url.Values) (string, error) {
	if !q.Has("refresh") {
		return "false", nil
	}
	switch v := q.Get("refresh"); v {
	case "", "true":
		return "true", nil
	case "false", "wait_for":
		return v, nil
	default:
		return "", badRequest("Unknown value for refresh: [%s].", v)
	}
}

func checkParams(q url.Values, allowed ...string) error {
	for k := range q {
		if !slices.Contains(allowed, k) {
			return badRequest("stand-in: parameter %s is not modelled", k)
		}
	}
	return nil
}

// bulk serves POST /_bulk and POST /<index>/_bulk.
func (s *Server) bulk(r *http.Request, q url.Values, defIndex string, body []byte) (int, []byte, error) {
	if err := checkParams(q, "refresh", "timeout"); err != nil {
		return 0, nil, err
	}
	policy, err := refreshPolicy(q)
	if err != nil {
		return 0, nil, err
	}
	start := time.Now()
	ops, err := parseBulk(body, defIndex)
	if err != nil {
		return 0, nil, err
	}
	out := make([]byte, 0, 64+200*len(ops))
	out = append(out, `{"items":[`...)
	errs := false
	touched := map[*index]bool{}
	s.mu.Lock()
	for i := range ops {
		o := &ops[i]
		res := s.apply(o)
		if res.touched != nil {
			touched[res.touched] = true
		}
		if res.err != nil {
			errs = true
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"`...)
		out = append(out, o.action...)
		out = append(out, `":`...)
		out = appendItem(out, o, &res)
		out = append(out, '}')
	}
	wait := s.afterWrite(policy, touched)
	s.mu.Unlock()
	if err := s.await(r, wait); err != nil {
		return 0, nil, err
	}
	out = append(out, `],"took":`...)
	out = strconv.AppendInt(out, time.Since(start).Milliseconds(), 10)
	out = append(out, `,"errors":`...)
	out = strconv.AppendBool(out, errs)
	return 200, append(out, '}'), nil
}

// afterWrite applies a write's refresh policy to the indices it changed;
// s.mu is held. It returns what a wait_for write waits for: the next
// refresh of each.
func (s *Server) afterWrite(policy string, touched map[*index]bool) []chan struct{} {
	var wait []chan struct{}
	for ix := range touched {
		switch policy {
		case "true":
			s.refreshIndex(ix)
		case "wait_for":
			wait = append(wait, ix.refreshed)
		}
	}
	return wait
}

func (s *Server) await(r *http.Request, wait []chan struct{}) error {
	for _, ch := range wait {
		select {
		case <-ch:
		case <-r.Context().Done():
			return r.Context().Err()
		case <-s.stop:
			return &apiError{status: 503, typ: "node_closed_exception", reason: "the stand-in stopped before the refresh a wait_for write waited for"}
		}
	}
	return nil
}

// writeOne serves PUT|POST <index>/_doc/<id>, PUT <index>/_create/<id> and
// DELETE <index>/_doc/<id>.
func (s *Server) writeOne(r *http.Request, q url.Values, name, api, id string, body []byte) (int, []byte, error) {
	if err := checkParams(q, "refresh", "timeout", "if_seq_no", "if_primary_term", "version", "version_type", "op_type"); err != nil {
		return 0, nil, err
	}
	policy, err := refreshPolicy(q)
	if err != nil {
		return 0, nil, err
	}
	o := op{action: "index", index: name, id: id, versionType: q.Get("version_type"), src: bytes.TrimSpace(body)}
	switch {
	case r.Method == http.MethodDelete:
		o.action, o.src = "delete", nil
	case api == "_create" || q.Get("op_type") == "create":
		o.action = "create"
	}
	for key, dst := range map[string]**int64{"if_seq_no": &o.ifSeq, "if_primary_term": &o.ifTerm, "version": &o.version} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, nil, badRequest("Failed to parse %s [%s]", key, v)
			}
			*dst = &n
		}
	}
	if why := o.validate(); why != "" {
		return 0, nil, &apiError{status: 400, typ: "action_request_validation_exception", reason: "Validation Failed: 1: " + why + ";"}
	}
	s.mu.Lock()
	res := s.apply(&o)
	var wait []chan struct{}
	if res.touched != nil {
		wait = s.afterWrite(policy, map[*index]bool{res.touched: true})
	}
	s.mu.Unlock()
	if res.err != nil {
		return 0, nil, res.err
	}
	if err := s.await(r, wait); err != nil {
		return 0, nil, err
	}
	return res.status, appendItem(nil, &o, &res), nil
}

// readOptions reads realtime (default true) and refresh (default false).
func readOptions(q url.Values) (realtime, refresh bool, err error) {
	if err := checkParams(q, "realtime", "refresh", "_source_includes"); err != nil {
		return false, false, err
	}
	parse := func(key string, def bool) (bool, error) {
		switch v, set := q.Get(key), q.Has(key); {
		case !set:
			return def, nil
		case v == "" || v == "true":
			return true, nil
		case v == "false":
			return false, nil
		default:
			return false, badRequest("Failed to parse value [%s] as only [true] or [false] are allowed.", v)
		}
	}
	if realtime, err = parse("realtime", true); err != nil {
		return false, false, err
	}
	refresh, err = parse("refresh", false)
	return realtime, refresh, err
}

// sourceIncludes reads _source_includes: top-level field names only (the
// stand-in does not model wildcards or paths, and refuses them).
func sourceIncludes(q url.Values) ([]string, error) {
	v := q.Get("_source_includes")
	if v == "" {
		return nil, nil
	}
	fields := strings.Split(v, ",")
	for _, f := range fields {
		if f == "" || strings.ContainsAny(f, "*.") {
			return nil, badRequest("stand-in: _source_includes %q is not modelled (top-level field names only)", v)
		}
	}
	return fields, nil
}

// filterSource keeps the top-level members of src named in fields, as
// source filtering does (an object with none of them is {}).
func filterSource(b, src []byte, fields []string) []byte {
	dec := jsontext.NewDecoder(bytes.NewReader(src))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return append(b, "{}"...)
	}
	b = append(b, '{')
	n := 0
	for dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			break
		}
		name := tok.String() // before the next read voids tok
		v, err := dec.ReadValue()
		if err != nil {
			break
		}
		if !slices.Contains(fields, name) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendString(b, name)
		b = append(b, ':')
		b = append(b, v...)
	}
	return append(b, '}')
}

// appendRead writes one document of a get or mget, with only fields of its
// source when fields is set; s.mu is held.
func (s *Server) appendRead(b []byte, name, id string, realtime bool, fields []string) (out []byte, found bool) {
	ix := s.indices[name]
	b = append(b, `{"_index":`...)
	b = appendString(b, name)
	b = append(b, `,"_id":`...)
	b = appendString(b, id)
	if ix == nil {
		b = append(b, `,"error":`...)
		b = indexNotFound(name).appendJSON(b)
		return append(b, '}'), false
	}
	docs := ix.docs
	if !realtime {
		docs = ix.view
	}
	d := docs[id]
	if d == nil {
		return append(b, `,"found":false}`...), false
	}
	b = append(b, `,"_version":`...)
	b = strconv.AppendInt(b, d.ver, 10)
	b = append(b, `,"_seq_no":`...)
	b = strconv.AppendInt(b, d.seq, 10)
	b = append(b, `,"_primary_term":1,"found":true,"_source":`...)
	if fields != nil {
		b = filterSource(b, d.src, fields)
	} else {
		b = append(b, d.src...)
	}
	return append(b, '}'), true
}

// get serves GET <index>/_doc/<id>.
func (s *Server) get(q url.Values, name, id string) (int, []byte, error) {
	realtime, refresh, err := readOptions(q)
	if err != nil {
		return 0, nil, err
	}
	fields, err := sourceIncludes(q)
	if err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[name]
	if ix == nil {
		return 0, nil, indexNotFound(name)
	}
	if refresh {
		s.refreshIndex(ix)
	}
	out, found := s.appendRead(nil, name, id, realtime, fields)
	if !found {
		return 404, out, nil
	}
	return 200, out, nil
}

// mget serves _mget with {"docs": [{"_index", "_id"}]} or {"ids": [...]},
// and _source_includes of top-level fields.
func (s *Server) mget(q url.Values, defIndex string, body []byte) (int, []byte, error) {
	realtime, refresh, err := readOptions(q)
	if err != nil {
		return 0, nil, err
	}
	fields, err := sourceIncludes(q)
	if err != nil {
		return 0, nil, err
	}
	var req struct {
		Docs []struct {
			Index  string          `json:"_index"`
			ID     *string         `json:"_id"`
			Source json.RawMessage `json:"_source"`
		} `json:"docs"`
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, nil, &apiError{status: 400, typ: "parse_exception", reason: "mget body: " + err.Error()}
	}
	type want struct{ index, id string }
	wants := make([]want, 0, len(req.Docs)+len(req.IDs))
	for i, d := range req.Docs {
		switch {
		case len(d.Source) > 0:
			return 0, nil, badRequest("stand-in: _source filtering is not modelled")
		case cmpOr(d.Index, defIndex) == "":
			return 0, nil, badRequest("Validation Failed: 1: index is missing for doc %d;", i)
		case d.ID == nil:
			return 0, nil, badRequest("Validation Failed: 1: id is missing for doc %d;", i)
		}
		wants = append(wants, want{cmpOr(d.Index, defIndex), *d.ID})
	}
	for _, id := range req.IDs {
		if defIndex == "" {
			return 0, nil, badRequest("Validation Failed: 1: index is missing for doc %d;", len(wants))
		}
		wants = append(wants, want{defIndex, id})
	}
	if len(wants) == 0 {
		return 0, nil, badRequest("Validation Failed: 1: no documents to get;")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if refresh {
		for _, w := range wants {
			if ix := s.indices[w.index]; ix != nil {
				s.refreshIndex(ix)
			}
		}
	}
	out := make([]byte, 0, 1024*len(wants))
	out = append(out, `{"docs":[`...)
	for i, w := range wants {
		if i > 0 {
			out = append(out, ',')
		}
		out, _ = s.appendRead(out, w.index, w.id, realtime, fields)
	}
	return 200, append(out, "]}"...), nil
}

// targets resolves a search target: every index when empty, "_all" or
// "*"; else comma-separated index names and wildcard patterns. A name that
// is no index is refused: the stand-in has no aliases, and answering a
// search through one as empty would be a wrong answer.
func (s *Server) targets(expr string) ([]*index, error) {
	var names []string
	if expr == "" || expr == "_all" || expr == "*" {
		for name := range s.indices {
			names = append(names, name)
		}
	} else {
		for _, e := range strings.Split(expr, ",") {
			if strings.ContainsAny(e, "*?") {
				for name := range s.indices {
					if ok, _ := path.Match(e, name); ok {
						names = append(names, name)
					}
				}
				continue
			}
			if s.indices[e] == nil {
				return nil, badRequest("stand-in: no index [%s] (aliases are not modelled)", e)
			}
			names = append(names, e)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]*index, len(names))
	for i, n := range names {
		out[i] = s.indices[n]
	}
	return out, nil
}

// search serves _search and _count: every refreshed document of the
// targets is a hit (queries are not evaluated).
func (s *Server) search(q url.Values, target string, body []byte, count bool) (int, []byte, error) {
	var req struct {
		Size *int `json:"size"`
		From *int `json:"from"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return 0, nil, &apiError{status: 400, typ: "parse_exception", reason: "search body: " + err.Error()}
		}
	}
	size, from := 10, 0
	if req.Size != nil {
		size = *req.Size
	}
	if req.From != nil {
		from = *req.From
	}
	for key, dst := range map[string]*int{"size": &size, "from": &from} {
		if v := q.Get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return 0, nil, badRequest("Failed to parse %s [%s]", key, v)
			}
			*dst = n
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ixs, err := s.targets(target)
	if err != nil {
		return 0, nil, err
	}
	total := 0
	for _, ix := range ixs {
		total += len(ix.view)
	}
	shards := strconv.Itoa(len(ixs))
	if count {
		b := append([]byte(`{"count":`), strconv.Itoa(total)...)
		return 200, append(b, `,"_shards":{"total":`+shards+`,"successful":`+shards+`,"skipped":0,"failed":0}}`...), nil
	}
	out := []byte(`{"took":0,"timed_out":false,"_shards":{"total":` + shards + `,"successful":` + shards + `,"skipped":0,"failed":0},"hits":{"total":{"value":`)
	out = strconv.AppendInt(out, int64(total), 10)
	out = append(out, `,"relation":"eq"},"max_score":null,"hits":[`...)
	k, n := 0, 0
	for _, ix := range ixs {
		ids := make([]string, 0, len(ix.view))
		for id := range ix.view {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			k++
			if k <= from || n >= size {
				continue
			}
			if n > 0 {
				out = append(out, ',')
			}
			n++
			d := ix.view[id]
			out = append(out, `{"_index":`...)
			out = appendString(out, ix.name)
			out = append(out, `,"_id":`...)
			out = appendString(out, id)
			out = append(out, `,"_score":null,"_source":`...)
			out = append(out, d.src...)
			out = append(out, '}')
		}
	}
	return 200, append(out, "]}}"...), nil
}

func (s *Server) refreshAPI(target string) (int, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ixs, err := s.targets(target)
	if err != nil {
		return 0, nil, err
	}
	for _, ix := range ixs {
		s.refreshIndex(ix)
	}
	n := strconv.Itoa(len(ixs))
	return 200, []byte(`{"_shards":{"total":` + n + `,"successful":` + n + `,"failed":0}}`), nil
}

// appendString appends s as a JSON string. s is valid UTF-8 (it was
// decoded from JSON or a URL path by Go); only quotes, backslashes and
// control characters are escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Docs returns the live sources of the documents of the indices matching
// pattern (path.Match), by "<index> <id>".
func (s *Server) Docs(pattern string) map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for name, ix := range s.indices {
		if ok, _ := path.Match(pattern, name); ok {
			for id, d := range ix.docs {
				out[name+" "+id] = d.src
			}
		}
	}
	return out
}
