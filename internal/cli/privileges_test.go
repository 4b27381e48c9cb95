package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatreport/chatreport/internal/store/elastic"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
)

// esConfig writes a configuration of the Elasticsearch store at url.
func esConfig(t *testing.T, url string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	body := fmt.Sprintf("store: {kind: elasticsearch, elasticsearch: {urls: [%q], index_prefix: it}}\nauth: {api_keys: {acme: k1}}\nlog: {level: info}\n", url)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// roleGrants is a user holding role, for the prefix it, without the
// privileges listed.
func roleGrants(t *testing.T, role elastic.Role, without ...string) esfake.Grants {
	t.Helper()
	p, err := elastic.Privileges(role, "it")
	if err != nil {
		t.Fatal(err)
	}
	g := esfake.GrantsOf(t, p)
	for _, w := range without {
		g = g.Without(w)
	}
	return g
}

// TestCommandsCheckPrivileges: a command that uses Elasticsearch refuses to
// start, before it changes anything, when its user lacks a privilege of its
// role, and says which and where the role is; it starts with every
// privilege, and on a cluster with security disabled.
func TestCommandsCheckPrivileges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		grants *esfake.Grants
		want   []string // in the error; none for success
	}{
		{name: "index init, manage missing", args: []string{"index", "init"}, grants: ptr(roleGrants(t, elastic.RoleOps, "manage")),
			want: []string{"ops role", "index it-sessions-*: manage", "index it-versions: manage", "deploy/elasticsearch/roles/chatreport-ops.json grants them"}},
		{name: "index init with the ingest role", args: []string{"index", "init"}, grants: ptr(roleGrants(t, elastic.RoleIngest)),
			want: []string{"ops role", "index it-versions: manage, write"}},
		{name: "forget, cluster privilege missing", args: []string{"forget", "--tenant", "acme", "--contact", "c1"}, grants: ptr(roleGrants(t, elastic.RoleOps, "monitor")),
			want: []string{"ops role", "cluster monitor;"}},
		{name: "serve --check-config, read missing", args: []string{"serve", "--check-config"}, grants: ptr(roleGrants(t, elastic.RoleAPI, "read")),
			want: []string{"api role", "index it-sessions: read", "chatreport-api.json"}},
		{name: "ingest --check-config with the api role", args: []string{"ingest", "--check-config"}, grants: ptr(roleGrants(t, elastic.RoleAPI)),
			want: []string{"ingest role", "cluster manage_index_templates;", "chatreport-ingest.json"}},
		{name: "index init, all granted", args: []string{"index", "init"}, grants: ptr(roleGrants(t, elastic.RoleOps))},
		{name: "serve --check-config, all granted", args: []string{"serve", "--check-config"}, grants: ptr(roleGrants(t, elastic.RoleAPI))},
		{name: "index init, security disabled", args: []string{"index", "init"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []esfake.Option
			if tc.grants != nil {
				opts = append(opts, esfake.WithSecurity(*tc.grants))
			}
			es := esfake.New(t, opts...)
			var out, errOut bytes.Buffer
			err := Execute(t.Context(), append(tc.args, "--config", esConfig(t, es.URL())), &out, &errOut)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("%v\n%s%s", err, out.String(), errOut.String())
				}
				if tc.args[0] == "index" && len(indicesOf(t, es)) == 0 {
					t.Error("index init created no index")
				}
				return
			}
			if err == nil {
				t.Fatalf("started without a privilege\n%s", out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not say %q", err, w)
				}
			}
			if got := indicesOf(t, es); len(got) > 0 {
				t.Errorf("the refused command created %v", got)
			}
			if strings.Contains(out.String(), "configuration is valid") {
				t.Errorf("--check-config passed: %s", out.String())
			}
		})
	}
}

// TestCheckConfigWithoutCluster: --check-config passes where the cluster
// does not answer, saying that privileges were not checked; the command
// itself warns and goes on to fail at its own first request.
func TestCheckConfigWithoutCluster(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	path := esConfig(t, url)
	var out, errOut bytes.Buffer
	if err := Execute(t.Context(), []string{"ingest", "--check-config", "--config", path}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "configuration is valid") || !strings.Contains(out.String(), "privileges of the ingest role were not checked") {
		t.Errorf("got\n%s", out.String())
	}
	out.Reset()
	errOut.Reset()
	err = Execute(t.Context(), []string{"index", "status", "--config", path}, &out, &errOut)
	if err == nil || strings.Contains(err.Error(), "privileges") {
		t.Errorf("index status without a cluster: %v, want its own request's error", err)
	}
	if !strings.Contains(errOut.String(), "privileges not checked: Elasticsearch did not answer") {
		t.Errorf("the unchecked privileges were not logged:\n%s", errOut.String())
	}
}

// TestSecurityDisabledLogged: a cluster with security disabled is said
// once, at info, and the command goes on.
func TestSecurityDisabledLogged(t *testing.T) {
	es := esfake.New(t)
	var out, errOut bytes.Buffer
	if err := Execute(t.Context(), []string{"index", "init", "--config", esConfig(t, es.URL())}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(errOut.String(), "security is disabled"); n != 1 {
		t.Errorf("said %d times that security is disabled:\n%s", n, errOut.String())
	}
	if !strings.Contains(out.String(), "installed") {
		t.Errorf("index init did not run: %s", out.String())
	}
}

// indicesOf lists the indices of the prefix it.
func indicesOf(t *testing.T, es *esfake.Server) []map[string]any {
	t.Helper()
	resp, err := http.Get(es.URL() + "/_cat/indices/it-*?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

func ptr[T any](v T) *T { return &v }
