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
