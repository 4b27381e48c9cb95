package sqlite

import (
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// A key the update read from the database and found nothing of is new: its
// sessions are written without reading stored side rows or asking their
// stored start. A key the database holds something of is not: its sessions'
// rows are read and compared, and their starts asked, as before.
func TestPlanNewKeyReadsNothingStored(t *testing.T) {
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	s := session.Session{Tenant: "acme", ID: "s1", Key: "k1", Channel: "whatsapp", StartedAt: start,
		Tags: []string{"vip"}, Protocols: []string{"p1"}, Info: map[string]string{"plan": "gold"},
		Agents: []event.Agent{{ID: "a1"}}, Queues: []string{"q1"}}
	stored := session.Stored{SessionID: "s0", Event: &event.Event{Tenant: "acme", EventID: "e0", Type: event.TypeMessage,
		Channel: "whatsapp", OccurredAt: start.Add(-48 * time.Hour)}}
	for _, tc := range []struct {
		name  string
		state *session.KeyState
		// new: the plan treats s as stored nowhere.
		new bool
	}{
		{"nothing stored", &session.KeyState{Tenant: "acme", Key: "k1", Complete: true}, true},
		{"events stored", &session.KeyState{Tenant: "acme", Key: "k1", Complete: true, Events: []session.Stored{stored}}, false},
		{"read from an anchor", &session.KeyState{Tenant: "acme", Key: "k1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &reader{reads: map[session.StateID]*keyRead{{Tenant: "acme", Key: "k1"}: {st: tc.state, tail: tc.state.Events}}}
			p, err := planWrite(session.Changes{Sessions: []session.Session{s}}, r)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(p.starts) == 0; got != tc.new {
				t.Errorf("start asked of the database: %v, want %v", !got, !tc.new)
			}
			if len(p.writes) != 1 {
				t.Fatalf("%d sessions to write, want 1", len(p.writes))
			}
			w := p.writes[0]
			if !w.row {
				t.Error("the sessions row is not written")
			}
			for part := range sideParts {
				if w.clear[part] == tc.new {
					t.Errorf("%s: stored rows read %v, want %v", sideParts[part].table, w.clear[part], !tc.new)
				}
				if len(w.parts[part]) == 0 {
					t.Errorf("%s: no rows to write", sideParts[part].table)
				}
			}
		})
	}
}
