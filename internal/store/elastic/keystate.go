package elastic

import (
	"cmp"
	"slices"
	"strings"
	"time"

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
	// unreadable is why a stored document of the key does not decode
	// (Store.unreadable): its new events are rejected and its state is
	// never cached.
	unreadable string
}

func newKeyState(id session.StateID) *keyState {
	return &keyState{KeyState: session.KeyState{Tenant: id.Tenant, Key: id.Key, Complete: true}, id: keyDocID(id.Tenant, id.Key)}
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
func (st *keyState) anchor(since time.Time) int {
	if j, ok := st.Anchor(since); ok {
		return st.held() + j
	}
	j, _ := slices.BinarySearchFunc(st.sessions[:st.held()], since, func(r sessionRef, t time.Time) int {
		if r.Start.After(t) {
			return 1
		}
		return -1
	})
	return max(j-1, 0)
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
	for _, refs := range [][]sessionRef{st.sessions, st.retired} {
		for i := range refs {
			n += sessionRefSize + len(refs[i].ID)
		}
	}
	return n
}

// Sizes in bytes of heap of what keyState adds to a session.KeyState:
// its other fields, and a sessionRef of its lists (id and start).
const (
	keyStateExtra  = 112
	sessionRefSize = 40
)
