package session

import (
	"testing"

	"github.com/chatreport/chatreport/internal/event"
)

// TestKeyIs: KeyIs agrees with KeyOf, and appendGroup names each tenant and
// key apart.
func TestKeyIs(t *testing.T) {
	derived := &event.Event{Tenant: "acme", Channel: "whatsapp", Contact: event.Contact{ID: "5511/9"}}
	explicit := &event.Event{Tenant: "acme", Channel: "whatsapp", SessionID: "abc", Contact: event.Contact{ID: "5511"}}
	for _, tc := range []struct {
		name string
		e    *event.Event
		key  string
		want bool
	}{
		{"derived, its key", derived, "d:whatsapp/5511/9", true},
		{"derived, another contact", derived, "d:whatsapp/5511", false},
		{"derived, another channel", derived, "d:webchat/5511/9", false},
		{"derived, an explicit key", derived, "s:whatsapp/5511/9", false},
		{"derived, no channel", derived, "d:whatsapp", false},
		{"explicit, its key", explicit, "s:abc", true},
		{"explicit, another session", explicit, "s:abd", false},
		{"explicit, its contact's derived key", explicit, "d:whatsapp/5511", false},
		{"explicit, the bare id", explicit, "abc", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := KeyIs(tc.e, tc.key); got != tc.want {
				t.Errorf("KeyIs(%q) = %v, want %v (KeyOf is %q)", tc.key, got, tc.want, KeyOf(tc.e))
			}
			if tc.want != (KeyOf(tc.e) == tc.key) {
				t.Errorf("the case disagrees with KeyOf: %q", KeyOf(tc.e))
			}
		})
	}
	other := *derived
	other.Tenant = "acm"
	if string(appendGroup(nil, derived)) == string(appendGroup(nil, &other)) {
		t.Error("two tenants share a group name")
	}
	// Assemble takes a key from its group's name.
	for _, e := range []*event.Event{derived, explicit} {
		if name := string(appendGroup(nil, e)); name[:len(e.Tenant)+1] != e.Tenant+"\x00" || name[len(e.Tenant)+1:] != KeyOf(e) {
			t.Errorf("group name %q is not the tenant, a NUL and the key %q", name, KeyOf(e))
		}
	}
}
