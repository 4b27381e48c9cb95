package elastic

import "github.com/chatreport/chatreport/internal/session"

// heldSummary is the summary of a session as the writer last wrote it,
// kept with the key's state: the assembler extends it with the session's
// new events (session.SummaryHolder) instead of summarising all its events
// again (docs/performance.md).
type heldSummary struct {
	session.Session
}

// summaryBytes is about what a held summary weighs on the heap beyond the
// events the state holds anyway (whose strings its own mostly are): the
// struct, its lists and maps. Measured: 4.8 MiB more live heap for the
// ~4,400 sessions held after the bench's 100,000 events.
const summaryBytes = 1100

// summary returns the summary held of session id, or nil.
func (st *keyState) summary(id string) *heldSummary {
	for _, s := range st.summaries {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// keepSummaries makes the summaries held those of the sessions whose events
// the state holds (KeyState.Sessions): of each, the summary the write just
// wrote, else the one held before.
func (st *keyState) keepSummaries(written []*sessionDoc) {
	kept := make([]*heldSummary, 0, len(st.Sessions))
	for _, h := range st.Sessions {
		s := st.summary(h.ID)
		for _, d := range written {
			if d.ID == h.ID {
				s = &heldSummary{d.Session}
			}
		}
		if s != nil {
			kept = append(kept, s)
		}
	}
	st.summaries = kept
}

// heldBytes is about what the state's summaries weigh on the heap.
func (st *keyState) heldBytes() int { return summaryBytes * len(st.summaries) }

// HeldSummary is the summary the writer wrote last of session id, when it
// holds one (session.SummaryHolder). A key read back from the cluster
// holds none until it is written: its session documents are read for
// their event_refs only.
func (r *reader) HeldSummary(tenant, key, id string) *session.Session {
	st := r.states[session.StateID{Tenant: tenant, Key: key}]
	if st == nil || st.unfinished {
		return nil
	}
	if s := st.summary(id); s != nil {
		return &s.Session
	}
	return nil
}

var _ session.SummaryHolder = (*reader)(nil)
