package api

import (
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
	stored           storedEvent
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
	se := &j.stored
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
//   - the members encoding/json writes, by their exact names, in the order
//     it writes them (so each once), with the JSON type it writes for
//     each and no null; an Elasticsearch document's own members (key,
//     session) may follow;
//   - every string as encoding/json writes it (canonical: valid UTF-8, its
//     escapes the ones appendString writes), so that its bytes are its
//     encoding;
//   - occurred_at a valid time in UTC as time.Time's MarshalJSON writes a
//     whole millisecond (what the decoder would keep of it);
//   - a message's content_type present: the decoder sets "text" when it is
//     not, but encoding/json, which reads what the decoder rejects, does not;
//   - an info value a string.
//
// Anything else is decoded (TestStoredEventMatchesDecoding and
// TestStoredEventOddShapes hold the two ways to the same bytes).
type storedEvent struct {
	body []byte
	// Where the members' values are in body; absent when end is 0.
	eventID, typ, occurredAt, protocol, text, contentType, tag span
	author                                                     [3]span // role, id, name
	handoff                                                    [5]span // action, queue, reason, status, and the agent object
	agent                                                      [2]span // id, name
	info                                                       [2]span // key, value
	// attachments holds url, mime_type and name of each attachment.
	attachments         [][3]span
	hasHandoff, hasInfo bool
}

type span struct{ start, end int }

func (s span) absent() bool { return s.end == 0 }

// The members of each object of a stored event, in encoding/json's order,
// each name quoted as encoding/json writes it (members names).
var (
	eventMembers = members("event_id", "type", "occurred_at", "tenant", "channel", "contact", "session_id", "protocol",
		"author", "text", "content_type", "attachments", "handoff", "tag", "info",
		"key", "session") // an Elasticsearch event document's own
	contactMembers    = members("id", "phone", "name")
	authorMembers     = members("role", "id", "name")
	attachmentMembers = members("url", "mime_type", "name")
	handoffMembers    = members("action", "queue", "agent", "reason", "status")
	agentMembers      = members("id", "name")
	infoMembers       = members("key", "value")
)

// members quotes names: a member's name is matched by its bytes, which are
// these exactly when the name is one of them written canonically.
func members(names ...string) []string {
	for i, n := range names {
		names[i] = `"` + n + `"`
	}
	return names
}

// read finds the members of body, and reports whether its bytes can be
// copied.
func (se *storedEvent) read(body []byte) bool {
	*se = storedEvent{body: body, attachments: se.attachments[:0]}
	c := cursor{b: body}
	c.space()
	ok := c.object(eventMembers, func(i int) bool {
		switch i {
		case 0:
			se.eventID = c.str()
		case 1:
			se.typ = c.str()
		case 2:
			se.occurredAt = c.str()
		case 3, 4, 6, 15, 16: // tenant, channel, session_id, key, session
			c.str()
		case 5:
			c.strings(contactMembers, nil)
		case 7:
			se.protocol = c.str()
		case 8:
			c.strings(authorMembers, se.author[:])
		case 9:
			se.text = c.str()
		case 10:
			se.contentType = c.str()
		case 11:
			c.attachments(se)
		case 12:
			se.hasHandoff = true
			c.handoff(se)
		case 13:
			se.tag = c.str()
		case 14:
			se.hasInfo = true
			c.strings(infoMembers, se.info[:])
		default:
			return false
		}
		return c.ok
	})
	c.space()
	if !ok || c.i != len(body) || se.eventID.absent() || se.typ.absent() || se.occurredAt.absent() {
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
	b = se.appendStr(b, se.author[0])
	b = appendKey(b, ',', "id")
	b = se.appendOrNull(b, se.author[1])
	b = appendKey(b, ',', "name")
	b = se.appendOrNull(b, se.author[2])
	b = append(b, '}')
	b = appendKey(b, ',', "text")
	b = se.appendStr(b, se.text)
	b = appendKey(b, ',', "content_type")
	b = append(b, se.raw(se.contentType)...)
	b = appendKey(b, ',', "attachments")
	b = append(b, '[')
	for i, a := range se.attachments {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, '{', "url")
		b = se.appendStr(b, a[0])
		b = appendKey(b, ',', "mime_type")
		b = se.appendOrNull(b, a[1])
		b = appendKey(b, ',', "name")
		b = se.appendOrNull(b, a[2])
		b = append(b, '}')
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
		if se.hasHandoff {
			h := &se.handoff
			b = appendKey(b, ',', "handoff")
			b = appendKey(b, '{', "action")
			b = se.appendStr(b, h[0])
			b = appendKey(b, ',', "queue")
			b = se.appendOrNull(b, h[1])
			b = appendKey(b, ',', "agent")
			if h[2].absent() {
				b = append(b, "null"...)
			} else {
				b = appendKey(b, '{', "id")
				b = se.appendStr(b, se.agent[0])
				b = appendKey(b, ',', "name")
				b = se.appendOrNull(b, se.agent[1])
				b = append(b, '}')
			}
			b = appendKey(b, ',', "reason")
			b = se.appendOrNull(b, h[3])
			b = appendKey(b, ',', "status")
			b = se.appendOrNull(b, h[4])
			b = append(b, '}')
		}
	case string(event.TypeTag):
		b = appendKey(b, ',', "tag")
		b = se.appendStr(b, se.tag)
	case string(event.TypeInfo):
		if se.hasInfo {
			b = appendKey(b, ',', "info")
			b = appendKey(b, '{', "key")
			b = se.appendStr(b, se.info[0])
			b = appendKey(b, ',', "value")
			b = se.appendStr(b, se.info[1])
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

// cursor reads the JSON of a stored event. ok turns false at the first
// thing read cannot copy: invalid JSON, or valid JSON of another shape.
type cursor struct {
	b  []byte
	i  int
	ok bool
}

func (c *cursor) space() {
	for c.i < len(c.b) && (c.b[c.i] == ' ' || c.b[c.i] == '\t' || c.b[c.i] == '\n' || c.b[c.i] == '\r') {
		c.i++
	}
}

// object reads an object whose members are some of names (quoted), in
// their order, each once, calling member with the index of each member's
// name with the cursor at its value, which member must read. It reports
// whether the object was read whole and member never returned false.
func (c *cursor) object(names []string, member func(i int) bool) bool {
	c.ok = c.i < len(c.b) && c.b[c.i] == '{'
	if !c.ok {
		return false
	}
	c.i++
	c.space()
	if c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		return true
	}
	next := 0
	for {
		i := c.name(names, &next)
		if i < 0 {
			c.ok = false
			return false
		}
		c.space()
		if c.i >= len(c.b) || c.b[c.i] != ':' {
			c.ok = false
			return false
		}
		c.i++
		c.space()
		if !member(i) {
			c.ok = false
			return false
		}
		c.space()
		if c.i >= len(c.b) {
			c.ok = false
			return false
		}
		c.i++
		switch c.b[c.i-1] {
		case ',':
			c.space()
		case '}':
			return true
		default:
			c.ok = false
			return false
		}
	}
}

// name reads the name of a member, which must be one of names (quoted) at
// or after *next, and returns its index; *next then moves past it. It
// returns -1 for any other name, and for a name written otherwise (escaped
// characters): comparing the bytes of the quoted names is comparing the
// names, no string being read first.
func (c *cursor) name(names []string, next *int) int {
	rest := c.b[c.i:]
	for i := *next; i < len(names); i++ {
		if n := names[i]; len(rest) >= len(n) && string(rest[:len(n)]) == n {
			*next = i + 1
			c.i += len(n)
			return i
		}
	}
	return -1
}

// strings reads an object of canonical strings named by names, in their
// order, and records where each is in spans (when not nil).
func (c *cursor) strings(names []string, spans []span) {
	if c.i >= len(c.b) || c.b[c.i] != '{' {
		c.ok = false
		return
	}
	c.object(names, func(i int) bool {
		v := c.str()
		if spans != nil {
			spans[i] = v
		}
		return c.ok
	})
}

// attachments reads an array of attachments.
func (c *cursor) attachments(se *storedEvent) {
	if c.i >= len(c.b) || c.b[c.i] != '[' {
		c.ok = false
		return
	}
	c.i++
	c.space()
	if c.i < len(c.b) && c.b[c.i] == ']' {
		c.i++
		return
	}
	for {
		var a [3]span
		c.strings(attachmentMembers, a[:])
		if !c.ok {
			return
		}
		se.attachments = append(se.attachments, a)
		c.space()
		if c.i >= len(c.b) {
			c.ok = false
			return
		}
		c.i++
		switch c.b[c.i-1] {
		case ',':
			c.space()
		case ']':
			return
		default:
			c.ok = false
			return
		}
	}
}

// handoff reads a handoff object.
func (c *cursor) handoff(se *storedEvent) {
	if c.i >= len(c.b) || c.b[c.i] != '{' {
		c.ok = false
		return
	}
	c.object(handoffMembers, func(i int) bool {
		switch i {
		case 2:
			start := c.i
			c.strings(agentMembers, se.agent[:])
			se.handoff[2] = span{start, c.i}
		default:
			se.handoff[i] = c.str()
		}
		return c.ok
	})
}

// str reads a string and returns where it is, quotes included. ok turns
// false unless it is canonical: exactly the bytes appendString writes for
// its value.
func (c *cursor) str() span {
	b, start := c.b, c.i
	if start >= len(b) || b[start] != '"' {
		c.ok = false
		return span{}
	}
	for j := start + 1; j < len(b); {
		// Most bytes are plain ASCII, copied as they are.
		if plainASCII[b[j]] {
			j++
			continue
		}
		switch ch := b[j]; {
		case ch == '"':
			c.i = j + 1
			return span{start, c.i}
		case ch == '\\':
			n := canonicalEscape(b[j:])
			if n == 0 {
				c.ok = false
				return span{}
			}
			j += n
		case ch < utf8.RuneSelf: // control characters, < > &
			c.ok = false
			return span{}
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				c.ok = false
				return span{}
			}
			j += size
		}
	}
	c.ok = false
	return span{}
}

// plainASCII tells the ASCII bytes appendString writes as they are.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// canonicalEscape returns the length of the escape at the start of b when
// appendString writes it, else 0.
func canonicalEscape(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
	default:
		return 0
	}
	if len(b) < 6 {
		return 0
	}
	code := 0
	for _, c := range b[2:6] {
		switch {
		case c >= '0' && c <= '9':
			code = code<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			code = code<<4 | int(c-'a'+10)
		default: // upper case hex digits are not written, and the rest is not JSON
			return 0
		}
	}
	switch {
	case code == '\b' || code == '\f' || code == '\n' || code == '\r' || code == '\t':
		return 0 // written short
	case code < 0x20 || code == '<' || code == '>' || code == '&' || code == '\u2028' || code == '\u2029':
		return 6
	}
	return 0
}

// canonicalTime reports whether s is a valid time as time.Time's
// MarshalJSON writes one in UTC to the millisecond: no trailing zero in
// its fraction, Z for the zone. It checks what event.ParseTime checks of
// such a string (TestCanonicalTimeMatchesParseTime) without building the
// time.
func canonicalTime(s []byte) bool {
	const layout = "dddd-dd-ddTdd:dd:dd"
	switch n := len(s); {
	case n == len(layout)+1:
	case n >= len(layout)+3 && n <= len(layout)+5 && s[len(layout)] == '.' && s[n-2] != '0':
		for _, c := range s[len(layout)+1 : n-1] {
			if c < '0' || c > '9' {
				return false
			}
		}
	default:
		return false
	}
	if s[len(s)-1] != 'Z' {
		return false
	}
	for i := 0; i < len(layout); i++ {
		if (layout[i] == 'd') != (s[i] >= '0' && s[i] <= '9') || layout[i] != 'd' && s[i] != layout[i] {
			return false
		}
	}
	num := func(from, to int) int {
		v := 0
		for _, c := range s[from:to] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	if month < 1 || month > 12 || day < 1 || num(11, 13) > 23 || num(14, 16) > 59 || num(17, 19) > 59 {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days = 29
	}
	return day <= days
}
