package session_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
)

// oddEvents are events whose every field the held encoding must keep as it
// was: optional parts present and absent, an empty list that is not nil,
// a type outside the contract's four, sub-millisecond times, times before
// 1970, and strings that change from one event to the next or stay.
func oddEvents() []event.Event {
	at := time.Date(2025, 10, 7, 10, 0, 0, 0, time.UTC)
	base := event.Event{EventID: "e1", Type: event.TypeMessage, OccurredAt: at, Tenant: "acme", Channel: "whatsapp",
		Contact: event.Contact{ID: "5511900000001", Phone: "+55 11 90000-0001", Name: "Ana"}}
	var out []event.Event
	add := func(f func(e *event.Event)) {
		e := base
		e.EventID = base.EventID + string(rune('a'+len(out)))
		f(&e)
		out = append(out, e)
	}
	add(func(e *event.Event) {
		e.Author = &event.Author{Role: event.RoleCustomer}
		e.Text, e.ContentType = "Olá, tudo bem? ✓", "text"
	})
	add(func(e *event.Event) {
		e.Author = &event.Author{Role: event.RoleBot}
		e.Attachments = []event.Attachment{}
	})
	add(func(e *event.Event) {
		e.Author = &event.Author{Role: event.RoleAgent, ID: "ag-1", Name: "Bia"}
		e.Attachments = []event.Attachment{{URL: "https://files.example/a.pdf", MIMEType: "application/pdf", Name: "a.pdf"}, {URL: "u2"}}
		e.Protocol = "20251007092633646"
	})
	add(func(e *event.Event) {
		e.Type = event.TypeHandoff
		e.Handoff = &event.Handoff{Action: event.ActionAssigned, Queue: "Financeiro", Agent: &event.Agent{ID: "ag-1", Name: "Bia"}, Reason: "r", Status: "s"}
	})
	add(func(e *event.Event) {
		e.Type = event.TypeHandoff
		e.Handoff = &event.Handoff{Action: event.ActionClosed}
	})
	add(func(e *event.Event) { e.Type = event.TypeTag; e.Tag = "Segunda Via Sucesso" })
	add(func(e *event.Event) { e.Type = event.TypeInfo; e.Info = &event.Info{Key: "cpf", Value: ""} })
	add(func(e *event.Event) { e.Type = "other"; e.SessionID = "c639c747-4637-4ff5-99c0-9f0e86d3c21b" })
	add(func(e *event.Event) { e.OccurredAt = at.Add(1500 * time.Microsecond) })
	add(func(e *event.Event) { e.OccurredAt = time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC) })
	add(func(e *event.Event) {
		e.Contact = event.Contact{ID: "web-7"}
		e.Channel = "webchat"
		e.Tenant = "globex"
	})
	add(func(e *event.Event) { e.Author = &event.Author{Role: event.RoleAgent, ID: "ag-2"} })
	return out
}

// TestStateCacheKeepsEvents: a state put in a StateCache is held encoded,
// and what Take returns is every event as it was put, field by field, with
// its session; the batch it came from may be reused meanwhile.
func TestStateCacheKeepsEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	generated := sessiontest.Generate(rng, sessiontest.Options{Tenants: []string{"acme", "globex"}, Conversations: 200,
		MaxEvents: 20, Start: sessiontest.Base, Spread: 48 * time.Hour})
	for _, tc := range []struct {
		name   string
		events []event.Event
	}{
		{"odd events", oddEvents()},
		{"generated", generated},
		{"one", generated[:1]},
		{"none", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch := slices.Clone(tc.events)
			var want []session.Stored
			for i := range batch {
				want = append(want, session.Stored{Event: &tc.events[i], SessionID: []string{"s1", "s2", "s1"}[i%3]})
			}
			st := &session.KeyState{Tenant: "acme", Key: "d:whatsapp/5511900000001", Complete: true}
			for i := range batch {
				st.Events = append(st.Events, session.Stored{Event: &batch[i], SessionID: want[i].SessionID})
			}
			c := session.NewStateCache(1<<30, time.Hour, (*session.KeyState).Cost)
			id := session.StateID{Tenant: st.Tenant, Key: st.Key}
			c.Put(id, st)
			if len(tc.events) > 0 && st.Events != nil {
				t.Error("the cache holds the events decoded")
			}
			clear(batch)
			got, ok, err := c.Take(t.Context(), id)
			if err != nil || !ok {
				t.Fatalf("take: %v, %v", ok, err)
			}
			if len(got.Events) != len(want) {
				t.Fatalf("%d events back, want %d", len(got.Events), len(want))
			}
			for i := range want {
				if g, w := got.Events[i], want[i]; g.SessionID != w.SessionID || !reflect.DeepEqual(*g.Event, *w.Event) {
					t.Fatalf("event %d back as %+v in %s, want %+v in %s", i, *g.Event, g.SessionID, *w.Event, w.SessionID)
				}
			}
			// Put back unchanged, then with more events (encoded after
			// the others), then with one moved to another session
			// (encoded again): each time the same events come back.
			c.Put(id, got)
			more := oddEvents()
			for i := range more {
				more[i].OccurredAt = more[i].OccurredAt.Add(100 * 365 * 24 * time.Hour) // after every other
				want = append(want, session.Stored{Event: &more[i], SessionID: "s9"})
			}
			for step, change := range []func(evs []session.Stored) []session.Stored{
				func(evs []session.Stored) []session.Stored { return evs },
				func(evs []session.Stored) []session.Stored { return append(slices.Clip(evs), want[len(evs):]...) },
				func(evs []session.Stored) []session.Stored {
					evs = slices.Clone(evs)
					evs[0].SessionID, want[0].SessionID = "moved", "moved"
					return evs
				},
			} {
				st, _, _ := c.Take(t.Context(), id)
				st.Events = change(st.Events)
				c.Put(id, st)
				back, _, _ := c.Take(t.Context(), id)
				if len(back.Events) != len(st.Events) {
					t.Fatalf("step %d: %d events back, want %d", step, len(back.Events), len(st.Events))
				}
				for i := range back.Events {
					if g, w := back.Events[i], want[i]; g.SessionID != w.SessionID || !reflect.DeepEqual(*g.Event, *w.Event) {
						t.Fatalf("step %d: event %d back as %+v in %s, want %+v in %s", step, i, *g.Event, g.SessionID, *w.Event, w.SessionID)
					}
				}
				c.Put(id, back)
			}
		})
	}
}

// TestKeyStateCostCountsBytes: a state weighs what it holds: more with
// longer texts, more with more events, and the cache's budget is in those
// bytes.
func TestKeyStateCostCountsBytes(t *testing.T) {
	cost := func(text string, n int) int {
		st := &session.KeyState{Tenant: "acme", Key: "d:whatsapp/c1", Sessions: []session.HeldSession{{ID: "s1", Sums: make([]session.Fingerprint, 5)}}}
		for i := range n {
			e := &event.Event{EventID: "e" + string(rune('a'+i)), Type: event.TypeMessage, Tenant: "acme", Channel: "whatsapp", Text: text,
				Contact: event.Contact{ID: "c1"}, Author: &event.Author{Role: event.RoleCustomer}}
			st.Events = append(st.Events, session.Stored{Event: e, SessionID: "s1"})
		}
		c := session.NewStateCache(1<<30, time.Hour, (*session.KeyState).Cost)
		c.Put(session.StateID{Tenant: "acme", Key: st.Key}, st)
		_, bytes := c.Size()
		return bytes
	}
	short, long, more := cost("oi", 4), cost(string(make([]byte, 1000)), 4), cost("oi", 8)
	if long-short < 4*998 {
		t.Errorf("4 texts 998 bytes longer weigh %d bytes more", long-short)
	}
	if d := more - short; d < 4*10 || d > 4*40 {
		t.Errorf("4 more short events weigh %d bytes, want 10 to 40 each (held encoded)", d)
	}
	if short < 400 || short > 800 {
		t.Errorf("a key of 4 short events weighs %d bytes, want 400–800 (the key's share of the cache)", short)
	}
}

// BenchmarkStateCacheTakePut is what a hit costs the cache: a key of a
// dozen events (two sessions of a conversation) taken, decoded, and put
// back with one new event, encoded again.
func BenchmarkStateCacheTakePut(b *testing.B) {
	// A key of two sessions of 20 events each, as a live conversation's
	// state is held between batches.
	var evs []event.Event
	for i := range 40 {
		e := oddEvents()[i%12]
		e.EventID = fmt.Sprintf("e%03d", i)
		e.OccurredAt = sessiontest.Base.Add(time.Duration(i) * time.Minute)
		e.Tenant, e.Channel, e.Contact = "acme", "whatsapp", event.Contact{ID: "5511900000001"}
		evs = append(evs, e)
	}
	late := evs[20]
	late.EventID, late.OccurredAt = "late", late.OccurredAt.Add(time.Second)
	for _, bc := range []struct {
		name   string
		change func(evs []session.Stored, i int) []session.Stored
	}{
		// The same events: the batch touched none of the key's.
		{"unchanged", func(evs []session.Stored, _ int) []session.Stored { return evs }},
		// A late event in the middle, then gone again: each Put has a
		// change inside the events held.
		{"late event", func(evs []session.Stored, i int) []session.Stored {
			if i%2 == 0 {
				return slices.Insert(slices.Clip(evs), 21, session.Stored{Event: &late, SessionID: evs[20].SessionID})
			}
			return slices.Delete(slices.Clone(evs), 21, 22)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := &session.KeyState{Tenant: "acme", Key: "d:whatsapp/5511900000001"}
			for i := range evs {
				st.Events = append(st.Events, session.Stored{Event: &evs[i], SessionID: []string{"s1", "s2"}[i/20]})
			}
			c := session.NewStateCache(1<<30, time.Hour, (*session.KeyState).Cost)
			id := session.StateID{Tenant: st.Tenant, Key: st.Key}
			c.Put(id, st)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				got, _, _ := c.Take(b.Context(), id)
				got.Events = bc.change(got.Events, i)
				c.Put(id, got)
				i++
			}
		})
	}
}
