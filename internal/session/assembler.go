package session

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
)

// Stored is an event as the store holds it: with the session it belongs to.
// It points to the event, which nobody changes once it is decoded: the
// assembler and the stores pass events around by pointer rather than copy
// a struct of some 260 bytes at each step (docs/performance.md). A store
// that keeps an event past the Update that wrote it keeps a copy of its
// own, never a pointer into the caller's batch.
type Stored struct {
	*event.Event
	SessionID string
}

// Reader reads back the state that new events may change.
type Reader interface {
	// Known returns which of refs are stored already.
	Known(ctx context.Context, refs []event.Ref) (map[event.Ref]bool, error)
	// KeyEvents returns the stored events of a key of a tenant whose
	// occurred_at is at or after the start of the latest session of that key
	// that started at or before since — all of the key's events when none
	// did — sorted by (occurred_at, event_id). A store may start after
	// that session instead when its window (WindowEnd) ended at or before
	// since under the key's policy (KeyRequest.Policy, given to Prefetch):
	// events from since on start sessions of their own (Split) and change
	// nothing of it (the Elasticsearch store does, from the end and policy
	// its key document lists).
	KeyEvents(ctx context.Context, tenant, key string, since time.Time) ([]Stored, error)
}

// KeyRequest is a call of KeyEvents to come.
type KeyRequest struct {
	Tenant, Key string
	Since       time.Time
	// Policy is PolicyTag of the policy the key's sessions are cut by
	// (a derived key's; "" for an explicit session's): a store that starts
	// after a session whose window ended (Reader.KeyEvents) does so only for
	// one whose end it computed under the same policy.
	Policy string
}

// PolicyTag names a policy in a few bytes: its mode's initial and its
// duration in milliseconds ("f86400000" for fixed 24 hours).
func PolicyTag(p pipeline.Policy) string {
	if p.Mode == "" {
		return ""
	}
	return string(p.Mode[0]) + strconv.FormatInt(p.Duration.Milliseconds(), 10)
}

// Prefetcher is a Reader that reads many keys at once: a store across a
// network, where a request per key is the cost. The assembler calls
// Prefetch with the keys of a batch, then Known, then KeyEvents for each key
// with new events, in the order of Prefetch and with the same arguments.
type Prefetcher interface {
	Prefetch(ctx context.Context, keys []KeyRequest) error
}

// Recomputer is a Reader that asks for a key of the batch to be computed
// and written again although none of its events is new: the Elasticsearch
// store's key read back from a write that did not finish, whose sessions
// may count an event the store then refused (docs/elasticsearch.md,
// "Rejections"). The assembler asks it only of keys without new events,
// after Known.
type Recomputer interface {
	Recompute(tenant, key string) bool
}

// Changes is what one batch of new events does to the store.
type Changes struct {
	// Events are new events, and stored events moved to another session.
	Events []Stored
	// Sessions are created or changed sessions.
	Sessions []Session
	// Deleted are sessions that no longer exist: a late event moved a derived
	// window boundary and their events now belong to other sessions.
	Deleted []Ref
}

// Empty reports whether the changes change nothing.
func (c *Changes) Empty() bool {
	return len(c.Events) == 0 && len(c.Sessions) == 0 && len(c.Deleted) == 0
}

// Store applies changes atomically: Update calls fn with a Reader of the state
// and writes the Changes fn returns, so that no other update interleaves
// between the read and the write (or the write fails and Update retries).
type Store interface {
	Update(ctx context.Context, fn func(ctx context.Context, r Reader) (Changes, error)) error
}

// Assembler turns batches of validated events into sessions. It keeps no state
// between batches: what a late event needs is read back from the store, so
// memory stays bounded and correctness never depends on what is in memory.
// It is safe for concurrent use (the ingester stores the partition numbers of
// a batch at once) when its store is: Store.Update keeps each call's read and
// write together.
type Assembler struct {
	def   *pipeline.Definition
	store Store

	keys, reread atomic.Int64
}

// AssemblerStats counts the assembler's work since it started.
type AssemblerStats struct {
	// Keys counts the session keys recomputed (one per key per batch).
	Keys int64
	// Reread counts stored events read back to recompute them: the only
	// state assembly needs, held for the duration of one batch.
	Reread int64
}

// Stats returns what the assembler did so far.
func (a *Assembler) Stats() AssemblerStats {
	return AssemblerStats{Keys: a.keys.Load(), Reread: a.reread.Load()}
}

// NewAssembler returns an Assembler writing to store with the policies of def.
func NewAssembler(def *pipeline.Definition, store Store) *Assembler {
	return &Assembler{def: def, store: store}
}

// Ingest stores a batch of events and every session they create or change.
// It is idempotent: events already stored are ignored.
func (a *Assembler) Ingest(ctx context.Context, batch []event.Event) error {
	if len(batch) == 0 {
		return nil
	}
	return a.store.Update(ctx, func(ctx context.Context, r Reader) (Changes, error) {
		return a.Assemble(ctx, r, batch)
	})
}

type groupKey struct {
	tenant string
	key    string
}

// Assemble computes the changes a batch makes to the state r reads. The keys
// are read first (Prefetch, then KeyEvents), and Known after: a store that
// holds a key's state (the Elasticsearch store) answers Known from what it
// read, and that covers every event of the batch because each key is read
// from no later than its earliest event in the batch (docs/sessions.md,
// "How order independence is achieved").
func (a *Assembler) Assemble(ctx context.Context, r Reader, batch []event.Event) (Changes, error) {
	// The batch's events by key, in the order the keys first appear;
	// index finds a key's position by a name built in a reused buffer, so
	// that only a key's first event builds a name, and its key is a part
	// of it (appendGroup). The groups share one array: each event's group
	// is noted, then the groups are cut to their sizes and filled.
	var order []groupKey
	index := map[string]int{}
	var name []byte
	seen := make(map[event.Ref]bool, len(batch))
	groupOf := make([]int32, len(batch)) // -1: a duplicate
	var sizes []int
	for i := range batch {
		e := &batch[i]
		n := len(seen)
		if seen[e.Ref()] = true; len(seen) == n {
			groupOf[i] = -1 // a duplicate: one look-up tells
			continue
		}
		name = appendGroup(name[:0], e)
		g, ok := index[string(name)]
		if !ok {
			g = len(order)
			named := string(name)
			index[named] = g
			order = append(order, groupKey{e.Tenant, named[len(e.Tenant)+1:]})
			sizes = append(sizes, 0)
		}
		groupOf[i] = int32(g)
		sizes[g]++
	}
	groups := make([][]*event.Event, len(order))
	events := make([]*event.Event, len(seen))
	for g, at := range sizes {
		groups[g], events = events[:0:at], events[at:]
	}
	for i, g := range groupOf {
		if g >= 0 {
			groups[g] = append(groups[g], &batch[i])
		}
	}
	reqs := make([]KeyRequest, len(order))
	// A batch's keys mostly share a policy: its tag is built once per run
	// of keys with the same one.
	var policy pipeline.Policy
	var tag string
	for i, k := range order {
		fresh := groups[i]
		slices.SortFunc(fresh, event.Compare)
		reqs[i] = KeyRequest{Tenant: k.tenant, Key: k.key, Since: since(k.key, fresh)}
		if IsDerivedKey(k.key) {
			if p := a.def.PolicyFor(fresh[0].Channel); tag == "" || p != policy {
				policy, tag = p, PolicyTag(p)
			}
			reqs[i].Policy = tag
		}
	}
	if p, ok := r.(Prefetcher); ok && len(reqs) > 0 {
		if err := p.Prefetch(ctx, reqs); err != nil {
			return Changes{}, fmt.Errorf("read the session keys: %w", err)
		}
	}
	refs := make([]event.Ref, 0, len(seen))
	for _, g := range groups {
		for _, e := range g {
			refs = append(refs, e.Ref())
		}
	}
	known, err := r.Known(ctx, refs)
	if err != nil {
		return Changes{}, fmt.Errorf("look up stored events: %w", err)
	}
	var ch Changes
	var scratch merged
	for i, k := range order {
		fresh := slices.DeleteFunc(groups[i], func(e *event.Event) bool { return known[e.Ref()] })
		if len(fresh) == 0 {
			if rc, ok := r.(Recomputer); !ok || !rc.Recompute(k.tenant, k.key) {
				continue
			}
		}
		if ch.Sessions == nil {
			// Sized for the usual batch: a session per key, every event
			// new (grown, they were copied twice over).
			ch.Sessions = make([]Session, 0, len(order)-i)
			ch.Events = make([]Stored, 0, len(refs))
		}
		if err := a.assembleKey(ctx, r, k, reqs[i].Since, fresh, &ch, &scratch); err != nil {
			return Changes{}, err
		}
	}
	return ch, nil
}

// since is the earliest point sorted new events of key can affect: the
// first of them, or the key's beginning for an explicit session, whose
// events all belong to it.
func since(key string, fresh []*event.Event) time.Time {
	if !IsDerivedKey(key) {
		return time.Time{}
	}
	return fresh[0].OccurredAt
}

// assembleKey recomputes the sessions of one key from the earliest point the
// new events (sorted) can affect; since is that point (for a key recomputed
// without new events, its earliest event of the batch).
func (a *Assembler) assembleKey(ctx context.Context, r Reader, k groupKey, since time.Time, fresh []*event.Event, ch *Changes, m *merged) error {
	derived := IsDerivedKey(k.key)
	stored, err := r.KeyEvents(ctx, k.tenant, k.key, since)
	if err != nil {
		return fmt.Errorf("read events of a session key: %w", err)
	}
	a.keys.Add(1)
	a.reread.Add(int64(len(stored)))
	m.merge(stored, fresh)
	all, oldSession := m.all, m.oldSession
	if len(all) == 0 {
		return nil // recomputed (Recomputer), and nothing stored
	}

	policy := a.def.PolicyFor(all[0].Channel)
	var starts []int
	if derived {
		starts = Split(policy, all)
	} else {
		starts = []int{0}
	}
	live := make(map[string]bool, len(starts))
	for w, from := range starts {
		to := len(all)
		if w+1 < len(starts) {
			to = starts[w+1]
		}
		events := all[from:to]
		id := all[from].SessionID
		if derived {
			id = DeriveID(all[from])
		}
		live[id] = true
		ch.Sessions = append(ch.Sessions, Summarize(id, k.key, policy, events))
		for i := range events {
			if oldSession[from+i] != id {
				ch.Events = append(ch.Events, Stored{Event: events[i], SessionID: id})
			}
		}
	}
	gone := map[string]bool{}
	for i := range stored {
		if old := stored[i].SessionID; !live[old] && !gone[old] {
			gone[old] = true
			ch.Deleted = append(ch.Deleted, Ref{Tenant: k.tenant, ID: old})
		}
	}
	return nil
}

// merged is a key's stored events and new ones in one sorted list, and
// beside each the session it was stored in ("" for a new event: no session
// id is empty). Assemble reuses one for all its keys: nothing keeps the
// lists past the key's assembly (the changes hold the events, not the
// list).
type merged struct {
	all        []*event.Event
	oldSession []string
}

// merge makes m the stored events and the new ones (each sorted).
func (m *merged) merge(stored []Stored, fresh []*event.Event) {
	n := len(stored) + len(fresh)
	all, oldSession := m.all[:0], m.oldSession[:0]
	if cap(all) < n {
		all, oldSession = make([]*event.Event, 0, n), make([]string, 0, n)
	}
	i, j := 0, 0
	for i < len(stored) || j < len(fresh) {
		if j == len(fresh) || (i < len(stored) && event.Compare(stored[i].Event, fresh[j]) <= 0) {
			all = append(all, stored[i].Event)
			oldSession = append(oldSession, stored[i].SessionID)
			i++
			continue
		}
		all = append(all, fresh[j])
		oldSession = append(oldSession, "")
		j++
	}
	m.all, m.oldSession = all, oldSession
}
