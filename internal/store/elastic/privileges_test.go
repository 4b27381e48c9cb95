package elastic

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	goldenfile "github.com/chatreport/chatreport/internal/golden"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
)

// TestRoleFiles keeps deploy/elasticsearch/roles equal to Privileges for
// the default prefix: go test -update rewrites them from the code.
func TestRoleFiles(t *testing.T) {
	for _, role := range Roles {
		p, err := Privileges(role, defaultPrefix)
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		goldenfile.Check(t, filepath.Join("..", "..", "..", filepath.FromSlash(role.File())), body, normalize)
	}
	if _, err := Privileges("admin", defaultPrefix); err == nil {
		t.Error("an unknown role has privileges")
	}
}

// TestPrivilegeNamesStayInPrefix: every name a role grants is one of the
// prefix's exact names or "<name>-*", never "<name>*", which would match
// another prefix's indices (chatreport-sessionsx-…).
func TestPrivilegeNamesStayInPrefix(t *testing.T) {
	n := names{prefix: "cr"}
	exact := map[string]bool{n.sessionsRead(): true, n.eventsRead(): true, n.versionsIndex(): true}
	for _, role := range Roles {
		p, _ := Privileges(role, "cr")
		for _, ix := range p.Indices {
			for _, name := range ix.Names {
				base, wild := strings.CutSuffix(name, "-*")
				if strings.Contains(base, "*") || (!wild && !exact[name]) || (wild && !strings.HasPrefix(base, "cr-")) {
					t.Errorf("role %s grants %q", role, name)
				}
			}
		}
	}
}

func TestCheckPrivileges(t *testing.T) {
	grants := func(role Role) esfake.Grants {
		p, err := Privileges(role, "test")
		if err != nil {
			t.Fatal(err)
		}
		return esfake.GrantsOf(t, p)
	}
	for _, tc := range []struct {
		name   string
		role   Role
		opts   []esfake.Option
		prefix string
		// want are the texts the error names; none for no error.
		want []string
		// not are texts of privileges granted, which it must not name.
		not []string
	}{
		{name: "all granted", role: RoleOps, opts: []esfake.Option{esfake.WithSecurity(grants(RoleOps))}},
		{name: "more than the role", role: RoleAPI, opts: []esfake.Option{esfake.WithSecurity(grants(RoleOps))}},
		{name: "security disabled", role: RoleIngest},
		{name: "cluster privilege missing", role: RoleIngest, opts: []esfake.Option{esfake.WithSecurity(grants(RoleIngest).Without("manage_index_templates"))},
			want: []string{"ingest role", "cluster manage_index_templates;", "deploy/elasticsearch/roles/chatreport-ingest.json grants them", `prefix "test"`}},
		{name: "index privilege missing", role: RoleOps, opts: []esfake.Option{esfake.WithSecurity(grants(RoleOps).Without("manage"))},
			want: []string{"ops role", "index test-sessions: manage;", "index test-sessions-*: manage;", "index test-keys-*: manage;",
				"index test-versions: manage;", "chatreport-ops.json"}},
		{name: "narrower privileges instead of manage", role: RoleOps, opts: []esfake.Option{esfake.WithSecurity(grants(RoleOps).Without("manage").With("create_index", "delete_index", "view_index_metadata"))},
			want: []string{"index test-sessions: manage;"}},
		{name: "cluster manage and index all", role: RoleIngest, opts: []esfake.Option{esfake.WithSecurity(esfake.Grants{Cluster: []string{"manage"},
			Indices: []esfake.IndexGrant{{Names: []string{"test-*"}, Privileges: []string{"all"}}}})}},
		{name: "another role's grants", role: RoleIngest, opts: []esfake.Option{esfake.WithSecurity(grants(RoleAPI))},
			want: []string{"cluster manage_index_templates;", "index test-sessions-*: manage, write;", "index test-versions: read;"}, not: []string{"monitor"}},
		{name: "a grant too wide of another prefix", role: RoleAPI, opts: []esfake.Option{esfake.WithSecurity(esfake.Grants{Cluster: []string{"monitor"},
			Indices: []esfake.IndexGrant{{Names: []string{"test-sessionsx*", "test-events*"}, Privileges: []string{"read"}}}})},
			want: []string{"index test-sessions: read;", "index test-sessions-*: read;"}, not: []string{"test-events", "cluster"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, esfake.New(t, tc.opts...).URL(), zap.NewNop())
			err := s.CheckPrivileges(t.Context(), tc.role)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var missing *MissingPrivilegesError
			if !errors.As(err, &missing) {
				t.Fatalf("got %v, want missing privileges", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not say %q", err, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("%v\nnames %q, granted", err, n)
				}
			}
		})
	}
}

// TestCheckPrivilegesSecurityDisabledLogged: a cluster without security is
// said once, at info.
func TestCheckPrivilegesSecurityDisabledLogged(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	s := newTestStore(t, esfake.New(t).URL(), zap.New(core))
	if err := s.CheckPrivileges(t.Context(), RoleAPI); err != nil {
		t.Fatal(err)
	}
	if got := logs.FilterMessageSnippet("security is disabled").FilterLevelExact(zap.InfoLevel).Len(); got != 1 {
		t.Errorf("%d info lines on security disabled, want 1: %v", got, logs.All())
	}
}

// TestCheckPrivilegesErrors: answers other than a missing handler are
// errors, whatever their status.
func TestCheckPrivilegesErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{401, `{"error":{"type":"security_exception","reason":"missing authentication credentials for REST request [/_security/user/_has_privileges]"},"status":401}`, "HTTP 401: security_exception"},
		{503, `{"error":{"type":"cluster_block_exception","reason":"blocked"},"status":503}`, "HTTP 503"},
		{400, `{"error":{"type":"parse_exception","reason":"no handler found for uri in a field"},"status":400}`, "HTTP 400: parse_exception"},
		{400, `{"error":"some other text"}`, "HTTP 400: some other text"},
		{400, `{"error":"unexpected answer for uri [/acme-sessions/_doc/a]5511987654321?x=1] and method [GET]"}`,
			"HTTP 400: unexpected answer for uri […] and method [GET]"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		s := newTestStore(t, srv.URL, zap.NewNop())
		err := s.CheckPrivileges(t.Context(), RoleAPI)
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "5511987654321") {
			t.Errorf("%d %s: got %v, want an error with %q and no contact", tc.status, tc.body, err, tc.want)
		}
	}
}

func newTestStore(t *testing.T, url string, log *zap.Logger) *Store {
	t.Helper()
	s, err := New(Config{Addresses: []string{url}, IndexPrefix: "test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
