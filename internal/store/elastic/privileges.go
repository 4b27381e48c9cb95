package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"go.uber.org/zap"
)

// Role is what a command does with the cluster, and so which privileges its
// Elasticsearch user needs. deploy/elasticsearch/roles holds each as the
// body of the create-role API (PUT /_security/role/chatreport-<role>), for
// the default index prefix; a test keeps those files equal to Privileges.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/security-api-put-role.html
type Role string

const (
	// RoleIngest is `chatreport ingest`: it installs the templates and
	// first indices of the current version (Init), writes sessions, events
	// and keys, and reads the registry.
	RoleIngest Role = "ingest"
	// RoleAPI is `chatreport serve`: it searches the read aliases.
	RoleAPI Role = "api"
	// RoleOps is `chatreport replay`, `index …` and `forget`: they also
	// write the registry, move the read aliases, delete indices and
	// templates of abandoned versions, and delete documents by query.
	RoleOps Role = "ops"
)

// Roles are every role, in the order the documentation lists them.
var Roles = []Role{RoleIngest, RoleAPI, RoleOps}

// File is the role's definition in the repository.
func (r Role) File() string { return "deploy/elasticsearch/roles/chatreport-" + string(r) + ".json" }

// RolePrivileges are what a role needs: the body of the create-role API.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/security-api-put-role.html
type RolePrivileges struct {
	Cluster []string          `json:"cluster"`
	Indices []IndexPrivileges `json:"indices"`
}

// IndexPrivileges are privileges on the indices and aliases that Names
// match.
type IndexPrivileges struct {
	Names      []string `json:"names"`
	Privileges []string `json:"privileges"`
}

// The index names of a prefix, by family. Each family that has both an
// exact name and suffixed ones is granted both, and never "<name>*", which
// would also match another prefix's "<name>x-…": <prefix>-sessions (read
// alias) and <prefix>-sessions-* (versioned aliases, monthly indices), the
// same for events. A key index always carries its version
// (<prefix>-keys-v1), so keys are <prefix>-keys-* only; the registry is the
// one index <prefix>-versions.
func (n names) sessionsFamily() []string { return []string{n.sessionsRead(), n.sessionsRead() + "-*"} }
func (n names) eventsFamily() []string   { return []string{n.eventsRead(), n.eventsRead() + "-*"} }
func (n names) keysFamily() []string     { return []string{n.prefix + "-keys-*"} }

// Privileges returns what role needs on the indices of prefix.
//
//   - monitor (cluster): Ping, GET / (cluster:monitor/main), the health check;
//   - manage_index_templates (cluster): Init's component and index
//     templates; swap rewrites index templates, abandon deletes them;
//   - manage: Init creates the first indices and adds new fields to
//     existing mappings (PUT _mapping: Elasticsearch has no narrower named
//     privilege for it), writes create months; ops also move aliases (POST
//     _aliases), refresh, list indices and their aliases (status) and
//     delete a version's indices (abandon). manage is every indices:admin/*
//     action, create_index, delete_index and view_index_metadata included,
//     so naming those too would add nothing: the ingest role can therefore
//     also delete and re-alias the data indices (docs/elasticsearch.md,
//     "Privileges", says so);
//   - read, write: search, get, mget; bulk index, create and delete.
//
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/security-privileges.html
func Privileges(role Role, prefix string) (RolePrivileges, error) {
	n := names{prefix: prefix}
	data := slices.Concat(n.sessionsFamily(), n.eventsFamily(), n.keysFamily())
	switch role {
	case RoleIngest:
		return RolePrivileges{
			Cluster: []string{"manage_index_templates", "monitor"},
			Indices: []IndexPrivileges{
				{Names: data, Privileges: []string{"manage", "read", "write"}},
				{Names: []string{n.versionsIndex()}, Privileges: []string{"read"}},
			},
		}, nil
	case RoleAPI:
		return RolePrivileges{
			Cluster: []string{"monitor"},
			Indices: []IndexPrivileges{
				{Names: slices.Concat(n.sessionsFamily(), n.eventsFamily()), Privileges: []string{"read"}},
			},
		}, nil
	case RoleOps:
		return RolePrivileges{
			Cluster: []string{"manage_index_templates", "monitor"},
			Indices: []IndexPrivileges{
				{Names: append(data, n.versionsIndex()), Privileges: []string{"manage", "read", "write"}},
			},
		}, nil
	}
	return RolePrivileges{}, fmt.Errorf("elasticsearch: no role %q (roles: ingest, api, ops)", role)
}

// MissingPrivilegesError is the answer of CheckPrivileges when the user
// lacks some of a role's privileges.
type MissingPrivilegesError struct {
	Role   Role
	Prefix string
	// Cluster are the cluster privileges missing; Indices the index
	// privileges missing, per name pattern, in the role's order.
	Cluster []string
	Indices []IndexPrivileges
}

func (e *MissingPrivilegesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the Elasticsearch user lacks privileges of the %s role:", e.Role)
	if len(e.Cluster) > 0 {
		fmt.Fprintf(&b, " cluster %s;", strings.Join(e.Cluster, ", "))
	}
	for _, ix := range e.Indices {
		fmt.Fprintf(&b, " index %s: %s;", ix.Names[0], strings.Join(ix.Privileges, ", "))
	}
	fmt.Fprintf(&b, " %s grants them", e.Role.File())
	if e.Prefix != defaultPrefix {
		fmt.Fprintf(&b, " (with its index names for the prefix %q)", e.Prefix)
	}
	b.WriteString(`: docs/elasticsearch.md, "Privileges"`)
	return b.String()
}

// defaultPrefix is Config.IndexPrefix's default, the one the role files
// name.
const defaultPrefix = "chatreport"

// hasPrivilegesRequest is the body of the has-privileges API: "index", where
// the create-role API says "indices".
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/security-api-has-privileges.html
type hasPrivilegesRequest struct {
	Cluster []string          `json:"cluster"`
	Index   []IndexPrivileges `json:"index"`
}

type hasPrivilegesResponse struct {
	HasAllRequested bool                       `json:"has_all_requested"`
	Cluster         map[string]bool            `json:"cluster"`
	Index           map[string]map[string]bool `json:"index"`
}

// CheckPrivileges asks the cluster whether the store's user holds every
// privilege of role (POST /_security/user/_has_privileges, which any user
// may ask about themselves); a *MissingPrivilegesError names those it
// lacks. A cluster with security disabled has no such endpoint: it is not
// an error, only logged.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/security-api-has-privileges.html
func (s *Store) CheckPrivileges(ctx context.Context, role Role) error {
	want, err := Privileges(role, s.cfg.IndexPrefix)
	if err != nil {
		return err
	}
	body, err := json.Marshal(hasPrivilegesRequest{Cluster: want.Cluster, Index: want.Indices})
	if err != nil {
		return fmt.Errorf("encode privileges: %w", err)
	}
	var res hasPrivilegesResponse
	err = s.do(ctx, esapi.SecurityHasPrivilegesRequest{Body: bytes.NewReader(body)}, &res)
	if securityDisabled(err) {
		s.log.Info("Elasticsearch security is disabled: privileges not checked", zap.String("role", string(role)))
		return nil
	}
	if err != nil {
		return fmt.Errorf("check the privileges of the %s role: %w", role, err)
	}
	if res.HasAllRequested {
		return nil
	}
	missing := &MissingPrivilegesError{Role: role, Prefix: s.cfg.IndexPrefix}
	for _, p := range want.Cluster {
		if !res.Cluster[p] {
			missing.Cluster = append(missing.Cluster, p)
		}
	}
	for _, ix := range want.Indices {
		for _, name := range ix.Names {
			var lack []string
			for _, p := range ix.Privileges {
				if !res.Index[name][p] {
					lack = append(lack, p)
				}
			}
			if len(lack) > 0 {
				missing.Indices = append(missing.Indices, IndexPrivileges{Names: []string{name}, Privileges: lack})
			}
		}
	}
	if len(missing.Cluster) == 0 && len(missing.Indices) == 0 {
		return fmt.Errorf("check the privileges of the %s role: has_all_requested false, yet every privilege asked is granted", role)
	}
	return missing
}

// securityDisabled reports whether err is the answer of a cluster without
// security to the has-privileges API: Elasticsearch 8 registers no
// _security handlers then and answers 400 "no handler found for uri
// [/_security/user/_has_privileges] and method [POST]" (an error that is a
// string, without a type: elastic/elasticsearch#53761, elastic/kibana#210241);
// a 405 "Incorrect HTTP method" is the answer when a handler exists for
// other methods only.
func securityDisabled(err error) bool {
	var re *ResponseError
	if !errors.As(err, &re) {
		return false
	}
	switch re.Status {
	case http.StatusBadRequest:
		return re.Type == "" && strings.HasPrefix(re.Reason, "no handler found for uri")
	case http.StatusMethodNotAllowed:
		return strings.HasPrefix(re.Reason, "Incorrect HTTP method")
	}
	return false
}
