package esfake

import (
	"reflect"
	"testing"
)

// TestSecurityDisabled: without WithSecurity the fake answers as an
// Elasticsearch 8 with xpack.security.enabled false, which has no
// _security handlers.
func TestSecurityDisabled(t *testing.T) {
	f := New(t)
	status, raw := callRaw(t, f, "POST", "/_security/user/_has_privileges", `{"cluster":["monitor"]}`)
	want := `{"error":"no handler found for uri [/_security/user/_has_privileges] and method [POST]"}` + "\n"
	if status != 400 || string(raw) != want {
		t.Errorf("got %d %s, want 400 %s", status, raw, want)
	}
}

func TestHasPrivileges(t *testing.T) {
	f := New(t, WithSecurity(Grants{Cluster: []string{"monitor"}, Indices: []IndexGrant{
		{Names: []string{"cr-sessions", "cr-sessions-*"}, Privileges: []string{"read", "write"}},
		{Names: []string{"cr-versions"}, Privileges: []string{"all"}},
	}}))
	status, got := call(t, f, "POST", "/_security/user/_has_privileges", `{"cluster":["monitor","manage_index_templates"],
		"index":[{"names":["cr-sessions","cr-sessions-*","cr-sessions-v1-2025.10","cr-sessionsx","cr-events"],"privileges":["read","manage"]},
		{"names":["cr-versions"],"privileges":["delete_index"]}]}`)
	want := map[string]any{
		"username": "chatreport", "has_all_requested": false, "application": map[string]any{},
		"cluster": map[string]any{"monitor": true, "manage_index_templates": false},
		"index": map[string]any{
			"cr-sessions":            map[string]any{"read": true, "manage": false},
			"cr-sessions-*":          map[string]any{"read": true, "manage": false},
			"cr-sessions-v1-2025.10": map[string]any{"read": true, "manage": false},
			"cr-sessionsx":           map[string]any{"read": false, "manage": false},
			"cr-events":              map[string]any{"read": false, "manage": false},
			"cr-versions":            map[string]any{"delete_index": true},
		},
	}
	if status != 200 || !reflect.DeepEqual(got, want) {
		t.Errorf("got %d %v\nwant %v", status, got, want)
	}
	_, got = call(t, f, "GET", "/_security/user/_has_privileges", `{"cluster":["monitor"],"index":[{"names":["cr-sessions-*"],"privileges":["write"]}]}`)
	if got["has_all_requested"] != true {
		t.Errorf("all granted: %v", got)
	}
	if status, _ := call(t, f, "PUT", "/_security/user/_has_privileges", `{}`); status != 405 {
		t.Errorf("PUT: %d, want 405", status)
	}
}

func TestGrantsWithout(t *testing.T) {
	g := GrantsOf(t, map[string]any{"cluster": []string{"monitor", "manage_index_templates"},
		"indices": []map[string]any{{"names": []string{"a"}, "privileges": []string{"read", "write"}}}},
		Grants{Indices: []IndexGrant{{Names: []string{"b"}, Privileges: []string{"write"}}}})
	got := g.Without("write")
	want := Grants{Cluster: []string{"monitor", "manage_index_templates"}, Indices: []IndexGrant{{Names: []string{"a"}, Privileges: []string{"read"}}, {Names: []string{"b"}, Privileges: []string{}}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if len(g.Indices[0].Privileges) != 2 {
		t.Errorf("Without changed its receiver: %+v", g)
	}
}

// TestPrivilegeImplications: a broader privilege answers for the narrower
// ones it holds in Elasticsearch, and never the reverse.
func TestPrivilegeImplications(t *testing.T) {
	f := New(t, WithSecurity(Grants{Cluster: []string{"manage"}, Indices: []IndexGrant{
		{Names: []string{"cr-keys-*"}, Privileges: []string{"manage", "write"}},
		{Names: []string{"cr-events-*"}, Privileges: []string{"create_index", "delete_index", "view_index_metadata", "index"}},
	}}))
	_, got := call(t, f, "POST", "/_security/user/_has_privileges", `{"cluster":["monitor","manage_index_templates","manage_security"],
		"index":[{"names":["cr-keys-*"],"privileges":["create_index","delete_index","view_index_metadata","index","create_doc","delete","read"]},
		{"names":["cr-events-*"],"privileges":["manage","write","create_doc"]}]}`)
	want := map[string]any{
		"cluster": map[string]any{"monitor": true, "manage_index_templates": true, "manage_security": false},
		"index": map[string]any{
			"cr-keys-*": map[string]any{"create_index": true, "delete_index": true, "view_index_metadata": true,
				"index": true, "create_doc": true, "delete": true, "read": false},
			"cr-events-*": map[string]any{"manage": false, "write": false, "create_doc": true},
		},
	}
	if !reflect.DeepEqual(got["cluster"], want["cluster"]) || !reflect.DeepEqual(got["index"], want["index"]) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
