package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestRefHashCollision: events are found by a hash of their identity
// (events_by_ref_hash), which two identities may share. A stored event whose
// hash another event also has must neither hide that event (it is stored)
// nor let a redelivery of either be stored twice.
func TestRefHashCollision(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	c := storetest.B{Contact: "c1"}
	a, b := c.Msg("a", 0, event.RoleCustomer, "oi"), c.Msg("b", time.Minute, event.RoleCustomer, "tudo bem?")
	asm := session.NewAssembler(pipeline.MustDefault(), s)
	if err := asm.Ingest(ctx, []event.Event{a}); err != nil {
		t.Fatal(err)
	}
	// a's row now carries b's hash, as if both identities hashed alike.
	if _, err := s.db.ExecContext(ctx, `UPDATE events SET ref = ? WHERE event_id = 'a'`, refOf(b.Tenant, b.EventID)); err != nil {
		t.Fatal(err)
	}
	s.states.Reset() // read the key back from the database
	for i, batch := range [][]event.Event{{b}, {a, b}, {b}} {
		if err := asm.Ingest(ctx, batch); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		s.states.Reset()
	}
	n, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Events != 2 || n.Sessions != 1 {
		t.Fatalf("stored %+v, want a and b once each in one session", n)
	}
}

// TestAppendValuesTypes: values read back from the database of a type a
// row built in Go never has are encoded, not a panic, and distinctly.
func TestAppendValuesTypes(t *testing.T) {
	seen := map[string]any{}
	for _, v := range []any{"x", int64(1), []byte("x"), nil, 1.5, true, ""} {
		k := string(appendValues(nil, []any{v}))
		if prev, ok := seen[k]; ok {
			t.Errorf("%#v and %#v encode alike", prev, v)
		}
		seen[k] = v
	}
}

// TestEventTwiceInOneWrite: with events_by_ref_hash not unique, an update
// that would store one event twice is refused, not written twice.
func TestEventTwiceInOneWrite(t *testing.T) {
	ctx := context.Background()
	refs := idref.New([]byte("the store's reference key"))
	s := openTemp(t, WithRefKey(refs))
	// An event_id may embed a phone number: the error, which is logged,
	// names the event by its reference.
	e := storetest.B{Contact: "c1"}.Msg("msg-5511999990000-1", 0, event.RoleCustomer, "oi")
	err := s.Update(ctx, func(ctx context.Context, r session.Reader) (session.Changes, error) {
		return session.Changes{Events: []session.Stored{{Event: &e, SessionID: "s1"}, {Event: &e, SessionID: "s1"}}}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "twice in one write") || !strings.Contains(err.Error(), refs.Scoped(e.Tenant, e.EventID)) || strings.Contains(err.Error(), "5511999990000") {
		t.Fatalf("Update = %v, want the second copy refused, named by its reference", err)
	}
	if n, _ := s.Counts(ctx); n.Events != 0 {
		t.Fatalf("stored %d events, want none", n.Events)
	}
}
