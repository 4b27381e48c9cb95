package elastic

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/chatreport/chatreport/internal/session"
)

// keyState is what the writer of a session key knows about it. The events
// it holds and the sessions they belong to are a session.KeyState, as the
// SQLite store's are (docs/sessions.md, "What memory holds"); the rest is
// the key document's: its version and generation, every session it lists,
// and the sessions its last write retired. The writer that owns a key (the
// consumer of its partition) keeps it in a session.StateCache between
// batches; after a restart, a rebalance or an eviction it is read back by
// id (docs/elasticsearch.md, "Write path").
//
// KeyState.Sessions are always the latest of sessions, those whose events
// are held (held() of them); Complete says they are all of them.
type keyState struct {
	session.KeyState
	id string // the key document's id: <tenant>/<key>
	// exists: the key document exists, at seqNo and primaryTerm.
	exists             bool
	seqNo, primaryTerm int64
	// gen is the generation of the key's last write: the external version
	// of every session and event document it wrote.
	gen int64
	// sessions are every session of the key, sorted by (start, id): the
	// key document's list, which each write rewrites whole.
	sessions []sessionRef
	// retired are sessions the last write deleted. A write that did not
	// finish may have left them behind, so a key read back from the
	// cluster reads them too and deletes them again (retiredLoaded); their
	// events are then among KeyState.Events, each with the session its
	// document names.
	retired       []sessionRef
	retiredLoaded bool
	// unfinished: the key was read back from a claim that was never
	// released. Its sessions may not match its events until a write
	// recomputes them, so the batch's events of the key are presented as
	// new, whether or not they were stored.
	unfinished bool
	// after is the write this state is the successor of, when the state
	// was lent to the next update before that write ended (Store.lend):
	// until it ends the key document's seqNo and primaryTerm are not
	// known, and the state holds only if it succeeds.
	after *flight
	// unreadable is why a stored document of the key does not decode
	// (Store.unreadable): its new events are rejected and its state is
	// never cached.
	unreadable string
}

// flight is one update's write of a key, from the moment its plan lends
// the key's successor state to the next update (Store.lend) until the
// write's last request of the key answered (its finish, or its data when
// the key was handed over: Store.handOver): the key document's version it
// left, or why it failed. Its fields are set before done is closed and
// read after.
type flight struct {
	done               chan struct{}
	seqNo, primaryTerm int64
	err                error
	// claimed is closed once the write's claim was answered, with the key
	// document's version it took in claimSeq and claimTerm (claimOK), or
	// when the write ended without one (claimOK false).
	claimed             chan struct{}
	claimSeq, claimTerm int64
	claimOK             bool
	// mayHand: the write deletes no session, so its key can be handed
	// over. Under Store.flightsMu: handed, the next write of the key
	// claims once this write's claim was answered, and this write does
	// not release the key (Store.lend); finishing, this write decided to
	// release it, and the next write claims after the release
	// (Store.handOver).
	mayHand, handed, finishing bool
	// prev is the write of the same key this one followed, while it may
	// still be in flight: a write that fails before its predecessor ends
	// (its context ended) leaves it to be waited for.
	prev *flight
	// update is the number of the Update call that made the write, in
	// the order the calls began (Store.updates).
	update uint64
}

// errLost says that an update planned on a state lent by an earlier write
// of its key, and that write failed or is being redone: what the state says
// is stored may not be. The update runs again on the key read back.
var errLost = errors.New("elasticsearch: an earlier write of a session key this update planned on did not succeed")

// lostError is errLost, naming the Update call whose write failed (its
// number, flight.update): Update does not count the attempt against
// UpdateAttempts when that call began before it.
type lostError struct{ update uint64 }

func (e *lostError) Error() string { return errLost.Error() }
func (e *lostError) Unwrap() error { return errLost }

// newFlight is a write of a key by Update call number update, three
// allocations of its own (the flight and its channels): a successor state
// keeps its flight until it is taken again, which for a key that goes
// quiet is until it is evicted, and must not keep the flights of the rest
// of its update.
func newFlight(update uint64) *flight {
	return &flight{done: make(chan struct{}), claimed: make(chan struct{}), update: update}
}

// claim records the answer to the write's claim: the key document's
// version it took.
func (f *flight) claim(seqNo, primaryTerm int64) {
	f.claimSeq, f.claimTerm, f.claimOK = seqNo, primaryTerm, true
	close(f.claimed)
}

// land records the outcome of the write: the key document's version it
// left, in seqNo and primaryTerm, when err is nil; err otherwise.
func (f *flight) land(err error) {
	f.err = err
	if err == nil {
		f.prev = nil // it ended before this write claimed the key
	}
	if !f.claimOK { // claim did not close it
		close(f.claimed)
	}
	close(f.done)
}

// waitClaim waits for the write's claim to be answered and returns the
// key document's version it took; a *lostError when the write ended
// without it.
func (f *flight) waitClaim(ctx context.Context) (seqNo, primaryTerm int64, err error) {
	select {
	case <-f.claimed:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	if !f.claimOK {
		return 0, 0, &lostError{update: f.update}
	}
	return f.claimSeq, f.claimTerm, nil
}

func (f *flight) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// wait waits for the write to end and returns a *lostError (errLost) when
// it failed.
func (f *flight) wait(ctx context.Context) error {
	select {
	case <-f.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if f.err != nil {
		return &lostError{update: f.update}
	}
	return nil
}

// quiet waits until no request of f, or of the writes before it, can be in
// flight: a read of the key by id may then begin.
func (f *flight) quiet(ctx context.Context) error {
	for ; f != nil; f = f.prev {
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// await waits for the write this state is the successor of, and takes the
// key document's version it left; errLost when it failed.
func (st *keyState) await(ctx context.Context) error {
	if st.after == nil {
		return nil
	}
	if err := st.after.wait(ctx); err != nil {
		return err
	}
	st.seqNo, st.primaryTerm, st.after = st.after.seqNo, st.after.primaryTerm, nil
	return nil
}

// settle makes a state lent by a write that has ended ordinary: its key
// document's version is the write's. It reports false when that write
// failed: the state is not to be used.
func (st *keyState) settle() bool {
	if st.after == nil || !st.after.ended() {
		return true
	}
	if st.after.err != nil {
		return false
	}
	st.seqNo, st.primaryTerm, st.after = st.after.seqNo, st.after.primaryTerm, nil
	return true
}

func newKeyState(id session.StateID) *keyState {
	return &keyState{KeyState: session.KeyState{Tenant: id.Tenant, Key: id.Key, Complete: true}, id: keyDocID(id.Tenant, id.Key)}
}

// sessionRef names a session document: the session and the month of its
// start, which is the monthly index it is in.
type sessionRef struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	// End is when the session's window ended as of its last write
	// (session.Session.WindowEndsAt), under Policy (session.PolicyTag of
	// the key's policy then): an event at or after it starts a session of
	// its own (session.Split) under that policy, so new events from End on
	// need nothing of it (anchor). Zero and empty in lists written before
	// they were kept. The keys template maps sessions with "enabled":
	// false, so members added here need no mapping change ("Elasticsearch
	// skips parsing of the contents of the field entirely":
	// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/enabled.html).
	End    time.Time `json:"end,omitzero"`
	Policy string    `json:"policy,omitempty"`
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

// held is how many of sessions come before those whose events are held.
func (st *keyState) held() int { return len(st.sessions) - len(st.Sessions) }

// hold makes sessions[from:] the sessions whose events are held.
func (st *keyState) hold(from int) {
	st.Sessions = make([]session.HeldSession, 0, len(st.sessions)-from)
	for _, ref := range st.sessions[from:] {
		st.Sessions = append(st.Sessions, session.HeldSession{ID: ref.ID, Start: ref.Start})
	}
	st.Complete = from == 0
}

// anchor is the index in sessions of the first session a key's new events
// from since on can change: the latest session that started at or before
// since (the first when none did). Memory answers it (KeyState.Anchor)
// unless since falls before the sessions held; then the key document's
// list does, and the sessions from the anchor on are read back. An
// explicit session's key is read with the zero since: from its one session.
func (st *keyState) anchor(since time.Time, policy string) int {
	j, ok := st.Anchor(since)
	if ok {
		j += st.held()
	} else {
		j, _ = slices.BinarySearchFunc(st.sessions[:st.held()], since, func(r sessionRef, t time.Time) int {
			if r.Start.After(t) {
				return 1
			}
			return -1
		})
		j = max(j-1, 0)
	}
	if j < len(st.sessions) && st.sessions[j].finishedBy(since, policy) {
		// Its window ended before since: the new events start sessions
		// after it and change nothing of it (a session's summary is its
		// events' alone), so it is neither read back nor rewritten.
		j++
	}
	return j
}

// finishedBy reports whether the session's window ended at or before t,
// as of its last write (End; unknown when zero), under policy: a session
// whose end was computed under another policy (the pipeline changed since)
// is read as before, and recomputed under the new one.
func (r sessionRef) finishedBy(t time.Time, policy string) bool {
	return policy != "" && r.Policy == policy && !r.End.IsZero() && !t.Before(r.End)
}

// tail is the events from sessions[j]'s start on, of sessions[j:] and of
// the retired sessions (a key is read from no later than the earliest
// retired session). The sessions from j on must be held.
func (st *keyState) tail(j int) []session.Stored { return st.Tail(j - st.held()) }

// cost is what the state weighs in the cache, in bytes: KeyState.Cost
// (its events and latest sessions), the key document's id and its list of
// sessions, which a contact that comes back daily for years makes long,
// and the retired sessions.
func (st *keyState) cost() int {
	n := st.Cost() + keyStateExtra + len(st.id)
	if st.after != nil {
		n += flightSize // until the state is taken again
	}
	for _, refs := range [][]sessionRef{st.sessions, st.retired} {
		for i := range refs {
			n += sessionRefSize + len(refs[i].ID) + len(refs[i].Policy)
		}
	}
	return n
}

// Sizes in bytes of heap of what keyState adds to a session.KeyState:
// its other fields, a sessionRef of its lists (id, start and end; the id's
// bytes are counted apart), and the flight of the write it is the
// successor of with its two channels (96 + 2 × 112 as go1.26 allocates
// them).
const (
	keyStateExtra  = 112
	sessionRefSize = int(unsafe.Sizeof(sessionRef{}))
	flightSize     = 320
)
