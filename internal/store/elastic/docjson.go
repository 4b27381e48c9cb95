package elastic

import (
	"slices"
	"strconv"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/jsonenc"
	"github.com/chatreport/chatreport/internal/session"
)

// The documents of the write path are encoded by hand: encoding/json spent
// a sixth of the ingester's CPU on them (docs/performance.md). Each encoder
// writes exactly what encoding/json writes for the same value with
// SetEscapeHTML(false) — the same members in the same order, the same
// omissions, the same escapes — and TestDocJSONMatchesEncodingJSON holds
// them to it for values whose every field is filled, so a field added to a
// type and not here fails that test.

// jsonAppender is a document that encodes itself.
type jsonAppender interface {
	appendJSON(dst []byte) []byte
}

func (d *eventDoc) appendJSON(b []byte) []byte {
	b = appendEvent(b, d.Event)
	b = b[:len(b)-1] // reopen the event's object
	b = appendMember(b, "key", d.Key)
	b = appendMember(b, "session", d.Session)
	return append(b, '}')
}

func appendEvent(b []byte, e *event.Event) []byte {
	b = append(b, `{"event_id":`...)
	b = appendString(b, e.EventID)
	b = appendMember(b, "type", string(e.Type))
	b = append(b, `,"occurred_at":`...)
	b = appendTime(b, e.OccurredAt)
	b = appendMember(b, "tenant", e.Tenant)
	b = appendMember(b, "channel", e.Channel)
	b = append(b, `,"contact":`...)
	b = appendContact(b, &e.Contact)
	b = appendOptional(b, "session_id", e.SessionID)
	b = appendOptional(b, "protocol", e.Protocol)
	if a := e.Author; a != nil {
		b = append(b, `,"author":{"role":`...)
		b = appendString(b, a.Role)
		b = appendOptional(b, "id", a.ID)
		b = appendOptional(b, "name", a.Name)
		b = append(b, '}')
	}
	b = appendOptional(b, "text", e.Text)
	b = appendOptional(b, "content_type", e.ContentType)
	if len(e.Attachments) > 0 {
		b = append(b, `,"attachments":[`...)
		for i, a := range e.Attachments {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"url":`...)
			b = appendString(b, a.URL)
			b = appendOptional(b, "mime_type", a.MIMEType)
			b = appendOptional(b, "name", a.Name)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if h := e.Handoff; h != nil {
		b = append(b, `,"handoff":{"action":`...)
		b = appendString(b, h.Action)
		b = appendOptional(b, "queue", h.Queue)
		if h.Agent != nil {
			b = append(b, `,"agent":`...)
			b = appendAgent(b, h.Agent)
		}
		b = appendOptional(b, "reason", h.Reason)
		b = appendOptional(b, "status", h.Status)
		b = append(b, '}')
	}
	b = appendOptional(b, "tag", e.Tag)
	if in := e.Info; in != nil {
		b = append(b, `,"info":{"key":`...)
		b = appendString(b, in.Key)
		b = appendMember(b, "value", in.Value)
		b = append(b, '}')
	}
	return append(b, '}')
}

func (d *sessionDoc) appendJSON(b []byte) []byte {
	s := &d.Session
	b = append(b, `{"tenant":`...)
	b = appendString(b, s.Tenant)
	b = appendMember(b, "session_id", s.ID)
	b = appendMember(b, "key", s.Key)
	b = appendMember(b, "channel", s.Channel)
	b = append(b, `,"contact":`...)
	b = appendContact(b, &s.Contact)
	b = append(b, `,"started_at":`...)
	b = appendTime(b, s.StartedAt)
	b = append(b, `,"last_activity_at":`...)
	b = appendTime(b, s.LastActivityAt)
	b = append(b, `,"window_ends_at":`...)
	b = appendTime(b, s.WindowEndsAt)
	b = append(b, `,"protocols":`...)
	b = appendStrings(b, s.Protocols)
	b = append(b, `,"tags":`...)
	b = appendStrings(b, s.Tags)
	b = append(b, `,"info":`...)
	b = appendInfo(b, s.Info)
	b = append(b, `,"handed_off":`...)
	b = strconv.AppendBool(b, s.HandedOff)
	b = append(b, `,"agents":`...)
	b = appendArray(b, s.Agents, appendAgent)
	b = append(b, `,"queues":`...)
	b = appendStrings(b, s.Queues)
	b = append(b, `,"message_counts":{"customer":`...)
	b = strconv.AppendInt(b, int64(s.MessageCounts.Customer), 10)
	b = append(b, `,"bot":`...)
	b = strconv.AppendInt(b, int64(s.MessageCounts.Bot), 10)
	b = append(b, `,"agent":`...)
	b = strconv.AppendInt(b, int64(s.MessageCounts.Agent), 10)
	b = append(b, `},"attendances":`...)
	b = appendArray(b, s.Attendances, appendAttendance)
	b = append(b, `,"events":`...)
	b = strconv.AppendInt(b, int64(s.Events), 10)

	b = append(b, `,"info_keys":`...)
	b = appendStrings(b, d.InfoKeys)
	b = append(b, `,"info_kv":`...)
	b = appendStrings(b, d.InfoKV)
	b = appendOptional(b, "contact_name", d.ContactName)
	b = appendOptional(b, "contact_phone_rev", d.ContactPhoneRev)
	b = append(b, `,"outcomes":`...)
	b = appendStrings(b, d.Outcomes)
	b = append(b, `,"outcomes_at_end":`...)
	b = appendStrings(b, d.OutcomesAtEnd)
	b = append(b, `,"messages":[`...)
	n := 0
	for _, e := range d.events {
		if e.Type == event.TypeMessage && e.Text != "" {
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = append(b, `{"text":`...)
			b = appendString(b, e.Text)
			b = append(b, '}')
		}
	}
	b = append(b, `],"event_refs":[`...)
	for i, e := range d.events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = appendMonth(b, e.OccurredAt)
		b = append(b, '/')
		b = appendEscaped(b, e.EventID)
		b = append(b, '"')
	}
	return append(b, "]}"...)
}

func appendAttendance(b []byte, a *session.Attendance) []byte {
	b = append(b, `{"protocol":`...)
	b = appendString(b, a.Protocol)
	b = append(b, `,"started_at":`...)
	b = appendTime(b, a.StartedAt)
	b = append(b, `,"ended_at":`...)
	b = appendTime(b, a.EndedAt)
	b = appendMember(b, "status", a.Status)
	b = append(b, `,"handed_off":`...)
	b = strconv.AppendBool(b, a.HandedOff)
	b = append(b, `,"tags":`...)
	b = appendStrings(b, a.Tags)
	b = append(b, `,"info":`...)
	b = appendInfo(b, a.Info)
	return append(b, '}')
}

// appendInfo appends additional information as an object, keys sorted.
func appendInfo(b []byte, info map[string]string) []byte {
	if info == nil {
		return append(b, "null"...)
	}
	var buf [8]string // a session has a few keys: sorted without allocating
	keys := buf[:0]
	for k := range info {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, info[k])
	}
	return append(b, '}')
}

func (d *keyDoc) appendJSON(b []byte) []byte {
	b = append(b, `{"tenant":`...)
	b = appendString(b, d.Tenant)
	b = appendMember(b, "key", d.Key)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, d.UpdatedAt)
	b = append(b, `,"gen":`...)
	b = strconv.AppendInt(b, d.Gen, 10)
	b = appendMember(b, "writer", d.Writer)
	if d.Pending {
		b = append(b, `,"pending":true`...)
	}
	b = append(b, `,"sessions":`...)
	b = appendRefs(b, d.Sessions)
	if len(d.Retired) > 0 {
		b = append(b, `,"retired":`...)
		b = appendRefs(b, d.Retired)
	}
	return append(b, '}')
}

func appendRefs(b []byte, refs []sessionRef) []byte { return appendArray(b, refs, appendRef) }

func appendRef(b []byte, r *sessionRef) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"start":`...)
	b = appendTime(b, r.Start)
	if !r.End.IsZero() {
		b = append(b, `,"end":`...)
		b = appendTime(b, r.End)
	}
	if r.Policy != "" {
		b = appendMember(b, "policy", r.Policy)
	}
	return append(b, '}')
}

// appendArray appends xs as a JSON array, each element by each; nil is null.
func appendArray[T any](b []byte, xs []T, each func([]byte, *T) []byte) []byte {
	if xs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = each(b, &xs[i])
	}
	return append(b, ']')
}

func appendContact(b []byte, c *event.Contact) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, c.ID)
	b = appendOptional(b, "phone", c.Phone)
	b = appendOptional(b, "name", c.Name)
	return append(b, '}')
}

func appendAgent(b []byte, a *event.Agent) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, a.ID)
	b = appendOptional(b, "name", a.Name)
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	return appendArray(b, ss, func(b []byte, s *string) []byte { return appendString(b, *s) })
}

// appendMember appends `,"name":"value"`; name needs no escaping.
func appendMember(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

// appendOptional is appendMember for an omitempty field.
func appendOptional(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	return appendMember(b, name, value)
}

// appendTime is time.Time's MarshalJSON: RFC 3339 with the nanoseconds
// that are not zero.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString quotes s as encoding/json does without HTML escaping.
func appendString(b []byte, s string) []byte { return jsonenc.AppendString(b, s, false) }

// appendEscaped is appendString without the quotes.
func appendEscaped(b []byte, s string) []byte { return jsonenc.AppendEscaped(b, s, false) }

// appendMonth appends the month of t as the monthly indices name it
// (monthLayout), by hand for the four-digit years: it runs for every event
// reference of every session document written.
func appendMonth(b []byte, t time.Time) []byte {
	y, m, _ := t.UTC().Date()
	if y < 1000 || y > 9999 {
		return t.UTC().AppendFormat(b, monthLayout)
	}
	return append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10),
		'.', byte('0'+m/10), byte('0'+m%10))
}

// monthLayout is how an index and an event reference name a month.
const monthLayout = "2006.01"
