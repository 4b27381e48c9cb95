package session

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

// KeyState is what the writer of a session key holds of it between batches:
// the key's latest sessions and every event of the key from the first of
// them on. A store keeps it in memory (StateCache) so that the next batch of
// a live conversation reads nothing back (Reader.KeyEvents answers from
// Tail); a batch it cannot answer (Anchor is not ok) reads the store.
type KeyState struct {
	Tenant, Key string
	// Sessions are the key's sessions from the first one held on, sorted
	// by (start, id).
	Sessions []HeldSession
	// Events are every event of the key at or after Sessions[0]'s start,
	// sorted by event order, each with its session. In a StateCache they
	// are held encoded (packed), and Events is nil; Take decodes them.
	Events []Stored
	// Complete: Sessions are all the key's sessions, and Events all its
	// events (a key the store has nothing of is complete and empty).
	Complete bool
	held     packedEvents
}

// packedEvents are a state's events as a StateCache holds them: encoded
// (encodeHeld), n of them. view is the Events they were decoded to, and
// slots what they were decoded in, with where each one's encoding ends in
// data, until the state is packed again: pack copies the encoding of every
// run of view's events that the new Events keep in the same order, and
// encodes only the others (a live conversation's next events, a late
// event, the first event kept after Trim dropped older ones).
type packedEvents struct {
	data  string
	n     int
	view  []Stored
	slots []heldSlot
}

// pack replaces Events by their encoding, which is what a StateCache
// holds; the events are those of the store's writes, which the caller no
// longer changes. id is the cache's copy of the state's names: Tenant and
// Key take them, since the caller's may be substrings of a Kafka message
// (the decoder shares its strings with the message), which a state held
// for hours would keep whole.
func (st *KeyState) pack(id StateID) {
	st.Tenant, st.Key = id.Tenant, id.Key
	if len(st.Events) == 0 {
		st.held, st.Events = packedEvents{}, nil
		return
	}
	data, _ := st.held.reencode(st.Events)
	st.held = packedEvents{data: data, n: len(st.Events)}
	if !IsDerivedKey(st.Key) {
		// An explicit session's id is the events' own (a derived one is
		// made by DeriveID): a copy, not a piece of a message, also when
		// the session is new to a state whose events only grew.
		for i := range st.Sessions {
			st.Sessions[i].ID = strings.Clone(st.Sessions[i].ID)
		}
	}
	st.Events = nil
}

// reencode returns the encoding of events, byte for byte encodeHeld's.
// An event's encoding depends on the event and the one before it only, so
// of a run of events that follow each other in view as in events, all but
// the first are copied from data; the first, and every event view does not
// hold, are encoded. Both lists are in event order, so one pass finds the
// runs. encoded is how many events were encoded rather than copied.
func (p *packedEvents) reencode(events []Stored) (data string, encoded int) {
	if len(p.view) == 0 || len(p.slots) != len(p.view) {
		return encodeHeld(events), len(events)
	}
	same := func(a, b Stored) bool { return a.Event == b.Event && a.SessionID == b.SessionID }
	if slices.EqualFunc(events, p.view, same) {
		return p.data, 0 // the batch changed none of the key's events
	}
	w := newHeldEncoder(len(p.data) + 64*max(len(events)-len(p.view), 0))
	for i, v := 0, 0; i < len(events); {
		for v < len(p.view) && compareStored(p.view[v], events[i]) < 0 {
			v++
		}
		if v == len(p.view) || !same(p.view[v], events[i]) {
			w.event(events[i])
			encoded++
			i++
			continue
		}
		k := 1
		for i+k < len(events) && v+k < len(p.view) && same(p.view[v+k], events[i+k]) {
			k++
		}
		start := int32(0)
		if i > 0 || v > 0 {
			// The run's first event follows another than in view: its
			// encoding is made again; the rest follow theirs as before.
			w.event(events[i])
			encoded++
			start = p.slots[v].end
		}
		w.buf = append(w.buf, p.data[start:p.slots[v+k-1].end]...)
		w.prev = p.view[v+k-1]
		w.at = w.prev.OccurredAt.UnixMilli()
		i, v = i+k, v+k
	}
	return w.string(), encoded
}

// unpack decodes the events pack encoded. An error means a state that
// does not decode, which is a defect: the cache then drops it, and the key
// is read from the store.
func (st *KeyState) unpack() error {
	if st.Events != nil || st.held.n == 0 {
		return nil
	}
	evs, slots, err := decodeHeld(st.held.data, st.held.n)
	if err != nil {
		return err
	}
	st.Events = evs
	st.held.view, st.held.slots = evs, slots
	return nil
}

// heldLost counts held states that did not decode, in every cache of the
// process: each is a defect, which costs its key a read from the store, and
// the metric chatreport_held_states_lost_total makes it visible.
var heldLost atomic.Int64

// HeldStatesLost returns how many held states did not decode since the
// process started (see heldLost).
func HeldStatesLost() int64 { return heldLost.Load() }

// packer is a state that a StateCache holds packed: a KeyState, or a
// store's state that embeds one.
type packer interface {
	pack(id StateID)
	unpack() error
}

// HeldSession is a session of a KeyState: its id, its start, and the
// fingerprints of its summary as stored, divided as the store chose (the
// SQLite store: the document and each side table's rows; nil when
// unknown), with which a store leaves what did not change unwritten.
type HeldSession struct {
	ID    string
	Start time.Time
	Sums  []Fingerprint
}

// Fingerprint identifies what a store wrote of a session (a document, a
// table's rows): a hash of the store's choice, wide enough that two
// different contents never meet.
type Fingerprint [16]byte

// stateKeptSessions is how many of a derived key's latest sessions a state
// keeps the events of: the open one, and the one before it for an event a
// little late (its topic's partition read behind the others). An older
// session is read back from the store when a late event reaches it.
const stateKeptSessions = 2

// Anchor is the index of the session a key's events from since on are read
// from (the latest held session that started at or before since; 0 when
// none did and the state is complete), and whether the state answers such a
// read. An explicit session's key reads its one session whole (since is the
// zero time), which a complete state answers.
func (st *KeyState) Anchor(since time.Time) (int, bool) {
	j, _ := slices.BinarySearchFunc(st.Sessions, since, func(s HeldSession, t time.Time) int {
		if s.Start.After(t) {
			return 1
		}
		return -1
	})
	if j == 0 {
		return 0, st.Complete
	}
	return j - 1, true
}

// Tail is the events from Sessions[j]'s start on: what Reader.KeyEvents
// returns for a since whose anchor is j. The caller must not change them.
func (st *KeyState) Tail(j int) []Stored {
	switch {
	case j == 0:
		return st.Events // every event held is at or after Sessions[0]'s start
	case j >= len(st.Sessions):
		return nil
	}
	from := st.Sessions[j].Start
	i, _ := slices.BinarySearchFunc(st.Events, from, func(e Stored, t time.Time) int { return e.OccurredAt.Compare(t) })
	return st.Events[i:]
}

// Cost is what the state weighs in a StateCache, in bytes of heap: its
// events as held (packed, or decoded), its sessions, and what a key costs
// the cache besides (the entry, the map's slot, the state's struct and
// names). A store whose state holds more adds its own (the Elasticsearch
// store's session list).
func (st *KeyState) Cost() int {
	n := keyOverhead + len(st.Tenant) + len(st.Key) + len(st.held.data)
	if st.Events != nil {
		n += len(st.Events) * decodedEventSize
	}
	for i := range st.Sessions {
		n += heldSessionSize + len(st.Sessions[i].ID) + len(st.Sessions[i].Sums)*fingerprintSize
	}
	return n
}

// Sizes of what a held state is made of, in bytes of heap as Go's
// allocator rounds them (64-bit): what Cost counts per key, per session
// and per decoded event. An estimate within some tens of bytes per key;
// the texts and ids it counts at their length dominate.
const (
	// the StateCache's entry (96), its map slot (~48), the KeyState (~144)
	// and its Sessions slice header's array rounding
	keyOverhead = 96 + 48 + 144 + 16
	// a HeldSession (64: id, start, sums) and its Sums slice's header
	heldSessionSize = 64 + 16
	fingerprintSize = len(Fingerprint{})
	// an event struct, its Stored and its author, with the strings
	// shared with the message it came from, and where its encoding ends
	decodedEventSize = 288 + 24 + 48 + 512 + 8
)

// KeyChanges are the changes of one batch to one key: the batch's Changes
// grouped by key (Changes.ByKey).
type KeyChanges struct {
	// Sessions are the key's recomputed sessions, sorted by (start, id),
	// as HeldSessions with the fingerprints they were written with.
	Sessions []HeldSession
	// Events are the key's new events and those that moved.
	Events []Stored
}

// Advance returns the state after a write that recomputed the key from
// Sessions[j] on, from tail (what KeyEvents returned: st.Tail(j)), with the
// changes kc: Apply, then Trim. It does not change st: an update that fails
// puts nothing back.
func (st *KeyState) Advance(j int, tail []Stored, kc *KeyChanges) *KeyState {
	next := st.Apply(j, tail, kc)
	next.Trim()
	return next
}

// Apply returns the whole state after a write that recomputed the key from
// Sessions[j] on, from tail (st.Tail(j)), with the changes kc: the sessions
// before j as they were, then the recomputed ones; the events before tail as
// they were, then tail and kc.Events merged in event order. A store that
// needs each recomputed session's events (the Elasticsearch store's session
// documents list them) finds them in the merged part, as runs of
// Events[len(st.Events)-len(tail):]. It does not change st.
func (st *KeyState) Apply(j int, tail []Stored, kc *KeyChanges) *KeyState {
	keep := min(j, len(st.Sessions))
	// The encoding of st's events goes with them: the next state's are
	// mostly the same (packedEvents.reencode).
	next := &KeyState{Tenant: st.Tenant, Key: st.Key, Complete: st.Complete, held: st.held}
	next.Sessions = make([]HeldSession, 0, keep+len(kc.Sessions))
	next.Sessions = append(append(next.Sessions, st.Sessions[:keep]...), kc.Sessions...)
	// tail is a suffix of st.Events; the events before it stay.
	before := st.Events[:len(st.Events)-len(tail)]
	evs := kc.Events
	if !slices.IsSortedFunc(evs, compareStored) {
		evs = slices.Clone(evs)
		slices.SortFunc(evs, compareStored)
	}
	next.Events = make([]Stored, 0, len(before)+len(tail)+len(evs))
	next.Events = append(next.Events, before...)
	// New events point into the caller's batch until the state is put in
	// a StateCache, which holds them encoded: a copy of its own that
	// neither shares the batch's events nor keeps their messages alive.
	for i, k := 0, 0; i < len(tail) || k < len(evs); {
		c := -1
		if k < len(evs) {
			c = 1
			if i < len(tail) {
				c = event.Compare(tail[i].Event, evs[k].Event)
			}
		}
		if c < 0 {
			next.Events = append(next.Events, tail[i])
			i++
			continue
		}
		if c == 0 {
			i++
			if tail[i-1].Event == evs[k].Event {
				// Moved: the event held, in its new session.
				next.Events = append(next.Events, evs[k])
				k++
				continue
			}
			// A stored event that the batch brought again as new (the
			// Elasticsearch store's unfinished key): what the write
			// stored is the batch's.
		}
		next.Events = append(next.Events, evs[k])
		k++
	}
	return next
}

func compareStored(a, b Stored) int { return event.Compare(a.Event, b.Event) }

// Trim forgets, of a derived key, the sessions before the latest
// stateKeptSessions and their events: new events of a live conversation
// need nothing else, and an older session is read back from the store when
// a late event reaches it.
func (st *KeyState) Trim() {
	if !IsDerivedKey(st.Key) || len(st.Sessions) <= stateKeptSessions {
		return
	}
	j := len(st.Sessions) - stateKeptSessions
	from := st.Sessions[j].Start
	i, _ := slices.BinarySearchFunc(st.Events, from, func(e Stored, t time.Time) int { return e.OccurredAt.Compare(t) })
	st.Events = st.Events[i:] // encoded alone when the state is put back
	st.Sessions = slices.Clone(st.Sessions[j:])
	st.Complete = false
}

// ByKey groups changes by key, for Advance; sums are the fingerprints the
// sessions were written with, beside c.Sessions (nil: none known).
func (c *Changes) ByKey(sums [][]Fingerprint) map[StateID]*KeyChanges {
	out := map[StateID]*KeyChanges{}
	get := func(tenant, key string) *KeyChanges {
		id := StateID{tenant, key}
		kc := out[id]
		if kc == nil {
			kc = &KeyChanges{}
			out[id] = kc
		}
		return kc
	}
	for i := range c.Sessions {
		s := &c.Sessions[i]
		h := HeldSession{ID: s.ID, Start: s.StartedAt}
		if sums != nil {
			h.Sums = sums[i]
		}
		kc := get(s.Tenant, s.Key)
		kc.Sessions = append(kc.Sessions, h)
	}
	for i := range c.Events {
		kc := get(c.Events[i].Tenant, KeyOf(c.Events[i].Event))
		kc.Events = append(kc.Events, c.Events[i])
	}
	for _, kc := range out {
		slices.SortFunc(kc.Sessions, func(a, b HeldSession) int {
			return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.ID, b.ID))
		})
	}
	return out
}

// StateID names a key's state: a tenant and a session key.
type StateID struct{ Tenant, Key string }

// DefaultStateBudget bounds a StateCache by default, in bytes as
// KeyState.Cost weighs states (docs/sessions.md, "What memory holds").
const DefaultStateBudget = 32 << 20

// DefaultStateIdle is how long a StateCache keeps a key that got no event
// by default: past every session policy's window (a day), new events open a
// new session, and the old state is needed only by a late event, which
// reads it back.
const DefaultStateIdle = 25 * time.Hour

// StateCache holds the states of the keys a writer wrote, least recently
// used first out once their cost passes the budget, and out once idle for
// longer than idle. An update takes the states of its keys out (Take) and
// puts back the states after its write (Put), and two updates never share a
// state: a second Take of a key held waits until it is let go (Put or
// Release). When a state is put back is the store's: the SQLite store puts
// it back once the update is planned and drops memory when a write fails;
// the Elasticsearch store puts back, once planned, a state that says which
// write it depends on, and the next update of the key waits for that write
// and drops the state when it failed.
type StateCache[S any] struct {
	mu     sync.Mutex
	budget int
	idle   time.Duration
	now    func() time.Time
	costOf func(S) int
	cost   int
	m      map[StateID]*cached[S]
	list   cached[S] // sentinel: list.next is the most recently used
	// busy are the keys an update holds, each by its entry, out of the
	// list until Put links it again.
	busy map[StateID]*cached[S]
}

type cached[S any] struct {
	id         StateID
	state      S
	cost       int
	used       time.Time
	prev, next *cached[S]
	// done is closed when the update that holds the key lets go.
	done chan struct{}
}

// NewStateCache returns a cache of at most budget cost, as cost weighs a
// state, evicting states idle for longer than idle.
func NewStateCache[S any](budget int, idle time.Duration, cost func(S) int) *StateCache[S] {
	c := &StateCache[S]{budget: budget, idle: idle, now: time.Now, costOf: cost,
		m: map[StateID]*cached[S]{}, busy: map[StateID]*cached[S]{}}
	c.list.next, c.list.prev = &c.list, &c.list
	return c
}

// Take holds key id for the caller, waiting while another update holds it,
// and removes its state from the cache and returns it (ok false when the
// cache has none). The caller lets go with Put or Release. Updates that
// take several keys take them in one order, so that two never wait for
// each other.
func (c *StateCache[S]) Take(ctx context.Context, id StateID) (state S, ok bool, err error) {
	for {
		c.mu.Lock()
		h := c.busy[id]
		if h == nil {
			e := c.m[id]
			if e != nil {
				c.unlink(e)
				state, ok = e.state, true
				var zero S
				e.state = zero // out of the cache: the caller has it
			} else {
				e = newEntry[S](id)
			}
			e.done = make(chan struct{})
			c.busy[id] = e
			c.mu.Unlock()
			if p, packed := any(state).(packer); ok && packed {
				if err := p.unpack(); err != nil {
					heldLost.Add(1)
					var zero S
					return zero, false, nil // read from the store: memory lost it
				}
			}
			return state, ok, nil
		}
		done := h.done // read under the lock: the entry is reused
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return state, false, ctx.Err()
		}
	}
}

// Release lets go of keys taken and not put back: their states are gone
// from the cache.
func (c *StateCache[S]) Release(ids ...StateID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		c.letGo(id)
	}
}

// letGo lets go of key id and returns its entry (nil when not held).
func (c *StateCache[S]) letGo(id StateID) *cached[S] {
	e := c.busy[id]
	if e == nil {
		return nil
	}
	close(e.done)
	e.done = nil
	delete(c.busy, id)
	return e
}

// Put stores the state of key id as the most recently used and lets the
// key go, then evicts the least recently used states over the budget and
// those idle for longer than the cache's idle time.
func (c *StateCache[S]) Put(id StateID, state S) {
	c.mu.Lock()
	e := c.busy[id]
	c.mu.Unlock()
	if e == nil {
		e = newEntry[S](id)
	}
	// Packed outside the lock: the entry is the caller's while it holds
	// the key.
	if p, ok := any(state).(packer); ok {
		p.pack(e.id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if held := c.letGo(id); held != nil {
		e = held
	}
	if old := c.m[id]; old != nil {
		c.unlink(old)
	}
	e.state, e.cost, e.used = state, c.costOf(state), now
	c.m[e.id] = e
	c.cost += e.cost
	e.next, e.prev = c.list.next, &c.list
	c.list.next.prev = e
	c.list.next = e
	for c.list.prev != &c.list && (c.cost > c.budget || now.Sub(c.list.prev.used) > c.idle) {
		c.unlink(c.list.prev)
	}
}

// Reset forgets every state (not the keys held, which their updates let
// go): what the store holds changed under the cache.
func (c *StateCache[S]) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.list.next != &c.list {
		c.unlink(c.list.next)
	}
}

// newEntry is the entry of a key new to the cache, with a copy of its
// names that the caller's strings (pieces of a Kafka message) do not
// share.
func newEntry[S any](id StateID) *cached[S] {
	return &cached[S]{id: StateID{Tenant: strings.Clone(id.Tenant), Key: strings.Clone(id.Key)}}
}

func (c *StateCache[S]) unlink(e *cached[S]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(c.m, e.id)
	c.cost -= e.cost
}

// Size is how many keys and cost units the cache holds.
func (c *StateCache[S]) Size() (keys, cost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.cost
}
