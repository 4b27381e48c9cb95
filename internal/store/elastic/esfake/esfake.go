// Package esfake is an in-memory Elasticsearch for tests of the
// Elasticsearch store and of the commands that use it.
package esfake

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Server is an in-memory Elasticsearch for tests: it speaks the HTTP API
// the store uses, with the semantics the package relies on —
// composable templates applied when a write creates an index, aliases,
// strict mappings (unknown fields and date_nanos out of range are 400s),
// create/index/delete with if_seq_no/if_primary_term (409 on mismatch), and
// the query DSL subset the store emits, evaluated naively. Anything else
// is a 400, so a request the fake does not understand fails the test
// instead of passing it. It checks the store's logic against its model
// of Elasticsearch, not Elasticsearch itself: the conformance suite against
// a real cluster (ES_URL) does that.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	components map[string]map[string]any // name → body
	templates  map[string]map[string]any // name → body
	indices    map[string]*fakeIndex
	pits       map[string]string
	nextPit    int
	// BulkHook, when set, may answer a bulk item instead of the fake:
	// a status of 0 lets the fake apply it.
	BulkHook func(action, index, id string, attempt int) (status int, errType string)
	attempts map[string]int // per action+index+id, for BulkHook
	// BeforeBulk runs (unlocked) before each bulk request is applied.
	BeforeBulk func()
	bulks      int
	// ConflictHook, when set, is asked about each document a
	// _delete_by_query matched: true skips it as a version conflict, as if
	// a concurrent write had changed it between the search and the delete.
	ConflictHook func(index, id string) bool
}

type fakeIndex struct {
	mapping map[string]any // properties
	aliases map[string]bool
	docs    map[string]*fakeDoc
	seq     int64
}

type fakeDoc struct {
	source json.RawMessage
	doc    map[string]any
	seqNo  int64
	ver    int64
}

// New starts a server, stopped when the test ends.
func New(t testing.TB) *Server {
	f := &Server{
		t:          t,
		components: map[string]map[string]any{},
		templates:  map[string]map[string]any{},
		indices:    map[string]*fakeIndex{},
		pits:       map[string]string{},
		attempts:   map[string]int{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the server's address.
func (f *Server) URL() string { return f.srv.URL }

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
}

func (e *fakeError) Error() string { return e.typ + ": " + e.reason }

func bad(format string, args ...any) *fakeError {
	return &fakeError{http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf(format, args...)}
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	body, _ := io.ReadAll(r.Body)
	out, err := f.route(r, body)
	if err != nil {
		fe, ok := err.(*fakeError)
		if !ok {
			fe = &fakeError{500, "exception", err.Error()}
		}
		w.WriteHeader(fe.status)
		json.NewEncoder(w).Encode(map[string]any{
			"error":  map[string]any{"type": fe.typ, "reason": fe.reason},
			"status": fe.status,
		})
		return
	}
	if out == nil {
		out = map[string]any{"acknowledged": true}
	}
	if sb, ok := out.(statusBody); ok {
		w.WriteHeader(sb.status)
		out = sb.body
	}
	json.NewEncoder(w).Encode(out)
}

func (f *Server) route(r *http.Request, body []byte) (any, error) {
	p := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(p, "/")
	switch {
	case r.Method == http.MethodHead && p == "":
		return nil, nil
	case p == "_bulk":
		if f.BeforeBulk != nil {
			f.BeforeBulk()
		}
		return f.bulk(body)
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
		return f.catIndices(parts[2]), nil
	case len(parts) == 2 && parts[1] == "_alias":
		return f.aliases(parts[0]), nil
	case len(parts) == 2 && parts[1] == "_mget":
		return f.mget(parts[0], body)
	case len(parts) == 2 && parts[1] == "_search":
		return f.search(parts[0], body)
	case p == "_search":
		return f.search("", body)
	case p == "_msearch":
		return f.msearch(body)
	case len(parts) == 2 && parts[1] == "_pit":
		f.mu.Lock()
		defer f.mu.Unlock()
		f.nextPit++
		id := fmt.Sprintf("pit-%d", f.nextPit)
		f.pits[id] = parts[0]
		return map[string]any{"id": id}, nil
	case p == "_pit" && r.Method == http.MethodDelete:
		var req struct{ ID string }
		json.Unmarshal(body, &req)
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.pits[req.ID]; !ok {
			return nil, &fakeError{404, "search_context_missing_exception", "no such pit"}
		}
		delete(f.pits, req.ID)
		return map[string]any{"succeeded": true, "num_freed": 1}, nil
	case len(parts) == 1 && r.Method == http.MethodPut:
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.indices[parts[0]]; ok {
			return nil, &fakeError{400, "resource_already_exists_exception", "index [" + parts[0] + "] already exists"}
		}
		_, err := f.createIndexWith(parts[0], body)
		return nil, err
	case len(parts) == 1 && r.Method == http.MethodDelete:
		return nil, f.deleteIndices(parts[0])
	case p == "_aliases" && r.Method == http.MethodPost:
		return nil, f.updateAliases(body)
	case len(parts) == 2 && parts[1] == "_delete_by_query" && r.Method == http.MethodPost:
		return f.deleteByQuery(parts[0], r.URL.Query(), body)
	case len(parts) == 3 && parts[1] == "_doc":
		return f.doc(r.Method, parts[0], parts[2], r.URL.Query(), body)
	}
	return nil, bad("fake: unsupported %s %s", r.Method, r.URL.Path)
}

func (f *Server) putTemplate(into map[string]map[string]any, name string, body []byte) error {
	var t map[string]any
	if err := json.Unmarshal(body, &t); err != nil {
		return bad("template %s: %v", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	into[name] = t
	return nil
}

func (f *Server) getTemplates(from map[string]map[string]any, pattern, listKey, itemKey string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []any{}
	for name, t := range from {
		if ok, _ := path.Match(pattern, name); ok {
			list = append(list, map[string]any{"name": name, itemKey: t})
		}
	}
	if len(list) == 0 && !strings.Contains(pattern, "*") {
		return nil, &fakeError{404, "resource_not_found_exception", pattern}
	}
	return map[string]any{listKey: list}, nil
}

func (f *Server) catIndices(patterns string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []any{}
	for name, ix := range f.indices {
		if matchAny(patterns, name) {
			out = append(out, map[string]any{"index": name, "health": "green", "status": "open", "docs.count": strconv.Itoa(len(ix.docs))})
		}
	}
	return out
}

func (f *Server) aliases(patterns string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]any{}
	for name, ix := range f.indices {
		if matchAny(patterns, name) {
			as := map[string]any{}
			for a := range ix.aliases {
				as[a] = map[string]any{}
			}
			out[name] = map[string]any{"aliases": as}
		}
	}
	return out
}

func matchAny(patterns, name string) bool {
	for _, p := range strings.Split(patterns, ",") {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// createIndex applies the matching index template, as auto-creation does.
// The fake refuses an index no template matches: the store must never
// write one.
func (f *Server) createIndex(name string) (*fakeIndex, error) { return f.createIndexWith(name, nil) }

// createIndexWith creates an index as PUT /<name> does: with the mappings
// and aliases of the body, on top of those of the matching index template;
// without a body, an index no template matches is refused.
func (f *Server) createIndexWith(name string, body []byte) (*fakeIndex, error) {
	var req struct {
		Settings map[string]any `json:"settings"`
		Mappings struct {
			Dynamic    string         `json:"dynamic"`
			Meta       map[string]any `json:"_meta"`
			Properties map[string]any `json:"properties"`
		} `json:"mappings"`
		Aliases map[string]any `json:"aliases"`
	}
	if len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, bad("create index %s: %v", name, err)
		}
	}
	ix, err := f.fromTemplate(name)
	if err != nil && len(req.Mappings.Properties) == 0 {
		return nil, err
	}
	if ix == nil {
		ix = &fakeIndex{mapping: map[string]any{}, aliases: map[string]bool{}, docs: map[string]*fakeDoc{}}
	}
	maps.Copy(ix.mapping, req.Mappings.Properties)
	for a := range req.Aliases {
		ix.aliases[a] = true
	}
	f.indices[name] = ix
	return ix, nil
}

// fromTemplate builds an index from the matching index template.
func (f *Server) fromTemplate(name string) (*fakeIndex, error) {
	for _, t := range f.templates {
		patterns, _ := t["index_patterns"].([]any)
		if !slices.ContainsFunc(patterns, func(p any) bool { ok, _ := path.Match(p.(string), name); return ok }) {
			continue
		}
		ix := &fakeIndex{mapping: map[string]any{}, aliases: map[string]bool{}, docs: map[string]*fakeDoc{}}
		ignore, _ := t["ignore_missing_component_templates"].([]any)
		composed, _ := t["composed_of"].([]any)
		for _, c := range composed {
			ct, ok := f.components[c.(string)]
			if !ok {
				if slices.Contains(ignore, c) {
					continue
				}
				return nil, bad("index template composed of missing component template %s", c)
			}
			tmpl, _ := ct["template"].(map[string]any)
			mappings, _ := tmpl["mappings"].(map[string]any)
			props, _ := mappings["properties"].(map[string]any)
			for k, v := range props {
				ix.mapping[k] = v
			}
		}
		if tmpl, ok := t["template"].(map[string]any); ok {
			as, _ := tmpl["aliases"].(map[string]any)
			for a := range as {
				ix.aliases[a] = true
			}
		}
		if len(ix.mapping) == 0 {
			return nil, bad("index %s: template without mappings", name)
		}
		return ix, nil
	}
	return nil, &fakeError{404, "index_not_found_exception", "no such index [" + name + "] and no template matches"}
}

// resolve returns the indices a target (names, aliases, comma-separated)
// designates.
func (f *Server) resolve(target string) []string {
	var out []string
	for _, t := range strings.Split(target, ",") {
		if _, ok := f.indices[t]; ok {
			out = append(out, t)
			continue
		}
		for name, ix := range f.indices {
			if ix.aliases[t] {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mget is a realtime multi-get by ids.
func (f *Server) mget(index string, body []byte) (any, error) {
	var req struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.IDs) == 0 {
		return nil, bad("fake mget: want ids")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ix, ok := f.indices[index]
	docs := make([]any, len(req.IDs))
	for i, id := range req.IDs {
		switch d := (*fakeDoc)(nil); {
		case !ok:
			docs[i] = map[string]any{"_index": index, "_id": id,
				"error": map[string]any{"type": "index_not_found_exception", "reason": "no such index [" + index + "]"}}
		case ix.docs[id] == nil:
			docs[i] = map[string]any{"_index": index, "_id": id, "found": false}
		default:
			d = ix.docs[id]
			docs[i] = map[string]any{"_index": index, "_id": id, "_version": d.ver, "_seq_no": d.seqNo, "_primary_term": 1, "found": true}
		}
	}
	return map[string]any{"docs": docs}, nil
}

// ---- bulk ----

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

// Validate checks doc against the properties of a strict mapping, as
// Elasticsearch would.
func Validate(props map[string]any, doc map[string]any) error {
	if err := validate(props, doc, ""); err != nil {
		return err
	}
	return nil
}

func validate(props map[string]any, doc map[string]any, prefix string) *fakeError {
	for k, v := range doc {
		p, ok := props[k].(map[string]any)
		if !ok {
			return &fakeError{400, "strict_dynamic_mapping_exception",
				fmt.Sprintf("[1:2] mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed", k, cmpOr(prefix, "_doc"))}
		}
		if err := validateValue(p, v, prefix+k); err != nil {
			return err
		}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return strings.TrimSuffix(a, ".")
	}
	return b
}

func validateValue(p map[string]any, v any, field string) *fakeError {
	if v == nil {
		return nil
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if err := validateValue(p, e, field); err != nil {
				return err
			}
		}
		return nil
	}
	typ, _ := p["type"].(string)
	if enabled, ok := p["enabled"].(bool); ok && !enabled {
		return nil
	}
	parseErr := func(why string) *fakeError {
		return &fakeError{400, "document_parsing_exception",
			fmt.Sprintf("[1:2] failed to parse field [%s] of type [%s]: %s. Preview of field's value: '%v'", field, typ, why, v)}
	}
	switch typ {
	case "", "object", "nested":
		obj, ok := v.(map[string]any)
		if !ok {
			return parseErr("not an object")
		}
		sub, _ := p["properties"].(map[string]any)
		return validate(sub, obj, field+".")
	case "keyword", "wildcard", "text":
		if _, ok := v.(string); !ok {
			return parseErr("not a string")
		}
	case "date_nanos":
		s, ok := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil || t.Before(time.Unix(0, 0)) || t.Year() > 2262 {
			return parseErr("date out of the range of date_nanos")
		}
	case "binary":
		str, ok := v.(string)
		if _, err := base64.StdEncoding.DecodeString(str); !ok || err != nil {
			return parseErr("not base64")
		}
	case "integer":
		if _, ok := v.(float64); !ok {
			return parseErr("not a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return parseErr("not a boolean")
		}
	default:
		return parseErr("type unknown to the fake")
	}
	return nil
}

// ---- search ----

type fakeSearch struct {
	Query            map[string]any            `json:"query"`
	Sort             []map[string]fakeSortSpec `json:"sort"`
	Size             *int                      `json:"size"`
	SearchAfter      []any                     `json:"search_after"`
	Source           json.RawMessage           `json:"_source"`
	SeqNoPrimaryTerm bool                      `json:"seq_no_primary_term"`
	TrackTotalHits   json.RawMessage           `json:"track_total_hits"`
	Pit              *struct {
		ID        string `json:"id"`
		KeepAlive string `json:"keep_alive"`
	} `json:"pit"`
	Aggregations map[string]struct {
		Composite *struct {
			Size    int               `json:"size"`
			After   map[string]string `json:"after"`
			Sources []map[string]struct {
				Terms struct{ Field string } `json:"terms"`
			} `json:"sources"`
		} `json:"composite"`
	} `json:"aggregations"`
}

type fakeSortSpec struct {
	Order  string `json:"order"`
	Format string `json:"format"`
}

type candidate struct {
	index, id string
	d         *fakeDoc
	sort      []any
}

// msearch runs each search of an _msearch body on its own, as
// Elasticsearch does: another request may be applied between two of them.
func (f *Server) msearch(body []byte) (any, error) {
	lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	if len(lines)%2 != 0 {
		return nil, bad("fake msearch: a header without a search")
	}
	var responses []any
	for i := 0; i < len(lines); i += 2 {
		var h struct {
			Index                     []string `json:"index"`
			IgnoreUnavailable         bool     `json:"ignore_unavailable"`
			AllowNoIndices            bool     `json:"allow_no_indices"`
			AllowPartialSearchResults *bool    `json:"allow_partial_search_results"`
		}
		dec := json.NewDecoder(bytes.NewReader(lines[i]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&h); err != nil {
			return nil, bad("fake msearch header: %v", err)
		}
		out, err := f.search(strings.Join(h.Index, ","), lines[i+1])
		if err != nil {
			fe, ok := err.(*fakeError)
			if !ok {
				fe = &fakeError{500, "exception", err.Error()}
			}
			responses = append(responses, map[string]any{"error": map[string]any{"type": fe.typ, "reason": fe.reason}, "status": fe.status})
			continue
		}
		resp, ok := out.(map[string]any)
		if !ok {
			return nil, bad("fake msearch: a search answered %T", out)
		}
		resp["status"] = 200
		responses = append(responses, resp)
	}
	return map[string]any{"took": 1, "responses": responses}, nil
}

func (f *Server) search(target string, body []byte) (any, error) {
	var req fakeSearch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, bad("fake search: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.Pit != nil {
		if target != "" {
			return nil, bad("[indices] cannot be used with point in time")
		}
		var ok bool
		if target, ok = f.pits[req.Pit.ID]; !ok {
			return nil, &fakeError{404, "search_context_missing_exception", "no such pit"}
		}
	}
	var hits []candidate
	for _, name := range f.resolve(target) {
		for id, d := range f.indices[name].docs {
			ok, err := evalQuery(req.Query, d.doc, id, f.indices[name].mapping)
			if err != nil {
				return nil, err
			}
			if ok {
				c := candidate{index: name, id: id, d: d}
				for _, s := range req.Sort {
					for field := range s {
						c.sort = append(c.sort, firstValue(d.doc, field))
					}
				}
				hits = append(hits, c)
			}
		}
	}
	resp := map[string]any{"took": 1, "timed_out": false, "_shards": map[string]any{"total": 1, "successful": 1, "skipped": 0, "failed": 0}}
	if req.Pit != nil {
		resp["pit_id"] = req.Pit.ID
	}
	if len(req.Aggregations) > 0 {
		aggs, err := compositeAggs(req, hits)
		if err != nil {
			return nil, err
		}
		resp["aggregations"] = aggs
	}
	orders := make([]string, 0, len(req.Sort))
	for _, s := range req.Sort {
		for _, spec := range s {
			orders = append(orders, spec.Order)
		}
	}
	cmpHits := func(a, b []any) int {
		for i := range orders {
			c := compareValues(a[i], b[i])
			if orders[i] == "desc" {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	}
	slices.SortFunc(hits, func(a, b candidate) int {
		if c := cmpHits(a.sort, b.sort); c != 0 {
			return c
		}
		return strings.Compare(a.index+a.id, b.index+b.id)
	})
	total := len(hits)
	if req.SearchAfter != nil {
		if len(req.SearchAfter) != len(orders) {
			return nil, bad("search_after has %d values, sort %d", len(req.SearchAfter), len(orders))
		}
		hits = slices.DeleteFunc(hits, func(c candidate) bool { return cmpHits(c.sort, req.SearchAfter) <= 0 })
	}
	size := 10
	if req.Size != nil {
		size = *req.Size
	}
	if size > 10000 {
		return nil, bad("Result window is too large")
	}
	hits = hits[:min(size, len(hits))]
	out := make([]any, len(hits))
	for i, h := range hits {
		m := map[string]any{"_index": h.index, "_id": h.id, "_score": nil}
		if src := sourceOf(req.Source, h.d); src != nil {
			m["_source"] = src
		}
		if req.SeqNoPrimaryTerm {
			m["_seq_no"], m["_primary_term"] = h.d.seqNo, 1
		}
		if len(h.sort) > 0 {
			m["sort"] = h.sort
		}
		out[i] = m
	}
	hm := map[string]any{"hits": out}
	if string(req.TrackTotalHits) == "true" {
		hm["total"] = map[string]any{"value": total, "relation": "eq"}
	}
	resp["hits"] = hm
	return resp, nil
}

func sourceOf(spec json.RawMessage, d *fakeDoc) any {
	if string(spec) == "false" {
		return nil
	}
	var filter struct{ Includes, Excludes []string }
	if len(spec) > 0 && spec[0] == '{' {
		json.Unmarshal(spec, &filter)
	}
	out := map[string]any{}
	for k, v := range d.doc {
		if slices.Contains(filter.Excludes, k) || len(filter.Includes) > 0 && !slices.Contains(filter.Includes, k) {
			continue
		}
		out[k] = v
	}
	return out
}

func compositeAggs(req fakeSearch, hits []candidate) (any, error) {
	out := map[string]any{}
	for name, a := range req.Aggregations {
		if a.Composite == nil || len(a.Composite.Sources) != 1 {
			return nil, bad("fake: only composite aggregations with one source")
		}
		var srcName, field string
		for n, s := range a.Composite.Sources[0] {
			srcName, field = n, s.Terms.Field
		}
		counts := map[string]int{}
		for _, h := range hits {
			vals := values(h.d.doc, field)
			seen := map[string]bool{}
			for _, v := range vals {
				s := fmt.Sprint(v)
				if !seen[s] {
					seen[s] = true
					counts[s]++
				}
			}
		}
		keys := make([]string, 0, len(counts))
		for k := range counts {
			if after, ok := a.Composite.After[srcName]; !ok || k > after {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		keys = keys[:min(len(keys), a.Composite.Size)]
		buckets := make([]any, len(keys))
		for i, k := range keys {
			buckets[i] = map[string]any{"key": map[string]any{srcName: k}, "doc_count": counts[k]}
		}
		agg := map[string]any{"buckets": buckets}
		if len(keys) > 0 {
			agg["after_key"] = map[string]any{srcName: keys[len(keys)-1]}
		}
		out[name] = agg
	}
	return out, nil
}

// values returns the values at a dotted path, arrays flattened; a
// multi-field (info_kv.wc) has the values of its parent.
func values(doc map[string]any, field string) []any {
	if !strings.Contains(field, ".") {
		switch v := doc[field].(type) {
		case nil:
			return nil
		case []any:
			return v
		default:
			return []any{v}
		}
	}
	var out []any
	var walk func(v any, rest []string)
	walk = func(v any, rest []string) {
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				walk(e, rest)
			}
			return
		}
		if len(rest) == 0 {
			if v != nil {
				out = append(out, v)
			}
			return
		}
		if m, ok := v.(map[string]any); ok {
			walk(m[rest[0]], rest[1:])
		}
	}
	walk(doc, strings.Split(field, "."))
	if len(out) == 0 && strings.HasSuffix(field, ".wc") {
		return values(doc, strings.TrimSuffix(field, ".wc"))
	}
	return out
}

func equalValues(a, b any) bool {
	if as, ok := a.(string); ok {
		bs, ok := b.(string)
		return ok && as == bs
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func firstValue(doc map[string]any, field string) any {
	if vs := values(doc, field); len(vs) > 0 {
		return vs[0]
	}
	return nil
}

func compareValues(a, b any) int {
	as, aok := a.(string)
	bs, bok := b.(string)
	if !aok || !bok {
		as, bs = fmt.Sprint(a), fmt.Sprint(b)
	}
	if len(as) < 20 || len(bs) < 20 || as[4] != '-' || bs[4] != '-' {
		return strings.Compare(as, bs)
	}
	ta, errA := time.Parse(time.RFC3339Nano, as)
	tb, errB := time.Parse(time.RFC3339Nano, bs)
	if errA == nil && errB == nil {
		return ta.Compare(tb)
	}
	return strings.Compare(as, bs)
}

func evalQuery(q map[string]any, doc map[string]any, id string, mapping map[string]any) (bool, error) {
	if q == nil {
		return true, nil
	}
	if len(q) != 1 {
		return false, bad("fake: query with %d kinds", len(q))
	}
	for kind, body := range q {
		b, _ := body.(map[string]any)
		switch kind {
		case "bool":
			return evalBool(b, doc, id, mapping)
		case "match_none":
			return false, nil
		case "ids":
			vals, _ := b["values"].([]any)
			return slices.Contains(vals, any(id)), nil
		case "nested":
			p, _ := b["path"].(string)
			sub, _ := b["query"].(map[string]any)
			elems, _ := doc[p].([]any)
			for _, e := range elems {
				ok, err := evalQuery(sub, map[string]any{p: e}, id, mapping)
				if err != nil || ok {
					return ok, err
				}
			}
			return false, nil
		}
		if len(b) != 1 {
			return false, bad("fake: %s on %d fields", kind, len(b))
		}
		for field, spec := range b {
			vals := values(doc, field)
			switch kind {
			case "term":
				want := spec.(map[string]any)["value"]
				return slices.ContainsFunc(vals, func(v any) bool { return equalValues(v, want) }), nil
			case "terms":
				wants, _ := spec.([]any)
				return slices.ContainsFunc(vals, func(v any) bool {
					return slices.ContainsFunc(wants, func(w any) bool { return equalValues(v, w) })
				}), nil
			case "prefix":
				want := spec.(map[string]any)["value"].(string)
				return slices.ContainsFunc(vals, func(v any) bool { return strings.HasPrefix(fmt.Sprint(v), want) }), nil
			case "wildcard":
				re, err := wildcardRegexp(spec.(map[string]any)["value"].(string))
				if err != nil {
					return false, err
				}
				return slices.ContainsFunc(vals, func(v any) bool { return re.MatchString(fmt.Sprint(v)) }), nil
			case "range":
				r := spec.(map[string]any)
				return slices.ContainsFunc(vals, func(v any) bool {
					for op, bound := range r {
						c := compareValues(v, bound)
						switch op {
						case "gte":
							if c < 0 {
								return false
							}
						case "gt":
							if c <= 0 {
								return false
							}
						case "lte":
							if c > 0 {
								return false
							}
						case "lt":
							if c >= 0 {
								return false
							}
						}
					}
					return true
				}), nil
			case "match_phrase":
				want := words(spec.(map[string]any)["query"].(string))
				return slices.ContainsFunc(vals, func(v any) bool { return containsRun(words(fmt.Sprint(v)), want) }), nil
			}
		}
		return false, bad("fake: unsupported query %s", kind)
	}
	return false, nil
}

func evalBool(b map[string]any, doc map[string]any, id string, mapping map[string]any) (bool, error) {
	list := func(key string) []map[string]any {
		arr, _ := b[key].([]any)
		out := make([]map[string]any, len(arr))
		for i, q := range arr {
			out[i], _ = q.(map[string]any)
		}
		return out
	}
	for k := range b {
		switch k {
		case "filter", "must", "must_not", "should", "minimum_should_match":
		default:
			return false, bad("fake: bool.%s", k)
		}
	}
	for _, key := range []string{"filter", "must"} {
		for _, q := range list(key) {
			if ok, err := evalQuery(q, doc, id, mapping); err != nil || !ok {
				return false, err
			}
		}
	}
	for _, q := range list("must_not") {
		if ok, err := evalQuery(q, doc, id, mapping); err != nil || ok {
			return false, err
		}
	}
	if should := list("should"); len(should) > 0 {
		n := 0
		for _, q := range should {
			ok, err := evalQuery(q, doc, id, mapping)
			if err != nil {
				return false, err
			}
			if ok {
				n++
			}
		}
		msm := 1
		if v, ok := b["minimum_should_match"].(float64); ok {
			msm = int(v)
		}
		return n >= msm, nil
	}
	return true, nil
}

func wildcardRegexp(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	esc := false
	for _, r := range pattern {
		switch {
		case esc:
			b.WriteString(regexp.QuoteMeta(string(r)))
			esc = false
		case r == '\\':
			esc = true
		case r == '*':
			b.WriteString("(?s:.*)")
		case r == '?':
			b.WriteString("(?s:.)")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// words is the fake's chatreport_words analyzer: split on what is not a
// letter or digit, lowercase, fold diacritics.
func words(s string) []string {
	if w, ok := analyzed.Load(s); ok {
		return w.([]string)
	}
	w := analyze(s)
	analyzed.Store(s, w)
	return w
}

var analyzed sync.Map // text → words: the fake analyses each text once

func analyze(s string) []string {
	fold := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	folded, _, _ := transform.String(fold, strings.ToLower(s))
	return strings.FieldsFunc(folded, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
}

func containsRun(tokens, run []string) bool {
	if len(run) == 0 {
		return false
	}
	for i := 0; i+len(run) <= len(tokens); i++ {
		if slices.Equal(tokens[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

// Docs returns the sources of the documents in indices matching pattern,
// by "<index> <id>".
func (f *Server) Docs(pattern string) map[string]map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]map[string]any{}
	for name, ix := range f.indices {
		if ok, _ := path.Match(pattern, name); ok {
			for id, d := range ix.docs {
				out[name+" "+id] = d.doc
			}
		}
	}
	return out
}
