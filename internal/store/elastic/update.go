package elastic

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// RejectedEvent is an event Elasticsearch refused for good, and why.
type RejectedEvent struct {
	Ref    event.Ref
	Reason string
}

// RejectedError is returned by Update when every event was stored except
// Events, which Elasticsearch refused (a mapping error, a time outside what
// the index holds). The sessions were written without them: the caller
// dead-letters them and goes on. Reasons never quote field values.
type RejectedError struct {
	Events []RejectedEvent
}

func (e *RejectedError) Error() string {
	if len(e.Events) == 1 {
		return fmt.Sprintf("elasticsearch rejected event %s: %s", e.Events[0].Ref.EventID, e.Events[0].Reason)
	}
	return fmt.Sprintf("elasticsearch rejected %d events; first %s: %s", len(e.Events), e.Events[0].Ref.EventID, e.Events[0].Reason)
}

// Rejected maps each rejected event to its reason (ingest.Rejecter).
func (e *RejectedError) Rejected() map[event.Ref]string {
	out := make(map[event.Ref]string, len(e.Events))
	for _, r := range e.Events {
		out[r.Ref] = r.Reason
	}
	return out
}

func newRejectedError(rejected map[event.Ref]string) *RejectedError {
	e := &RejectedError{Events: make([]RejectedEvent, 0, len(rejected))}
	for ref, reason := range rejected {
		e.Events = append(e.Events, RejectedEvent{Ref: ref, Reason: reason})
	}
	slices.SortFunc(e.Events, func(a, b RejectedEvent) int {
		return cmp.Or(strings.Compare(a.Ref.Tenant, b.Ref.Tenant), strings.Compare(a.Ref.EventID, b.Ref.EventID))
	})
	return e
}

// Update runs fn with a Reader of the stored state and writes the changes it
// returns. Elasticsearch has no transactions; docs/elasticsearch.md ("Write
// path") argues why this sequence keeps sessions consistent with events:
//
//  0. fn's reads: for each key, first the version of the key's document (a
//     realtime mget), then its sessions and events (searches, current
//     because every write waits for a refresh);
//  1. sessions, each write conditional on the version read (if_seq_no and
//     if_primary_term; create when none was read);
//  2. events: new ones with create (a 409 means stored already: the same
//     event, by the contract), the others conditional on the version read;
//  3. the key documents, conditional on the version read first: two
//     writers of one key conflict here even when they wrote different
//     sessions.
//
// Sessions go before events because Known hides stored events from the
// assembler: an event must not be stored before sessions that count it.
// When a conditional write answers 409, a concurrent writer changed what fn
// read, or fn read a concurrent writer's half-applied changes (a read
// that cannot be made sense of returns ErrConflict too). Either way this
// attempt may have written sessions and events computed from a torn view,
// and the concurrent writer that committed its key may have written over
// some of ours, so Update runs fn again on fresh reads, up to
// UpdateAttempts times, and the new attempt recomputes at least everything
// the failed one may have written: every event that attempt changed is
// presented as new again, and each key is read from no later than the
// earliest session the attempt read (docs/elasticsearch.md, "Concurrent
// writers"). Events that Elasticsearch rejects are left out and
// fn runs again, so that the sessions describe exactly the stored events;
// Update then returns a *RejectedError naming them. When the cluster is down
// or overloaded it returns an error wrapping ErrUnavailable, and the caller
// retries the batch, which is idempotent.
func (s *Store) Update(ctx context.Context, fn func(context.Context, session.Reader) (session.Changes, error)) error {
	rejected := map[event.Ref]string{}
	ours := map[event.Ref]bool{}
	redo := map[string]bool{}       // keys whose sessions may count a rejected event
	floor := map[string]time.Time{} // keys read by a failed attempt: where it started
	var err error
	for attempt := 0; attempt < s.cfg.UpdateAttempts; attempt++ {
		if attempt > 0 && errors.Is(err, ErrConflict) {
			if serr := sleepCtx(ctx, backoff(s.cfg.Backoff, s.cfg.MaxBackoff, attempt-1)); serr != nil {
				return serr
			}
		}
		r := newReader(s, rejected, ours)
		r.redo = redo
		r.floor = floor
		var ch session.Changes
		var more map[event.Ref]string
		ch, err = fn(ctx, r)
		if err == nil {
			more, err = s.apply(ctx, r, &ch, ours)
		}
		switch {
		case errors.Is(err, ErrConflict):
			s.log.Info("concurrent update of the same sessions; reading again", zap.Int("attempt", attempt+1))
			if s.cfg.Observer != nil {
				s.cfg.Observer.ObserveConflict()
			}
			for i := range ch.Events {
				ours[ch.Events[i].Ref()] = true
			}
			r.lowerFloors(floor)
			continue
		case err == nil && len(more) > 0:
			// Sessions may have been written counting these events:
			// compute and write them again without.
			maps.Copy(rejected, more)
			for i := range ch.Events {
				if _, ok := more[ch.Events[i].Ref()]; ok {
					redo[docID(ch.Events[i].Tenant, session.KeyOf(&ch.Events[i].Event))] = true
				}
			}
			err = errRewrite
			continue
		case err != nil:
			return err
		}
		if len(rejected) > 0 {
			return newRejectedError(rejected)
		}
		return nil
	}
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("update not applied after %d attempts: %w", s.cfg.UpdateAttempts, err)
	}
	return fmt.Errorf("elasticsearch: update not applied after %d attempts: rejections kept changing the batch", s.cfg.UpdateAttempts)
}

var errRewrite = errors.New("rewrite without rejected events")

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
	// ours are events an earlier attempt wrote: reported unknown, so that
	// fn computes their sessions again.
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
// latest session of the key that started at or before since (keyState).
//
// When an event read after S belongs to a session that started before S,
// the reads crossed a concurrent writer's changes (or a failed writer left
// that state): S is then the start of that session at the latest, and the
// key is read again from there, so that every session fn may rewrite or
// delete is one whose events it read.
func (r *reader) KeyEvents(ctx context.Context, tenant, key string, since time.Time) ([]session.Stored, error) {
	if err := r.readKey(ctx, tenant, key); err != nil {
		return nil, err
	}
	id := docID(tenant, key)
	if f, ok := r.floor[id]; ok && f.Before(since) {
		since = f
	}
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
	base := []types.Query{termQuery("tenant", tenant), termQuery("key", key)}
	var from time.Time
	if !since.IsZero() {
		anchor, err := r.firstStored(ctx, boolFilter(append(slices.Clip(base), dateRange("occurred_at", time.Time{}, since, true))...), desc)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("find the session of a key: %w", err)
		}
		if anchor != nil {
			first, err := r.firstStored(ctx, boolFilter(append(slices.Clip(base), termQuery("session", anchor.Session))...), asc)
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("find the start of a session: %w", err)
			}
			if first == nil {
				// A concurrent writer moved the event between the two
				// searches.
				return nil, time.Time{}, fmt.Errorf("find the start of a session: its first event moved: %w", ErrConflict)
			}
			from = first.OccurredAt
		}
	}
	r.from[docID(tenant, key)] = from
	withFrom := func(field string) *types.Query {
		if from.IsZero() {
			return boolFilter(base...)
		}
		return boolFilter(append(slices.Clip(base), dateRange(field, from, time.Time{}, false))...)
	}
	yes := true
	sessions := &search.Request{
		Query:            withFrom("started_at"),
		Sort:             sortBy(asc("started_at"), asc("session_id")),
		Source_:          false,
		SeqNoPrimaryTerm: &yes,
		TrackTotalHits:   false,
	}
	if err := r.s.scan(ctx, r.s.names.sessionsAll(), sessions, func(h *hit) error {
		loc, err := h.loc()
		if err != nil {
			return err
		}
		r.noteSession(h.ID, loc)
		r.keySessions[h.ID] = true
		return nil
	}); err != nil {
		return nil, time.Time{}, fmt.Errorf("read the sessions of a key: %w", err)
	}
	events := &search.Request{
		Query:            withFrom("occurred_at"),
		Sort:             sortBy(asc("occurred_at"), asc("event_id")),
		SeqNoPrimaryTerm: &yes,
		TrackTotalHits:   false,
	}
	var unread []string
	if err := r.s.scan(ctx, r.s.names.eventsAll(), events, func(h *hit) error {
		loc, err := h.loc()
		if err != nil {
			return err
		}
		var doc eventDoc
		if err := json.Unmarshal(h.Source, &doc); err != nil {
			return fmt.Errorf("decode stored event %s: %w", h.ID, err)
		}
		st := session.Stored{Event: doc.Event, SessionID: doc.Session}
		if id := docID(tenant, doc.Session); !r.keySessions[id] && !slices.Contains(unread, id) {
			unread = append(unread, id)
		}
		if r.unknown[st.Ref()] {
			r.freshLoc[st.Ref()] = loc
			return nil
		}
		r.events[st.Ref()] = &readEvent{stored: st, loc: loc}
		out = append(out, st)
		return nil
	}); err != nil {
		return nil, time.Time{}, fmt.Errorf("read the events of a key: %w", err)
	}
	// Sessions of these events that the scan by start did not find: their
	// versions are read now, with the rest, since fn may delete them.
	if len(unread) > 0 {
		first, err := r.readSessions(ctx, tenant, unread)
		if err != nil {
			return nil, time.Time{}, err
		}
		if !first.IsZero() && first.Before(from) {
			return nil, first, nil
		}
	}
	return out, time.Time{}, nil
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

// firstStored returns the first event of the query in the order dir, among
// those fn does not treat as new; nil when there is none.
func (r *reader) firstStored(ctx context.Context, q *types.Query, dir func(string) sortField) (*eventDoc, error) {
	size := 16 // the first hit, unless fn treats it as new
	req := &search.Request{
		Query:          q,
		Sort:           sortBy(dir("occurred_at"), dir("event_id")),
		Size:           &size,
		Source_:        types.SourceFilter{Includes: []string{"event_id", "tenant", "occurred_at", "session"}},
		TrackTotalHits: false,
	}
	for {
		res, err := r.s.search(ctx, r.s.names.eventsAll(), req)
		if err != nil {
			return nil, err
		}
		hits := res.Hits.Hits
		for i := range hits {
			var doc eventDoc
			if err := json.Unmarshal(hits[i].Source, &doc); err != nil {
				return nil, fmt.Errorf("decode stored event %s: %w", hits[i].ID, err)
			}
			if !r.unknown[doc.Ref()] {
				return &doc, nil
			}
		}
		if len(hits) < size {
			return nil, nil
		}
		req.SearchAfter = hits[len(hits)-1].searchAfter()
	}
}

// readKey reads the version of the key's document in real time: it must be
// the version before any data of the key that fn then reads.
func (r *reader) readKey(ctx context.Context, tenant, key string) error {
	id := docID(tenant, key)
	if _, ok := r.keys[id]; ok {
		return nil
	}
	// mget is realtime: it sees the latest write without a refresh. (Not
	// GET: esapi puts the id in the URL path unescaped, and ids hold
	// slashes.)
	body, err := json.Marshal(map[string][]string{"ids": {id}})
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
		return fmt.Errorf("read the version of a key: %w", err)
	}
	if len(res.Docs) == 1 && res.Docs[0].Error != nil && res.Docs[0].Error.Type != "index_not_found_exception" {
		return fmt.Errorf("read the version of a key: %s: %s", res.Docs[0].Error.Type, sanitize(res.Docs[0].Error))
	}
	kr := &keyRead{tenant: tenant, key: key}
	if len(res.Docs) == 1 && res.Docs[0].Found {
		d := res.Docs[0]
		kr.loc = &docLoc{Index: d.Index, SeqNo: d.SeqNo, PrimaryTerm: d.PrimaryTerm}
	}
	r.keys[id] = kr
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

// apply writes ch. It returns the events to leave out (rejected) when the
// batch must be computed again without them, ErrConflict when a concurrent
// writer changed what r read, or another error. ours collects the events
// this attempt wrote.
func (s *Store) apply(ctx context.Context, r *reader, ch *session.Changes, ours map[event.Ref]bool) (map[event.Ref]string, error) {
	if ch.Empty() {
		return nil, nil
	}
	// Events the indices cannot hold are left out before anything is
	// written.
	rejected := map[event.Ref]string{}
	for i := range ch.Events {
		st := &ch.Events[i]
		if _, stored := r.events[st.Ref()]; !stored && !storable(st.OccurredAt) {
			rejected[st.Ref()] = "occurred_at is outside the years 1970 to 2261 that the index holds"
		}
	}
	if len(rejected) > 0 {
		return rejected, nil
	}
	current := currentEvents(r, ch)
	docs, err := sessionDocs(current, ch)
	if err != nil {
		return nil, err
	}
	if err := s.writeSessions(ctx, r, ch, docs, current); err != nil {
		var rs *rejectedSessions
		if !errors.As(err, &rs) {
			return nil, err
		}
		// Leave out the new events of the sessions Elasticsearch refused;
		// stored events cannot be left out.
		for i := range ch.Events {
			st := &ch.Events[i]
			if reason, ok := rs.reasons[st.SessionID]; ok && r.unknown[st.Ref()] {
				rejected[st.Ref()] = "its session was rejected: " + reason
			}
		}
		if len(rejected) == 0 {
			return nil, err
		}
		return rejected, nil
	}
	rejected, err = s.writeEvents(ctx, r, ch, ours)
	if err != nil || len(rejected) > 0 {
		return rejected, err
	}
	return nil, s.commitKeys(ctx, r)
}

// currentEvents is every event the update knows, by reference, with the
// session it belongs to after ch: the events fn read, overlaid with ch's.
func currentEvents(r *reader, ch *session.Changes) map[event.Ref]*session.Stored {
	current := make(map[event.Ref]*session.Stored, len(r.events)+len(ch.Events))
	for ref, re := range r.events {
		current[ref] = &re.stored
	}
	for i := range ch.Events {
		current[ch.Events[i].Ref()] = &ch.Events[i]
	}
	return current
}

// sessionDocs builds the document of every changed session from the
// current events. The Reader contract guarantees they hold every event of
// every changed session; a count that does not match means fn broke it, and
// the session would be indexed with missing messages.
func sessionDocs(current map[event.Ref]*session.Stored, ch *session.Changes) ([]*sessionDoc, error) {
	members := map[string][]*session.Stored{}
	for _, st := range current {
		id := docID(st.Tenant, st.SessionID)
		members[id] = append(members[id], st)
	}
	docs := make([]*sessionDoc, len(ch.Sessions))
	for i := range ch.Sessions {
		s := &ch.Sessions[i]
		evs := members[docID(s.Tenant, s.ID)]
		if len(evs) != s.Events {
			return nil, fmt.Errorf("elasticsearch: session %s counts %d events, the update holds %d of them", s.ID, s.Events, len(evs))
		}
		slices.SortFunc(evs, func(a, b *session.Stored) int { return event.Compare(&a.Event, &b.Event) })
		docs[i] = newSessionDoc(s, evs)
	}
	return docs, nil
}

type rejectedSessions struct{ reasons map[string]string }

func (e *rejectedSessions) Error() string {
	return fmt.Sprintf("elasticsearch rejected %d session documents", len(e.reasons))
}

// writeSessions is phase 1: session documents, each conditional on the
// version fn's reads saw, or created when they saw none. A session whose
// start moved to another month is created in its new index and deleted from
// the old one. Deleted sessions are deleted, and so is any session of a key
// read that no event belongs to any more (a failed writer's leftover).
func (s *Store) writeSessions(ctx context.Context, r *reader, ch *session.Changes, docs []*sessionDoc, current map[event.Ref]*session.Stored) error {
	live := map[string]bool{}
	for i := range ch.Sessions {
		live[docID(ch.Sessions[i].Tenant, ch.Sessions[i].ID)] = true
	}
	referenced := map[string]bool{}
	for _, st := range current {
		referenced[docID(st.Tenant, st.SessionID)] = true
	}
	gone := map[string]string{} // document id → session id
	for _, ref := range ch.Deleted {
		gone[docID(ref.Tenant, ref.ID)] = ref.ID
	}
	for id := range r.keySessions {
		if !live[id] && !referenced[id] {
			_, sid, _ := strings.Cut(id, "/")
			gone[id] = sid
		}
	}
	// Versions come from fn's reads only: a version read now, after fn
	// computed, would let a stale computation overwrite a newer session.
	// A session fn's reads did not see is created (409 if it exists).
	var ops []Op
	var owner []string // session id of each op
	for i, d := range docs {
		id := docID(d.Tenant, d.ID)
		target := s.names.sessionsIndex(d.StartedAt)
		written := false
		for _, loc := range r.sessions[id] {
			if loc.Index == target {
				ops = append(ops, conditional(Index, loc, id, docs[i]))
				written = true
			} else {
				ops = append(ops, conditional(Delete, loc, id, nil))
			}
			owner = append(owner, d.ID)
		}
		if !written {
			ops = append(ops, Op{Action: Create, Index: target, ID: id, Doc: docs[i]})
			owner = append(owner, d.ID)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(gone)) {
		for _, loc := range r.sessions[id] {
			ops = append(ops, conditional(Delete, loc, id, nil))
			owner = append(owner, gone[id])
		}
	}
	results, err := s.bulk.Write(ctx, ops)
	if err != nil {
		return fmt.Errorf("write sessions: %w", err)
	}
	reasons := map[string]string{}
	for i, res := range results {
		switch res.Outcome {
		case Conflict:
			return ErrConflict
		case Rejected:
			if ops[i].Action == Delete {
				return fmt.Errorf("elasticsearch: delete of session %s refused: %s", owner[i], res.Reason)
			}
			reasons[owner[i]] = res.Reason
		}
	}
	if len(reasons) > 0 {
		return &rejectedSessions{reasons: reasons}
	}
	return nil
}

// writeEvents is phase 2: new events are created (a 409 means another
// writer stored the same event meanwhile), the others rewritten in the index
// they are in, conditional on the version read.
func (s *Store) writeEvents(ctx context.Context, r *reader, ch *session.Changes, ours map[event.Ref]bool) (map[event.Ref]string, error) {
	ops := make([]Op, len(ch.Events))
	for i := range ch.Events {
		st := &ch.Events[i]
		id := docID(st.Tenant, st.EventID)
		if re, ok := r.events[st.Ref()]; ok {
			ops[i] = conditional(Index, re.loc, id, newEventDoc(st))
		} else if loc, ok := r.freshLoc[st.Ref()]; ok {
			ops[i] = conditional(Index, loc, id, newEventDoc(st))
		} else {
			ops[i] = Op{Action: Create, Index: s.names.eventsIndex(st.OccurredAt), ID: id, Doc: newEventDoc(st), ExistsOK: true}
		}
	}
	results, err := s.bulk.Write(ctx, ops)
	for i, res := range results {
		if res.Outcome == Written && res.Status/100 == 2 {
			ours[ch.Events[i].Ref()] = true
		}
	}
	if err != nil {
		return nil, fmt.Errorf("write events: %w", err)
	}
	rejected := map[event.Ref]string{}
	conflict := false
	for i, res := range results {
		switch res.Outcome {
		case Conflict:
			conflict = true
		case Rejected:
			if ops[i].Action != Create {
				return nil, fmt.Errorf("elasticsearch: rewrite of stored event %s refused: %s", ops[i].ID, res.Reason)
			}
			rejected[ch.Events[i].Ref()] = res.Reason
		}
	}
	if conflict {
		return nil, ErrConflict
	}
	return rejected, nil
}

// keyDoc is the document of a session key: its version is what matters.
type keyDoc struct {
	Tenant    string    `json:"tenant"`
	Key       string    `json:"key"`
	UpdatedAt time.Time `json:"updated_at"`
}

// commitKeys is phase 3: every key read gets a new version, conditional on
// the one read before its data. A 409 means another writer changed the key
// since: its writes and ours may each miss the other's, so fn runs again.
func (s *Store) commitKeys(ctx context.Context, r *reader) error {
	if len(r.keys) == 0 {
		return nil
	}
	now := time.Now().UTC()
	ops := make([]Op, 0, len(r.keys))
	for _, id := range slices.Sorted(maps.Keys(r.keys)) {
		k := r.keys[id]
		doc := &keyDoc{Tenant: k.tenant, Key: k.key, UpdatedAt: now}
		if k.loc != nil {
			ops = append(ops, conditional(Index, *k.loc, id, doc))
		} else {
			ops = append(ops, Op{Action: Create, Index: s.names.keysIndex(), ID: id, Doc: doc})
		}
	}
	results, err := s.bulk.Write(ctx, ops)
	if err != nil {
		return fmt.Errorf("write key versions: %w", err)
	}
	for i, res := range results {
		switch res.Outcome {
		case Conflict:
			return ErrConflict
		case Rejected:
			return fmt.Errorf("elasticsearch: key document %s refused: %s", ops[i].ID, res.Reason)
		}
	}
	return nil
}

func conditional(a Action, loc docLoc, id string, doc any) Op {
	seq, term := loc.SeqNo, loc.PrimaryTerm
	return Op{Action: a, Index: loc.Index, ID: id, IfSeqNo: &seq, IfPrimaryTerm: &term, Doc: doc}
}
