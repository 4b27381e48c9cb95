package elastic

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// reader is the session.Reader of one attempt of Update. It answers from the
// states of the keys in memory, and reads what is missing by id, which
// Elasticsearch answers in real time: never a search, which sees only what
// a refresh made visible.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-get.html#realtime
type reader struct {
	s *Store
	// rejected are events Elasticsearch refused in an earlier attempt:
	// reported known, so that fn leaves them out.
	rejected map[event.Ref]string
	// sent are the keys of the Update whose sessions and events an earlier
	// attempt sent (step 2) before it was abandoned for refused events, and
	// refused those a session document of which Elasticsearch refused
	// then: Recompute computes again only keys sent and not refused (the
	// others hold no session an attempt of this Update rewrote, or would be
	// refused again).
	sent, refused map[session.StateID]bool
	// recompute are the keys Recompute asked the assembler for: written
	// even when the changes do not name them (Store.plan).
	recompute map[session.StateID]bool
	// keys are the keys this attempt read, each with its state, which the
	// attempt owns until Update puts it back in the cache: one look-up
	// per key where a map per field took three.
	keys map[session.StateID]*readKey
	// fresh are stored events of unfinished keys that Known reported new:
	// KeyEvents leaves them out.
	fresh map[event.Ref]bool
	// lenders are the writes, in flight when their keys were taken, whose
	// successor states this attempt planned on (Store.lend): it holds only
	// if they succeed.
	lenders []*flight
	// update is the number of the Update call (Store.updates).
	update uint64
}

// readKey is a key an attempt read: its state, and what the attempt's
// requests asked of it.
type readKey struct {
	st *keyState
	// known: st is the key's state as memory or its key document has it
	// (a key whose key document's read failed is read again).
	known bool
	// from is the index of the first session KeyEvents returns the
	// events of: the write replaces sessions[from:].
	from int
	// policy is the policy its request named (session.KeyRequest.Policy).
	policy string
	// since is the Since of the key's last request, which the assembler's
	// KeyEvents repeats (session.Prefetcher): once read is set (that
	// request's Prefetch ended without an error), the key's events from
	// there on are held already.
	since time.Time
	read  bool
}

var (
	_ session.Reader     = (*reader)(nil)
	_ session.Prefetcher = (*reader)(nil)
)

func newReader(s *Store, rejected map[event.Ref]string, sent, refused map[session.StateID]bool, update uint64) *reader {
	return &reader{s: s, update: update, rejected: rejected, sent: sent, refused: refused, keys: map[session.StateID]*readKey{},
		fresh: map[event.Ref]bool{}}
}

// Prefetch makes the state of every key from its request's Since on
// available: from memory, or read back with at most three realtime
// requests for the whole batch (key documents, session documents, event
// documents).
func (r *reader) Prefetch(ctx context.Context, reqs []session.KeyRequest) error {
	var fetch []*keyState
	// Keys are taken in one order (see StateCache.Take).
	ids := make([]session.StateID, len(reqs))
	keys := make([]*readKey, len(reqs))
	var block []readKey // the keys new to r, in one allocation
	order := make([]int, len(reqs))
	for i := range reqs {
		ids[i], order[i] = session.StateID{Tenant: reqs[i].Tenant, Key: reqs[i].Key}, i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(strings.Compare(ids[a].Tenant, ids[b].Tenant), strings.Compare(ids[a].Key, ids[b].Key))
	})
	for _, i := range order {
		id := ids[i]
		if k, ok := r.keys[id]; ok {
			keys[i] = k
			if !k.known {
				fetch = append(fetch, k.st) // an earlier read of it failed
			}
			continue
		}
		st, ok, err := r.s.cache.Take(ctx, id)
		if err != nil {
			return err
		}
		var failed *flight
		if ok && !st.settle() {
			// Lent by a write that failed: read back, once the writes
			// it followed ended too.
			ok, failed = false, st.after
		}
		if !ok {
			// The key is read back by id: not while a write of it may
			// be in flight (its state lent, then evicted or dropped).
			// Held and not yet r's, it is let go when the wait ends
			// early, or no later update could take it.
			err := failed.quiet(ctx)
			if err == nil {
				err = r.s.flightOf(id).quiet(ctx)
			}
			if err != nil {
				r.s.cache.Release(id)
				return err
			}
			st = newKeyState(id)
			fetch = append(fetch, st)
		} else if st.after != nil {
			r.lenders = append(r.lenders, st.after)
		}
		if block == nil {
			block = make([]readKey, 0, len(reqs))
		}
		block = append(block, readKey{st: st, from: -1, known: ok})
		keys[i] = &block[len(block)-1]
		r.keys[id] = keys[i]
	}
	if err := r.s.readKeyDocs(ctx, fetch); err != nil {
		return err
	}
	for _, k := range keys {
		k.known = true
	}
	var loads []sessionLoad
	for i, q := range reqs {
		k := keys[i]
		st := k.st
		if q.Policy != "" {
			k.policy = q.Policy
		}
		k.since, k.read = q.Since, false
		j := st.anchor(q.Since, k.policy)
		if len(st.retired) > 0 && !st.retiredLoaded {
			// A write that may not have finished: read from where it
			// started.
			for _, ref := range st.retired {
				j = min(j, st.anchor(ref.Start, k.policy))
			}
		}
		if k.from >= 0 {
			j = min(j, k.from)
		}
		k.from = j
		held := st.held()
		if j >= held && (st.retiredLoaded || len(st.retired) == 0) {
			continue
		}
		// Sessions the lent state does not hold are read back once the
		// write that lent it ended, which may be changing them.
		if err := st.await(ctx); err != nil {
			return err
		}
		from := min(j, held)
		l := sessionLoad{st: st, from: from}
		l.refs = append(l.refs, st.sessions[from:held]...)
		if !st.retiredLoaded {
			l.refs = append(l.refs, st.retired...)
			l.retired = true
		}
		loads = append(loads, l)
	}
	if err := r.s.readSessions(ctx, loads); err != nil {
		return err
	}
	for _, k := range keys {
		k.read = true
	}
	return nil
}

// awaitLenders waits for the writes whose successor states the attempt
// planned on, and returns a *lostError (errLost) when one of them failed.
func (r *reader) awaitLenders(ctx context.Context) error {
	for _, f := range r.lenders {
		if err := f.wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Known reports the events stored already: those among the states read.
// Every event of a key from the Since of its request on belongs to one of
// the sessions read, so a stored event of the batch is always among them.
// The events of an unfinished key are reported new, so that the key is
// computed and written again (KeyEvents then leaves them out). The map
// holds the known refs only: a batch of new events, the usual one, gets an
// empty map, which the assembler's look-ups answer without hashing.
func (r *reader) Known(_ context.Context, refs []event.Ref) (map[event.Ref]bool, error) {
	// The batch's refs are looked up by the states' events, which costs no
	// allocation per stored event.
	asked := make(map[event.Ref]struct{}, len(refs))
	known := map[event.Ref]bool{}
	for _, ref := range refs {
		asked[ref] = struct{}{}
		if _, rejected := r.rejected[ref]; rejected {
			known[ref] = true
		}
	}
	for _, k := range r.keys {
		if k.from < 0 {
			continue // never placed: a Prefetch of it failed, nothing is known
		}
		// Only the tail from the key's anchor on can hold an event of the
		// batch; memory's older sessions need not be looked at.
		tail := k.st.tail(k.from)
		for i := range tail {
			ref := tail[i].Ref()
			if _, ok := asked[ref]; !ok || known[ref] {
				continue
			}
			if k.st.unfinished {
				r.fresh[ref] = true
			} else {
				known[ref] = true
			}
		}
	}
	return known, nil
}

// Recompute reports whether the key was read back unfinished: its sessions
// may count an event a write that did not finish wrote and the store then
// refused (rollBack deleted the event's document, not the sessions that
// list it), so the key is computed and written again even when none of
// its events in the batch is new — all of them refused, say
// (session.Recomputer). The key is then written whatever the assembler
// makes of it (Store.plan): with nothing stored from the request's Since
// on, the write deletes the sessions from there (one the refused event
// opened) and releases the key. Only a key whose sessions an earlier
// attempt of this Update sent is computed again so: another holds no
// session this Update rewrote (a key left unfinished before, whose events
// of the batch were refused before step 2, waits for its next write as
// before). A key a session document of which was refused in this Update,
// or whose documents do not decode, is left as it is: its write would be
// refused again.
func (r *reader) Recompute(tenant, key string) bool {
	id := session.StateID{Tenant: tenant, Key: key}
	var st *keyState
	if k := r.keys[id]; k != nil {
		st = k.st
	}
	if st == nil || !st.unfinished || st.unreadable != "" || !r.sent[id] || r.refused[id] {
		return false
	}
	if r.recompute == nil {
		r.recompute = map[session.StateID]bool{}
	}
	r.recompute[id] = true
	return true
}

// KeyEvents returns the events of the key's sessions from the one since
// falls in on (and of the sessions a past write retired).
func (r *reader) KeyEvents(ctx context.Context, tenant, key string, since time.Time) ([]session.Stored, error) {
	id := session.StateID{Tenant: tenant, Key: key}
	k := r.keys[id]
	if k == nil || !k.read || !k.since.Equal(since) {
		// Not the request a Prefetch read in full (which the assembler
		// repeats, and which would find everything held already).
		var policy string
		if k != nil {
			policy = k.policy
		}
		if err := r.Prefetch(ctx, []session.KeyRequest{{Tenant: tenant, Key: key, Since: since, Policy: policy}}); err != nil {
			return nil, err
		}
		k = r.keys[id]
	}
	tail := k.st.tail(k.from)
	if len(r.fresh) == 0 {
		return tail, nil // read only; the write replaces st.Events
	}
	var out []session.Stored
	for _, e := range tail {
		if !r.fresh[e.Ref()] {
			out = append(out, e)
		}
	}
	return out, nil
}

// keyDocID is the id of a key's document. Ids over Elasticsearch's limit of
// 512 bytes are refused; the event contract keeps keys well under it
// (docs/events.md), and a longer one is hashed rather than never written.
func keyDocID(tenant, key string) string { return docID(tenant, key) }

// mgetDoc is one document of an _mget request.
type mgetDoc struct {
	Index string `json:"_index"`
	ID    string `json:"_id"`
}

// mgetResult is one document of an _mget answer; its source went to the
// decoder mget was given (Sourced).
type mgetResult struct {
	// Closed: the document's index is closed (Found is false).
	Closed      bool
	Found       bool
	Sourced     bool
	Version     int64
	SeqNo       int64
	PrimaryTerm int64
	Error       *causeJSON
}

// maxMget bounds the documents of one _mget request.
const maxMget = 5000

// mget reads docs by id, in real time; with fields, only those fields of
// each document's _source (source filtering: the session documents'
// event_refs, not their messages). Each found document's source is decoded
// by source, given the document's index in docs, straight from the
// answer's stream (decodeSource: a source that does not decode is the
// document's, which source notes, and the answer is read on). An error of
// source is the answer's (the connection cut, the context ended) and is
// ErrUnavailable, as the answer's own errors are. A document of a missing
// index is not found: monthly indices are created by the first write of a
// month and deleted by retention. One of a closed index is Closed, for the
// caller to judge.
func (s *Store) mget(ctx context.Context, docs []mgetDoc, source func(i int, dec *jsontext.Decoder) error, fields ...string) ([]mgetResult, error) {
	out := make([]mgetResult, 0, len(docs))
	var body []byte
	for chunk := range slices.Chunk(docs, maxMget) {
		body = append(body[:0], `{"docs":[`...)
		for i, d := range chunk {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, `{"_index":`...)
			body = appendString(body, d.Index)
			body = append(body, `,"_id":`...)
			body = appendString(body, d.ID)
			body = append(body, '}')
		}
		body = append(body, "]}"...)
		res, err := s.mgetChunk(ctx, body, fields, len(chunk), len(out), source)
		if err != nil {
			return nil, err
		}
		if len(res) != len(chunk) {
			return nil, fmt.Errorf("elasticsearch: _mget answered %d documents of %d", len(res), len(chunk))
		}
		for i := range res {
			d := &res[i]
			if d.Error != nil {
				if d.Error.Type == "index_not_found_exception" {
					d.Found = false
					continue
				}
				if d.Error.Type == indexClosedType {
					d.Found, d.Closed = false, true
					continue
				}
				return nil, fmt.Errorf("%w: get %s: %s: %s", ErrUnavailable, s.docRef(chunk[i].Index, chunk[i].ID), d.Error.Type, redacted(d.Error, s.cfg.RefKey, chunk[i].ID))
			}
			if d.Found && !d.Sourced && source != nil {
				return nil, fmt.Errorf("elasticsearch: _mget answered %s found without its source", s.docRef(chunk[i].Index, chunk[i].ID))
			}
		}
		out = append(out, res...)
	}
	return out, nil
}

// mgetChunk reads the documents of one _mget request, the first of which
// is docs[base] of mget's.
func (s *Store) mgetChunk(ctx context.Context, body []byte, fields []string, n, base int, source func(i int, dec *jsontext.Decoder) error) (docs []mgetResult, err error) {
	var each func(i int, dec *jsontext.Decoder) error
	if source != nil {
		each = func(i int, dec *jsontext.Decoder) error { return source(base+i, dec) }
	}
	err = stream(ctx, s.es, esapi.MgetRequest{Body: bytes.NewReader(body), SourceIncludes: fields}, "_mget", func(dec *jsontext.Decoder) error {
		docs, err = readMgetAnswer(dec, make([]mgetResult, 0, n), each)
		return err
	})
	return docs, err
}

// decodeSource decodes the next value of dec, a document's _source, into
// out. A source that is JSON but not of out's shape (json v2's semantic
// error) is the document's fault, not the answer's: it is skipped whole,
// so that the answer's other documents are read, and returned as bad.
// Elasticsearch keeps a source as it was sent and accepts much the write
// path never writes — any JSON under a mapping with "enabled": false (a key
// document's sessions), one value where an array is expected (a session's
// event_refs), a number as text — so a document another program wrote or
// changed can be valid to Elasticsearch and unreadable here
// (https://www.elastic.co/guide/en/elasticsearch/reference/8.19/array.html,
// .../enabled.html). err is an error of the answer itself: malformed JSON,
// the connection cut.
func decodeSource(dec *jsontext.Decoder, out any) (bad, err error) {
	depth, at := dec.StackDepth(), dec.InputOffset()
	uerr := jsonv2.UnmarshalDecode(dec, out)
	if uerr == nil {
		return nil, nil
	}
	sem := semantic(uerr)
	if sem == nil {
		return nil, uerr
	}
	// json v2 stops where the error is, inside the value or before it.
	if dec.InputOffset() == at {
		if err := dec.SkipValue(); err != nil {
			return nil, err
		}
	}
	for dec.StackDepth() > depth {
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
	}
	// The pointer from the source's root, not the answer's: back at the
	// source's depth, the decoder's pointer is the source's (built only
	// now, on the error: it allocates).
	sem.JSONPointer = jsontext.Pointer(strings.TrimPrefix(string(sem.JSONPointer), string(dec.StackPointer())))
	return uerr, nil
}

// semantic is err's json v2 semantic error, if it has one: a function of
// its own, so that decodeSource allocates nothing for it without an error
// (the variable errors.As is given escapes).
func semantic(err error) *jsonv2.SemanticError {
	var sem *jsonv2.SemanticError
	if errors.As(err, &sem) {
		return sem
	}
	return nil
}

// kindName names a JSON kind in words.
func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case 'n', 'f', 't', '"', '0':
		return k.String()
	}
	return "value"
}

// undecodable is the reason given for the events of a key whose stored
// document ref does not decode (what: "key document", ...). It says where
// in the document and what the store expected there, never the value
// found: a source holds message text, names and phone numbers, and json
// v2's own message may quote them.
func undecodable(what, ref string, err error) string {
	var sem *jsonv2.SemanticError
	why := err.Error()
	if errors.As(err, &sem) {
		why = "JSON " + kindName(sem.JSONKind) + fmt.Sprintf(" at %q", string(sem.JSONPointer))
		if sem.GoType != nil {
			why += " where the store reads " + sem.GoType.String()
		}
	}
	return fmt.Sprintf("the stored %s %s does not decode (%s): the key's new events are refused until it is repaired or removed", what, ref, why)
}

// The documents the write path reads back (key, session and event
// documents, which it wrote itself) are decoded with the json v2 package:
// three times as fast as encoding/json, with a third of its allocations,
// which made the decoding a third of the CPU of a batch after a restart
// (docs/performance.md). TestReadBackDecoding holds the two to the same
// result for the documents' every field.

// readKeyDocs reads the key documents of states that are not in memory.
func (s *Store) readKeyDocs(ctx context.Context, states []*keyState) error {
	if len(states) == 0 {
		return nil
	}
	docs := make([]mgetDoc, len(states))
	for i, st := range states {
		docs[i] = mgetDoc{Index: s.names.keysIndex(), ID: st.id}
	}
	kds := make([]keyDoc, len(states))
	bad := make([]error, len(states))
	res, err := s.mget(ctx, docs, func(i int, dec *jsontext.Decoder) (err error) {
		bad[i], err = decodeSource(dec, &kds[i])
		return err
	})
	if err != nil {
		return fmt.Errorf("read key documents: %w", err)
	}
	for i, st := range states {
		d := &res[i]
		if d.Closed {
			// Every key's state is there: nothing can be written until
			// it is opened again.
			return fmt.Errorf("%w: read key documents: %s", ErrUnavailable, closedIndexReason(docs[i].Index))
		}
		if !d.Found {
			continue
		}
		if bad[i] != nil {
			s.unreadable(st, "key document", s.docRef(docs[i].Index, docs[i].ID), bad[i])
			continue
		}
		kd := &kds[i]
		if kd.Pending && kd.Writer != s.writer && time.Since(kd.UpdatedAt) < s.cfg.ClaimLease {
			return fmt.Errorf("%w: key %s is being written by another writer", ErrConflict, s.docRef(docs[i].Index, st.id))
		}
		st.exists, st.seqNo, st.primaryTerm, st.gen = true, d.SeqNo, d.PrimaryTerm, kd.Gen
		st.unfinished = kd.Pending
		st.sessions, st.retired = kd.Sessions, kd.Retired
		slices.SortFunc(st.sessions, compareRefs)
		st.Complete = len(st.sessions) == 0 // no session's events held yet
	}
	return nil
}

// sessionLoad is a read of sessions of one key: refs, whose events join
// the state's, which then holds the events of st.sessions[from:] (and of the
// retired sessions, with retired).
type sessionLoad struct {
	st      *keyState
	refs    []sessionRef
	from    int
	retired bool
}

// readSessions reads the session documents of loads, then the events they
// list, and adds them to the states. An event listed by no session document
// is not read: it was written by a write that did not finish, and Kafka
// delivers it again. A session document that is missing is one such write
// had not written yet (or retention deleted): its events are those of the
// documents that still list them.
func (s *Store) readSessions(ctx context.Context, loads []sessionLoad) error {
	var docs []mgetDoc
	for _, l := range loads {
		for _, ref := range l.refs {
			docs = append(docs, mgetDoc{Index: s.names.sessionsIndex(ref.Start), ID: docID(l.st.Tenant, ref.ID)})
		}
	}
	if len(docs) == 0 {
		for _, l := range loads {
			l.loaded()
		}
		return nil
	}
	type refsDoc struct {
		EventRefs []string `json:"event_refs"`
	}
	sds := make([]refsDoc, len(docs))
	bad := make([]error, len(docs))
	res, err := s.mget(ctx, docs, func(i int, dec *jsontext.Decoder) (err error) {
		bad[i], err = decodeSource(dec, &sds[i])
		return err
	}, "event_refs")
	if err != nil {
		return fmt.Errorf("read session documents: %w", err)
	}
	var evDocs []mgetDoc
	var owners []*keyState
	indices := map[string]string{} // by month: the name built once
	k := 0
	for _, l := range loads {
		firstRetired := len(l.refs)
		if l.retired {
			firstRetired -= len(l.st.retired)
		}
		for i := range l.refs {
			d := &res[k]
			k++
			if d.Closed {
				s.closedIndex(l.st, docs[k-1].Index)
			}
			if !d.Found || l.st.unreadable != "" {
				continue
			}
			if bad[k-1] != nil {
				s.unreadable(l.st, "session document", s.docRef(docs[k-1].Index, docs[k-1].ID), bad[k-1])
				continue
			}
			if i >= firstRetired {
				// The write that retired it did not finish: its key
				// document may say done (the delete failed in the
				// request that released the claim).
				l.st.unfinished = true
			}
			n := len(evDocs)
			for _, er := range sds[k-1].EventRefs {
				m, id, ok := strings.Cut(er, "/")
				if !ok {
					s.unreadable(l.st, "session document", s.docRef(docs[k-1].Index, docs[k-1].ID), errBadEventRef)
					evDocs, owners = evDocs[:n], owners[:n]
					break
				}
				index, ok := indices[m]
				if !ok {
					index = s.names.eventsAll() + "-" + m
					indices[m] = index
				}
				evDocs = append(evDocs, mgetDoc{Index: index, ID: docID(l.st.Tenant, id)})
				owners = append(owners, l.st)
			}
		}
	}
	eds := make([]eventDoc, len(evDocs))
	bad = make([]error, len(evDocs))
	evs, err := s.mget(ctx, evDocs, func(i int, dec *jsontext.Decoder) (err error) {
		bad[i], err = decodeSource(dec, &eds[i])
		return err
	})
	if err != nil {
		return fmt.Errorf("read event documents: %w", err)
	}
	// An event is stored under the session its document names: that is
	// what the report reads. A write that did not finish may have left it
	// listed by another session document too; the recomputation puts it
	// right.
	got := map[*keyState]map[event.Ref]session.Stored{}
	for i := range evs {
		st := owners[i]
		if evs[i].Closed {
			s.closedIndex(st, evDocs[i].Index)
		}
		if !evs[i].Found || st.unreadable != "" {
			continue
		}
		ed := &eds[i]
		if bad[i] == nil && ed.Event == nil {
			bad[i] = errNoEvent
		}
		if bad[i] != nil {
			s.unreadable(st, "event document", s.docRef(evDocs[i].Index, evDocs[i].ID), bad[i])
			continue
		}
		if ed.Key != st.Key {
			// Another key's event with the same id (a reused event_id,
			// which the contract forbids): not this key's.
			continue
		}
		if got[st] == nil {
			got[st] = map[event.Ref]session.Stored{}
		}
		got[st][ed.Event.Ref()] = session.Stored{Event: ed.Event, SessionID: ed.Session}
	}
	for _, l := range loads {
		st := l.st
		// What memory holds is newer than anything read back.
		for i := range st.Events {
			delete(got[st], st.Events[i].Ref())
		}
		for _, e := range got[st] {
			st.Events = append(st.Events, e)
		}
		slices.SortFunc(st.Events, func(a, b session.Stored) int { return event.Compare(a.Event, b.Event) })
		l.loaded()
	}
	return nil
}

// errBadEventRef: a session document lists an event reference that is not
// "<month>/<event_id>".
var errBadEventRef = errors.New(`an event reference is not "<month>/<event_id>"`)

// unreadable marks st as a key whose stored document ref does not decode:
// its state is not known, so none of its new events can be placed, and they
// are rejected with the reason (keyWrite.refuse), while the batch's other
// keys are written and the batch committed — a document that does not
// decode now will not decode on a retry, and retrying would block the
// partition for good. Logged without the document's content.
func (s *Store) unreadable(st *keyState, what, ref string, err error) {
	if st.unreadable != "" {
		return
	}
	st.unreadable = undecodable(what, ref, err)
	s.log.Warn("a stored document does not decode: the new events of its session key are dead-lettered",
		zap.String("document", ref), zap.String("reason", st.unreadable))
}

// closedIndex marks st as a key whose stored documents are in a closed
// index: as with a document that does not decode (unreadable), its state
// is not known and its new events are rejected, naming the index, while
// the batch's other keys are written; retrying would block the partition
// until an operator opens the index, which may be never (an old month
// closed for good).
func (s *Store) closedIndex(st *keyState, index string) {
	if st.unreadable != "" {
		return
	}
	st.unreadable = closedIndexReason(index) + ": the session key's stored sessions cannot be read, its new events are refused until the index is opened"
	s.log.Warn("a session key's stored documents are in a closed index: its new events are dead-lettered", zap.String("index", index))
}

// loaded records that the state holds what l read: the events of
// st.sessions[l.from:] (and of the retired sessions).
func (l *sessionLoad) loaded() {
	if l.from < l.st.held() {
		l.st.hold(l.from)
	}
	l.st.retiredLoaded = l.st.retiredLoaded || l.retired
}
