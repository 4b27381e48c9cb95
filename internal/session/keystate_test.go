package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/chatreport/chatreport/internal/event"
)

var t0 = time.Date(2025, 10, 7, 10, 0, 0, 0, time.UTC)

func held(id string, min int) HeldSession {
	return HeldSession{ID: id, Start: t0.Add(time.Duration(min) * time.Minute)}
}

func storedAt(id, session string, min int) Stored {
	return Stored{Event: &event.Event{Tenant: "acme", EventID: id, Channel: "whatsapp", Contact: event.Contact{ID: "c1"},
		OccurredAt: t0.Add(time.Duration(min) * time.Minute)}, SessionID: session}
}

func ids(evs []Stored) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.EventID+"@"+e.SessionID)
	}
	return out
}

// TestKeyStateAnchor: a state answers a read from the latest session held
// that started at or before since, or from the key's beginning when it
// holds every session; an earlier since in a state that does not is a miss.
func TestKeyStateAnchor(t *testing.T) {
	st := &KeyState{Key: "d:whatsapp/c1",
		Sessions: []HeldSession{held("s1", 0), held("s2", 60)},
		Events:   []Stored{storedAt("a", "s1", 0), storedAt("b", "s1", 10), storedAt("c", "s2", 60), storedAt("d", "s2", 70)}}
	for _, tc := range []struct {
		name     string
		since    int
		complete bool
		ok       bool
		tail     []string
	}{
		{"in the latest session", 65, false, true, []string{"c@s2", "d@s2"}},
		{"at the latest session's start", 60, false, true, []string{"c@s2", "d@s2"}},
		{"in the first held", 30, false, true, []string{"a@s1", "b@s1", "c@s2", "d@s2"}},
		{"before what is held", -5, false, false, nil},
		{"before every session of a complete key", -5, true, true, []string{"a@s1", "b@s1", "c@s2", "d@s2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st.Complete = tc.complete
			j, ok := st.Anchor(t0.Add(time.Duration(tc.since) * time.Minute))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && !slices.Equal(ids(st.Tail(j)), tc.tail) {
				t.Errorf("tail %v, want %v", ids(st.Tail(j)), tc.tail)
			}
		})
	}
}

// TestKeyStateAdvance: after a write the state holds the sessions before
// the anchor as they were, then the recomputed ones with their events
// (moved ones in their new session), the latest two of a derived key; the
// state it came from is unchanged.
func TestKeyStateAdvance(t *testing.T) {
	st := &KeyState{Key: "d:whatsapp/c1", Complete: true,
		Sessions: []HeldSession{held("s1", 0), held("s2", 60)},
		Events:   []Stored{storedAt("a", "s1", 0), storedAt("c", "s2", 60), storedAt("d", "s2", 70)}}
	j, _ := st.Anchor(t0.Add(59 * time.Minute))
	tail := st.Tail(j)
	// A late event at 0:59 joins s1, c and d move to s2b, and a new event e
	// opens s4.
	kc := &KeyChanges{
		Sessions: []HeldSession{held("s1", 0), held("s2b", 60), held("s4", 200)},
		Events:   []Stored{storedAt("late", "s1", 59), storedAt("c", "s2b", 60), storedAt("d", "s2b", 70), storedAt("e", "s4", 200)},
	}
	next := st.Advance(j, tail, kc)
	if want := []string{"c@s2b", "d@s2b", "e@s4"}; !slices.Equal(ids(next.Events), want) {
		t.Errorf("events %v, want %v (the latest two sessions')", ids(next.Events), want)
	}
	if len(next.Sessions) != 2 || next.Sessions[0].ID != "s2b" || next.Sessions[1].ID != "s4" || next.Complete {
		t.Errorf("sessions %+v complete %v, want s2b s4, not complete", next.Sessions, next.Complete)
	}
	if want := []string{"a@s1", "c@s2", "d@s2"}; !slices.Equal(ids(st.Events), want) || len(st.Sessions) != 2 {
		t.Errorf("the state advanced from changed: %v", ids(st.Events))
	}
	// From the second session on: the first stays as it was.
	j, _ = st.Anchor(t0.Add(65 * time.Minute))
	next = st.Advance(j, st.Tail(j), &KeyChanges{Sessions: []HeldSession{held("s2", 60)}, Events: []Stored{storedAt("f", "s2", 80)}})
	if want := []string{"a@s1", "c@s2", "d@s2", "f@s2"}; !slices.Equal(ids(next.Events), want) || len(next.Sessions) != 2 || !next.Complete {
		t.Errorf("events %v sessions %d complete %v, want %v, 2, complete", ids(next.Events), len(next.Sessions), next.Complete, want)
	}
}

// TestKeyStateAdvanceCopiesNewEvents: memory keeps its own copies of a
// batch's new events once the state is in a StateCache; the caller may
// reuse its batch afterwards.
func TestKeyStateAdvanceCopiesNewEvents(t *testing.T) {
	st := &KeyState{Key: "d:whatsapp/c1", Complete: true}
	batch := []event.Event{*storedAt("n1", "s1", 0).Event, *storedAt("n2", "s1", 5).Event}
	kc := &KeyChanges{Sessions: []HeldSession{held("s1", 0)}}
	for i := range batch {
		kc.Events = append(kc.Events, Stored{Event: &batch[i], SessionID: "s1"})
	}
	c := NewStateCache(1<<20, time.Hour, (*KeyState).Cost)
	id := StateID{Key: st.Key}
	c.Put(id, st.Advance(0, nil, kc))
	batch[0].EventID, batch[1].EventID = "reused", "reused"
	next, _, _ := c.Take(t.Context(), id)
	if want := []string{"n1@s1", "n2@s1"}; !slices.Equal(ids(next.Events), want) {
		t.Errorf("events after the batch was reused: %v, want %v", ids(next.Events), want)
	}
}

// TestKeyStateApply: a moved event keeps the event memory holds, in its
// new session; a stored event that the batch brings again as new (another
// copy) is kept as the batch has it; the whole state is kept (Trim is
// separate) and the state applied to is unchanged.
func TestKeyStateApply(t *testing.T) {
	st := &KeyState{Key: "d:whatsapp/c1", Complete: true,
		Sessions: []HeldSession{held("s1", 0), held("s2", 60), held("s3", 120)},
		Events:   []Stored{storedAt("a", "s1", 0), storedAt("b", "s2", 60), storedAt("c", "s3", 120)}}
	j, _ := st.Anchor(t0.Add(60 * time.Minute))
	tail := st.Tail(j)
	again := storedAt("c", "s2b", 120)
	again.Text = "as the batch has it"
	kc := &KeyChanges{
		Sessions: []HeldSession{held("s2b", 60), held("s4", 200)},
		Events:   []Stored{{Event: tail[0].Event, SessionID: "s2b"}, again, storedAt("n", "s4", 200)},
	}
	next := st.Apply(j, tail, kc)
	if want := []string{"a@s1", "b@s2b", "c@s2b", "n@s4"}; !slices.Equal(ids(next.Events), want) {
		t.Fatalf("events %v, want %v", ids(next.Events), want)
	}
	if len(next.Sessions) != 3 || !next.Complete {
		t.Errorf("sessions %+v complete %v, want s1 s2b s4, complete", next.Sessions, next.Complete)
	}
	if next.Events[1].Event != tail[0].Event {
		t.Error("a moved event is not the one memory holds")
	}
	if got := next.Events[2]; got.Text != again.Text {
		t.Errorf("an event brought again: %q, want the batch's", got.Text)
	}
	if want := []string{"a@s1", "b@s2", "c@s3"}; !slices.Equal(ids(st.Events), want) || len(st.Sessions) != 3 {
		t.Errorf("the state applied to changed: %v", ids(st.Events))
	}
	next.Trim()
	if want := []string{"b@s2b", "c@s2b", "n@s4"}; !slices.Equal(ids(next.Events), want) || len(next.Sessions) != 2 || next.Complete {
		t.Errorf("after Trim: events %v, %d sessions, complete %v", ids(next.Events), len(next.Sessions), next.Complete)
	}
}

// TestStateCache: a state taken is out of the cache until put back; a
// released one is gone; the least recently used go first past the budget,
// and idle ones after the idle time.
func TestStateCache(t *testing.T) {
	ctx := context.Background()
	now := t0
	c := NewStateCache(10, time.Hour, func(n int) int { return n })
	c.now = func() time.Time { return now }
	a, b, d := StateID{"acme", "a"}, StateID{"acme", "b"}, StateID{"acme", "d"}
	take := func(id StateID) (int, bool) {
		t.Helper()
		n, ok, err := c.Take(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return n, ok
	}
	if _, ok := take(a); ok {
		t.Fatal("an empty cache holds a")
	}
	c.Put(a, 4)
	take(b)
	c.Put(b, 4)
	if n, ok := take(a); !ok || n != 4 {
		t.Fatalf("a = %d, %v", n, ok)
	}
	c.Release(a) // a failed update: a is gone
	if _, ok := take(a); ok {
		t.Fatal("a released is still held")
	}
	c.Put(a, 4)
	take(d)
	c.Put(d, 4) // over the budget: b, the least recently used, goes
	if keys, cost := c.Size(); keys != 2 || cost != 8 {
		t.Fatalf("size %d keys, %d cost, want 2, 8", keys, cost)
	}
	if _, ok := take(b); ok {
		t.Fatal("b, least recently used, still held past the budget")
	}
	c.Release(b)
	now = now.Add(2 * time.Hour)
	take(d)
	c.Put(d, 1) // a has been idle for two hours: it goes
	if keys, _ := c.Size(); keys != 1 {
		t.Fatalf("%d keys, want d alone", keys)
	}
	c.Reset()
	if keys, cost := c.Size(); keys != 0 || cost != 0 {
		t.Fatalf("after Reset: %d keys, %d cost", keys, cost)
	}
}

// TestStateCacheTakeWaits: a key taken is held; a second update of it (an
// explicit session's events from two partitions at once) waits until the
// first lets go, and then gets the state the first put back.
func TestStateCacheTakeWaits(t *testing.T) {
	c := NewStateCache(10, time.Hour, func(n int) int { return n })
	k := StateID{"acme", "k"}
	if _, _, err := c.Take(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	type taken struct {
		n  int
		ok bool
	}
	got := make(chan taken)
	go func() {
		n, ok, _ := c.Take(t.Context(), k)
		got <- taken{n, ok}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := c.Take(ctx, k); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a held key was taken again: %v", err)
	}
	c.Put(k, 3)
	select {
	case g := <-got:
		if !g.ok || g.n != 3 {
			t.Fatalf("the waiting update got %+v, want the state put back", g)
		}
		c.Release(k)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting update was not let in when the key was put back")
	}
}

// TestPackCopiesExplicitSessionIDs: an explicit session's id is a piece of
// the Kafka message its event came in (the decoder shares its strings), so a
// held state copies it, or the state would keep the message for hours. Also
// when the session is new to a state whose events only grew (packed by
// appending, not encoded again).
func TestPackCopiesExplicitSessionIDs(t *testing.T) {
	message := strings.Repeat("x", 1024) + "s-1s-2" // stands for a Kafka message
	id1, id2 := message[1024:1027], message[1027:1030]
	inMessage := func(s string) bool {
		p, base := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(message)))
		return p >= base && p < base+uintptr(len(message))
	}
	id := StateID{"acme", "explicit"}
	st := &KeyState{Tenant: id.Tenant, Key: id.Key, Sessions: []HeldSession{held(id1, 0)}, Events: []Stored{storedAt("e1", id1, 0)}}
	st.pack(id)
	if err := st.unpack(); err != nil {
		t.Fatal(err)
	}
	st.Events = append(st.Events, storedAt("e2", id2, 30))
	st.Sessions = append(st.Sessions, held(id2, 30))
	st.pack(id)
	for _, s := range st.Sessions {
		if inMessage(s.ID) {
			t.Errorf("session %s held as a piece of the message", s.ID)
		}
	}
}

// TestStateCacheCountsLostStates: a held state that does not decode is
// dropped, its key is read from the store (Take says the cache has
// nothing), and the loss is counted for the metric.
func TestStateCacheCountsLostStates(t *testing.T) {
	c := NewStateCache(1<<20, time.Hour, (*KeyState).Cost)
	id := StateID{Tenant: "acme", Key: "d:whatsapp/c1"}
	st := &KeyState{Tenant: "acme", Key: id.Key, Complete: true,
		Events: []Stored{storedAt("e1", "s1", 0), storedAt("e2", "s1", 5)}}
	c.Put(id, st)
	if st.held.n != 2 {
		t.Fatalf("the cache holds %d events packed, want 2", st.held.n)
	}
	st.held.data = st.held.data[:len(st.held.data)/2]
	before := HeldStatesLost()
	got, ok, err := c.Take(t.Context(), id)
	if err != nil || ok || got != nil {
		t.Fatalf("take of a state that does not decode: %v, %v, %v; want nothing", got, ok, err)
	}
	if n := HeldStatesLost() - before; n != 1 {
		t.Errorf("%d lost states counted, want 1", n)
	}
	c.Release(id)
	if _, ok, _ := c.Take(t.Context(), id); ok {
		t.Error("the lost state is still in the cache")
	}
}

// TestPackCopiesWhatStaysInOrder: a state put back after a batch is
// encoded byte for byte as a whole encoding would be, and only its events
// that do not follow the same event as when it was taken are encoded: the
// batch's new ones, a late one and the event after it, the first event kept
// after older ones were trimmed, a moved event and the one after it.
func TestPackCopiesWhatStaysInOrder(t *testing.T) {
	id := StateID{Tenant: "acme", Key: "d:whatsapp/c1"}
	at := func(i int) Stored {
		s := storedAt(strings.Repeat("e", 1+i%3)+string(rune('a'+i%26))+string(rune('a'+i/26)), []string{"s1", "s2", "s2"}[i/15], i)
		s.Text = strings.Repeat("olá ", i%4)
		if i%2 == 0 {
			s.Author = &event.Author{Role: event.RoleCustomer}
		}
		return s
	}
	late := func(min int) Stored {
		s := at(min)
		s.EventID += "-late"
		s.OccurredAt = s.OccurredAt.Add(30 * time.Second)
		return s
	}
	for _, tc := range []struct {
		name    string
		change  func(evs []Stored) []Stored
		encoded int
	}{
		{"unchanged", func(evs []Stored) []Stored { return evs }, 0},
		{"three appended", func(evs []Stored) []Stored { return append(slices.Clip(evs), at(30), at(31), at(32)) }, 3},
		{"a late event in the middle", func(evs []Stored) []Stored { return slices.Insert(slices.Clip(evs), 11, late(10)) }, 2},
		{"a late event first", func(evs []Stored) []Stored {
			e := late(0)
			e.OccurredAt = t0.Add(-time.Minute)
			return slices.Insert(slices.Clip(evs), 0, e)
		}, 2},
		{"older session trimmed", func(evs []Stored) []Stored { return evs[15:] }, 1},
		{"trimmed and appended", func(evs []Stored) []Stored { return append(slices.Clone(evs[15:]), at(30)) }, 2},
		{"one moved", func(evs []Stored) []Stored { evs = slices.Clone(evs); evs[20].SessionID = "s3"; return evs }, 2},
		{"the last moved", func(evs []Stored) []Stored { evs = slices.Clone(evs); evs[29].SessionID = "s3"; return evs }, 1},
		{"one brought again", func(evs []Stored) []Stored { evs = slices.Clone(evs); evs[5] = at(5); return evs }, 2},
		{"one gone", func(evs []Stored) []Stored { return slices.Delete(slices.Clone(evs), 7, 8) }, 1},
		{"all new", func(evs []Stored) []Stored {
			out := make([]Stored, len(evs))
			for i := range evs {
				out[i] = at(i)
			}
			return out
		}, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &KeyState{Tenant: id.Tenant, Key: id.Key}
			for i := range 30 {
				st.Events = append(st.Events, at(i))
			}
			st.pack(id)
			if err := st.unpack(); err != nil {
				t.Fatal(err)
			}
			events := tc.change(st.Events)
			got, encoded := st.held.reencode(events)
			if want := encodeHeld(events); got != want {
				t.Fatalf("encoding differs from a whole encoding:\n got %q\nwant %q", got, want)
			}
			if encoded != tc.encoded {
				t.Errorf("%d events encoded, want %d", encoded, tc.encoded)
			}
			back, _, err := decodeHeld(got, len(events))
			if err != nil {
				t.Fatal(err)
			}
			if g, w := ids(back), ids(events); !slices.Equal(g, w) {
				t.Errorf("decoded %v, want %v", g, w)
			}
		})
	}
	t.Run("not taken from a cache", func(t *testing.T) {
		var p packedEvents
		events := []Stored{at(0), at(1)}
		if got, encoded := p.reencode(events); got != encodeHeld(events) || encoded != 2 {
			t.Errorf("a state never packed: encoded %d, want both", encoded)
		}
	})
}
