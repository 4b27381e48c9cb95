package api

import (
	"bytes"
	"time"
	"unicode/utf8"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
)

// jsonlEncoder writes one line per session: the object GET /sessions/{id}
// returns. The events are copied from their stored JSON into the views
// (storedEvent) instead of being decoded and encoded again, which was a
// third of the export's CPU (docs/performance.md).
type jsonlEncoder struct {
	now time.Time
	// The session's messages and other events, as they are appended: the
	// line lists all messages first.
	messages, events []byte
}

func (j *jsonlEncoder) Append(b []byte, d *report.StoredDetail) ([]byte, error) {
	b, err := appendSessionFields(b, &d.Session, j.now)
	if err != nil {
		return b, err
	}
	j.messages, j.events = j.messages[:0], j.events[:0]
	for _, body := range d.Events {
		if err := j.add(body); err != nil {
			return b, err
		}
	}
	b = append(b, `,"messages":[`...)
	b = append(b, j.messages...)
	b = append(b, `],"events":[`...)
	b = append(b, j.events...)
	return append(b, "]}\n"...), nil
}

// add appends the view of a stored event to the messages or the events.
func (j *jsonlEncoder) add(body []byte) error {
	var se storedEvent
	if se.read(body) {
		if se.isMessage() {
			j.messages = se.appendMessage(comma(j.messages))
		} else {
			j.events = se.appendTimelineEvent(comma(j.events))
		}
		return nil
	}
	e, err := report.DecodeEvent(body)
	if err != nil {
		return err
	}
	if e.Type == event.TypeMessage {
		j.messages = appendMessage(comma(j.messages), &e)
	} else {
		j.events = appendTimelineEvent(comma(j.events), &e)
	}
	return nil
}

// comma separates an element from those before it.
func comma(b []byte) []byte {
	if len(b) > 0 {
		b = append(b, ',')
	}
	return b
}

// storedEvent is an event's stored JSON (encoding/json's encoding of the
// event the decoder returned) read for its views: where each member's value
// is. read accepts only what makes copying the stored bytes give exactly
// what decoding the event (report.DecodeEvent) and encoding its view
// (appendMessage, appendTimelineEvent) give:
//
//   - each member once, by its exact name, with the JSON type encoding/json
//     writes for it, and no null (members an Elasticsearch document adds,
//     key and session, are skipped);
//   - every string as encoding/json writes it (canonical: valid UTF-8, its
//     escapes the ones appendString writes), so that its bytes are its
//     encoding;
//   - occurred_at a valid time in UTC as time.Time's MarshalJSON writes a
//     whole millisecond (what the decoder would keep of it);
//   - a message's content_type present: the decoder sets "text" when it is
//     not, but encoding/json, which reads what the decoder rejects, does not;
//   - an info value a string.
//
// Anything else is decoded (TestStoredEventMatchesDecoding holds the two
// ways to the same bytes).
type storedEvent struct {
	body []byte
	// Spans of the members' values in body; absent when end is 0.
	eventID, typ, occurredAt, protocol, author, text, contentType,
	attachments, handoff, tag, info span
}

type span struct{ start, end int }

func (s span) absent() bool { return s.end == 0 }

// topMembers are the members of a stored event, and the kind of each
// value: '"' a string, '{' an object, '[' an array.
var topMembers = map[string]struct {
	kind byte
	bit  uint32
}{
	"event_id": {'"', 1 << 0}, "type": {'"', 1 << 1}, "occurred_at": {'"', 1 << 2}, "tenant": {'"', 1 << 3},
	"channel": {'"', 1 << 4}, "contact": {'{', 1 << 5}, "session_id": {'"', 1 << 6}, "protocol": {'"', 1 << 7},
	"author": {'{', 1 << 8}, "text": {'"', 1 << 9}, "content_type": {'"', 1 << 10}, "attachments": {'[', 1 << 11},
	"handoff": {'{', 1 << 12}, "tag": {'"', 1 << 13}, "info": {'{', 1 << 14},
	// An Elasticsearch event document's own members.
	"key": {'"', 1 << 15}, "session": {'"', 1 << 16},
}

// read finds the members of body, and reports whether its bytes can be
// copied.
func (se *storedEvent) read(body []byte) bool {
	se.body = body
	var seen uint32
	end, ok := members(body, skipSpace(body, 0), func(name []byte, v span, plain bool) bool {
		m, known := topMembers[string(name)]
		if !known || seen&m.bit != 0 || body[v.start] != m.kind || m.kind == '"' && !plain {
			return false
		}
		seen |= m.bit
		switch string(name) {
		case "event_id":
			se.eventID = v
		case "type":
			se.typ = v
		case "occurred_at":
			se.occurredAt = v
		case "protocol":
			se.protocol = v
		case "text":
			se.text = v
		case "content_type":
			se.contentType = v
		case "tag":
			se.tag = v
		case "contact":
			return stringMembers(body, v, "id", "phone", "name")
		case "author":
			se.author = v
			return stringMembers(body, v, "role", "id", "name")
		case "info":
			se.info = v
			return stringMembers(body, v, "key", "value")
		case "handoff":
			se.handoff = v
			return validHandoff(body, v)
		case "attachments":
			se.attachments = v
			_, ok := elements(body, v.start, func(a span) bool {
				return body[a.start] == '{' && stringMembers(body, a, "url", "mime_type", "name")
			})
			return ok
		}
		return true
	})
	if !ok || skipSpace(body, end) != len(body) || se.eventID.absent() || se.typ.absent() || se.occurredAt.absent() {
		return false
	}
	if se.isMessage() && (se.contentType.absent() || se.contentType.end-se.contentType.start == 2) {
		return false
	}
	return canonicalTime(body[se.occurredAt.start+1 : se.occurredAt.end-1])
}

func (se *storedEvent) isMessage() bool {
	return string(se.raw(se.typ)) == `"`+string(event.TypeMessage)+`"`
}

// raw is the bytes of v's value.
func (se *storedEvent) raw(v span) []byte { return se.body[v.start:v.end] }

// appendMessage appends the event as appendMessage appends it decoded.
func (se *storedEvent) appendMessage(b []byte) []byte {
	b = appendKey(b, '{', "event_id")
	b = append(b, se.raw(se.eventID)...)
	b = appendKey(b, ',', "occurred_at")
	b = append(b, se.raw(se.occurredAt)...)
	b = appendKey(b, ',', "author")
	b = appendKey(b, '{', "role")
	role, id, name := se.find(se.author, "role"), se.find(se.author, "id"), se.find(se.author, "name")
	b = se.appendStr(b, role)
	b = appendKey(b, ',', "id")
	b = se.appendOrNull(b, id)
	b = appendKey(b, ',', "name")
	b = se.appendOrNull(b, name)
	b = append(b, '}')
	b = appendKey(b, ',', "text")
	b = se.appendStr(b, se.text)
	b = appendKey(b, ',', "content_type")
	b = append(b, se.raw(se.contentType)...)
	b = appendKey(b, ',', "attachments")
	b = append(b, '[')
	if !se.attachments.absent() {
		first := true
		elements(se.body, se.attachments.start, func(a span) bool {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendKey(b, '{', "url")
			b = se.appendStr(b, se.find(a, "url"))
			b = appendKey(b, ',', "mime_type")
			b = se.appendOrNull(b, se.find(a, "mime_type"))
			b = appendKey(b, ',', "name")
			b = se.appendOrNull(b, se.find(a, "name"))
			b = append(b, '}')
			return true
		})
	}
	b = append(b, ']')
	b = appendKey(b, ',', "protocol")
	b = se.appendOrNull(b, se.protocol)
	return append(b, '}')
}

// appendTimelineEvent appends the event as appendTimelineEvent appends it
// decoded.
func (se *storedEvent) appendTimelineEvent(b []byte) []byte {
	b = appendKey(b, '{', "event_id")
	b = append(b, se.raw(se.eventID)...)
	b = appendKey(b, ',', "occurred_at")
	b = append(b, se.raw(se.occurredAt)...)
	b = appendKey(b, ',', "type")
	b = append(b, se.raw(se.typ)...)
	b = appendKey(b, ',', "protocol")
	b = se.appendOrNull(b, se.protocol)
	switch typ := se.raw(se.typ); string(typ[1 : len(typ)-1]) {
	case string(event.TypeHandoff):
		if h := se.handoff; !h.absent() {
			b = appendKey(b, ',', "handoff")
			b = appendKey(b, '{', "action")
			b = se.appendStr(b, se.find(h, "action"))
			b = appendKey(b, ',', "queue")
			b = se.appendOrNull(b, se.find(h, "queue"))
			b = appendKey(b, ',', "agent")
			if a := se.find(h, "agent"); a.absent() {
				b = append(b, "null"...)
			} else {
				b = appendKey(b, '{', "id")
				b = se.appendStr(b, se.find(a, "id"))
				b = appendKey(b, ',', "name")
				b = se.appendOrNull(b, se.find(a, "name"))
				b = append(b, '}')
			}
			b = appendKey(b, ',', "reason")
			b = se.appendOrNull(b, se.find(h, "reason"))
			b = appendKey(b, ',', "status")
			b = se.appendOrNull(b, se.find(h, "status"))
			b = append(b, '}')
		}
	case string(event.TypeTag):
		b = appendKey(b, ',', "tag")
		b = se.appendStr(b, se.tag)
	case string(event.TypeInfo):
		if in := se.info; !in.absent() {
			b = appendKey(b, ',', "info")
			b = appendKey(b, '{', "key")
			b = se.appendStr(b, se.find(in, "key"))
			b = appendKey(b, ',', "value")
			b = se.appendStr(b, se.find(in, "value"))
			b = append(b, '}')
		}
	}
	return append(b, '}')
}

// appendStr appends a string member, "" when absent.
func (se *storedEvent) appendStr(b []byte, v span) []byte {
	if v.absent() {
		return append(b, `""`...)
	}
	return append(b, se.raw(v)...)
}

// appendOrNull appends a string member, null when absent or empty (orNull).
func (se *storedEvent) appendOrNull(b []byte, v span) []byte {
	if v.absent() || v.end-v.start == 2 {
		return append(b, "null"...)
	}
	return append(b, se.raw(v)...)
}

// find is the value of the member name of the object obj (read already).
func (se *storedEvent) find(obj span, name string) span {
	var out span
	if obj.absent() {
		return out
	}
	members(se.body, obj.start, func(n []byte, v span, _ bool) bool {
		if string(n) == name {
			out = v
			return false
		}
		return true
	})
	return out
}

// validHandoff: a handoff's members are strings but its agent, an object
// of strings.
func validHandoff(body []byte, h span) bool {
	var seen uint32
	_, ok := members(body, h.start, func(name []byte, v span, plain bool) bool {
		var bit uint32
		switch string(name) {
		case "action":
			bit = 1
		case "queue":
			bit = 2
		case "reason":
			bit = 4
		case "status":
			bit = 8
		case "agent":
			if seen&16 != 0 || body[v.start] != '{' {
				return false
			}
			seen |= 16
			return stringMembers(body, v, "id", "name")
		default:
			return false
		}
		if seen&bit != 0 || body[v.start] != '"' || !plain {
			return false
		}
		seen |= bit
		return true
	})
	return ok
}

// stringMembers reports whether the object obj holds only canonical
// strings, each under one of names at most once.
func stringMembers(body []byte, obj span, names ...string) bool {
	var seen uint32
	_, ok := members(body, obj.start, func(name []byte, v span, plain bool) bool {
		i := 0
		for i < len(names) && names[i] != string(name) {
			i++
		}
		if i == len(names) || seen&(1<<i) != 0 || body[v.start] != '"' || !plain {
			return false
		}
		seen |= 1 << i
		return true
	})
	return ok
}

// members reads the object that starts at b[i] and calls fn with each
// member's name (which must hold no escape), value and, for a string,
// whether it is canonical. It returns where the object ends, and false
// when the object is not valid JSON or fn returned false.
func members(b []byte, i int, fn func(name []byte, v span, plain bool) bool) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		end, plain, ok := str(b, i)
		if !ok || !plain || bytes.IndexByte(b[i+1:end-1], '\\') >= 0 {
			return i, false
		}
		name := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		i = skipSpace(b, i+1)
		v := span{start: i}
		if v.end, plain, ok = value(b, i); !ok || !fn(name, v, plain) {
			return i, false
		}
		i = skipSpace(b, v.end)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// elements calls fn with each element of the array that starts at b[i],
// until it returns false. It returns where the array ends, and false when
// it is not valid JSON or fn returned false.
func elements(b []byte, i int, fn func(v span) bool) (int, bool) {
	if i >= len(b) || b[i] != '[' {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		v := span{start: i}
		var ok bool
		if v.end, _, ok = value(b, i); !ok || !fn(v) {
			return i, false
		}
		i = skipSpace(b, v.end)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// value reads the value at b[i] and returns where it ends. Only strings,
// objects and arrays are read: null, numbers and booleans never appear
// where a stored event can be copied. plain tells whether a string is
// canonical.
func value(b []byte, i int) (end int, plain, ok bool) {
	if i >= len(b) {
		return i, false, false
	}
	switch b[i] {
	case '"':
		return str(b, i)
	case '{':
		end, ok = members(b, i, func([]byte, span, bool) bool { return true })
		return end, false, ok
	case '[':
		end, ok = elements(b, i, func(span) bool { return true })
		return end, false, ok
	}
	return i, false, false
}

// str reads the string at b[i] (a quote) and returns where it ends, and
// whether it is canonical: exactly the bytes appendString writes for its
// value.
func str(b []byte, i int) (end int, plain, ok bool) {
	plain = true
	for j := i + 1; j < len(b); {
		c := b[j]
		switch {
		case c == '"':
			return j + 1, plain, true
		case c < 0x20:
			return j, false, false
		case c == '\\':
			n, canonical := escape(b[j:])
			if n == 0 {
				return j, false, false
			}
			plain = plain && canonical
			j += n
		case c == '<' || c == '>' || c == '&':
			plain = false
			j++
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				plain = false
			}
			j += size
		}
	}
	return len(b), false, false
}

// escape reads the escape at the start of b and returns its length (0 when
// it is not valid JSON), and whether appendString writes it.
func escape(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	switch b[1] {
	case '"', '\\', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case '/':
		return 2, false
	case 'u':
	default:
		return 0, false
	}
	if len(b) < 6 {
		return 0, false
	}
	code, lower := 0, true
	for _, c := range b[2:6] {
		switch {
		case c >= '0' && c <= '9':
			code = code<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			code = code<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			code = code<<4 | int(c-'A'+10)
			lower = false
		default:
			return 0, false
		}
	}
	switch code {
	case '\b', '\f', '\n', '\r', '\t':
		return 6, false // written short
	case '<', '>', '&', '\u2028', '\u2029':
		return 6, lower
	}
	return 6, lower && code < 0x20
}

// canonicalTime reports whether s is a valid time as time.Time's
// MarshalJSON writes one in UTC to the millisecond: no trailing zero in
// its fraction, Z for the zone.
func canonicalTime(s []byte) bool {
	const whole = len("2006-01-02T15:04:05")
	switch n := len(s); {
	case n == whole+1:
	case n >= whole+3 && n <= whole+5 && s[whole] == '.' && s[n-2] != '0':
	default:
		return false
	}
	if s[len(s)-1] != 'Z' {
		return false
	}
	_, err := event.ParseTime(string(s))
	return err == nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
