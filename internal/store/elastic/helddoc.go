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
	// events are those messages and refs encode, in event order.
	events []heldEvent
	// messages and refs hold, for each event in turn, its member of each
	// array followed by a comma (nothing in messages for an event that is
	// not a message with text).
	messages, refs []byte
}

// heldEvent is an event of a heldDoc: the held copy (KeyState.Apply), which
// nobody changes, so that the same pointer means the same bytes; and where
// its members end in messages and refs, so that a later encoding copies
// them.
type heldEvent struct {
	e              *event.Event
	msgEnd, refEnd uint32
}

// encodeEvents returns the encoded fields of a session whose events are
// evs (in event order), from prev, the session's encoding held (or nil).
// When prev encodes a prefix of evs — the same events, by pointer: the
// usual batch, which adds events after a session's last — the others are
// appended to prev's bytes, in place: prev belongs to a state the update
// took out of the cache, which is put back with the result or dropped.
// Otherwise (a late event among them, events moved out, a restart) the
// members of events prev holds are copied and only the others encoded.
func encodeEvents(prev *heldDoc, evs []session.Stored) *heldDoc {
	if prev != nil && encodesPrefix(prev.events, evs) {
		d := *prev
		for _, st := range evs[len(prev.events):] {
			d.encode(st.Event)
		}
		return &d
	}
	if prev == nil {
		prev = &heldDoc{}
	}
	// One allocation each, of about the size needed: the texts and ids
	// unescaped, and the members' syntax.
	msgs, refs := 0, 0
	for _, st := range evs {
		msgs += len(st.Text) + len(`{"text":""},`)
		refs += len(st.EventID) + len(`"2006.01/",`)
	}
	d := &heldDoc{events: make([]heldEvent, 0, len(evs)), messages: make([]byte, 0, msgs), refs: make([]byte, 0, refs)}
	j := 0
	for _, st := range evs {
		e := st.Event
		for j < len(prev.events) && event.Compare(prev.events[j].e, e) < 0 {
			j++
		}
		if j < len(prev.events) && prev.events[j].e == e {
			var m0, r0 uint32
			if j > 0 {
				m0, r0 = prev.events[j-1].msgEnd, prev.events[j-1].refEnd
			}
			d.messages = append(d.messages, prev.messages[m0:prev.events[j].msgEnd]...)
			d.refs = append(d.refs, prev.refs[r0:prev.events[j].refEnd]...)
			d.events = append(d.events, heldEvent{e, uint32(len(d.messages)), uint32(len(d.refs))})
			j++
			continue
		}
		d.encode(e)
	}
	return d
}

// encode appends e's members.
func (d *heldDoc) encode(e *event.Event) {
	if e.Type == event.TypeMessage && e.Text != "" {
		d.messages = append(d.messages, `{"text":`...)
		d.messages = appendString(d.messages, e.Text)
		d.messages = append(d.messages, '}', ',')
	}
	d.refs = append(d.refs, '"')
	d.refs = appendMonth(d.refs, e.OccurredAt)
	d.refs = append(d.refs, '/')
	d.refs = appendEscaped(d.refs, e.EventID)
	d.refs = append(d.refs, '"', ',')
	d.events = append(d.events, heldEvent{e, uint32(len(d.messages)), uint32(len(d.refs))})
}

// appendMembers appends members (each followed by a comma) as the inside
// of a JSON array: without the last comma.
func appendMembers(b, members []byte) []byte {
	if len(members) == 0 {
		return b
	}
	return append(b, members[:len(members)-1]...)
}

// encodesPrefix reports whether held are the first events of evs.
func encodesPrefix(held []heldEvent, evs []session.Stored) bool {
	if len(held) > len(evs) {
		return false
	}
	for i, h := range held {
		if evs[i].Event != h.e {
			return false
		}
	}
	return true
}

// bytes is what d weighs on the heap beyond the events it points to (the
// state holds those): its encodings and pointers, and the summary roughly.
func (d *heldDoc) bytes() int {
	return cap(d.messages) + cap(d.refs) + 16*cap(d.events) + summaryBytes
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
