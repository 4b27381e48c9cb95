package elastic

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chatreport/chatreport/internal/session"
)

// keyState is what the writer of a session key knows about it: the key
// document's version and generation, the key's sessions, and the events of
// its latest sessions. The writer that owns a key (the consumer of its
// partition) keeps it in memory between batches; after a restart, a
// rebalance or an eviction it is read back by id (docs/elasticsearch.md,
// "Write path").
type keyState struct {
	id          string // the key document's id: <tenant>/<key>
	tenant, key string
	// exists: the key document exists, at seqNo and primaryTerm.
	exists             bool
	seqNo, primaryTerm int64
	// gen is the generation of the key's last write: the external version
	// of every session and event document it wrote.
	gen int64
	// sessions are every session of the key, sorted by (start, id).
	sessions []sessionRef
	// retired are sessions the last write deleted. A write that did not
	// finish may have left them behind, so a key read back from the
	// cluster reads them too and deletes them again (retiredLoaded).
	retired       []sessionRef
	retiredLoaded bool
	// unfinished: the key was read back from a claim that was never
	// released. Its sessions may not match its events until a write
	// recomputes them, so the batch's events of the key are presented as
	// new, whether or not they were stored.
	unfinished bool
	// events are the events of sessions[loaded:] (and of retired, once
	// loaded), sorted by event order, each with the session its document
	// names.
	loaded int
	events []session.Stored

	prev, next *keyState // the cache's recency list
	used       time.Time // when it was last put in the cache
}

// sessionRef names a session document: the session and the month of its
// start, which is the monthly index it is in.
type sessionRef struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
}

func compareRefs(a, b sessionRef) int {
	return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.ID, b.ID))
}

// sameDoc reports whether two refs name the same document: the same
// session in the same monthly index.
func sameDoc(a, b sessionRef) bool {
	return a.ID == b.ID && sameMonth(a.Start, b.Start)
}

func sameMonth(a, b time.Time) bool {
	ay, am, _ := a.UTC().Date()
	by, bm, _ := b.UTC().Date()
	return ay == by && am == bm
}

// anchor is the index of the first session a key's new events from since on
// can change: the latest session that started at or before since (the first
// when none did). An explicit session's key has one session, which all its
// events belong to.
func (st *keyState) anchor(since time.Time) int {
	if !session.IsDerivedKey(st.key) {
		return 0
	}
	j, _ := slices.BinarySearchFunc(st.sessions, since, func(r sessionRef, t time.Time) int {
		if r.Start.After(t) {
			return 1
		}
		return -1
	})
	return max(j-1, 0)
}

// tail is the events from sessions[j]'s start on: of an explicit key, all
// of them. They are the events of sessions[j:] and of the retired sessions
// (a key is read from no later than the earliest retired session).
func (st *keyState) tail(j int) []session.Stored {
	if !session.IsDerivedKey(st.key) || j >= len(st.sessions) {
		return st.events
	}
	from := st.sessions[j].Start
	i, _ := slices.BinarySearchFunc(st.events, from, func(e session.Stored, t time.Time) int { return e.OccurredAt.Compare(t) })
	return st.events[i:]
}

// cost is what the state weighs in the cache.
func (st *keyState) cost() int { return 1 + len(st.events) + len(st.sessions)/8 }

// stateCache holds the states of the keys a writer owns, least recently
// used first out once their cost passes max. A state is taken out while an
// update uses it and put back when the update succeeded, so an update that
// failed leaves nothing stale behind and two updates never share a state.
type stateCache struct {
	mu   sync.Mutex
	max  int
	idle time.Duration
	now  func() time.Time
	cost int
	m    map[string]*keyState
	list keyState // sentinel: list.next is the most recently used
	// busy are the keys an update holds, each with a channel closed when
	// it lets go: a second update of the key in this process waits (an
	// explicit session's events may come from two partitions at once).
	busy map[string]chan struct{}
}

func newStateCache(max int, idle time.Duration) *stateCache {
	c := &stateCache{max: max, idle: idle, now: time.Now, m: map[string]*keyState{}, busy: map[string]chan struct{}{}}
	c.list.next, c.list.prev = &c.list, &c.list
	return c
}

// take holds key document id for the caller, waiting while another update
// holds it, and removes its state from the cache and returns it, or nil.
// The caller lets go with put or release. Updates take their keys in
// sorted order, so two of them never wait for each other.
func (c *stateCache) take(ctx context.Context, id string) (*keyState, error) {
	for {
		c.mu.Lock()
		wait, held := c.busy[id]
		if !held {
			c.busy[id] = make(chan struct{})
			st := c.m[id]
			if st != nil {
				c.unlink(st)
			}
			c.mu.Unlock()
			return st, nil
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// release lets go of keys taken and not put back.
func (c *stateCache) release(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		c.letGo(id)
	}
}

func (c *stateCache) letGo(id string) {
	if ch, ok := c.busy[id]; ok {
		close(ch)
		delete(c.busy, id)
	}
}

// put stores states, most recently used, and evicts the least recently used
// ones over the budget, and those idle for longer than c.idle: a key whose
// contact has not written for longer than any session window is read back
// by id if it ever does.
func (c *stateCache) put(states ...*keyState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, st := range states {
		c.letGo(st.id)
		st.used = now
		if old := c.m[st.id]; old != nil {
			c.unlink(old)
		}
		c.m[st.id] = st
		c.cost += st.cost()
		st.next, st.prev = c.list.next, &c.list
		c.list.next.prev = st
		c.list.next = st
	}
	for c.list.prev != &c.list && (c.cost > c.max || now.Sub(c.list.prev.used) > c.idle) {
		c.unlink(c.list.prev)
	}
}

func (c *stateCache) unlink(st *keyState) {
	st.prev.next, st.next.prev = st.next, st.prev
	st.prev, st.next = nil, nil
	delete(c.m, st.id)
	c.cost -= st.cost()
}

// size is how many keys and cost units the cache holds.
func (c *stateCache) size() (keys, cost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.cost
}
