package esfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Grants are the privileges of the user the fake answers
// _has_privileges for (WithSecurity), in the shape of a role: the body of
// the create-role API.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/security-api-put-role.html
type Grants struct {
	Cluster []string     `json:"cluster"`
	Indices []IndexGrant `json:"indices"`
}

// IndexGrant grants privileges on the names (exact, or ending in "*").
type IndexGrant struct {
	Names      []string `json:"names"`
	Privileges []string `json:"privileges"`
}

// GrantsOf is the grants of the roles given, each a value that encodes as a
// create-role body (elastic.Privileges): a user holding those roles.
func GrantsOf(t testing.TB, roles ...any) Grants {
	t.Helper()
	var g Grants
	for _, r := range roles {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var one Grants
		if err := json.Unmarshal(b, &one); err != nil {
			t.Fatal(err)
		}
		g.Cluster = append(g.Cluster, one.Cluster...)
		g.Indices = append(g.Indices, one.Indices...)
	}
	return g
}

// Without is g without privilege, on the cluster and on every index name.
func (g Grants) Without(privilege string) Grants {
	out := Grants{Cluster: slices.DeleteFunc(slices.Clone(g.Cluster), func(p string) bool { return p == privilege })}
	for _, ix := range g.Indices {
		ix.Privileges = slices.DeleteFunc(slices.Clone(ix.Privileges), func(p string) bool { return p == privilege })
		out.Indices = append(out.Indices, ix)
	}
	return out
}

// With is g with privileges added to each of its index grants.
func (g Grants) With(privileges ...string) Grants {
	out := Grants{Cluster: slices.Clone(g.Cluster)}
	for _, ix := range g.Indices {
		ix.Privileges = append(slices.Clone(ix.Privileges), privileges...)
		out.Indices = append(out.Indices, ix)
	}
	return out
}

// WithSecurity makes the fake a cluster with security enabled whose user
// holds grants, as far as POST /_security/user/_has_privileges tells:
// nothing else checks privileges. Without it the fake is a cluster with
// security disabled, which has no _security endpoints.
func WithSecurity(grants Grants) Option {
	return func(f *Server) { f.grants = &grants }
}

// noSecurityHandler is the answer of an Elasticsearch 8 with
// xpack.security.enabled false to any _security request: no handler is
// registered, and the error is a bare string (elastic/elasticsearch#53761,
// elastic/kibana#210241).
func noSecurityHandler(r *http.Request) statusBody {
	return statusBody{status: http.StatusBadRequest, body: map[string]any{
		"error": "no handler found for uri [" + r.URL.Path + "] and method [" + r.Method + "]"}}
}

// hasPrivileges answers the has-privileges API from f.grants: every
// privilege asked, per cluster and per index name, true or false, and
// has_all_requested. A name asked about is covered by a grant of the same
// name, or of a pattern "x*" when the name starts with x (a pattern asked
// about, "x-*", is covered when all it matches is). A privilege is granted
// by itself, by "all", or by a privilege that implies it in Elasticsearch
// (impliedBy): an answer of the fake is one Elasticsearch would give for
// the privileges chatreport's roles use.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/security-api-has-privileges.html
func (f *Server) hasPrivileges(r *http.Request, body []byte) (any, error) {
	if f.grants == nil {
		return noSecurityHandler(r), nil
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return statusBody{status: http.StatusMethodNotAllowed, body: map[string]any{"error": "Incorrect HTTP method for uri [" +
			r.URL.Path + "] and method [" + r.Method + "], allowed: [POST, GET]", "status": http.StatusMethodNotAllowed}}, nil
	}
	var req struct {
		Cluster []string `json:"cluster"`
		Index   []struct {
			Names      []string `json:"names"`
			Privileges []string `json:"privileges"`
		} `json:"index"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, bad("has_privileges: %v", err)
	}
	all := true
	cluster := map[string]bool{}
	for _, p := range req.Cluster {
		ok := grantedBy(f.grants.Cluster, p, clusterImpliedBy)
		cluster[p], all = ok, all && ok
	}
	index := map[string]map[string]bool{}
	for _, ix := range req.Index {
		for _, name := range ix.Names {
			if index[name] == nil {
				index[name] = map[string]bool{}
			}
			for _, p := range ix.Privileges {
				ok := f.grants.covers(name, p)
				index[name][p], all = ok, all && ok
			}
		}
	}
	return map[string]any{"username": "chatreport", "has_all_requested": all, "cluster": cluster,
		"index": index, "application": map[string]any{}}, nil
}

func (g *Grants) covers(name, privilege string) bool {
	for _, ix := range g.Indices {
		if !grantedBy(ix.Privileges, privilege, indexImpliedBy) {
			continue
		}
		for _, n := range ix.Names {
			if n == name {
				return true
			}
			if base, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(name, base) {
				return true
			}
		}
	}
	return false
}

// indexImpliedBy and clusterImpliedBy name, for the privileges chatreport's
// roles ask about, the broader named privileges that include them, beside
// "all" (Elasticsearch's IndexPrivilege and ClusterPrivilegeResolver: index
// manage is every indices:admin/* and indices:monitor/* action, so it holds
// create_index, delete_index and view_index_metadata; write holds index,
// create, create_doc and delete; cluster manage holds monitor and the
// template actions of manage_index_templates).
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/security-privileges.html
var (
	indexImpliedBy = map[string][]string{
		"create_index": {"manage"}, "delete_index": {"manage"}, "view_index_metadata": {"manage"},
		"monitor": {"manage"}, "maintenance": {"manage"},
		"index": {"write"}, "create": {"write"}, "create_doc": {"write", "create", "index"}, "delete": {"write"},
	}
	clusterImpliedBy = map[string][]string{
		"monitor": {"manage"}, "manage_index_templates": {"manage"},
	}
)

// grantedBy says whether held, a list of granted privileges, includes
// privilege.
func grantedBy(held []string, privilege string, impliedBy map[string][]string) bool {
	if slices.Contains(held, privilege) || slices.Contains(held, "all") {
		return true
	}
	for _, wider := range impliedBy[privilege] {
		if slices.Contains(held, wider) {
			return true
		}
	}
	return false
}
