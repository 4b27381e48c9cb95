package esfake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The administrative requests: single documents, index and template
// deletion, alias actions and delete-by-query.

// statusBody is an answer that is not an error but has a status other than
// 200, such as a GET of a missing document.
type statusBody struct {
	status int
	body   any
}

func indexNotFound(name string) *fakeError {
	return &fakeError{status: 404, typ: "index_not_found_exception", reason: "no such index [" + name + "]", index: name}
}

// doc serves /<index>/_doc/<id>: GET (realtime, get.go), PUT/POST (index, or
// create with op_type=create; if_seq_no and if_primary_term make it
// conditional) and DELETE, with the refresh parameter of writes.
func (f *Server) doc(ctx context.Context, method, index, id string, q url.Values, body []byte) (any, error) {
	if method == http.MethodGet {
		return f.get(index, id, q)
	}
	if err := checkParams("_doc", q, "if_seq_no", "if_primary_term", "op_type", "refresh", "version", "version_type"); err != nil {
		return nil, err
	}
	if method != http.MethodPut && method != http.MethodPost && method != http.MethodDelete {
		return nil, bad("fake: %s _doc", method)
	}
	policy, err := refreshPolicy(q)
	if err != nil {
		return nil, err
	}
	op := writeOp{action: "index", index: index, id: id, src: body, version: versionMatchAny}
	for key, dst := range map[string]**int64{"if_seq_no": &op.ifSeq, "if_primary_term": &op.ifTerm} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, bad("Failed to parse long parameter [%s] with value [%s]", key, v)
			}
			*dst = &n
		}
	}
	if v := q.Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, bad("Failed to parse long parameter [version] with value [%s]", v)
		}
		op.version = n
	}
	if op.versionType, err = parseVersionType(q.Get("version_type"), q.Has("version_type")); err != nil {
		return nil, err
	}
	switch {
	case method == http.MethodDelete:
		op.action, op.src = "delete", nil
	case q.Get("op_type") == "create":
		op.action = "create"
	case q.Get("op_type") != "" && q.Get("op_type") != "index":
		return nil, bad("op_type %q", q.Get("op_type"))
	}
	if invalid := op.validate(); len(invalid) > 0 {
		return nil, validationFailed(invalid)
	}
	f.mu.Lock()
	res := f.apply(op)
	var wait []chan struct{}
	if res.changed != nil {
		wait = f.afterWrite(policy, map[*fakeIndex]bool{res.changed: true})
	}
	f.mu.Unlock()
	if res.err != nil {
		return nil, res.err
	}
	if err := f.awaitRefresh(ctx, wait); err != nil {
		return nil, err
	}
	res.forcedRefresh = policy == "true"
	return statusBody{res.status, rawJSON(res.appendJSON(nil, false))}, nil
}

// deleteIndices deletes concrete indices, all or none: wildcards and
// aliases are refused, as with action.destructive_requires_name (the
// default).
func (f *Server) deleteIndices(list string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := strings.Split(list, ",")
	for _, name := range names {
		if strings.ContainsAny(name, "*?") || name == "_all" {
			return bad("Wildcard expressions or all indices are not allowed")
		}
		if _, ok := f.indices[name]; !ok {
			return indexNotFound(name)
		}
	}
	for _, name := range names {
		ix := f.indices[name]
		close(ix.refreshed) // a write waiting for a refresh has nothing left to wait for
		ix.refreshed = make(chan struct{})
		delete(f.indices, name)
	}
	return nil
}

func (f *Server) deleteTemplate(from map[string]map[string]any, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := from[name]; !ok {
		return &fakeError{status: 404, typ: "resource_not_found_exception", reason: "index template matching [" + name + "] not found"}
	}
	delete(from, name)
	return nil
}

// expand resolves an index expression of an alias action: names and
// wildcards of indices (not aliases); an expression designating no index is
// a 404 (allow_no_indices is false for alias actions).
func (f *Server) expand(expr string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(expr, ",") {
		n := len(out)
		for name := range f.indices {
			if matchAny(e, name) {
				out = append(out, name)
			}
		}
		if len(out) == n {
			return nil, indexNotFound(e)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// updateAliases applies POST /_aliases: every action is resolved and
// checked first, then all are applied in order, atomically.
func (f *Server) updateAliases(body []byte) error {
	type spec struct {
		Index     string `json:"index"`
		Alias     string `json:"alias"`
		MustExist *bool  `json:"must_exist"`
	}
	var req struct {
		Actions []map[string]spec `json:"actions"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || len(req.Actions) == 0 {
		return bad("fake _aliases: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	type op struct {
		add          bool
		index, alias string
	}
	var ops []op
	for _, a := range req.Actions {
		if len(a) != 1 {
			return bad("an alias action must hold exactly one of add, remove")
		}
		for kind, sp := range a {
			if (kind != "add" && kind != "remove") || sp.Index == "" || sp.Alias == "" || strings.Contains(sp.Alias, "*") {
				return bad("fake _aliases: unsupported action %s %+v", kind, sp)
			}
			if kind == "add" && sp.MustExist != nil {
				return bad("[must_exist] is unsupported for [add]")
			}
			indices, err := f.expand(sp.Index)
			if err != nil {
				return err
			}
			for _, ix := range indices {
				if kind == "add" {
					if _, clash := f.indices[sp.Alias]; clash {
						return bad("alias [%s] has the name of an index", sp.Alias)
					}
					ops = append(ops, op{true, ix, sp.Alias})
					continue
				}
				if !f.indices[ix].aliases[sp.Alias] {
					if sp.MustExist != nil && *sp.MustExist {
						return &fakeError{status: 404, typ: "aliases_not_found_exception", reason: "aliases [" + sp.Alias + "] missing"}
					}
					continue
				}
				ops = append(ops, op{false, ix, sp.Alias})
			}
		}
	}
	if len(ops) == 0 {
		return &fakeError{status: 404, typ: "aliases_not_found_exception", reason: "aliases missing"}
	}
	for _, o := range ops {
		if o.add {
			f.indices[o.index].aliases[o.alias] = true
		} else {
			delete(f.indices[o.index].aliases, o.alias)
		}
	}
	return nil
}

// deleteByQuery serves POST /<target>/_delete_by_query: it deletes every
// document of target the query matches, except those ConflictHook calls
// conflicts (with conflicts=proceed counted, else a 409).
func (f *Server) deleteByQuery(target string, q url.Values, body []byte) (any, error) {
	for k := range q {
		switch k {
		case "conflicts", "refresh", "ignore_unavailable", "allow_no_indices":
		default:
			return nil, bad("fake: _delete_by_query parameter %s", k)
		}
	}
	proceed := q.Get("conflicts") == "proceed"
	if c := q.Get("conflicts"); c != "" && c != "proceed" && c != "abort" {
		return nil, bad("conflicts %q", c)
	}
	var req struct {
		Query map[string]any `json:"query"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Query == nil {
		return nil, bad("fake _delete_by_query: want a query: %v", err)
	}
	policy := "false"
	if q.Has("refresh") {
		switch v := q.Get("refresh"); v {
		case "", "true":
			policy = "true"
		case "false":
		default: // wait_for is not a value _delete_by_query takes
			return nil, bad("fake: _delete_by_query refresh=%s", v)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	indices, err := f.resolveParams(target, q)
	if err != nil {
		return nil, err
	}
	// The search phase sees the searchable view; each delete is then
	// conditional on the document being still the version the search
	// found, so a write since the last refresh is a version conflict.
	// https://www.elastic.co/guide/en/elasticsearch/reference/8.17/docs-delete-by-query.html
	var total, deleted, conflicts int64
	involved := map[*fakeIndex]bool{}
	for _, name := range indices {
		ix := f.indices[name]
		involved[ix] = true
		for _, id := range slices.Sorted(maps.Keys(ix.view)) {
			d := ix.view[id]
			ok, err := matches(req.Query, d, id, ix.mapping)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			total++
			live := ix.docs[id]
			if live == nil || live.seqNo != d.seqNo || f.ConflictHook != nil && f.ConflictHook(name, id) {
				if !proceed {
					return nil, &fakeError{status: 409, typ: "version_conflict_engine_exception", reason: fmt.Sprintf("[%s]: version conflict", id)}
				}
				conflicts++
				continue
			}
			ix.seq++
			f.changed(ix, id, nil)
			ix.tombs[id] = tombstone{ver: live.ver + 1, at: time.Now()}
			deleted++
		}
	}
	// refresh=true refreshes every index involved after the deletes.
	f.afterWrite(policy, involved)
	return map[string]any{"took": 1, "timed_out": false, "total": total, "deleted": deleted, "batches": 1,
		"version_conflicts": conflicts, "noops": 0, "failures": []any{}}, nil
}
