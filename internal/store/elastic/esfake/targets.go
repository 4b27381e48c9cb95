package esfake

import (
	"maps"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Targets. A multi-target expression is a comma-separated list of index
// names, alias names and wildcard patterns (over both); empty, _all and *
// mean every index. How it resolves depends on two options, whose defaults
// depend on the API: ignore_unavailable (false: a concrete name that
// matches no index or alias is a 404 index_not_found_exception) and
// allow_no_indices (true: a wildcard that matches nothing is no error).
// _search, _count, _refresh, _delete_by_query, opening a point in time,
// _cat/indices and GET <target>/_alias all default to false and true.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/api-conventions.html#api-multi-index
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-get-alias.html
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/cat-indices.html

// indicesOptions are how a multi-target expression resolves.
type indicesOptions struct {
	ignoreUnavailable bool // a missing (or forbidden closed) concrete name is skipped, not an error
	allowNoIndices    bool // a wildcard (or every index) matching nothing is no error
	// openOnly: the APIs that read or write documents (_search, _count,
	// points in time, _refresh, _delete_by_query) expand wildcards to
	// open indices only (expand_wildcards=open) and forbid a closed
	// index named or reached by an alias: a 400 index_closed_exception,
	// skipped with ignore_unavailable. The index APIs (_cat/indices,
	// _alias, _mapping) see closed indices too.
	// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/api-conventions.html#api-multi-index
	// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-close.html
	openOnly bool
}

// strictExpand is the default of every API of the fake that takes a
// multi-target expression and reads or writes documents.
var strictExpand = indicesOptions{ignoreUnavailable: false, allowNoIndices: true, openOnly: true}

// withParams applies the ignore_unavailable and allow_no_indices
// parameters of a request.
func (o indicesOptions) withParams(q url.Values) (indicesOptions, error) {
	for key, dst := range map[string]*bool{"ignore_unavailable": &o.ignoreUnavailable, "allow_no_indices": &o.allowNoIndices} {
		if v := q.Get(key); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil || (v != "true" && v != "false") {
				return o, bad("Failed to parse value [%s] as only [true] or [false] are allowed.", v)
			}
			*dst = b
		}
	}
	return o, nil
}

func isWildcard(expr string) bool { return strings.ContainsAny(expr, "*?") }

// resolveParams resolves target with the indices options of the request's
// parameters (ignore_unavailable, allow_no_indices, expand_wildcards).
// f.mu must be held.
func (f *Server) resolveParams(target string, q url.Values) ([]string, error) {
	o, err := strictExpand.withParams(q)
	if err != nil {
		return nil, err
	}
	return f.resolveTarget(target, o)
}

// resolveIndices is resolveParams for the index APIs, which see closed
// indices as open ones.
func (f *Server) resolveIndices(target string, q url.Values) ([]string, error) {
	o, err := strictExpand.withParams(q)
	if err != nil {
		return nil, err
	}
	o.openOnly = false
	return f.resolveTarget(target, o)
}

// skipClosed reports whether a wildcard's expansion leaves out index name.
func (f *Server) skipClosed(name string, o indicesOptions) bool {
	return o.openOnly && f.indices[name].closed
}

// resolveTarget returns the indices expr designates, sorted.
func (f *Server) resolveTarget(expr string, o indicesOptions) ([]string, error) {
	var out []string
	if expr == "" || expr == "_all" || expr == "*" {
		out = slices.Sorted(maps.Keys(f.indices))
		out = slices.DeleteFunc(out, func(name string) bool { return f.skipClosed(name, o) })
		if len(out) == 0 && !o.allowNoIndices {
			return nil, indexNotFound(cmpOr(expr, "_all"))
		}
		return out, nil
	}
	for _, e := range strings.Split(expr, ",") {
		switch {
		case e == "":
		case strings.HasPrefix(e, "-"):
			return nil, bad("fake: exclusions in %q are unsupported", expr)
		case isWildcard(e):
			n := len(out)
			for name, ix := range f.indices {
				if f.skipClosed(name, o) {
					continue
				}
				if ok, _ := path.Match(e, name); ok {
					out = append(out, name)
					continue
				}
				for a := range ix.aliases {
					if ok, _ := path.Match(e, a); ok {
						out = append(out, name)
						break
					}
				}
			}
			if len(out) == n && !o.allowNoIndices {
				return nil, indexNotFound(e)
			}
		default:
			names := f.concrete(e)
			if len(names) == 0 && !o.ignoreUnavailable {
				return nil, indexNotFound(e)
			}
			for _, name := range names {
				if o.openOnly && f.indices[name].closed {
					if o.ignoreUnavailable {
						continue
					}
					return nil, indexClosed(name)
				}
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// concrete returns the index named name, or the indices of the alias.
func (f *Server) concrete(name string) []string {
	if _, ok := f.indices[name]; ok {
		return []string{name}
	}
	var out []string
	for n, ix := range f.indices {
		if ix.aliases[name] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// single resolves the target of a single-document request (get, mget,
// index, delete): an index, or an alias of exactly one index.
func (f *Server) single(name string) (*fakeIndex, error) {
	names := f.concrete(name)
	switch len(names) {
	case 0:
		return nil, indexNotFound(name)
	case 1:
		if ix := f.indices[names[0]]; ix.closed {
			return nil, indexClosed(ix.name)
		}
		return f.indices[names[0]], nil
	}
	return nil, bad("alias [%s] has more than one index associated with it [%s], can't execute a single index op", name, strings.Join(names, ", "))
}

// checkParams refuses the parameters of q that are not in allowed: the fake
// fails a request it does not understand rather than ignore a part of it.
func checkParams(api string, q url.Values, allowed ...string) error {
	for k := range q {
		if !slices.Contains(allowed, k) {
			return bad("fake: %s parameter %s", api, k)
		}
	}
	return nil
}

// catIndices serves GET /_cat/indices/<target>. docs.count counts what a
// search sees (Lucene's segments), not the writes not refreshed yet, and
// counts them as Lucene does: each object of a nested field is a hidden
// document of its own, counted besides its parent ("These metrics are
// retrieved directly from Lucene ... all document counts include hidden
// nested documents"; _count gives the documents).
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/cat-indices.html
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/nested.html
// A closed index has no counts: its shards are not open to read them, and
// its line leaves those cells empty (null in JSON; elastic/elasticsearch
// #7936, #12847).
func (f *Server) catIndices(target string, q url.Values) (any, error) {
	if err := checkParams("_cat/indices", q, "format", "h", "s", "ignore_unavailable", "allow_no_indices", "expand_wildcards"); err != nil {
		return nil, err
	}
	o, err := strictExpand.withParams(q) // read by IndicesOptions.fromRequest, though not documented
	if err != nil {
		return nil, err
	}
	o.openOnly = false // expand_wildcards defaults to all
	f.mu.Lock()
	defer f.mu.Unlock()
	names, err := f.resolveTarget(target, o)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, name := range names {
		ix := f.indices[name]
		if ix.closed {
			out = append(out, map[string]any{"index": name, "health": "green", "status": "close", "docs.count": nil})
			continue
		}
		n := 0
		for _, d := range ix.view {
			n++
			if doc, err := d.fields(); err == nil {
				n += nestedDocs(ix.mapping, doc)
			}
		}
		out = append(out, map[string]any{"index": name, "health": "green", "status": "open", "docs.count": strconv.Itoa(n)})
	}
	return out, nil
}

// nestedDocs counts the hidden Lucene documents of doc's nested objects,
// at any depth, under the properties props.
func nestedDocs(props map[string]any, doc map[string]any) int {
	n := 0
	for k, v := range doc {
		p, _ := props[k].(map[string]any)
		if p == nil {
			continue
		}
		sub, _ := p["properties"].(map[string]any)
		objs, ok := v.([]any)
		if !ok {
			objs = []any{v}
		}
		for _, o := range objs {
			obj, ok := o.(map[string]any)
			if !ok {
				continue
			}
			if p["type"] == "nested" {
				n++
			}
			n += nestedDocs(sub, obj)
		}
	}
	return n
}

// aliases serves GET /<target>/_alias: the aliases of each index target
// designates (none is {}).
func (f *Server) aliases(target string, q url.Values) (any, error) {
	if err := checkParams("_alias", q, "ignore_unavailable", "allow_no_indices", "expand_wildcards"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	names, err := f.resolveIndices(target, q)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, name := range names {
		as := map[string]any{}
		for a := range f.indices[name].aliases {
			as[a] = map[string]any{}
		}
		out[name] = map[string]any{"aliases": as}
	}
	return out, nil
}

func matchAny(patterns, name string) bool {
	for _, p := range strings.Split(patterns, ",") {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// refreshAPI serves POST /_refresh and POST /<target>/_refresh.
func (f *Server) refreshAPI(target string, q url.Values) (any, error) {
	if err := checkParams("_refresh", q, "ignore_unavailable", "allow_no_indices", "expand_wildcards"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	names, err := f.resolveParams(target, q)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		f.refreshIndex(f.indices[name])
	}
	n := len(names)
	return map[string]any{"_shards": map[string]any{"total": n, "successful": n, "failed": 0}}, nil
}

// openClose serves POST /<target>/_close and /_open: the indices named (or
// an alias's), never a wildcard or _all (action.destructive_requires_name,
// true by default). A closed index keeps its documents and aliases but is
// blocked for reads and writes: get, mget and bulk items answer 400
// index_closed_exception, searches as resolveTarget says.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-close.html
func (f *Server) openClose(target string, q url.Values, closing bool) (any, error) {
	if err := checkParams("_close", q, "ignore_unavailable", "wait_for_active_shards"); err != nil {
		return nil, err
	}
	o, err := strictExpand.withParams(q)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, e := range strings.Split(target, ",") {
		if isWildcard(e) || e == "_all" || e == "" {
			return nil, bad("Wildcard expressions or all indices are not allowed")
		}
		found := f.concrete(e)
		if len(found) == 0 && !o.ignoreUnavailable {
			return nil, indexNotFound(e)
		}
		names = append(names, found...)
	}
	done := map[string]any{}
	for _, name := range names {
		f.indices[name].closed = closing
		done[name] = map[string]any{"closed": true}
	}
	if !closing {
		return map[string]any{"acknowledged": true, "shards_acknowledged": true}, nil
	}
	return map[string]any{"acknowledged": true, "shards_acknowledged": true, "indices": done}, nil
}

// indexClosed is the error of a read or write of a closed index.
func indexClosed(name string) *fakeError {
	return &fakeError{status: 400, typ: "index_closed_exception", reason: "closed", index: name}
}
