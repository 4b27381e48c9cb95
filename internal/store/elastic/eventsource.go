package elastic

import (
	"reflect"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/chatreport/chatreport/internal/event"
)

// Event documents read back after a restart (readSessions), and the event
// references of their session documents before them, are most of what
// a cold key costs: json v2's reflection over an eventDoc was a sixth of the
// ingester's CPU in the cold phase (docs/performance.md). decodeEventDoc
// (and decodeRefsDoc) read them by hand instead, with json v2's result: the same fields for the
// same names (matched exactly, unknown names ignored), null leaving a field
// at its zero value, a value of another JSON type the document's error (a
// *jsonv2.SemanticError saying where and what was expected, as decodeSource
// gives), occurred_at parsed as time.Time's UnmarshalText parses it.
// TestEventDocDecodingMatchesJSONv2 holds the two to the same result on
// random documents and on every member changed to each kind of JSON value.

// decodeEventDoc decodes the next value of dec, an event document's
// _source, into ed, which must be zero. Like decodeSource: bad is the
// document's fault (the value was read whole and the answer can be read
// on), err the answer's (malformed JSON, the connection cut).
func decodeEventDoc(dec *jsontext.Decoder, ed *eventDoc) (bad, err error) {
	raw, err := dec.ReadValue()
	if err != nil {
		return nil, err
	}
	// One copy of the source: the strings without escapes are substrings
	// of it, so an event costs one allocation for its text and one for
	// itself. The whole source stays alive while any of them does, ~100
	// bytes more than the strings (names, punctuation).
	p := sourceScanner{s: string(raw)}
	switch p.s[0] {
	case 'n':
		return nil, nil // null: nothing, as json v2 reads it (errNoEvent then)
	case '{':
	default:
		return p.wrong("", eventDocType), nil
	}
	return p.eventDoc(ed), nil
}

// sourceScanner reads one JSON value that jsontext has already checked
// (syntax, UTF-8, nesting): it never meets malformed input, so it checks
// only the types of what it reads.
type sourceScanner struct {
	s   string
	i   int
	buf []byte
}

var (
	eventDocType       = reflect.TypeFor[eventDoc]()
	stringType         = reflect.TypeFor[string]()
	typeType           = reflect.TypeFor[event.Type]()
	timeType           = reflect.TypeFor[time.Time]()
	contactType        = reflect.TypeFor[event.Contact]()
	authorType         = reflect.TypeFor[event.Author]()
	handoffType        = reflect.TypeFor[event.Handoff]()
	agentType          = reflect.TypeFor[event.Agent]()
	infoType           = reflect.TypeFor[event.Info]()
	attachmentType     = reflect.TypeFor[event.Attachment]()
	attachmentListType = reflect.TypeFor[[]event.Attachment]()
)

// ws skips white space; at the end of a member or element.
func (p *sourceScanner) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// kind is the JSON kind of the value at p.i, as jsontext names it.
func (p *sourceScanner) kind() jsontext.Kind {
	switch c := p.s[p.i]; c {
	case '"', '{', '[', 'n', 't', 'f':
		return jsontext.Kind(c)
	}
	return '0'
}

// wrong is the error of a value of another JSON type than the field at
// pointer expects (of Go type t).
func (p *sourceScanner) wrong(pointer string, t reflect.Type) error {
	return &jsonv2.SemanticError{JSONPointer: jsontext.Pointer(pointer), JSONKind: p.kind(), GoType: t}
}

// str reads the string at p.i: a substring of the source when it holds no
// escape.
func (p *sourceScanner) str() string {
	start := p.i + 1
	j, escaped := start, false
	for p.s[j] != '"' {
		if p.s[j] == '\\' {
			escaped = true
			j++
		}
		j++
	}
	p.i = j + 1
	if !escaped {
		return p.s[start:j]
	}
	// Checked already: the only error left would be an escaped lone
	// surrogate, which jsontext refuses unless told otherwise.
	p.buf, _ = jsontext.AppendUnquote(p.buf[:0], p.s[start-1:j+1])
	return string(p.buf)
}

// skip passes over the value at p.i.
func (p *sourceScanner) skip() {
	depth := 0
	for {
		p.ws()
		switch p.s[p.i] {
		case '"':
			p.i++
			for p.s[p.i] != '"' {
				if p.s[p.i] == '\\' {
					p.i++
				}
				p.i++
			}
			p.i++
		case '{', '[':
			depth++
			p.i++
		case '}', ']':
			depth--
			p.i++
		case ',', ':':
			p.i++
			continue
		default: // a number or a literal
			for p.i < len(p.s) && !isDelimiter(p.s[p.i]) {
				p.i++
			}
		}
		if depth == 0 {
			return
		}
	}
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// members reads the object at p.i: member is given each name (unescaped)
// with p.i at its value, and must read the value or fail.
func (p *sourceScanner) members(member func(name string) error) error {
	p.i++ // {
	for {
		p.ws()
		switch p.s[p.i] {
		case '}':
			p.i++
			return nil
		case ',':
			p.i++
			p.ws()
		}
		name := p.str()
		p.ws()
		p.i++ // :
		p.ws()
		if err := member(name); err != nil {
			return err
		}
	}
}

// null reads a null at p.i, if there is one.
func (p *sourceScanner) null() bool {
	if p.s[p.i] == 'n' {
		p.i += len("null")
		return true
	}
	return false
}

// string reads a string field.
func (p *sourceScanner) string(dst *string, pointer string) error {
	switch {
	case p.s[p.i] == '"':
		*dst = p.str()
	case p.null():
		*dst = ""
	default:
		return p.wrong(pointer, stringType)
	}
	return nil
}

// object reads an object field of Go type t, each member by member.
func (p *sourceScanner) object(pointer string, t reflect.Type, member func(name string) error) error {
	if p.s[p.i] != '{' {
		return p.wrong(pointer, t)
	}
	return p.members(member)
}

// pointerTo reads an object field held by pointer: null sets it to nil, an
// object is read into *dst (a new value if nil: a repeated name merges, as
// json v2 does).
func pointerTo[T any](p *sourceScanner, dst **T, pointer string, t reflect.Type, member func(v *T, name string) error) error {
	if p.null() {
		*dst = nil
		return nil
	}
	if p.s[p.i] != '{' {
		return p.wrong(pointer, t)
	}
	if *dst == nil {
		*dst = new(T)
	}
	v := *dst
	return p.members(func(name string) error { return member(v, name) })
}

func (p *sourceScanner) eventDoc(ed *eventDoc) error {
	return p.members(func(name string) error {
		switch name {
		case "key":
			return p.string(&ed.Key, "/key")
		case "session":
			return p.string(&ed.Session, "/session")
		}
		if ed.Event == nil {
			if !isEventMember(name) {
				p.skip()
				return nil
			}
			ed.Event = new(event.Event)
		}
		return p.eventMember(ed.Event, name)
	})
}

func isEventMember(name string) bool {
	switch name {
	case "event_id", "type", "occurred_at", "tenant", "channel", "contact", "session_id", "protocol",
		"author", "text", "content_type", "attachments", "handoff", "tag", "info":
		return true
	}
	return false
}

func (p *sourceScanner) eventMember(e *event.Event, name string) error {
	switch name {
	case "event_id":
		return p.string(&e.EventID, "/event_id")
	case "type":
		if k := p.kind(); k != '"' && k != 'n' {
			return p.wrong("/type", typeType)
		}
		return p.string((*string)(&e.Type), "")
	case "occurred_at":
		return p.time(&e.OccurredAt, "/occurred_at")
	case "tenant":
		return p.string(&e.Tenant, "/tenant")
	case "channel":
		return p.string(&e.Channel, "/channel")
	case "contact":
		if p.null() {
			e.Contact = event.Contact{}
			return nil
		}
		c := &e.Contact
		return p.object("/contact", contactType, func(name string) error {
			switch name {
			case "id":
				return p.string(&c.ID, "/contact/id")
			case "phone":
				return p.string(&c.Phone, "/contact/phone")
			case "name":
				return p.string(&c.Name, "/contact/name")
			}
			p.skip()
			return nil
		})
	case "session_id":
		return p.string(&e.SessionID, "/session_id")
	case "protocol":
		return p.string(&e.Protocol, "/protocol")
	case "author":
		return pointerTo(p, &e.Author, "/author", authorType, func(a *event.Author, name string) error {
			switch name {
			case "role":
				return p.string(&a.Role, "/author/role")
			case "id":
				return p.string(&a.ID, "/author/id")
			case "name":
				return p.string(&a.Name, "/author/name")
			}
			p.skip()
			return nil
		})
	case "text":
		return p.string(&e.Text, "/text")
	case "content_type":
		return p.string(&e.ContentType, "/content_type")
	case "attachments":
		return p.attachments(&e.Attachments)
	case "handoff":
		return pointerTo(p, &e.Handoff, "/handoff", handoffType, func(h *event.Handoff, name string) error {
			switch name {
			case "action":
				return p.string(&h.Action, "/handoff/action")
			case "queue":
				return p.string(&h.Queue, "/handoff/queue")
			case "agent":
				return pointerTo(p, &h.Agent, "/handoff/agent", agentType, func(a *event.Agent, name string) error {
					switch name {
					case "id":
						return p.string(&a.ID, "/handoff/agent/id")
					case "name":
						return p.string(&a.Name, "/handoff/agent/name")
					}
					p.skip()
					return nil
				})
			case "reason":
				return p.string(&h.Reason, "/handoff/reason")
			case "status":
				return p.string(&h.Status, "/handoff/status")
			}
			p.skip()
			return nil
		})
	case "tag":
		return p.string(&e.Tag, "/tag")
	case "info":
		return pointerTo(p, &e.Info, "/info", infoType, func(in *event.Info, name string) error {
			switch name {
			case "key":
				return p.string(&in.Key, "/info/key")
			case "value":
				return p.string(&in.Value, "/info/value")
			}
			p.skip()
			return nil
		})
	}
	p.skip()
	return nil
}

// time reads a time as json v2 does by default: time.Time's UnmarshalText
// (RFC 3339) and the checks json v2 adds to it (looseRFC3339).
func (p *sourceScanner) time(dst *time.Time, pointer string) error {
	switch {
	case p.s[p.i] == '"':
		at := p.i
		s := p.str()
		if err := dst.UnmarshalText([]byte(s)); err != nil || looseRFC3339(s) {
			p.i = at
			return p.wrong(pointer, timeType)
		}
	case p.null():
		*dst = time.Time{}
	default:
		return p.wrong(pointer, timeType)
	}
	return nil
}

// attachments reads the list: null is nil, [] an empty list; an element
// that is null is a zero attachment, as json v2 reads them.
func (p *sourceScanner) attachments(dst *[]event.Attachment) error {
	if p.null() {
		*dst = nil
		return nil
	}
	if p.s[p.i] != '[' {
		return p.wrong("/attachments", attachmentListType)
	}
	p.i++
	list := []event.Attachment{}
	for n := 0; ; n++ {
		p.ws()
		switch p.s[p.i] {
		case ']':
			p.i++
			*dst = list
			return nil
		case ',':
			p.i++
			p.ws()
		}
		list = append(list, event.Attachment{})
		a := &list[n]
		if p.null() {
			continue
		}
		if p.s[p.i] != '{' {
			return p.wrong(attachmentPointer(n, ""), attachmentType)
		}
		if err := p.members(func(name string) error {
			var dst *string
			switch name {
			case "url":
				dst = &a.URL
			case "mime_type":
				dst = &a.MIMEType
			case "name":
				dst = &a.Name
			default:
				p.skip()
				return nil
			}
			if k := p.kind(); k != '"' && k != 'n' {
				return p.wrong(attachmentPointer(n, name), stringType)
			}
			return p.string(dst, "")
		}); err != nil {
			return err
		}
	}
}

// attachmentPointer is the JSON pointer of attachment n's member name.
func attachmentPointer(n int, name string) string {
	s := "/attachments/" + strconv.Itoa(n)
	if name != "" {
		s += "/" + name
	}
	return s
}

// looseRFC3339 tells whether s, which time.Time's UnmarshalText accepted,
// is one of the forms RFC 3339's grammar does not allow and the time
// package lets through (https://go.dev/issue/57912), which json v2 refuses:
// an hour of one digit, a comma before the fraction of a second, an offset
// whose hours or minutes are out of range.
func looseRFC3339(s string) bool {
	dec2 := func(b string) int { return int(b[0]-'0')*10 + int(b[1]-'0') }
	switch {
	case s[len("2006-01-02T")+1] == ':':
		return true
	case s[len("2006-01-02T15:04:05")] == ',':
		return true
	case s[len(s)-1] != 'Z':
		return dec2(s[len(s)-len("07:00"):]) >= 24 || dec2(s[len(s)-len("00"):]) >= 60
	}
	return false
}

// refsDoc is what the writer reads of a session document
// (_source_includes=event_refs).
type refsDoc struct {
	EventRefs []string `json:"event_refs"`
}

var (
	refsDocType = reflect.TypeFor[refsDoc]()
	stringsType = reflect.TypeFor[[]string]()
)

// decodeRefsDoc is decodeEventDoc for a session document's event_refs,
// with json v2's result (TestRefsDocDecodingMatchesJSONv2): null is no
// list, [] an empty one, a null element an empty string.
func decodeRefsDoc(dec *jsontext.Decoder, rd *refsDoc) (bad, err error) {
	raw, err := dec.ReadValue()
	if err != nil {
		return nil, err
	}
	p := sourceScanner{s: string(raw)}
	switch p.s[0] {
	case 'n':
		return nil, nil // null: no list, as json v2 reads it
	case '{':
	default:
		return p.wrong("", refsDocType), nil
	}
	return p.members(func(name string) error {
		if name != "event_refs" {
			p.skip()
			return nil
		}
		if p.null() {
			rd.EventRefs = nil
			return nil
		}
		if p.s[p.i] != '[' {
			return p.wrong("/event_refs", stringsType)
		}
		p.i++
		refs := []string{}
		for n := 0; ; n++ {
			p.ws()
			switch p.s[p.i] {
			case ']':
				p.i++
				rd.EventRefs = refs
				return nil
			case ',':
				p.i++
				p.ws()
			}
			var ref string
			if k := p.kind(); k != '"' && k != 'n' {
				return p.wrong("/event_refs/"+strconv.Itoa(n), stringType)
			}
			if err := p.string(&ref, ""); err != nil {
				return err
			}
			refs = append(refs, ref)
		}
	}), nil
}
