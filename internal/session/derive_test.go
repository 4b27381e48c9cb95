package session_test

import (
	"strings"
	"testing"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
)

// TestDeriveIDMatchesReference: DeriveID, which hashes the name in a
// buffer of its own, gives the id the reference computes with the uuid
// library, also for escaped ids and names longer than its buffer.
func TestDeriveIDMatchesReference(t *testing.T) {
	long := strings.Repeat("x/%é", 100)
	for _, tc := range []struct{ tenant, channel, contact, eventID string }{
		{"acme", "whatsapp", "5511987654321", "0198a3c1-7c3e-7f2a-9b1d-2c4e6f8a0b1c"},
		{"acme", "whatsapp", "", "e1"},
		{"acme", "webchat", "a/b", "x"},
		{"acme", "webchat", "a", "b/x"},
		{"acme", "webchat", "100%", "%2F"},
		{"açaí", "telegram", "José/Ñ", "é/%/"},
		{"acme", "whatsapp", long, "e1"},
		{"acme", "whatsapp", "c1", long + long},
	} {
		e := &event.Event{Tenant: tc.tenant, Channel: tc.channel, Contact: event.Contact{ID: tc.contact}, EventID: tc.eventID}
		if got, want := session.DeriveID(e), sessiontest.DerivedID(tc.tenant, tc.channel, tc.contact, tc.eventID); got != want {
			t.Errorf("DeriveID(%q, %q, %q, %q) = %s, the reference gives %s", tc.tenant, tc.channel, tc.contact, tc.eventID, got, want)
		}
	}
}

func BenchmarkDeriveID(b *testing.B) {
	e := &event.Event{Tenant: "acme", Channel: "whatsapp", Contact: event.Contact{ID: "5511987654321"},
		EventID: "0198a3c1-7c3e-7f2a-9b1d-2c4e6f8a0b1c"}
	b.ReportAllocs()
	for b.Loop() {
		session.DeriveID(e)
	}
}
