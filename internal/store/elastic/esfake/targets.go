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
	ignoreUnavailable bool // a missing concrete name is skipped, not a 404
	allowNoIndices    bool // a wildcard (or every index) matching nothing is no error
}

// strictExpand is the default of every API of the fake that takes a
// multi-target expression.
var strictExpand = indicesOptions{ignoreUnavailable: false, allowNoIndices: true}

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

// resolveTarget returns the indices expr designates, sorted.
func (f *Server) resolveTarget(expr string, o indicesOptions) ([]string, error) {
	var out []string
	if expr == "" || expr == "_all" || expr == "*" {
		out = slices.Sorted(maps.Keys(f.indices))
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
			out = append(out, names...)
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
// search sees (Lucene's segments), not the writes not refreshed yet.
func (f *Server) catIndices(target string, q url.Values) (any, error) {
	if err := checkParams("_cat/indices", q, "format", "h", "s", "ignore_unavailable", "allow_no_indices", "expand_wildcards"); err != nil {
		return nil, err
	}
	o, err := strictExpand.withParams(q) // read by IndicesOptions.fromRequest, though not documented
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	names, err := f.resolveTarget(target, o)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, name := range names {
		ix := f.indices[name]
		out = append(out, map[string]any{"index": name, "health": "green", "status": "open", "docs.count": strconv.Itoa(len(ix.view))})
	}
	return out, nil
}

// aliases serves GET /<target>/_alias: the aliases of each index target
// designates (none is {}).
func (f *Server) aliases(target string, q url.Values) (any, error) {
	if err := checkParams("_alias", q, "ignore_unavailable", "allow_no_indices", "expand_wildcards"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	names, err := f.resolveParams(target, q)
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
