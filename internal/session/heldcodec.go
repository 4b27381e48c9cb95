package session

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

// The events a StateCache holds of a key are kept in one string, encoded
// (appendHeld) rather than as event structs whose strings point into the
// Kafka messages they were decoded from: a held event then weighs its
// text, its id and a few bytes, instead of the ~260-byte struct, the
// 24-byte Stored and the whole JSON message its strings shared
// (docs/performance.md, "Held events encoded"). Decoding (decodeHeld)
// allocates the structs of all the key's events at once and takes every
// string as a substring of the encoding, so it copies no text.
//
// An event is a flags byte, then its fields. A string is written as
// uvarint(len)+bytes; a string that events of one key usually repeat
// (tenant, channel, contact, session, protocol, author) is written as
// uvarint(0) when it equals the previous event's, else as
// uvarint(len+1)+bytes. The time is the zigzag difference from the
// previous event's in milliseconds, then the nanoseconds past the
// millisecond (none for a validated event: they are kept to the
// millisecond, and the 0 takes a byte).

const (
	heldAuthor = 1 << iota
	heldHandoff
	heldHandoffAgent
	heldInfo
	heldAttachments
)

// heldTypes are the event types by their code; any other type is written
// as a string after the code len(heldTypes).
var heldTypes = [...]event.Type{event.TypeMessage, event.TypeHandoff, event.TypeTag, event.TypeInfo}

var errHeldCorrupt = errors.New("session: held events do not decode")

// heldEncoder appends events to an encoding, each relative to the one
// before.
type heldEncoder struct {
	buf    []byte
	pooled *[]byte // where buf came from (newHeldEncoder)
	prev   Stored
	at     int64
	zero   event.Event
	anon   event.Author
}

func (w *heldEncoder) str(s string) {
	w.buf = binary.AppendUvarint(w.buf, uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// same writes s, or that it equals prev.
func (w *heldEncoder) same(s, prev string) {
	if s == prev {
		w.buf = append(w.buf, 0)
		return
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(len(s))+1)
	w.buf = append(w.buf, s...)
}

func (w *heldEncoder) event(s Stored) {
	e, p := s.Event, w.prev.Event
	if p == nil {
		p = &w.zero
	}
	var flags byte
	if e.Author != nil {
		flags |= heldAuthor
	}
	if e.Handoff != nil {
		flags |= heldHandoff
		if e.Handoff.Agent != nil {
			flags |= heldHandoffAgent
		}
	}
	if e.Info != nil {
		flags |= heldInfo
	}
	if e.Attachments != nil {
		flags |= heldAttachments
	}
	w.buf = append(w.buf, flags)
	code := len(heldTypes)
	for i, t := range heldTypes {
		if e.Type == t {
			code = i
		}
	}
	w.buf = append(w.buf, byte(code))
	if code == len(heldTypes) {
		w.str(string(e.Type))
	}
	at := e.OccurredAt.UnixMilli()
	w.buf = binary.AppendVarint(w.buf, at-w.at)
	w.buf = binary.AppendUvarint(w.buf, uint64(e.OccurredAt.Nanosecond()%int(time.Millisecond)))
	w.at = at
	w.str(e.EventID)
	w.same(s.SessionID, w.prev.SessionID)
	w.same(e.Tenant, p.Tenant)
	w.same(e.Channel, p.Channel)
	w.same(e.Contact.ID, p.Contact.ID)
	w.same(e.Contact.Phone, p.Contact.Phone)
	w.same(e.Contact.Name, p.Contact.Name)
	w.same(e.SessionID, p.SessionID)
	w.same(e.Protocol, p.Protocol)
	w.same(e.ContentType, p.ContentType)
	w.str(e.Text)
	w.str(e.Tag)
	if e.Author != nil {
		pa := p.Author
		if pa == nil {
			pa = &w.anon
		}
		w.same(e.Author.Role, pa.Role)
		w.same(e.Author.ID, pa.ID)
		w.same(e.Author.Name, pa.Name)
	}
	if h := e.Handoff; h != nil {
		w.str(h.Action)
		w.str(h.Queue)
		w.str(h.Reason)
		w.str(h.Status)
		if h.Agent != nil {
			w.str(h.Agent.ID)
			w.str(h.Agent.Name)
		}
	}
	if e.Info != nil {
		w.str(e.Info.Key)
		w.str(e.Info.Value)
	}
	if e.Attachments != nil {
		w.buf = binary.AppendUvarint(w.buf, uint64(len(e.Attachments)))
		for _, a := range e.Attachments {
			w.str(a.URL)
			w.str(a.MIMEType)
			w.str(a.Name)
		}
	}
	w.prev = s
}

// encodeHeld returns the encoding of events (sorted, as KeyState.Events).
func encodeHeld(events []Stored) string {
	w := newHeldEncoder(64 * len(events))
	for _, s := range events {
		w.event(s)
	}
	return w.string()
}

// heldBufs are the encoders' scratch buffers: an encoding is built in one
// and copied once, at its size, into the string the cache holds.
var heldBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledHeld bounds the buffers kept for reuse: a key with far more
// events than usual does not keep its buffer's size alive.
const maxPooledHeld = 256 << 10

func newHeldEncoder(size int) heldEncoder {
	b := heldBufs.Get().(*[]byte)
	return heldEncoder{buf: slices.Grow((*b)[:0], size), pooled: b}
}

// string is the encoding: one copy into a string that nothing changes,
// which the decoded events' strings share. The encoder's buffer goes back
// to the pool.
func (w *heldEncoder) string() string {
	var b strings.Builder
	b.Grow(len(w.buf))
	b.Write(w.buf)
	if w.pooled != nil && cap(w.buf) <= maxPooledHeld {
		*w.pooled = w.buf[:0]
		heldBufs.Put(w.pooled)
	}
	w.buf, w.pooled = nil, nil
	return b.String()
}

// heldDecoder reads an encoding made by heldEncoder.
type heldDecoder struct {
	data string
	off  int
	err  error
}

func (r *heldDecoder) uvarint() uint64 {
	var x uint64
	for shift := 0; r.off < len(r.data) && shift < 64; shift += 7 {
		c := r.data[r.off]
		r.off++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	r.err = errHeldCorrupt
	return 0
}

func (r *heldDecoder) byte() byte {
	if r.off >= len(r.data) {
		r.err = errHeldCorrupt
		return 0
	}
	r.off++
	return r.data[r.off-1]
}

func (r *heldDecoder) take(n uint64) string {
	if n > uint64(len(r.data)-r.off) {
		r.err = errHeldCorrupt
		return ""
	}
	s := r.data[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}

func (r *heldDecoder) str() string { return r.take(r.uvarint()) }

func (r *heldDecoder) same(prev string) string {
	n := r.uvarint()
	if n == 0 {
		return prev
	}
	return r.take(n - 1)
}

// heldSlot is an event decodeHeld decoded, and where its encoding ends in
// the data it was decoded from (for packedEvents.reencode): one allocation
// holds both.
type heldSlot struct {
	event.Event
	end int32
}

// decodeHeld decodes the n events of data, in slots that also say where
// each event's encoding ends.
func decodeHeld(data string, n int) ([]Stored, []heldSlot, error) {
	r := heldDecoder{data: data}
	evs := make([]heldSlot, n)
	out := make([]Stored, n)
	var authors []event.Author
	var zero event.Event
	var anon event.Author
	p, psid := &zero, ""
	var at int64
	for i := range evs {
		e := &evs[i].Event
		flags := r.byte()
		if code := int(r.byte()); code < len(heldTypes) {
			e.Type = heldTypes[code]
		} else {
			e.Type = event.Type(r.str())
		}
		d := r.uvarint()
		at += int64(d>>1) ^ -int64(d&1) // zigzag, as binary.AppendVarint
		sub := r.uvarint()
		e.OccurredAt = time.UnixMilli(at).Add(time.Duration(sub)).UTC()
		e.EventID = r.str()
		sid := r.same(psid)
		e.Tenant = r.same(p.Tenant)
		e.Channel = r.same(p.Channel)
		e.Contact.ID = r.same(p.Contact.ID)
		e.Contact.Phone = r.same(p.Contact.Phone)
		e.Contact.Name = r.same(p.Contact.Name)
		e.SessionID = r.same(p.SessionID)
		e.Protocol = r.same(p.Protocol)
		e.ContentType = r.same(p.ContentType)
		e.Text = r.str()
		e.Tag = r.str()
		if flags&heldAuthor != 0 {
			if authors == nil {
				authors = make([]event.Author, 0, n-i) // never grows: one per event at most
			}
			pa := p.Author
			if pa == nil {
				pa = &anon
			}
			authors = append(authors, event.Author{Role: r.same(pa.Role), ID: r.same(pa.ID), Name: r.same(pa.Name)})
			e.Author = &authors[len(authors)-1]
		}
		if flags&heldHandoff != 0 {
			h := &event.Handoff{Action: r.str(), Queue: r.str(), Reason: r.str(), Status: r.str()}
			if flags&heldHandoffAgent != 0 {
				h.Agent = &event.Agent{ID: r.str(), Name: r.str()}
			}
			e.Handoff = h
		}
		if flags&heldInfo != 0 {
			e.Info = &event.Info{Key: r.str(), Value: r.str()}
		}
		if flags&heldAttachments != 0 {
			k := r.uvarint()
			if k > uint64(len(data)) {
				return nil, nil, errHeldCorrupt
			}
			e.Attachments = make([]event.Attachment, k)
			for j := range e.Attachments {
				e.Attachments[j] = event.Attachment{URL: r.str(), MIMEType: r.str(), Name: r.str()}
			}
		}
		if r.err != nil {
			return nil, nil, r.err
		}
		out[i] = Stored{Event: e, SessionID: sid}
		evs[i].end = int32(r.off)
		p, psid = e, sid
	}
	if r.off != len(data) {
		return nil, nil, errHeldCorrupt
	}
	return out, evs, nil
}
