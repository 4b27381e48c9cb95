package elastic

import (
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// heldDoc is what the writer keeps of a session document it wrote, beside
// the key's state: the summary, and the two fields made of the session's
// events ("messages" and "event_refs", sessionDoc) encoded, with the events
// they encode. The next batch of a live conversation appends its new
// events' encodings to them, and the assembler extends the summary
// (session.SummaryHolder), instead of escaping every message text and
// summarising every event of the session again (docs/performance.md).
type heldDoc struct {
	id      string
	summary session.Session
	// events are those messages and refs encode, in event order: the
	// held copies (KeyState.Apply), which nobody changes, so that the
	// same pointers mean the same bytes.
	events []*event.Event
	// messages and refs are the members of the two arrays, without the
	// brackets.
	messages, refs []byte
}

// encodeEvents returns the encoded fields of a session whose events are
// evs (in event order). When prev encodes a prefix of evs — the same
// events, by pointer, the usual batch that adds events after a session's
// last — only the others are encoded, appended to prev's bytes; otherwise
// (a late event among them, events moved out, nothing held) all are.
// prev's slices may be appended to in place: prev belongs to a state the
// update took out of the cache, which is put back only with the result,
// or dropped.
func encodeEvents(prev *heldDoc, evs []session.Stored) *heldDoc {
	d := &heldDoc{}
	if prev != nil && encodesPrefix(prev.events, evs) {
		d.events, d.messages, d.refs = prev.events, prev.messages, prev.refs
	} else {
		d.events = make([]*event.Event, 0, len(evs))
	}
	for _, st := range evs[len(d.events):] {
		e := st.Event
		d.events = append(d.events, e)
		if e.Type == event.TypeMessage && e.Text != "" {
			if len(d.messages) > 0 {
				d.messages = append(d.messages, ',')
			}
			d.messages = append(d.messages, `{"text":`...)
			d.messages = appendString(d.messages, e.Text)
			d.messages = append(d.messages, '}')
		}
		if len(d.refs) > 0 {
			d.refs = append(d.refs, ',')
		}
		d.refs = append(d.refs, '"')
		d.refs = appendMonth(d.refs, e.OccurredAt)
		d.refs = append(d.refs, '/')
		d.refs = appendEscaped(d.refs, e.EventID)
		d.refs = append(d.refs, '"')
	}
	return d
}

// encodesPrefix reports whether held are the first events of evs.
func encodesPrefix(held []*event.Event, evs []session.Stored) bool {
	if len(held) > len(evs) {
		return false
	}
	for i, e := range held {
		if evs[i].Event != e {
			return false
		}
	}
	return true
}

// bytes is what d weighs on the heap beyond the events it points to (the
// state holds those): its encodings and pointers, and the summary roughly.
func (d *heldDoc) bytes() int {
	return cap(d.messages) + cap(d.refs) + 8*cap(d.events) + summaryBytes
}

// summaryBytes is about what a held summary weighs: the struct and its
// lists and maps (their strings are mostly the events').
const summaryBytes = 1024

// doc returns the held document of session id, or nil.
func (st *keyState) doc(id string) *heldDoc {
	for _, d := range st.docs {
		if d.id == id {
			return d
		}
	}
	return nil
}

// keepDocs makes the held documents those of the sessions whose events the
// state holds (KeyState.Sessions): written, those the write just wrote,
// else the ones held before.
func (st *keyState) keepDocs(written []*sessionDoc) {
	docs := make([]*heldDoc, 0, len(st.Sessions))
	for _, h := range st.Sessions {
		d := st.doc(h.ID)
		for _, w := range written {
			if w.ID == h.ID {
				d = w.enc
				d.id, d.summary = w.ID, w.Session
			}
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	st.docs = docs
}

// heldBytes is what the state's held documents weigh (heldDoc.bytes).
func (st *keyState) heldBytes() int {
	n := 0
	for _, d := range st.docs {
		n += d.bytes()
	}
	return n
}

// HeldSummary is the summary the writer wrote last of session id, when it
// holds one (session.SummaryHolder). A key read back from the cluster
// holds none: its session documents are read for their event_refs only.
func (r *reader) HeldSummary(tenant, key, id string) *session.Session {
	st := r.states[session.StateID{Tenant: tenant, Key: key}]
	if st == nil || st.unfinished {
		return nil
	}
	if d := st.doc(id); d != nil {
		return &d.summary
	}
	return nil
}

var _ session.SummaryHolder = (*reader)(nil)
