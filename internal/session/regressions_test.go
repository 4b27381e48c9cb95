package session_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
	"github.com/chatreport/chatreport/internal/store/sqlite"
)

// Regression tests for bugs found while writing the property tests.

// TestDerivedIDsDoNotCollideOnSlash: contact "a/b" with event "x" and
// contact "a" with event "b/x" would hash the same name if '/' in ids were
// not escaped; they are two sessions.
func TestDerivedIDsDoNotCollideOnSlash(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ids.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	x := message("acme", "whatsapp", "a/b", "x", "2025-10-07T09:00:00Z", event.RoleCustomer)
	y := message("acme", "whatsapp", "a", "b/x", "2025-10-07T09:00:00Z", event.RoleCustomer)
	if err := session.NewAssembler(sessiontest.Definition(), st).Ingest(ctx, []event.Event{x, y}); err != nil {
		t.Fatal(err)
	}
	if session.DeriveID(&x) == session.DeriveID(&y) {
		t.Fatalf("contacts %q and %q share derived session id %s", x.Contact.ID, y.Contact.ID, session.DeriveID(&x))
	}
	for _, e := range []*event.Event{&x, &y} {
		if want := sessiontest.DerivedID("acme", "whatsapp", e.Contact.ID, e.EventID); session.DeriveID(e) != want {
			t.Errorf("contact %q event %q: id %s, docs/sessions.md gives %s", e.Contact.ID, e.EventID, session.DeriveID(e), want)
		}
		d, err := st.Session(ctx, "acme", session.DeriveID(e))
		if err != nil || len(d.Events) != 1 || d.Events[0].EventID != e.EventID {
			t.Errorf("session of %q: %v, %d events", e.Contact.ID, err, len(d.Events))
		}
	}
}

// TestTimesAfter2262KeepOrderIndependence: event.Decode accepts any year
// from 0000 to 9999. When the SQLite store kept times as Unix nanoseconds in
// an int64, they wrapped outside 1678–2262: an event of 2609-07-23 was
// stored as if it happened on 2025-01-01 just before noon, KeyEvents read
// back too little for a later 2025 event, and the sessions depended on the
// arrival order. Times are now milliseconds, which do not wrap.
func TestTimesAfter2262KeepOrderIndependence(t *testing.T) {
	ctx := context.Background()
	noon := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	// 2^64 ns after noon: the same int64 of nanoseconds as noon.
	far := time.Unix(noon.Unix()+18446744073, 709551616).UTC()
	decode := func(id string, at time.Time) event.Event {
		raw := `{"event_id":"` + id + `","type":"message","author":{"role":"customer"},"text":"oi","occurred_at":"` +
			at.Format(time.RFC3339Nano) + `","tenant":"acme","channel":"whatsapp","contact":{"id":"c1"}}`
		e, err := event.Decode([]byte(raw))
		if err != nil {
			t.Fatalf("event.Decode rejects %s: %v", at, err)
		}
		return e
	}
	a := decode("a", noon.Add(-12*time.Hour))
	b := decode("b", noon.Add(time.Hour))
	z := decode("z", far)
	want := sessiontest.Reference(sessiontest.Definition(), []event.Event{a, b, z})
	for _, order := range [][]event.Event{{a, b, z}, {a, z, b}} {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bug.db"))
		if err != nil {
			t.Fatal(err)
		}
		as := session.NewAssembler(sessiontest.Definition(), st)
		for _, e := range order {
			if err := as.Ingest(ctx, []event.Event{e}); err != nil {
				t.Fatal(err)
			}
		}
		d, err := st.Session(ctx, "acme", session.DeriveID(&a))
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if w := want[session.Ref{Tenant: "acme", ID: session.DeriveID(&a)}]; len(d.Events) != len(w.Events) {
			t.Errorf("arrival %s, %s, %s: the session of a has %d events, want %d (a and b, 13 h apart); z occurred at %s",
				order[0].EventID, order[1].EventID, order[2].EventID, len(d.Events), len(w.Events), z.OccurredAt)
		}
	}
}
