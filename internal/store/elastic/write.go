package elastic

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/retry"
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
	// refs names the events in Error: the store's Config.RefKey.
	refs idref.Key
}

// Error names the events by their document's reference (Store.docRef): an
// event_id may embed a contact.
func (e *RejectedError) Error() string {
	first := &e.Events[0]
	ref := e.refs.Doc("", docID(first.Ref.Tenant, first.Ref.EventID))
	if len(e.Events) == 1 {
		return fmt.Sprintf("elasticsearch rejected event %s: %s", ref, first.Reason)
	}
	return fmt.Sprintf("elasticsearch rejected %d events; first %s: %s", len(e.Events), ref, first.Reason)
}

// Rejected maps each rejected event to its reason (ingest.Rejecter).
func (e *RejectedError) Rejected() map[event.Ref]string {
	out := make(map[event.Ref]string, len(e.Events))
	for _, r := range e.Events {
		out[r.Ref] = r.Reason
	}
	return out
}

func newRejectedError(rejected map[event.Ref]string, refs idref.Key) *RejectedError {
	e := &RejectedError{Events: make([]RejectedEvent, 0, len(rejected)), refs: refs}
	for ref, reason := range rejected {
		e.Events = append(e.Events, RejectedEvent{Ref: ref, Reason: reason})
	}
	slices.SortFunc(e.Events, func(a, b RejectedEvent) int {
		return cmp.Or(strings.Compare(a.Ref.Tenant, b.Ref.Tenant), strings.Compare(a.Ref.EventID, b.Ref.EventID))
	})
	return e
}

// keyDoc is the document of a session key: the key's sessions and the
// generation of its last write (docs/elasticsearch.md, "Write path").
type keyDoc struct {
	Tenant    string    `json:"tenant"`
	Key       string    `json:"key"`
	UpdatedAt time.Time `json:"updated_at"`
	Gen       int64     `json:"gen"`
	// Writer is the store that wrote the document; Pending, that its
	// write of the key's sessions and events is under way.
	Writer   string       `json:"writer"`
	Pending  bool         `json:"pending,omitempty"`
	Sessions []sessionRef `json:"sessions"`
	Retired  []sessionRef `json:"retired,omitempty"`
}

// Update runs fn with a Reader of the stored state and writes the changes it
// returns, in three bulk requests per batch, none of which waits for a
// refresh (docs/elasticsearch.md, "Write path"):
//
//  1. claim: each changed key's document, conditional on the version the
//     writer holds (if_seq_no; create when it holds none), with the next
//     generation, the key's sessions after the write, and the sessions the
//     write deletes;
//  2. the session documents (each listing its events) and the events, with
//     the generation as external version;
//  3. the deleted sessions, with the generation as external version, and
//     the key documents again, marked done, conditional on the claim —
//     but those of keys the next update writes again, whose claim takes
//     the place of this release (handOver).
//
// A writer whose claim answers 409 does not own the key any more (another
// writer, or forget, changed it): it writes nothing of that key and runs fn
// again on the key read back from the cluster. A 409 in steps 2 and 3 means
// a newer generation wrote the document: the same. A key whose document
// another writer claimed and has not marked done is busy (ErrConflict)
// until the claim is older than ClaimLease, when the writer is taken to
// have died and the key is read back from what it left. Events that Elasticsearch
// rejects are left out and fn runs again, so that the sessions describe
// exactly the stored events; Update then returns a *RejectedError naming
// them. An attempt abandoned so deletes the documents of new events it
// wrote before its keys can be read again (rollBack). When the cluster is down or
// overloaded it returns an error wrapping ErrUnavailable, and the caller
// retries the batch, which is idempotent.
func (s *Store) Update(ctx context.Context, fn func(context.Context, session.Reader) (session.Changes, error)) error {
	update := s.updates.Add(1)
	rejected := map[event.Ref]string{}
	sent, refused := map[session.StateID]bool{}, map[session.StateID]bool{}
	var err error
	// attempt counts the runs of fn that UpdateAttempts bounds: not
	// those that follow a failed write of an earlier Update call
	// (lostError). Those are bounded too: each follows a failed attempt
	// of an earlier call that was still writing when this one planned,
	// which are few and bounded the same way; an earlier call counts
	// every failure a later call's write causes it.
	for attempt := 0; attempt < s.cfg.UpdateAttempts; {
		if attempt > 0 && errors.Is(err, ErrConflict) {
			// Another writer holds the keys: pause, with the one backoff
			// of the project, before reading them again. A rewrite
			// without rejected events needs no pause, nor does an
			// earlier write of this store that failed (errLost).
			pause := retry.Backoff{Base: s.cfg.Backoff, Max: s.cfg.MaxBackoff}
			if serr := retry.Sleep(ctx, pause.Delay(attempt)); serr != nil {
				return serr
			}
		}
		r := newReader(s, rejected, sent, refused, update)
		var ch session.Changes
		var more map[event.Ref]string
		ch, err = fn(ctx, r)
		if err == nil {
			more, err = s.write(ctx, r, &ch)
		}
		if err == nil && len(more) == 0 {
			// States lent by earlier writes of their keys hold only if
			// those writes succeed, also where this update changed
			// nothing (it found their events stored).
			err = r.awaitLenders(ctx)
		}
		if err != nil || len(more) > 0 {
			// What a failed attempt read may no longer be what is
			// stored: the states it still holds (those it did not lend,
			// see lend) are let go, not put back, and the keys are read
			// back from the cluster.
			s.cache.Release(slices.Collect(maps.Keys(r.keys))...)
		}
		var lost *lostError
		switch {
		case errors.Is(err, ErrConflict):
			attempt++
			s.log.Info("another writer changed the same session keys; reading them again", zap.Int("attempt", attempt))
			if s.cfg.Observer != nil {
				s.cfg.Observer.ObserveConflict()
			}
			continue
		case errors.As(err, &lost):
			if lost.update >= update {
				attempt++
			}
			s.log.Debug("an earlier write of the same session keys failed; reading them again", zap.Int("attempt", attempt))
			continue
		case err != nil:
			return err
		case len(more) > 0:
			attempt++
			maps.Copy(rejected, more)
			err = errRewrite
			continue
		}
		// Keys read and not written (a write lends the states of all the
		// keys it read).
		for id, k := range r.keys {
			if k.st.unreadable != "" {
				s.cache.Release(id) // read again, whole, next time
				continue
			}
			s.cache.Put(id, k.st)
		}
		if len(rejected) > 0 {
			return newRejectedError(rejected, s.cfg.RefKey)
		}
		return nil
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, errLost) {
		return fmt.Errorf("update not applied after %d attempts: %w", s.cfg.UpdateAttempts, err)
	}
	return fmt.Errorf("elasticsearch: update not applied after %d attempts: rejections kept changing the batch", s.cfg.UpdateAttempts)
}

var errRewrite = errors.New("rewrite without rejected events")

// keyWrite is what one update writes of one key.
type keyWrite struct {
	st *keyState
	// policy is the key's policy (session.PolicyTag) the changes were
	// computed under: the sessions it recomputed list it beside their end.
	policy string
	from   int // sessions[from:] are replaced
	// sessions are the key's changed sessions, with their events.
	sessions []*sessionDoc
	// changes are the key's recomputed sessions and its new events and
	// those that moved; next is the key's state after the write
	// (KeyState.Apply), whose events the session documents list.
	changes session.KeyChanges
	next    *session.KeyState
	// after is every session of the key after the write; deletes are the
	// session documents it removes.
	after   []sessionRef
	deletes []sessionRef
	gen     int64
	// flight is the write of the key, which lend made the lender of the
	// successor state.
	flight *flight
	// early: the write claims the key once the write it follows (st.after)
	// claimed it, and sends its data once that write's data are stored
	// (lend, claim).
	early bool
	// docs are the key document as claimed and as done (doc), and
	// conds the versions those writes are conditional on (condition):
	// allocated with the write, which the requests point into.
	docs  [2]keyDoc
	conds [2][2]int64
	// at is the write's index in plan's order of keys.
	at int
}

// write applies ch. It returns the events to leave out (rejected) when the
// batch must be computed again without them, ErrConflict when the writer
// lost a key it read, errLost when an earlier write of a key failed, or
// another error.
func (s *Store) write(ctx context.Context, r *reader, ch *session.Changes) (rejected map[event.Ref]string, err error) {
	if ch.Empty() && len(r.recompute) == 0 {
		return nil, nil
	}
	writes, rejected, err := s.plan(r, ch)
	if err != nil || len(rejected) > 0 {
		return rejected, err
	}
	s.lend(r, writes)
	flying := writes
	defer func() {
		failed := err
		if failed == nil && len(rejected) > 0 {
			failed = errRewrite
		}
		s.land(flying, failed)
	}()
	if err := s.claim(ctx, writes); err != nil {
		return nil, err
	}
	// A key claimed early is written after the write it follows stored
	// its data: its sessions list that write's events.
	for _, w := range writes {
		if err := w.st.await(ctx); err != nil {
			return nil, err
		}
		w.st.seqNo, w.st.primaryTerm = w.flight.claimSeq, w.flight.claimTerm
	}
	if rejected, err := s.writeData(ctx, r, writes); err != nil || len(rejected) > 0 {
		return rejected, err
	}
	flying = s.handOver(writes)
	return nil, s.finish(ctx, flying)
}

// handOver lands the writes of keys handed over — a later update planned
// to write the key again before this write's data were stored, and claims
// it as soon as this write's claim was answered (lend) — once their data
// are stored, and returns the other writes, which finish; from then on a
// later write of those keys claims after the release. A key handed over is
// not released: the next write's claim, conditional on this write's claim
// and often sent before this write's data were stored, replaces its
// document with the next generation (or, when that claim failed, the
// document stays pending at this write's claim); the last write of a run
// releases the key. So a key written by consecutive batches costs claim
// and data per batch, and the next batch's claim overlaps this batch's
// data: its data follow this batch's (docs/elasticsearch.md, "Two updates
// of one key in flight"). A document
// left pending by a write that stored its data whole says nothing false:
// whoever reads it back (the next write failed, or the writer died)
// recomputes the key from the documents, as after any claim that was not
// released. A write that deletes sessions is never handed over (the
// deletes are in its finish request).
func (s *Store) handOver(writes []*keyWrite) (rest []*keyWrite) {
	var handed []*keyWrite
	s.flightsMu.Lock()
	for _, w := range writes {
		if w.flight.handed {
			handed = append(handed, w)
			continue
		}
		w.flight.finishing = true
		rest = append(rest, w)
	}
	s.flightsMu.Unlock()
	s.land(handed, nil)
	return rest
}

// lend puts the states of the keys r read back in the cache as soon as the
// update's write is planned, before any of it is sent, so that the next
// update of a key plans on the state after this one while this one's
// requests are in flight (docs/elasticsearch.md, "Two updates of one key in
// flight"). A written
// key's state is its successor: the state after the write, which holds
// only if the write succeeds and whose key document's version is the one
// the write's last request returns. The next update of the key claims it
// conditionally on that version: once this write ended, or, when this write
// hands the key over, as soon as this write's claim was answered (an early
// claim, keyWrite.early), its data then waiting for this write's data; it
// reads the key by id only after this write ended. When the write fails
// (land), the state is dropped by whichever update holds it, and the key
// is read back.
// The states lent are no longer r's.
func (s *Store) lend(r *reader, writes []*keyWrite) {
	ids := make([]session.StateID, len(writes))
	s.flightsMu.Lock()
	for i, w := range writes {
		ids[i] = session.StateID{Tenant: w.st.Tenant, Key: w.st.Key}
		w.flight = newFlight(r.update)
		w.flight.prev, w.flight.mayHand = w.st.after, len(w.deletes) == 0
		if p := w.st.after; p != nil && p.mayHand && !p.finishing && !p.ended() {
			// The write this one follows has not decided to release
			// the key: it hands it over (handOver), and this one claims
			// it as soon as that one's claim is answered. One that
			// ended undecided failed (a write that succeeds is handed
			// over or decides first): a claim conditional on its claim
			// would be sent for nothing, and claim's await returns
			// errLost before any request instead.
			p.handed, w.early = true, true
		}
		s.flights[ids[i]] = w.flight
	}
	s.flightsMu.Unlock()
	for i, w := range writes {
		// The deleted sessions stay in the key document (a reader after a
		// crash deletes them again), not in memory: they are gone.
		next := &keyState{KeyState: *w.next, id: w.st.id, exists: true, gen: w.gen,
			sessions: w.after, retiredLoaded: true, after: w.flight}
		// Memory keeps what KeyState keeps: of a derived key, the latest
		// two sessions' events (KeyState.Trim); an older session is read
		// back by id when a late event reaches it. next.Sessions are
		// after's latest, so the two lists agree.
		next.Trim()
		delete(r.keys, ids[i])
		s.cache.Put(ids[i], next)
	}
	for id, k := range r.keys {
		if k.st.unreadable != "" {
			s.cache.Release(id) // read again, whole, next time (a repair)
			continue
		}
		s.cache.Put(id, k.st)
	}
	clear(r.keys)
}

// land ends the flights of writes (which lend made): with the key
// documents' versions the write left when err is nil, or as failed.
func (s *Store) land(writes []*keyWrite, err error) {
	for _, w := range writes {
		w.flight.seqNo, w.flight.primaryTerm = w.st.seqNo, w.st.primaryTerm
		w.flight.land(err)
	}
	s.flightsMu.Lock()
	for _, w := range writes {
		id := session.StateID{Tenant: w.st.Tenant, Key: w.st.Key}
		if s.flights[id] != w.flight {
			continue
		}
		// A write that failed before the ones it followed ended: a
		// reader of the key waits for the latest of them still in
		// flight (flightOf; a failed write keeps its prev, one that
		// succeeded ended after its own). Each closes its flights
		// before it takes flightsMu, so it finds itself here and
		// removes itself, or leaves the one before it.
		p := w.flight.prev
		for p != nil && p.ended() {
			p = p.prev
		}
		if p != nil {
			s.flights[id] = p
			continue
		}
		delete(s.flights, id)
	}
	s.flightsMu.Unlock()
}

// flightOf returns the last write of key id whose successor was lent,
// while it may be in flight.
func (s *Store) flightOf(id session.StateID) *flight {
	s.flightsMu.Lock()
	defer s.flightsMu.Unlock()
	return s.flights[id]
}

// plan turns ch into the writes of each key, from the states r read.
func (s *Store) plan(r *reader, ch *session.Changes) ([]*keyWrite, map[event.Ref]string, error) {
	byKey := map[session.StateID]*keyWrite{}
	var order []*keyWrite // byKey's, in the order of their keys' first changes
	get := func(tenant, key string) (*keyWrite, error) {
		id := session.StateID{Tenant: tenant, Key: key}
		if w, ok := byKey[id]; ok {
			return w, nil
		}
		k, ok := r.keys[id]
		if !ok {
			return nil, fmt.Errorf("elasticsearch: changes to key %s that the update did not read", s.docRef("", keyDocID(tenant, key)))
		}
		w := &keyWrite{st: k.st, from: k.from, gen: k.st.gen + 1, policy: k.policy, at: len(order)}
		byKey[id] = w
		order = append(order, w)
		return w, nil
	}
	// The assembler gives a key's sessions, then its events, one after the
	// other: the previous key is checked before a key's id is built, and
	// a key's first run of sessions or events is a part of the update's
	// (appendRun), the documents allocated at once.
	var w *keyWrite
	docs := make([]sessionDoc, len(ch.Sessions))
	ptrs := make([]*sessionDoc, len(ch.Sessions))
	run := 0
	for i := range ch.Sessions {
		ss := &ch.Sessions[i]
		if w == nil || w.st.Tenant != ss.Tenant || w.st.Key != ss.Key {
			if w != nil {
				w.sessions = appendRun(w.sessions, ptrs[run:i])
			}
			var err error
			if w, err = get(ss.Tenant, ss.Key); err != nil {
				return nil, nil, err
			}
			run = i
		}
		docs[i].Session = *ss
		ptrs[i] = &docs[i]
	}
	if w != nil {
		w.sessions = appendRun(w.sessions, ptrs[run:])
	}
	rejected := map[event.Ref]string{}
	w, run = nil, 0
	// The keys' events come in the order of their sessions: the key after
	// the last one found is tried first, also after a key found otherwise
	// (one whose sessions came without events before it, say). Which key is
	// tried changes nothing but the cost: it is taken only if it matches.
	next := 0
	for i := range ch.Events {
		e := &ch.Events[i]
		if w == nil || w.st.Tenant != e.Tenant || !session.KeyIs(e.Event, w.st.Key) {
			if w != nil {
				w.changes.Events = appendRun(w.changes.Events, ch.Events[run:i])
			}
			if next < len(order) && order[next].st.Tenant == e.Tenant && session.KeyIs(e.Event, order[next].st.Key) {
				w = order[next]
				next++
			} else {
				var err error
				if w, err = get(e.Tenant, session.KeyOf(e.Event)); err != nil {
					return nil, nil, err
				}
				next = w.at + 1
			}
			run = i
		}
	}
	if w != nil {
		w.changes.Events = appendRun(w.changes.Events, ch.Events[run:])
	}
	// Keys computed again without new events (reader.Recompute) are
	// written even when the assembler found nothing of them from their
	// request's Since on: the write then deletes their sessions from there.
	again := slices.SortedFunc(maps.Keys(r.recompute), func(a, b session.StateID) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Key, b.Key))
	})
	for _, id := range again {
		if _, err := get(id.Tenant, id.Key); err != nil {
			return nil, nil, err
		}
	}
	held := make([]session.HeldSession, len(ch.Sessions)) // each key's part: its recomputed sessions
	for _, w := range order {
		if w.st.unreadable != "" {
			if err := w.refuse(rejected, s.cfg.RefKey); err != nil {
				return nil, nil, err
			}
			continue
		}
		n := len(w.sessions)
		if err := w.plan(held[:n:n], rejected, s.cfg.SessionTextMaxBytes, s.cfg.RefKey); err != nil {
			return nil, nil, err
		}
		held = held[n:]
	}
	if len(rejected) > 0 {
		return nil, rejected, nil
	}
	return order, nil, nil
}

// appendRun appends run to a key's list: the first run is the list,
// clipped, so that a later one is appended to a copy.
func appendRun[T any](list, run []T) []T {
	if list == nil {
		return slices.Clip(run)
	}
	return append(list, run...)
}

// refuse rejects the events of a key whose stored documents do not all
// decode, with the reason: the key is not written, and fn runs again
// without them. Its events are all refused, those it read as stored too
// (an unfinished key presents them as new): a copy of a stored event in the
// dead-letter topic is harmless, as sending it again is idempotent.
func (w *keyWrite) refuse(rejected map[event.Ref]string, refs idref.Key) error {
	if len(w.changes.Events) == 0 {
		// The assembler gives every key it changes new events.
		return fmt.Errorf("elasticsearch: changes to key %s without events: %s", refs.Doc("", w.st.id), w.st.unreadable)
	}
	for i := range w.changes.Events {
		rejected[w.changes.Events[i].Ref()] = w.st.unreadable
	}
	return nil
}

// plan computes the key's sessions and events after the write, and checks
// that every changed session counts exactly the events the write gives it.
// Events whose time the index cannot hold join rejected, and so do new
// messages that would take their session's text past maxText.
//
// held has room for the key's recomputed sessions (len(w.sessions)):
// KeyChanges.Sessions, which Apply copies.
func (w *keyWrite) plan(held []session.HeldSession, rejected map[event.Ref]string, maxText int, refs idref.Key) error {
	st := w.st
	for i := range w.changes.Events {
		// Moved events are checked too: they were stored, so their time
		// is storable and only new events can fail.
		if e := &w.changes.Events[i]; !storable(e.OccurredAt) {
			rejected[e.Ref()] = "occurred_at is outside the years 1970 to 2261 that the index holds"
		}
	}
	w.changes.Sessions = held
	for i, d := range w.sessions {
		w.changes.Sessions[i] = session.HeldSession{ID: d.ID, Start: d.StartedAt}
	}
	slices.SortFunc(w.changes.Sessions, func(a, b session.HeldSession) int {
		return compareRefs(sessionRef{ID: a.ID, Start: a.Start}, sessionRef{ID: b.ID, Start: b.Start})
	})
	j := w.from - st.held()
	tail := st.Tail(j)
	w.next = st.Apply(j, tail, &w.changes)
	// The events of the sessions the write replaces, as they are after it.
	// Sessions are windows of the key's events in event order, so each
	// session's events are one run of them; a session met in two runs
	// (which the assembler does not produce) is joined in a copy.
	kept := w.next.Events[len(st.Events)-len(tail):]
	members := map[string][]session.Stored{}
	for i := 0; i < len(kept); {
		id, j := kept[i].SessionID, i+1
		for j < len(kept) && kept[j].SessionID == id {
			j++
		}
		if prev, ok := members[id]; ok {
			members[id] = append(slices.Clip(prev), kept[i:j]...)
		} else {
			members[id] = kept[i:j:j]
		}
		i = j
	}
	live := map[string]bool{}
	for _, d := range w.sessions {
		evs := members[d.ID]
		if len(evs) != d.Events {
			return fmt.Errorf("elasticsearch: session %s counts %d events, the update holds %d of them", refs.Doc("", docID(d.Tenant, d.ID)), d.Events, len(evs))
		}
		w.overText(evs, maxText, rejected)
		d.fill(evs)
		live[d.ID] = true
	}
	for id := range members {
		if !live[id] {
			return fmt.Errorf("elasticsearch: events of key %s belong to session %s, which the update does not write", refs.Doc("", st.id), refs.Doc("", docID(st.Tenant, id)))
		}
	}
	// The sessions before from, then the recomputed ones (sorted, and
	// none starts before sessions[from]): sorted already, but for a key
	// whose stored sessions the assembler did not produce.
	w.after = make([]sessionRef, 0, w.from+len(w.changes.Sessions))
	w.after = append(w.after, st.sessions[:w.from]...)
	// Each recomputed session is written (w.sessions), with its end.
	ends := make(map[string]time.Time, len(w.sessions))
	for _, d := range w.sessions {
		ends[d.ID] = d.WindowEndsAt
	}
	for _, h := range w.changes.Sessions {
		w.after = append(w.after, sessionRef{ID: h.ID, Start: h.Start, End: ends[h.ID], Policy: w.policy})
	}
	if !slices.IsSortedFunc(w.after, compareRefs) {
		slices.SortFunc(w.after, compareRefs)
	}
	for _, refs := range [2][]sessionRef{st.sessions[w.from:], st.retired} {
		for _, ref := range refs {
			if !slices.ContainsFunc(w.after[w.from:], func(a sessionRef) bool { return sameDoc(a, ref) }) &&
				!slices.ContainsFunc(w.deletes, func(a sessionRef) bool { return sameDoc(a, ref) }) {
				w.deletes = append(w.deletes, ref)
			}
		}
	}
	return nil
}

// overText rejects the new messages of evs, a session's events, that would
// take the session's text past maxText: the session document holds every
// message's text (the "messages" field), and each write of the session
// sends it whole, so a session without a bound would grow until every
// update of it is slow and its document is over what one request may carry
// (http.max_content_length). Stored messages are kept, whatever their
// size: they count first, then the new ones in event order. A session
// under the bound, nearly all, costs one pass over its events.
func (w *keyWrite) overText(evs []session.Stored, maxText int, rejected map[event.Ref]string) {
	total := 0
	for i := range evs {
		total += textBytes(evs[i].Event)
	}
	if total <= maxText {
		return
	}
	stored := make(map[event.Ref]bool, len(w.st.Events))
	for i := range w.st.Events {
		stored[w.st.Events[i].Ref()] = true
	}
	total = 0
	for i := range evs {
		if stored[evs[i].Ref()] {
			total += textBytes(evs[i].Event)
		}
	}
	reason := fmt.Sprintf("the message would take its session's text past %d bytes (session_text_max_bytes): "+
		"the session goes on without it", maxText)
	for i := range evs {
		n := textBytes(evs[i].Event)
		if n == 0 || stored[evs[i].Ref()] {
			continue
		}
		if total+n > maxText {
			rejected[evs[i].Ref()] = reason
			continue
		}
		total += n
	}
}

// textBytes is how much of a session document's "messages" field the
// event makes (sessionDoc.appendJSON).
func textBytes(e *event.Event) int {
	if e.Type != event.TypeMessage {
		return 0
	}
	return len(e.Text)
}

// claim is step 1: every changed key's document, conditional on the version
// the writer holds.
func (s *Store) claim(ctx context.Context, writes []*keyWrite) error {
	// A state lent by an earlier write of the key is claimed after that
	// write ended, conditional on the version it left, or, when that
	// write hands the key over (early), once its claim was answered,
	// conditional on that claim.
	for _, w := range writes {
		if !w.early {
			if err := w.st.await(ctx); err != nil {
				return err
			}
			continue
		}
		seq, term, err := w.st.after.waitClaim(ctx)
		if err != nil {
			return err
		}
		w.st.seqNo, w.st.primaryTerm = seq, term
	}
	ops := make([]Op, len(writes))
	keys := s.names.keysIndex()
	for i, w := range writes {
		doc := w.doc(s.writer, true)
		if w.st.exists {
			seq, term := w.condition(true)
			ops[i] = Op{Action: Index, Index: keys, ID: w.st.id, IfSeqNo: seq, IfPrimaryTerm: term, Doc: doc}
		} else {
			ops[i] = Op{Action: Create, Index: keys, ID: w.st.id, Doc: doc}
		}
	}
	results, err := s.bulk.Write(ctx, ops)
	if err != nil {
		return fmt.Errorf("claim session keys: %w", err)
	}
	for i, res := range results {
		switch {
		case res.Outcome == Conflict:
			return ErrConflict
		case res.IndexClosed:
			return fmt.Errorf("%w: claim session keys: %s", ErrUnavailable, res.Reason)
		case res.Outcome == Rejected:
			return fmt.Errorf("elasticsearch: key document %s refused: %s", s.docRef(ops[i].Index, ops[i].ID), res.Reason)
		}
		writes[i].flight.claim(res.SeqNo, res.PrimaryTerm)
	}
	return nil
}

// owner is the write and the session or event of an operation of step 2.
type owner struct {
	w     *keyWrite
	sess  string     // a session document's session
	event *event.Ref // an event document's event
}

// writeData is step 2: the session documents and the events. When it
// returns rejected events the attempt is abandoned, and what it wrote of
// new events is rolled back first (rollBack).
func (s *Store) writeData(ctx context.Context, r *reader, writes []*keyWrite) (map[event.Ref]string, error) {
	nsess, nevents := 0, 0
	for _, w := range writes {
		nsess += len(w.sessions)
		nevents += len(w.changes.Events)
	}
	ops := make([]Op, 0, nsess+nevents)
	owners := make([]owner, 0, nsess+nevents)
	// The event documents and references, one allocation each.
	docs := make([]eventDoc, 0, nevents)
	refs := make([]event.Ref, 0, nevents)
	for _, w := range writes {
		for _, d := range w.sessions {
			ops = append(ops, Op{Action: Index, Index: s.names.sessionsIndex(d.StartedAt), Scoped: true, Tenant: d.Tenant, ID: d.ID, Doc: d, Version: w.gen})
			owners = append(owners, owner{w: w, sess: d.ID})
		}
		for i := range w.changes.Events {
			e := &w.changes.Events[i]
			refs = append(refs, e.Ref())
			docs = append(docs, newEventDoc(e, w.st.Key))
			ops = append(ops, Op{Action: Index, Index: s.names.eventsIndex(e.OccurredAt), Scoped: true, Tenant: e.Tenant, ID: e.EventID, Doc: &docs[len(docs)-1], Version: w.gen})
			owners = append(owners, owner{w: w, event: &refs[len(refs)-1]})
		}
	}
	results, err := s.bulk.Write(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("write sessions and events: %w", err)
	}
	rejected := map[event.Ref]string{}
	var taken []int // new events whose document a version as high holds
	for i, res := range results {
		o := owners[i]
		switch res.Outcome {
		case Conflict:
			if o.event != nil && !o.w.st.holds(*o.event) {
				taken = append(taken, i)
				continue
			}
			return nil, ErrConflict
		case Rejected:
			if o.event != nil {
				rejected[*o.event] = res.Reason
				continue
			}
			// Leave out the new events of a session Elasticsearch
			// refused; stored events cannot be left out. The key is
			// not computed again without new events in this Update
			// (reader.Recompute): its sessions would be refused again.
			r.refused[session.StateID{Tenant: o.w.st.Tenant, Key: o.w.st.Key}] = true
			n := 0
			for _, e := range o.w.changes.Events {
				if e.SessionID == o.sess && !o.w.st.holds(e.Ref()) {
					rejected[e.Ref()] = "its session was rejected: " + res.Reason
					n++
				}
			}
			if n == 0 {
				// A session without new events, rewritten because a new
				// one of the key changed it (its summary, its end) and
				// refused (its month closed, its document too large):
				// the key's new events are left out, as when the key is
				// read back from a closed index, or it would be refused
				// again at every retry and block its partition.
				for _, e := range o.w.changes.Events {
					if _, done := rejected[e.Ref()]; !done && !o.w.st.holds(e.Ref()) {
						rejected[e.Ref()] = "a session of its key was rejected: " + res.Reason
						n++
					}
				}
			}
			if n == 0 {
				return nil, fmt.Errorf("elasticsearch: session %s refused: %s", s.docRef(ops[i].Index, ops[i].docID()), res.Reason)
			}
		}
	}
	if len(taken) > 0 {
		if err := s.settleTaken(ctx, ops, owners, taken, rejected); err != nil {
			return nil, err
		}
	}
	if len(rejected) > 0 {
		// The attempt is abandoned after its keys' sessions were sent:
		// the rerun may compute them again without new events
		// (reader.Recompute).
		for _, w := range writes {
			r.sent[session.StateID{Tenant: w.st.Tenant, Key: w.st.Key}] = true
		}
		if err := s.rollBack(ctx, ops, owners, results); err != nil {
			return nil, err
		}
	}
	return rejected, nil
}

// rollBack deletes the documents of new events, and of sessions the key
// did not have, that an attempt abandoned for rejected events wrote
// (ops[i] whose result is Written), at the
// generation that wrote them and only at it (version_type external_gte:
// Elasticsearch checks a delete's version as it checks an index's, so a
// newer writer's document answers 409 and stays; a document gone answers
// 404: https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-delete.html#delete-versioning).
// A rejected event is dead-lettered and no session counts it: its document
// would show in the conversation and the export, and a later write of its
// key would read it back as stored. Every new event of the attempt goes,
// not only those rejected now: the next attempt, which writes again those
// that stay new at the next generation, may reject more (a key it reads
// back from a closed index). It runs before the attempt's keys are
// released, so no update reads them back in between. Events the key held
// are not the attempt's to delete. One more request, only on this path.
func (s *Store) rollBack(ctx context.Context, ops []Op, owners []owner, results []Result) error {
	var dels []Op
	for i, res := range results {
		o := owners[i]
		if res.Outcome != Written {
			continue
		}
		switch {
		case o.event != nil && !o.w.st.holds(*o.event):
			dels = append(dels, Op{Action: Delete, Index: ops[i].Index, Scoped: true, Tenant: ops[i].Tenant, ID: ops[i].ID, Version: o.w.gen, VersionGTE: true})
		case o.event == nil && !slices.ContainsFunc(slices.Concat(o.w.st.sessions, o.w.st.retired), func(r sessionRef) bool {
			return r.ID == o.sess && s.names.sessionsIndex(r.Start) == ops[i].Index
		}):
			// A session the key did not have (neither listed nor retired
			// by a write that may not have finished, whose document may
			// be the only one listing stored events): it may list
			// rejected events (a new session written beside a refused
			// one).
			dels = append(dels, Op{Action: Delete, Index: ops[i].Index, Scoped: true, Tenant: ops[i].Tenant, ID: ops[i].ID, Version: o.w.gen, VersionGTE: true})
		}
	}
	if len(dels) == 0 {
		return nil
	}
	res, err := s.bulk.Write(ctx, dels)
	if err != nil {
		return fmt.Errorf("delete the documents of an abandoned write: %w", err)
	}
	for i, r := range res {
		switch {
		case r.Outcome == Conflict:
			// A newer generation wrote it. (One gone already is
			// Written: classify.)
		case r.IndexClosed:
			// Closed since it was written: it shows again when the
			// month is opened, as a retired session's document does.
			s.log.Warn("a document of an abandoned write is in a closed index and stays there", zap.String("index", dels[i].Index))
		case r.Outcome == Rejected:
			return fmt.Errorf("elasticsearch: delete %s refused: %s", s.docRef(dels[i].Index, dels[i].docID()), r.Reason)
		}
	}
	return nil
}

// errReusedEventID is the reason of a new event whose document another
// session key of the tenant holds.
const errReusedEventID = "its event_id is stored already under another session key of the tenant (event ids must be unique per tenant)"

// settleTaken judges the new events whose write answered 409 (ops[i] for i
// in taken): their documents hold a version at least this write's
// generation. Every session document was written, so this writer still
// owns its keys. The documents are read by id, in real time (a get sees
// every acknowledged write, refreshed or not:
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-get.html#realtime),
// only in this case, so the common path reads nothing:
//   - the key's document at this write's generation is this write's own:
//     the request was applied and sent again after its answer was lost
//     (an external version must be greater to be applied, so the second
//     copy answered 409);
//   - another key's document means a producer reused the event_id, which
//     the contract forbids: the event is left out (and dead-lettered) with
//     the reason, not retried forever;
//   - anything else (a later generation of the key, a document gone
//     since) means the key changed under the writer: ErrConflict, and the
//     key is read back.
func (s *Store) settleTaken(ctx context.Context, ops []Op, owners []owner, taken []int, rejected map[event.Ref]string) error {
	docs := make([]mgetDoc, len(taken))
	for k, i := range taken {
		docs[k] = mgetDoc{Index: ops[i].Index, ID: ops[i].docID()}
	}
	keys := make([]struct {
		Key string `json:"key"`
	}, len(taken))
	bad := make([]error, len(taken))
	res, err := s.mget(ctx, docs, func(k int, dec *jsontext.Decoder) (err error) {
		bad[k], err = decodeSource(dec, &keys[k])
		return err
	}, "key")
	if err != nil {
		return fmt.Errorf("read the stored documents of new events: %w", err)
	}
	for k, i := range taken {
		o, d := owners[i], &res[k]
		switch {
		case d.Closed:
			rejected[*o.event] = closedIndexReason(docs[k].Index)
		case d.Error != nil:
			return fmt.Errorf("%w: read %s: %s", ErrUnavailable, s.docRef(docs[k].Index, docs[k].ID), d.Error.Type)
		case !d.Found:
			return ErrConflict
		case bad[k] != nil:
			rejected[*o.event] = "its event_id is stored already, in a document that does not decode"
		case keys[k].Key != o.w.st.Key:
			rejected[*o.event] = errReusedEventID
		case d.Version != o.w.gen:
			return ErrConflict
		}
	}
	return nil
}

// holds reports whether the state read holds ref: a stored event.
func (st *keyState) holds(ref event.Ref) bool {
	return slices.ContainsFunc(st.Events, func(e session.Stored) bool { return e.Ref() == ref })
}

// finish is step 3: the sessions that no longer exist, the old documents of
// sessions whose start moved to another month, and the key documents,
// marked done.
func (s *Store) finish(ctx context.Context, writes []*keyWrite) error {
	n := len(writes)
	for _, w := range writes {
		n += len(w.deletes)
	}
	ops := make([]Op, 0, n)
	for _, w := range writes {
		for _, ref := range w.deletes {
			ops = append(ops, Op{Action: Delete, Index: s.names.sessionsIndex(ref.Start), Scoped: true, Tenant: w.st.Tenant, ID: ref.ID, Version: w.gen})
		}
	}
	commits := len(ops)
	keys := s.names.keysIndex()
	for _, w := range writes {
		seq, term := w.condition(false)
		ops = append(ops, Op{Action: Index, Index: keys, ID: w.st.id, IfSeqNo: seq, IfPrimaryTerm: term, Doc: w.doc(s.writer, false)})
	}
	results, err := s.bulk.Write(ctx, ops)
	if err != nil {
		return fmt.Errorf("delete sessions, release keys: %w", err)
	}
	for i, res := range results {
		switch {
		case res.Outcome == Conflict:
			return ErrConflict
		case res.IndexClosed && i >= commits:
			return fmt.Errorf("%w: release session keys: %s", ErrUnavailable, res.Reason)
		case res.IndexClosed:
			// A retired session's document in a closed month stays there
			// (it shows again when the month is opened, beside the session
			// that replaced it) rather than block the partition until then.
			s.log.Warn("a retired session's document is in a closed index and stays there", zap.String("index", ops[i].Index))
		case res.Outcome == Rejected:
			return fmt.Errorf("elasticsearch: %s refused: %s", s.docRef(ops[i].Index, ops[i].docID()), res.Reason)
		}
		if i >= commits {
			writes[i-commits].st.seqNo, writes[i-commits].st.primaryTerm = res.SeqNo, res.PrimaryTerm
		}
	}
	return nil
}

// condition is the if_seq_no and if_primary_term of the claim (pending)
// or the finish of the key document: the version the key's state holds.
func (w *keyWrite) condition(pending bool) (seqNo, primaryTerm *int64) {
	c := &w.conds[1]
	if pending {
		c = &w.conds[0]
	}
	c[0], c[1] = w.st.seqNo, w.st.primaryTerm
	return &c[0], &c[1]
}

// doc is the key's document after the write: claimed (pending) or done.
func (w *keyWrite) doc(writer string, pending bool) *keyDoc {
	d := &w.docs[0]
	if !pending {
		d = &w.docs[1]
	}
	*d = keyDoc{Tenant: w.st.Tenant, Key: w.st.Key, UpdatedAt: time.Now().UTC(), Gen: w.gen, Writer: writer,
		Pending: pending, Sessions: w.after, Retired: w.deletes}
	return d
}
