package elastic

import "github.com/chatreport/chatreport/internal/session"

// summaryBytes is about what a session summary held with a key's state
// weighs on the heap beyond the events the state holds anyway (whose
// strings it mostly shares): the struct, its lists and maps. Measured: 4.8
// MiB more live heap for the ~4,400 sessions held after the bench's 100,000
// events.
const summaryBytes = 1100

// summary returns the summary held of session id, or nil.
func (st *keyState) summary(id string) *session.Session {
	for i := range st.summaries {
		if st.summaries[i].ID == id {
			return &st.summaries[i]
		}
	}
	return nil
}

// keepSummaries makes the summaries held those of the sessions whose events
// the state holds (KeyState.Sessions), beside each: the summary the write
// just wrote, else the one held before (none: the zero Session). The
// assembler extends them (session.SummaryHolder) instead of summarising all
// a session's events again (docs/performance.md).
func (st *keyState) keepSummaries(written []*sessionDoc) {
	kept := st.summaries
	if !sameSessions(kept, st.Sessions) {
		kept = make([]session.Session, len(st.Sessions))
		for i, h := range st.Sessions {
			if s := st.summary(h.ID); s != nil {
				kept[i] = *s
			}
		}
	}
	for _, d := range written {
		for i, h := range st.Sessions {
			if h.ID == d.ID {
				kept[i] = d.Session
			}
		}
	}
	st.summaries = kept
}

// sameSessions reports whether summaries are beside sessions already.
func sameSessions(summaries []session.Session, sessions []session.HeldSession) bool {
	if len(summaries) != len(sessions) {
		return false
	}
	for i := range sessions {
		if summaries[i].ID != sessions[i].ID {
			return false
		}
	}
	return true
}

// heldBytes is about what the state's summaries weigh on the heap.
func (st *keyState) heldBytes() int {
	n := 0
	for i := range st.summaries {
		if st.summaries[i].ID != "" {
			n += summaryBytes
		}
	}
	return n
}

// HeldSummary is the summary the writer wrote last of session id, when it
// holds one (session.SummaryHolder). A key read back from the cluster
// holds none until it is written: its session documents are read for
// their event_refs only.
func (r *reader) HeldSummary(tenant, key, id string) *session.Session {
	st := r.states[session.StateID{Tenant: tenant, Key: key}]
	if st == nil || st.unfinished || id == "" {
		return nil
	}
	return st.summary(id)
}

var _ session.SummaryHolder = (*reader)(nil)
