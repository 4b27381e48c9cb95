package esfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

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

// indexView is what a search of an index sees: its searchable view, or
// the one a point in time holds.
type indexView struct {
	ix   *fakeIndex
	docs map[string]*fakeDoc
}

// fakePit is a point in time: the searchable views of its indices when it
// was opened. Later refreshes do not change what its searches see.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.17/point-in-time-api.html
// It lives until expires: keep_alive after it was opened, or after the
// last search that named it with a keep_alive, which extends it
// (#point-in-time-keep-alive on that page: "The keep_alive parameter, which
// is passed to a open point in time request and search request, extends the
// time to live"). A search naming it without a keep_alive does not extend
// it here. Past expires it is gone: a search or a close naming it is a 404
// search_context_missing_exception. Elasticsearch frees expired contexts
// in a periodic sweep (SearchService's reaper), so one may outlive its
// keep-alive there for a while; the fake frees it on time, promising no
// more than the keep-alive.
//
// A search of a point in time sorts by an implicit tiebreaker after its
// sort, `_shard_doc` (ascending), whose value ends each hit's sort values,
// so that search_after must give it back too ("All PIT search requests add
// an implicit sort tiebreaker field called _shard_doc":
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/paginate-search-results.html#search-after).
// Elasticsearch's is the shard's index and the document's Lucene number;
// the fake's, shardDoc, numbers the point in time's documents by index
// and id, the order its searches break ties in anyway.
type fakePit struct {
	views    []indexView
	expires  time.Time
	shardDoc map[string]int64 // by index + "/" + id
}

// livePit returns the point in time id names, forgetting it if it expired.
// f.mu is held.
func (f *Server) livePit(id string) (*fakePit, bool) {
	pit, ok := f.pits[id]
	if ok && !f.now().Before(pit.expires) {
		delete(f.pits, id)
		ok = false
	}
	return pit, ok
}

// errPitMissing is what Elasticsearch answers for a point in time that was
// closed or expired.
var errPitMissing = &fakeError{status: 404, typ: "search_context_missing_exception", reason: "No search context found for id"}

// keepAliveValue parses a point in time's keep_alive, a time value
// (parseTimeValue) that must not be -1.
func keepAliveValue(v string) (time.Duration, error) {
	d, err := parseTimeValue(v)
	if err != nil || d < 0 {
		return 0, &fakeError{status: 400, typ: "parse_exception",
			reason: fmt.Sprintf("failed to parse setting [keep_alive] with value [%s] as a time value", v)}
	}
	return d, nil
}

// openPit serves POST /<target>/_pit.
func (f *Server) openPit(target string, q url.Values) (any, error) {
	if err := checkParams("_pit", q, "keep_alive", "ignore_unavailable", "expand_wildcards"); err != nil {
		return nil, err
	}
	if q.Get("keep_alive") == "" {
		return nil, &fakeError{status: 400, typ: "action_request_validation_exception", reason: "Validation Failed: 1: [keep_alive] is not specified;"}
	}
	keepAlive, err := keepAliveValue(q.Get("keep_alive"))
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	names, err := f.resolveParams(target, q)
	if err != nil {
		return nil, err
	}
	pit := &fakePit{expires: f.now().Add(keepAlive), shardDoc: map[string]int64{}}
	var keys []string
	for _, name := range names {
		ix := f.indices[name]
		ix.shared = true
		pit.views = append(pit.views, indexView{ix, ix.view})
		for id := range ix.view {
			keys = append(keys, name+"/"+id)
		}
	}
	slices.Sort(keys)
	for i, k := range keys {
		pit.shardDoc[k] = int64(i)
	}
	f.nextPit++
	id := fmt.Sprintf("pit-%d", f.nextPit)
	f.pits[id] = pit
	return map[string]any{"id": id}, nil
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
			IgnoreUnavailable         *bool    `json:"ignore_unavailable"`
			AllowNoIndices            *bool    `json:"allow_no_indices"`
			AllowPartialSearchResults *bool    `json:"allow_partial_search_results"`
		}
		dec := json.NewDecoder(bytes.NewReader(lines[i]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&h); err != nil {
			return nil, bad("fake msearch header: %v", err)
		}
		o := strictExpand
		if h.IgnoreUnavailable != nil {
			o.ignoreUnavailable = *h.IgnoreUnavailable
		}
		if h.AllowNoIndices != nil {
			o.allowNoIndices = *h.AllowNoIndices
		}
		out, err := f.search(strings.Join(h.Index, ","), o, lines[i+1])
		if err != nil {
			fe, ok := err.(*fakeError)
			if !ok {
				fe = &fakeError{status: 500, typ: "exception", reason: err.Error()}
			}
			responses = append(responses, map[string]any{"error": fe.body(), "status": fe.status})
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

// searchAPI serves POST /<target>/_search and POST /_search.
func (f *Server) searchAPI(target string, q url.Values, body []byte) (any, error) {
	if err := checkParams("_search", q, "ignore_unavailable", "allow_no_indices", "allow_partial_search_results", "expand_wildcards"); err != nil {
		return nil, err
	}
	o, err := strictExpand.withParams(q)
	if err != nil {
		return nil, err
	}
	return f.search(target, o, body)
}

// search runs one search of the searchable views of target's indices (or
// of a point in time's).
func (f *Server) search(target string, o indicesOptions, body []byte) (any, error) {
	var req fakeSearch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, bad("fake search: %v", err)
	}
	src, err := parseSourceSpec(req.Source)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var views []indexView
	var shardDoc map[string]int64 // the point in time's implicit tiebreaker
	if req.Pit != nil {
		if target != "" {
			return nil, bad("[indices] cannot be used with point in time")
		}
		pit, ok := f.livePit(req.Pit.ID)
		if !ok {
			return nil, errPitMissing
		}
		if req.Pit.KeepAlive != "" {
			keepAlive, err := keepAliveValue(req.Pit.KeepAlive)
			if err != nil {
				return nil, err
			}
			pit.expires = f.now().Add(keepAlive)
		}
		views = pit.views
		if !slices.ContainsFunc(req.Sort, func(s map[string]fakeSortSpec) bool { _, ok := s["_shard_doc"]; return ok }) {
			shardDoc = pit.shardDoc
		}
	} else {
		names, err := f.resolveTarget(target, o)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			views = append(views, indexView{f.indices[name], f.indices[name].view})
		}
	}
	var hits []candidate
	for _, v := range views {
		for id, d := range v.docs {
			ok, err := matches(req.Query, d, id, v.ix.mapping)
			if err != nil {
				return nil, err
			}
			if ok {
				c := candidate{index: v.ix.name, id: id, d: d}
				for _, s := range req.Sort {
					for field := range s {
						fields, err := d.fields()
						if err != nil {
							return nil, err
						}
						c.sort = append(c.sort, firstValue(fields, field))
					}
				}
				if shardDoc != nil {
					c.sort = append(c.sort, float64(shardDoc[v.ix.name+"/"+id]))
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
	orders := make([]string, 0, len(req.Sort)+1)
	for _, s := range req.Sort {
		for _, spec := range s {
			orders = append(orders, spec.Order)
		}
	}
	if shardDoc != nil {
		orders = append(orders, "asc")
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
		switch {
		case src.off:
		case src.all():
			m["_source"] = json.RawMessage(h.d.source)
		default:
			fields, err := h.d.fields()
			if err != nil {
				return nil, err
			}
			m["_source"] = src.apply(fields)
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
	if n, err := strconv.Atoi(string(req.TrackTotalHits)); err == nil && total >= n {
		// Counted up to n, as Elasticsearch does: n, "gte"
		// (https://www.elastic.co/guide/en/elasticsearch/reference/8.19/search-your-data.html#track-total-hits).
		// At exactly n matches Elasticsearch says "eq"; "gte" promises
		// less, never more.
		hm["total"] = map[string]any{"value": n, "relation": "gte"}
	} else if err == nil || string(req.TrackTotalHits) == "true" {
		hm["total"] = map[string]any{"value": total, "relation": "eq"}
	}
	resp["hits"] = hm
	return resp, nil
}

// count serves /<target>/_count: the number of documents of the searchable
// views the query matches.
func (f *Server) count(target string, q url.Values, body []byte) (any, error) {
	if err := checkParams("_count", q, "ignore_unavailable", "allow_no_indices", "expand_wildcards"); err != nil {
		return nil, err
	}
	o, err := strictExpand.withParams(q)
	if err != nil {
		return nil, err
	}
	var req struct {
		Query map[string]any `json:"query"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, bad("fake count: %v", err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	names, err := f.resolveTarget(target, o)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, name := range names {
		ix := f.indices[name]
		for id, d := range ix.view {
			ok, err := matches(req.Query, d, id, ix.mapping)
			if err != nil {
				return nil, err
			}
			if ok {
				n++
			}
		}
	}
	shards := len(names)
	return map[string]any{"count": n, "_shards": map[string]any{"total": shards, "successful": shards, "skipped": 0, "failed": 0}}, nil
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
			fields, err := h.d.fields()
			if err != nil {
				return nil, err
			}
			vals := values(fields, field)
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
