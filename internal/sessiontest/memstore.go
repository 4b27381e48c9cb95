package sessiontest

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// Store is what the checks read and write: the assembler's side and the
// report's side of a store. The SQLite store and MemStore both are one.
type Store interface {
	session.Store
	Search(ctx context.Context, f report.Filter, p report.Page) (report.Result, error)
	Session(ctx context.Context, tenant, id string) (report.Detail, error)
}

// MemStore is an in-memory session.Store with the report's read side for
// tenant and interval filters only. Besides standing in for a database where
// SQLite would be slow, it counts how far back each batch had to read
// (Lookups) and can forget closed sessions (NewEvictingMemStore) to show the
// memory a long stream needs.
type MemStore struct {
	mu       sync.Mutex
	retain   time.Duration
	events   map[event.Ref]*session.Stored
	keys     map[keyRef]*keyState
	sessions map[session.Ref]*session.Session
	// watermark is the latest occurred_at stored; lastEvict the watermark
	// of the last eviction pass.
	watermark, lastEvict time.Time
	stats                Stats
	evictions            int
	// Fail, when set, is asked after each Update computed its changes;
	// true drops them and fails the Update, as a crash before commit would.
	Fail func() bool
}

type keyRef struct{ tenant, key string }

// keyState is what the store holds of one key, sorted as KeyEvents needs it.
type keyState struct {
	events []*session.Stored // by (occurred_at, event_id)
	starts []start           // by started_at
}

type start struct {
	at time.Time
	id string
}

func (ks *keyState) insertEvent(st *session.Stored) {
	i, _ := slices.BinarySearchFunc(ks.events, st, func(a, b *session.Stored) int { return compareEvents(a.Event, b.Event) })
	ks.events = slices.Insert(ks.events, i, st)
}

func (ks *keyState) removeStart(id string) {
	ks.starts = slices.DeleteFunc(ks.starts, func(s start) bool { return s.id == id })
}

func (ks *keyState) setStart(id string, at time.Time) {
	ks.removeStart(id)
	i, _ := slices.BinarySearchFunc(ks.starts, at, func(s start, t time.Time) int { return s.at.Compare(t) })
	ks.starts = slices.Insert(ks.starts, i, start{at, id})
}

// Stats counts what batches read back from the store and changed in it.
type Stats struct {
	// Updates is the number of Update calls that committed.
	Updates int
	// LateUpdates is the number of those with at least one late look-up.
	LateUpdates int
	// Keys is the number of KeyEvents calls (one per key per batch).
	Keys int
	// NonEmpty counts the calls that returned stored events.
	NonEmpty int
	// EventsRead is the number of stored events returned.
	EventsRead int
	// ReadEnded counts calls whose read began in a session whose window
	// had ended by the watermark (the latest occurred_at stored).
	ReadEnded int
	// Late counts the calls that needed such a session: a new event
	// falls before its window end, so it may change it. A memory holding
	// only open windows could not have served them.
	Late int
	// Moved counts stored events that changed session; Deleted, sessions
	// deleted because a late event moved a window boundary.
	Moved, Deleted int
}

// NewMemStore returns an empty store that keeps everything.
func NewMemStore() *MemStore {
	return &MemStore{
		events:   map[event.Ref]*session.Stored{},
		keys:     map[keyRef]*keyState{},
		sessions: map[session.Ref]*session.Session{},
	}
}

// NewEvictingMemStore returns a store that forgets a session, its events and
// their ids once its window ended more than retain before the watermark (it
// looks every retain of watermark progress, so state lives up to 2×retain
// past its window): the
// state of a long in-order stream stays bounded. Events later than retain
// would then be taken for new ones; only streams that are never that late
// may use it.
func NewEvictingMemStore(retain time.Duration) *MemStore {
	m := NewMemStore()
	m.retain = retain
	return m
}

var _ Store = (*MemStore)(nil)

// Stats returns the counts so far.
func (m *MemStore) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Size returns how many sessions and events the store holds.
func (m *MemStore) Size() (sessions, events int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions), len(m.events)
}

// keyOf is the grouping key the session summaries carry (Session.Key).
func keyOf(e *event.Event) string {
	if e.SessionID != "" {
		return "s:" + e.SessionID
	}
	return "d:" + e.Channel + "/" + e.Contact.ID
}

// Update implements session.Store; updates are serialised.
func (m *MemStore) Update(ctx context.Context, fn func(context.Context, session.Reader) (session.Changes, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := &memReader{m: m}
	ch, err := fn(ctx, r)
	if err != nil {
		return err
	}
	if m.Fail != nil && m.Fail() {
		return errors.New("memstore: injected failure before commit")
	}
	m.apply(&ch)
	m.stats.Updates++
	m.stats.Keys += r.stats.Keys
	m.stats.NonEmpty += r.stats.NonEmpty
	m.stats.EventsRead += r.stats.EventsRead
	m.stats.ReadEnded += r.stats.ReadEnded
	m.stats.Late += r.stats.Late
	if r.stats.Late > 0 {
		m.stats.LateUpdates++
	}
	if m.retain > 0 && m.watermark.Sub(m.lastEvict) >= m.retain {
		m.evict()
	}
	return nil
}

func (m *MemStore) key(tenant, key string) *keyState {
	k := keyRef{tenant, key}
	ks := m.keys[k]
	if ks == nil {
		ks = &keyState{}
		m.keys[k] = ks
	}
	return ks
}

func (m *MemStore) apply(ch *session.Changes) {
	for _, ref := range ch.Deleted {
		if s := m.sessions[ref]; s != nil {
			m.key(ref.Tenant, s.Key).removeStart(ref.ID)
			delete(m.sessions, ref)
			m.stats.Deleted++
		}
	}
	for i := range ch.Events {
		st := ch.Events[i]
		if old := m.events[st.Ref()]; old != nil {
			if old.SessionID != st.SessionID {
				m.stats.Moved++
			}
			old.SessionID = st.SessionID // as SQLite: the body stays
			continue
		}
		ev := *st.Event // the store's own copy, not the caller's batch
		st.Event = &ev
		m.events[st.Ref()] = &st
		m.key(st.Tenant, keyOf(st.Event)).insertEvent(&st)
		if st.OccurredAt.After(m.watermark) {
			m.watermark = st.OccurredAt
		}
	}
	for i := range ch.Sessions {
		s := ch.Sessions[i]
		m.sessions[session.Ref{Tenant: s.Tenant, ID: s.ID}] = &s
		m.key(s.Tenant, s.Key).setStart(s.ID, s.StartedAt)
	}
}

func (m *MemStore) evict() {
	// Go maps keep their size after deletes, and a map with steady
	// churn still grows now and then; rebuilt maps are sized for what
	// they hold, so the heap shows what the store really keeps.
	if m.evictions++; m.evictions%24 == 0 {
		m.events, m.sessions, m.keys = rebuilt(m.events), rebuilt(m.sessions), rebuilt(m.keys)
	}
	m.lastEvict = m.watermark
	horizon := m.watermark.Add(-m.retain)
	for ref, s := range m.sessions {
		if !s.WindowEndsAt.Before(horizon) {
			continue
		}
		k := keyRef{ref.Tenant, s.Key}
		ks := m.keys[k]
		ks.events = slices.DeleteFunc(ks.events, func(st *session.Stored) bool {
			if st.SessionID != ref.ID {
				return false
			}
			delete(m.events, st.Ref())
			return true
		})
		ks.removeStart(ref.ID)
		delete(m.sessions, ref)
		if len(ks.events) == 0 && len(ks.starts) == 0 {
			delete(m.keys, k)
		}
	}
}

func rebuilt[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

type memReader struct {
	m     *MemStore
	stats Stats
}

func (r *memReader) Known(_ context.Context, refs []event.Ref) (map[event.Ref]bool, error) {
	known := map[event.Ref]bool{}
	for _, ref := range refs {
		if r.m.events[ref] != nil {
			known[ref] = true
		}
	}
	return known, nil
}

// KeyEvents follows session.Reader's contract: the key's events from the
// start of its latest session that started at or before since, or all of
// them when none did.
func (r *memReader) KeyEvents(_ context.Context, tenant, key string, since time.Time) ([]session.Stored, error) {
	ks := r.m.keys[keyRef{tenant, key}]
	r.stats.Keys++
	if ks == nil {
		return nil, nil
	}
	// i sessions started at or before since; ks.starts[i-1] is the latest.
	i := sort.Search(len(ks.starts), func(k int) bool { return ks.starts[k].at.After(since) })
	j := 0
	if i > 0 {
		from := ks.starts[i-1].at
		j = sort.Search(len(ks.events), func(k int) bool { return !ks.events[k].OccurredAt.Before(from) })
	}
	out := make([]session.Stored, 0, len(ks.events)-j)
	for _, st := range ks.events[j:] {
		out = append(out, *st)
	}

	// The session the read reaches back to: the one it starts in, or the
	// key's first when the new events come before all of them.
	reached := -1
	switch {
	case i > 0:
		reached = i - 1
	case len(ks.starts) > 0:
		reached = 0
	}
	if reached >= 0 {
		s := r.m.sessions[session.Ref{Tenant: tenant, ID: ks.starts[reached].id}]
		if s != nil && !s.WindowEndsAt.After(r.m.watermark) {
			r.stats.ReadEnded++
			if since.Before(s.WindowEndsAt) {
				r.stats.Late++
			}
		}
	}
	if len(out) > 0 {
		r.stats.NonEmpty++
		r.stats.EventsRead += len(out)
	}
	return out, nil
}

func compareEvents(a, b *event.Event) int {
	if c := a.OccurredAt.Compare(b.OccurredAt); c != 0 {
		return c
	}
	return strings.Compare(a.EventID, b.EventID)
}

// Search implements the report's search for the tenant and the started_at
// interval; other filter fields are refused.
func (m *MemStore) Search(_ context.Context, f report.Filter, page report.Page) (report.Result, error) {
	if err := f.Validate(); err != nil {
		return report.Result{}, err
	}
	if f.SessionID != "" || f.Protocol != "" || len(f.Tags) > 0 || len(f.Info) > 0 || len(f.Channels) > 0 ||
		f.Contact != "" || f.HandedOff != nil || f.Query != "" || len(f.Outcomes) > 0 || len(f.Agents) > 0 || len(f.Queues) > 0 {
		return report.Result{}, errors.New("memstore: only tenant and interval filters")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var match []session.Session
	for ref, s := range m.sessions {
		if ref.Tenant == f.Tenant && !s.StartedAt.Before(f.From) && s.StartedAt.Before(f.To) {
			match = append(match, *s)
		}
	}
	// Newest first, then by id descending: the report's order.
	slices.SortFunc(match, func(a, b session.Session) int {
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	res := report.Result{Items: []session.Session{}}
	res.BoundTotal(len(match), page.Bound(&f))
	for _, s := range match {
		if page.After != nil {
			c := page.After
			if s.StartedAt.After(c.StartedAt) || s.StartedAt.Equal(c.StartedAt) && s.ID >= c.SessionID {
				continue
			}
		}
		if len(res.Items) == page.Limit {
			last := res.Items[len(res.Items)-1]
			res.Next = &report.Cursor{StartedAt: last.StartedAt, SessionID: last.ID}
			break
		}
		res.Items = append(res.Items, s)
	}
	return res, nil
}

// Session returns a session with its events in order.
func (m *MemStore) Session(_ context.Context, tenant, id string) (report.Detail, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ref := session.Ref{Tenant: tenant, ID: strings.ToLower(id)}
	s := m.sessions[ref]
	if s == nil {
		return report.Detail{}, report.ErrNotFound
	}
	d := report.Detail{Session: *s}
	for _, st := range m.keys[keyRef{tenant, s.Key}].events {
		if st.SessionID == ref.ID {
			d.Events = append(d.Events, *st.Event)
		}
	}
	slices.SortFunc(d.Events, func(a, b event.Event) int { return compareEvents(&a, &b) })
	return d, nil
}
