package esfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is an in-memory Elasticsearch for tests: it speaks the HTTP API
// the store uses, with the semantics the package documentation lists —
// composable templates applied when a write creates an index, aliases,
// strict mappings (unknown fields and date_nanos out of range are 400s,
// unless WithoutMappingChecks),
// near-real-time search, realtime get, versions and the query DSL subset
// the store emits, evaluated naively. Anything else is a 400, so a request
// the fake does not understand fails the test instead of passing it. It
// checks the store's logic against its model of Elasticsearch, not
// Elasticsearch itself: the conformance suite against a real cluster
// (ES_URL) does that.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	components map[string]map[string]any // name → body
	templates  map[string]map[string]any // name → body
	indices    map[string]*fakeIndex
	pits       map[string]*fakePit
	nextPit    int
	// override, when overridden, is the refresh interval of every index.
	override   time.Duration
	overridden bool
	wake       chan struct{} // tells the refresh scheduler to look again
	stop, done chan struct{} // the scheduler's end
	// BulkHook, when set, may answer a bulk item instead of the fake:
	// a status of 0 lets the fake apply it. attempt counts the writes of
	// the same action, index and id made while a hook was set.
	BulkHook func(action, index, id string, attempt int) (status int, errType string)
	attempts map[string]int // per action+index+id, for BulkHook
	// BeforeBulk runs (unlocked) before each bulk request is applied.
	BeforeBulk func()
	bulks      int
	// ConflictHook, when set, is asked about each document a
	// _delete_by_query matched: true skips it as a version conflict, as if
	// a concurrent write had changed it between the search and the delete.
	ConflictHook func(index, id string) bool

	// uncheckedDocs: writes neither parse nor check documents against the
	// mapping (WithoutMappingChecks).
	uncheckedDocs bool
	// latency delays every answer (WithLatency).
	latency time.Duration
	// now is the clock points in time expire by (WithClock).
	now func() time.Time
	// grants, when set, are the user's privileges (WithSecurity); nil is a
	// cluster with security disabled.
	grants *Grants
	// maxContentLength is http.max_content_length (WithMaxContentLength).
	maxContentLength int64
}

type fakeIndex struct {
	name     string
	closed   bool           // POST <index>/_close
	mapping  map[string]any // properties
	aliases  map[string]bool
	settings map[string]string   // by full name: index.refresh_interval
	interval time.Duration       // index.refresh_interval
	docs     map[string]*fakeDoc // live: what get, mget and writes see
	seq      int64
	// tombs are the deletes of the last gcDeletes (index.gc_deletes), whose
	// versions writes are checked against.
	tombs     map[string]tombstone
	gcDeletes time.Duration

	// Near-real-time search (refresh.go): view is what searches see, the
	// documents as of the last refresh; pending the changes since, in the
	// order made (nil for a delete), made at dirtyAt and after.
	view      map[string]*fakeDoc
	shared    bool // a point in time holds view: a refresh copies it
	pending   []change
	dirtyAt   time.Time
	anchor    time.Time     // periodic refreshes tick at anchor + k·interval
	refreshed chan struct{} // closed by the next refresh
}

// A fakeDoc is one version of a document; it never changes once written,
// so views share it. Its source is kept as the bytes written, which reads
// answer as they are; it is decoded into a map only when a query, a sort,
// an aggregation or source filtering needs its fields (at once, when the
// write checked it against the mapping).
type fakeDoc struct {
	source []byte
	doc    map[string]any // nil until decoded; f.mu guards it
	seqNo  int64
	ver    int64
}

// fields returns the decoded source. Without mapping checks a source was
// not parsed when written: one that is not a JSON object is an error here,
// where its fields are first needed.
func (d *fakeDoc) fields() (map[string]any, error) {
	if d.doc == nil {
		if err := json.Unmarshal(d.source, &d.doc); err != nil || d.doc == nil {
			d.doc = nil
			return nil, &fakeError{status: 500, typ: "document_parsing_exception",
				reason: "fake: a document written without mapping checks is not a JSON object"}
		}
	}
	return d.doc, nil
}

// An Option configures a Server.
type Option func(*Server)

// WithoutMappingChecks makes writes keep documents as the bytes written
// without parsing them: a field outside the mapping, a value of the wrong
// type, a repeated member name or a source that is not JSON is not refused (only a source that
// does not begin as an object is). Everything else holds as documented:
// templates, aliases, refreshes and near-real-time search, realtime reads,
// versions and tombstones, missing indices, the _id limit. It is for the
// bench, whose stand-in's CPU is taken from the ingester it measures; the
// store's tests keep the checks.
func WithoutMappingChecks() Option {
	return func(f *Server) { f.uncheckedDocs = true }
}

// WithLatency delays every answer by d, to model a cluster across a
// network.
func WithLatency(d time.Duration) Option {
	return func(f *Server) { f.latency = d }
}

// WithClock makes now the clock by which points in time expire, so that a
// test moves past a keep-alive without waiting for it. Everything else
// (refreshes, tombstones) keeps the real clock.
func WithClock(now func() time.Time) Option {
	return func(f *Server) { f.now = now }
}

// DefaultMaxContentLength is http.max_content_length's default, 100mb.
const DefaultMaxContentLength = 100 << 20

// WithMaxContentLength sets the largest request body the server reads
// (http.max_content_length, 100mb by default). A request with a longer body
// is answered 413 Request Entity Too Large, with no body, before anything
// of it is applied, as Elasticsearch's HTTP layer does; nothing in the
// request is read as JSON.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/modules-network.html#http-settings
func WithMaxContentLength(n int64) Option {
	return func(f *Server) { f.maxContentLength = n }
}

// New starts a server, stopped when the test ends, with its periodic
// refreshes.
func New(t testing.TB, opts ...Option) *Server {
	f := Start(opts...)
	f.t = t
	t.Cleanup(f.Close)
	return f
}

// Start starts a server outside a test (the bench runs one in a process of
// its own), with its periodic refreshes; Close stops it.
func Start(opts ...Option) *Server {
	f := &Server{
		components: map[string]map[string]any{},
		templates:  map[string]map[string]any{},
		indices:    map[string]*fakeIndex{},
		pits:       map[string]*fakePit{},
		attempts:   map[string]int{},
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		now:        time.Now,

		maxContentLength: DefaultMaxContentLength,
	}
	for _, o := range opts {
		o(f)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	go f.schedule()
	return f
}

// Close stops the periodic refreshes, releasing the writes that wait for
// one, then the HTTP server, which waits for the requests in flight.
func (f *Server) Close() {
	f.shutdown()
	f.srv.Close()
}

// URL is the server's address.
func (f *Server) URL() string { return f.srv.URL }

// PointsInTime is how many points in time are open: neither closed nor
// expired.
func (f *Server) PointsInTime() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for id := range f.pits {
		if _, ok := f.livePit(id); ok {
			n++
		}
	}
	return n
}

// Bulks is how many bulk requests the server received.
func (f *Server) Bulks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bulks
}

type fakeError struct {
	status int
	typ    string
	reason string
	index  string // of an index_not_found_exception or index_closed_exception
}

func (e *fakeError) Error() string { return e.typ + ": " + e.reason }

// body is the error object of an answer, as Elasticsearch writes it.
func (e *fakeError) body() map[string]any {
	m := map[string]any{"type": e.typ, "reason": e.reason}
	switch {
	case e.typ == "index_closed_exception":
		m["index"], m["index_uuid"] = e.index, "fake-uuid-"+e.index
	case e.index != "":
		m["index"], m["index_uuid"], m["resource.type"], m["resource.id"] = e.index, "_na_", "index_or_alias", e.index
	}
	return m
}

func bad(format string, args ...any) *fakeError {
	return &fakeError{status: http.StatusBadRequest, typ: "illegal_argument_exception", reason: fmt.Sprintf(format, args...)}
}

// rawJSON is an answer encoded already.
type rawJSON []byte

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	body, err := readBody(r, f.maxContentLength)
	if errors.Is(err, errTooLarge) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	if f.latency > 0 {
		time.Sleep(f.latency)
	}
	var out any
	if err != nil {
		err = &fakeError{status: 400, typ: "parse_exception", reason: "request body: " + err.Error()}
	} else {
		out, err = f.route(r, body)
	}
	if err != nil {
		fe, ok := err.(*fakeError)
		if !ok {
			fe = &fakeError{status: 500, typ: "exception", reason: err.Error()}
		}
		w.WriteHeader(fe.status)
		cause := fe.body()
		e := maps.Clone(cause)
		e["root_cause"] = []any{cause}
		writeJSON(w, map[string]any{"error": e, "status": fe.status})
		return
	}
	if out == nil {
		out = map[string]any{"acknowledged": true}
	}
	if sb, ok := out.(statusBody); ok {
		w.WriteHeader(sb.status)
		out = sb.body
	}
	writeJSON(w, out)
}

// writeJSON writes an answer: as it is when encoded already, else through
// encoding/json (without HTML escapes, which Elasticsearch does not write).
func writeJSON(w io.Writer, v any) {
	if raw, ok := v.(rawJSON); ok {
		w.Write(raw)
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// errTooLarge: a request's body is longer than http.max_content_length.
var errTooLarge = errors.New("request body over http.max_content_length")

// readBody reads a request's body, in one allocation when its length is
// known; errTooLarge when it is longer than max.
func readBody(r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, errTooLarge
	}
	if r.ContentLength > 0 {
		b := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, b)
		return b, err
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err == nil && int64(len(b)) > max {
		return nil, errTooLarge
	}
	return b, err
}

func (f *Server) route(r *http.Request, body []byte) (any, error) {
	// Each path segment is unescaped on its own: an id may hold a slash.
	var parts []string
	for _, seg := range strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/") {
		u, err := url.PathUnescape(seg)
		if err != nil {
			return nil, bad("bad path %s", r.URL.EscapedPath())
		}
		parts = append(parts, u)
	}
	p := strings.Join(parts, "/")
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodHead && p == "":
		return nil, nil
	case p == "_security/user/_has_privileges":
		return f.hasPrivileges(r, body)
	case p == "_bulk":
		if f.BeforeBulk != nil {
			f.BeforeBulk()
		}
		return f.bulk(r.Context(), q, body)
	case len(parts) == 2 && parts[0] == "_component_template":
		if r.Method == http.MethodPut {
			return nil, f.putTemplate(f.components, parts[1], body)
		}
		return f.getTemplates(f.components, parts[1], "component_templates", "component_template")
	case len(parts) == 2 && parts[0] == "_index_template":
		switch r.Method {
		case http.MethodPut:
			return nil, f.putTemplate(f.templates, parts[1], body)
		case http.MethodDelete:
			return nil, f.deleteTemplate(f.templates, parts[1])
		}
		return f.getTemplates(f.templates, parts[1], "index_templates", "index_template")
	case len(parts) == 3 && parts[0] == "_cat" && parts[1] == "indices":
		return f.catIndices(parts[2], q)
	case p == "_cat/indices":
		return f.catIndices("", q)
	case len(parts) == 2 && parts[1] == "_alias" && r.Method == http.MethodGet:
		return f.aliases(parts[0], q)
	case p == "_alias" && r.Method == http.MethodGet:
		return f.aliases("", q)
	case len(parts) == 2 && parts[1] == "_mget":
		return f.mget(parts[0], q, body)
	case p == "_mget":
		return f.mget("", q, body)
	case len(parts) == 2 && parts[1] == "_search":
		return f.searchAPI(parts[0], q, body)
	case p == "_search":
		return f.searchAPI("", q, body)
	case len(parts) == 2 && parts[1] == "_count":
		return f.count(parts[0], q, body)
	case p == "_count":
		return f.count("", q, body)
	case p == "_msearch":
		return f.msearch(body)
	case p == "_refresh" && (r.Method == http.MethodPost || r.Method == http.MethodGet):
		return f.refreshAPI("", q)
	case len(parts) == 2 && parts[1] == "_refresh" && (r.Method == http.MethodPost || r.Method == http.MethodGet):
		return f.refreshAPI(parts[0], q)
	case len(parts) == 2 && parts[1] == "_pit" && r.Method == http.MethodPost:
		return f.openPit(parts[0], q)
	case p == "_pit" && r.Method == http.MethodDelete:
		var req struct{ ID string }
		json.Unmarshal(body, &req)
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.livePit(req.ID); !ok {
			return nil, errPitMissing
		}
		delete(f.pits, req.ID)
		return map[string]any{"succeeded": true, "num_freed": 1}, nil
	case len(parts) == 2 && (parts[1] == "_close" || parts[1] == "_open") && r.Method == http.MethodPost:
		return f.openClose(parts[0], q, parts[1] == "_close")
	case len(parts) == 2 && parts[1] == "_mapping" && r.Method == http.MethodPut:
		return f.putMapping(parts[0], q, body)
	case len(parts) == 1 && r.Method == http.MethodPut:
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.indices[parts[0]]; ok {
			return nil, &fakeError{status: 400, typ: "resource_already_exists_exception", reason: "index [" + parts[0] + "] already exists"}
		}
		_, err := f.createIndexWith(parts[0], body)
		return nil, err
	case len(parts) == 1 && r.Method == http.MethodDelete:
		return nil, f.deleteIndices(parts[0])
	case p == "_aliases" && r.Method == http.MethodPost:
		return nil, f.updateAliases(body)
	case len(parts) == 2 && parts[1] == "_delete_by_query" && r.Method == http.MethodPost:
		return f.deleteByQuery(parts[0], q, body)
	case len(parts) == 3 && parts[1] == "_doc":
		return f.doc(r.Context(), r.Method, parts[0], parts[2], q, body)
	}
	return nil, bad("fake: unsupported %s %s", r.Method, r.URL.Path)
}

// Docs returns the sources of the live documents in indices matching
// pattern, each decoded afresh (the caller may change it), by "<index>
// <id>"; a source that is not a JSON object, possible only without mapping
// checks, is nil.
func (f *Server) Docs(pattern string) map[string]map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]map[string]any{}
	for name, ix := range f.indices {
		if ok, _ := path.Match(pattern, name); ok {
			for id, d := range ix.docs {
				var m map[string]any
				json.Unmarshal(d.source, &m)
				out[name+" "+id] = m
			}
		}
	}
	return out
}

// Sources returns the sources of the live documents in indices matching
// pattern as the bytes written, by "<index> <id>".
func (f *Server) Sources(pattern string) map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]byte{}
	for name, ix := range f.indices {
		if ok, _ := path.Match(pattern, name); ok {
			for id, d := range ix.docs {
				out[name+" "+id] = d.source
			}
		}
	}
	return out
}
