package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// docLoc is where a document is and the version that was read.
type docLoc struct {
	Index       string
	SeqNo       int64
	PrimaryTerm int64
}

type readEvent struct {
	stored session.Stored
	loc    docLoc
}

// keyRead is the version of a key document read before the key's data;
// loc is nil when the key had no document.
type keyRead struct {
	tenant, key string
	loc         *docLoc
}

// reader is the session.Reader of one attempt of Update. It remembers what
// it read: versions to write conditionally, and the events session
// documents are built from.
type reader struct {
	s *Store
	// masked are events rejected in an earlier attempt: reported known, so
	// that fn leaves them out.
	masked map[event.Ref]string
	// ours are events an earlier attempt wrote, or changed in an attempt
	// that then conflicted: reported unknown, so that fn computes their
	// sessions again.
	ours map[event.Ref]bool
	// redo are keys (document ids) whose sessions an earlier attempt
	// wrote counting an event Elasticsearch then rejected: their stored
	// events in the batch are reported unknown, so that fn computes the
	// sessions again, without it.
	redo map[string]bool
	// floor: for keys a failed attempt read (by document id), where it
	// started reading; KeyEvents reads them from there at the latest, so
	// that it recomputes everything that attempt may have written. The
	// zero time is the key's first event.
	floor map[string]time.Time
	// from: for each key KeyEvents read (by document id), where it
	// started.
	from map[string]time.Time
	// unknown are the events Known reported unknown: fn treats them as
	// new, so KeyEvents leaves them out even if a concurrent writer (or an
	// earlier attempt) stored them meanwhile, and notes their version in
	// freshLoc to overwrite them conditionally.
	unknown  map[event.Ref]bool
	freshLoc map[event.Ref]docLoc
	keys     map[string]*keyRead
	sessions map[string][]docLoc // by document id; several while a session moves
	// keySessions are the session documents KeyEvents read (by id): their
	// events are all among those read.
	keySessions map[string]bool
	events      map[event.Ref]*readEvent
	// prefetched are the keys Prefetch read, by document id, until
	// KeyEvents asks for them.
	prefetched map[string]*prefetchedKey
}

var _ session.Reader = (*reader)(nil)

func isMasked(masked map[event.Ref]string, ref event.Ref) bool {
	_, ok := masked[ref]
	return ok
}

func newReader(s *Store, masked map[event.Ref]string, ours map[event.Ref]bool) *reader {
	return &reader{
		s: s, masked: masked, ours: ours,
		unknown:     map[event.Ref]bool{},
		freshLoc:    map[event.Ref]docLoc{},
		from:        map[string]time.Time{},
		keys:        map[string]*keyRead{},
		sessions:    map[string][]docLoc{},
		keySessions: map[string]bool{},
		events:      map[event.Ref]*readEvent{},
		prefetched:  map[string]*prefetchedKey{},
	}
}

// Known searches the events by document id. A search, not a realtime mget:
// the monthly index of an event depends on its time, which a Ref does not
// carry; refresh=wait_for on every write makes the search current.
func (r *reader) Known(ctx context.Context, refs []event.Ref) (map[event.Ref]bool, error) {
	known := make(map[event.Ref]bool, len(refs))
	byID := make(map[string]event.Ref, len(refs))
	tenants := map[string]bool{}
	ids := make([]string, 0, len(refs))
	for _, ref := range refs {
		switch {
		case isMasked(r.masked, ref):
			known[ref] = true
		case r.ours[ref]:
			r.unknown[ref] = true
		default:
			id := docID(ref.Tenant, ref.EventID)
			if _, dup := byID[id]; !dup {
				byID[id] = ref
				ids = append(ids, id)
				tenants[ref.Tenant] = true
			}
		}
	}
	for chunk := range slices.Chunk(ids, r.s.cfg.PageSize) {
		// Twice the ids: an id in two monthly indices breaks the
		// contract (one event, two times) but must not hide another.
		size := min(2*len(chunk), 10000)
		req := &search.Request{
			Query: boolFilter(termsQuery("tenant", slices.Sorted(maps.Keys(tenants))),
				types.Query{Ids: &types.IdsQuery{Values: chunk}}),
			Size:           &size,
			Source_:        false,
			TrackTotalHits: false,
		}
		if len(r.redo) > 0 {
			req.Source_ = types.SourceFilter{Includes: []string{"tenant", "key"}}
		}
		res, err := r.s.search(ctx, r.s.names.eventsAll(), req)
		if err != nil {
			return nil, fmt.Errorf("look up events: %w", err)
		}
		for _, h := range res.Hits.Hits {
			ref, ok := byID[h.ID]
			if !ok {
				continue
			}
			if len(r.redo) > 0 {
				var doc struct{ Tenant, Key string }
				if err := json.Unmarshal(h.Source, &doc); err != nil {
					return nil, fmt.Errorf("decode stored event %s: %w", h.ID, err)
				}
				if r.redo[docID(doc.Tenant, doc.Key)] {
					continue // reported unknown below
				}
			}
			known[ref] = true
		}
	}
	for _, ref := range byID {
		if !known[ref] {
			r.unknown[ref] = true
		}
	}
	return known, nil
}

// KeyEvents implements the contract of session.Reader. It reads the key
// document's version first, then the key's state from the start S of the
// latest session of the key that started at or before since (keyState);
// after Prefetch, it answers from what Prefetch read.
//
// When an event read after S belongs to a session that started before S,
// the reads crossed a concurrent writer's changes (or a failed writer left
// that state): S is then the start of that session at the latest, and the
// key is read again from there, so that every session fn may rewrite or
// delete is one whose events it read.
func (r *reader) KeyEvents(ctx context.Context, tenant, key string, since time.Time) ([]session.Stored, error) {
	id := docID(tenant, key)
	if p, ok := r.prefetched[id]; ok && p.since.Equal(since) {
		delete(r.prefetched, id)
		return p.out, nil
	}
	if err := r.readKey(ctx, tenant, key); err != nil {
		return nil, err
	}
	since = r.lowered(id, since)
	for range maxWiden {
		out, earlier, err := r.keyState(ctx, tenant, key, since)
		if err != nil || earlier.IsZero() {
			return out, err
		}
		r.s.log.Debug("a session starts before the sessions read; reading the key again from its start")
		since = earlier
	}
	return nil, fmt.Errorf("read the events of a key: sessions kept starting earlier: %w", ErrConflict)
}

// maxWiden bounds how many times KeyEvents reads a key again from an
// earlier session.
const maxWiden = 8

// lowered is since, or the start of the failed attempt's read of the key
// when that was earlier.
func (r *reader) lowered(id string, since time.Time) time.Time {
	if f, ok := r.floor[id]; ok && f.Before(since) {
		return f
	}
	return since
}

// keyState reads the state of a key from the start S of the latest session
// of the key that started at or before since: S from the events themselves
// (the session of the latest stored event at or before since, and that
// session's first event: session documents may be a failed writer's
// leftovers, events are the truth), then the versions of the key's sessions
// from S on, and the key's events from S on. Events fn treats as new (Known
// said unknown) are left out even when stored meanwhile. When an event
// read belongs to a session that started before S, it returns that
// session's start as earlier, and the caller reads again from there.
func (r *reader) keyState(ctx context.Context, tenant, key string, since time.Time) (out []session.Stored, earlier time.Time, err error) {
	kq := keyQueries{tenant: tenant, key: key}
	var from time.Time
	if !since.IsZero() {
		anchor, err := r.firstStored(ctx, kq.anchor(since))
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("find the session of a key: %w", err)
		}
		if anchor != nil {
			first, err := r.firstStored(ctx, kq.first(anchor.Session))
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("find the start of a session: %w", err)
			}
			if first == nil {
				return nil, time.Time{}, errAnchorMoved
			}
			from = first.OccurredAt
		}
	}
	st := r.newKeyState(tenant, key, from)
	if err := r.s.scan(ctx, r.s.names.sessionsAll(), kq.sessions(from), st.session); err != nil {
		return nil, time.Time{}, fmt.Errorf("read the sessions of a key: %w", err)
	}
	if err := r.s.scan(ctx, r.s.names.eventsAll(), kq.events(from), st.event); err != nil {
		return nil, time.Time{}, fmt.Errorf("read the events of a key: %w", err)
	}
	return st.finish(ctx)
}

// errAnchorMoved: the first event of the anchor's session moved to another
// session between two searches, under a concurrent writer.
var errAnchorMoved = fmt.Errorf("find the start of a session: its first event moved: %w", ErrConflict)

// keyQueries builds the searches of a key's state.
type keyQueries struct{ tenant, key string }

func (q keyQueries) base() []types.Query {
	return []types.Query{termQuery("tenant", q.tenant), termQuery("key", q.key)}
}

// anchorSize is how many events the anchor searches ask for: the first
// hit, unless fn treats it as new.
const anchorSize = 16

func (q keyQueries) firstOf(filter *types.Query, dir func(string) sortField) *search.Request {
	size := anchorSize
	return &search.Request{
		Query:          filter,
		Sort:           sortBy(dir("occurred_at"), dir("event_id")),
		Size:           &size,
		Source_:        types.SourceFilter{Includes: []string{"event_id", "tenant", "occurred_at", "session"}},
		TrackTotalHits: false,
	}
}

// anchor finds the latest event at or before since.
func (q keyQueries) anchor(since time.Time) *search.Request {
	return q.firstOf(boolFilter(append(q.base(), dateRange("occurred_at", time.Time{}, since, true))...), desc)
}

// first finds the first event of a session.
func (q keyQueries) first(sessionID string) *search.Request {
	return q.firstOf(boolFilter(append(q.base(), termQuery("session", sessionID))...), asc)
}

func (q keyQueries) from(field string, from time.Time) *types.Query {
	if from.IsZero() {
		return boolFilter(q.base()...)
	}
	return boolFilter(append(q.base(), dateRange(field, from, time.Time{}, false))...)
}

// sessions reads the versions of the key's sessions that started at or
// after from.
func (q keyQueries) sessions(from time.Time) *search.Request {
	yes := true
	return &search.Request{
		Query:            q.from("started_at", from),
		Sort:             sortBy(asc("started_at"), asc("session_id")),
		Source_:          false,
		SeqNoPrimaryTerm: &yes,
		TrackTotalHits:   false,
	}
}

// events reads the key's events from from on.
func (q keyQueries) events(from time.Time) *search.Request {
	yes := true
	return &search.Request{
		Query:            q.from("occurred_at", from),
		Sort:             sortBy(asc("occurred_at"), asc("event_id")),
		SeqNoPrimaryTerm: &yes,
		TrackTotalHits:   false,
	}
}

// keyStateReader takes the hits of a key's sessions and events from S on.
type keyStateReader struct {
	r      *reader
	tenant string
	from   time.Time
	out    []session.Stored
	// found are the sessions read by start; unread, those of the events
	// read that are not among them.
	found  map[string]bool
	unread []string
}

func (r *reader) newKeyState(tenant, key string, from time.Time) *keyStateReader {
	r.from[docID(tenant, key)] = from
	return &keyStateReader{r: r, tenant: tenant, from: from, found: map[string]bool{}}
}

func (st *keyStateReader) session(h *hit) error {
	loc, err := h.loc()
	if err != nil {
		return err
	}
	st.r.noteSession(h.ID, loc)
	st.r.keySessions[h.ID] = true
	st.found[h.ID] = true
	return nil
}

func (st *keyStateReader) event(h *hit) error {
	loc, err := h.loc()
	if err != nil {
		return err
	}
	var doc eventDoc
	if err := json.Unmarshal(h.Source, &doc); err != nil {
		return fmt.Errorf("decode stored event %s: %w", h.ID, err)
	}
	stored := session.Stored{Event: doc.Event, SessionID: doc.Session}
	if id := docID(st.tenant, doc.Session); !st.found[id] && !slices.Contains(st.unread, id) {
		st.unread = append(st.unread, id)
	}
	if st.r.unknown[stored.Ref()] {
		st.r.freshLoc[stored.Ref()] = loc
		return nil
	}
	st.r.events[stored.Ref()] = &readEvent{stored: stored, loc: loc}
	st.out = append(st.out, stored)
	return nil
}

// finish reads the versions of the sessions of the events read that the
// read by start did not find, since fn may delete them, and says whether
// one of them started before S.
func (st *keyStateReader) finish(ctx context.Context) ([]session.Stored, time.Time, error) {
	if len(st.unread) > 0 {
		first, err := st.r.readSessions(ctx, st.tenant, st.unread)
		if err != nil {
			return nil, time.Time{}, err
		}
		if !first.IsZero() && first.Before(st.from) {
			return nil, first, nil
		}
	}
	return st.out, time.Time{}, nil
}

// lowerFloors notes in floor where r started reading each key, for the
// next attempt of a failed one.
func (r *reader) lowerFloors(floor map[string]time.Time) {
	for id, from := range r.from {
		if f, ok := floor[id]; !ok || from.Before(f) {
			floor[id] = from
		}
	}
}

// firstStored returns the first event of req's order among those fn does
// not treat as new; nil when there is none.
func (r *reader) firstStored(ctx context.Context, req *search.Request) (*eventDoc, error) {
	for {
		res, err := r.s.search(ctx, r.s.names.eventsAll(), req)
		if err != nil {
			return nil, err
		}
		doc, more, err := r.pickStored(res.Hits.Hits)
		if doc != nil || !more || err != nil {
			return doc, err
		}
		req.SearchAfter = res.Hits.Hits[len(res.Hits.Hits)-1].searchAfter()
	}
}

// pickStored returns the first of a page of anchor hits that fn does not
// treat as new; more when there is none and the page was full.
func (r *reader) pickStored(hits []hit) (doc *eventDoc, more bool, err error) {
	for i := range hits {
		var d eventDoc
		if err := json.Unmarshal(hits[i].Source, &d); err != nil {
			return nil, false, fmt.Errorf("decode stored event %s: %w", hits[i].ID, err)
		}
		if !r.unknown[d.Ref()] {
			return &d, false, nil
		}
	}
	return nil, len(hits) == anchorSize, nil
}

// readKey reads the version of the key's document in real time: it must be
// the version before any data of the key that fn then reads.
func (r *reader) readKey(ctx context.Context, tenant, key string) error {
	return r.readKeys(ctx, []session.KeyRequest{{Tenant: tenant, Key: key}})
}

// readKeys reads the versions of the documents of keys not read yet, in
// one _mget per PageSize keys. mget is realtime: it sees the latest write
// without a refresh. (Not GET: esapi puts the id in the URL path
// unescaped, and ids hold slashes.)
func (r *reader) readKeys(ctx context.Context, keys []session.KeyRequest) error {
	var todo []session.KeyRequest
	var ids []string
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		id := docID(k.Tenant, k.Key)
		if _, ok := r.keys[id]; ok || seen[id] {
			continue
		}
		seen[id] = true
		todo = append(todo, k)
		ids = append(ids, id)
	}
	for start := 0; start < len(ids); start += r.s.cfg.PageSize {
		end := min(len(ids), start+r.s.cfg.PageSize)
		body, err := json.Marshal(map[string][]string{"ids": ids[start:end]})
		if err != nil {
			return err
		}
		var res struct {
			Docs []struct {
				Index       string     `json:"_index"`
				Found       bool       `json:"found"`
				SeqNo       int64      `json:"_seq_no"`
				PrimaryTerm int64      `json:"_primary_term"`
				Error       *causeJSON `json:"error"`
			} `json:"docs"`
		}
		err = r.s.do(ctx, esapi.MgetRequest{Index: r.s.names.keysIndex(), Body: bytes.NewReader(body), Source: []string{"false"}}, &res)
		var re *ResponseError
		if errors.As(err, &re) && re.Type == "index_not_found_exception" {
			err = nil // no key written yet
		}
		if err != nil {
			return fmt.Errorf("read the versions of keys: %w", err)
		}
		if len(res.Docs) != 0 && len(res.Docs) != end-start {
			return fmt.Errorf("elasticsearch: _mget answered %d documents of %d", len(res.Docs), end-start)
		}
		for i, k := range todo[start:end] {
			kr := &keyRead{tenant: k.Tenant, key: k.Key}
			if len(res.Docs) > 0 {
				d := &res.Docs[i]
				if d.Error != nil && d.Error.Type != "index_not_found_exception" {
					return fmt.Errorf("read the version of a key: %s: %s", d.Error.Type, sanitize(d.Error))
				}
				if d.Found {
					kr.loc = &docLoc{Index: d.Index, SeqNo: d.SeqNo, PrimaryTerm: d.PrimaryTerm}
				}
			}
			r.keys[ids[start+i]] = kr
		}
	}
	return nil
}

func (r *reader) noteSession(id string, loc docLoc) {
	locs := r.sessions[id]
	for i := range locs {
		if locs[i].Index == loc.Index {
			locs[i] = loc
			return
		}
	}
	r.sessions[id] = append(locs, loc)
}

// readSessions reads the versions of session documents by id, as
// keyState does for the sessions of its events that it did not find by
// start. It returns the earliest start among them (zero when none was
// found).
func (r *reader) readSessions(ctx context.Context, tenant string, ids []string) (time.Time, error) {
	yes := true
	var first time.Time
	for chunk := range slices.Chunk(ids, r.s.cfg.PageSize) {
		size := min(2*len(chunk), 10000)
		req := &search.Request{
			Query:            boolFilter(termQuery("tenant", tenant), types.Query{Ids: &types.IdsQuery{Values: chunk}}),
			Size:             &size,
			Source_:          types.SourceFilter{Includes: []string{"started_at"}},
			SeqNoPrimaryTerm: &yes,
			TrackTotalHits:   false,
		}
		res, err := r.s.search(ctx, r.s.names.sessionsAll(), req)
		if err != nil {
			return time.Time{}, fmt.Errorf("read sessions: %w", err)
		}
		for i := range res.Hits.Hits {
			h := &res.Hits.Hits[i]
			loc, err := h.loc()
			if err != nil {
				return time.Time{}, err
			}
			var doc struct {
				StartedAt time.Time `json:"started_at"`
			}
			if err := json.Unmarshal(h.Source, &doc); err != nil {
				return time.Time{}, fmt.Errorf("decode session %s: %w", h.ID, err)
			}
			if first.IsZero() || doc.StartedAt.Before(first) {
				first = doc.StartedAt
			}
			r.noteSession(h.ID, loc)
			r.keySessions[h.ID] = true
		}
	}
	return first, nil
}
