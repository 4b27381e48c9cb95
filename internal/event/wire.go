package event

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// wire is an event as it arrives, before validation. Fields that are absent
// or null stay at their zero value.
type wire struct {
	EventID     string
	Type        Type
	OccurredAt  string
	Tenant      string
	Channel     string
	Contact     Contact
	HasContact  bool // contact was an object, not absent or null
	SessionID   string
	Protocol    string
	Author      *Author
	Text        string
	ContentType string
	Attachments []Attachment
	Handoff     *Handoff
	Tag         string
	HasTag      bool // tag was a string, not absent or null
	Info        wireInfo
	HasInfo     bool // info was an object, not absent or null
}

type wireInfo struct {
	Key   string
	Value infoValue
}

// infoValue is info.value as sent: its JSON kind ('"', '0' for a number,
// 't', 'f', 'n', '{', '['; 0 when absent) and, for a string, number or
// boolean, its text (a string unescaped, a number as spelled).
type infoValue struct {
	kind jsontext.Kind
	text string
}

// The reader parses an event's JSON with the tokens of jsontext, field by
// field, into a wire. Field names match exactly, byte for byte after
// unescaping: docs/events.md spells them in lower case, and a name in another
// case is an unknown field, ignored like any other.
//
// Everything else follows the rules encoding/json applied before (the
// differential test in wire_test.go holds the two to it):
//   - a syntax error anywhere makes the whole message "not a JSON event
//     object", even after a field of the wrong type (nesting past MaxDepth
//     is said as such: encoding/json called that a syntax error too);
//   - otherwise the first field of the wrong JSON type is the error;
//   - null leaves a string as it was and clears an object, a tag or a list;
//   - a repeated name is read again into the same place: the last string
//     wins and objects merge, as encoding/json did.
type reader struct {
	dec jsontext.Decoder
	in  bytes.Buffer
	// src is the message as one string when it is small: its strings
	// without escapes are then substrings of it, not one allocation each.
	src string
	buf []byte // unescaped names and strings
	bad *InvalidError
}

var readers = sync.Pool{New: func() any { return new(reader) }}

// readOptions: duplicate names are allowed (the last wins), and so are
// escaped lone surrogates, which become U+FFFD as with encoding/json. Raw
// invalid UTF-8 never gets here: Decode rejects it first.
var readOptions = []jsontext.Options{
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
}

// MaxDepth is how deep an event may nest objects and arrays, the event
// itself counting as one, unknown fields included: the limit of the JSON
// decoder (jsontext), and of encoding/json before it.
const MaxDepth = 10000

func notObject() error { return &InvalidError{Reason: "not a JSON event object"} }

// maxKeptBuffer bounds the unescaping buffer a pooled reader keeps.
const maxKeptBuffer = 64 << 10

// maxShared is the largest message whose strings share one allocation. An
// event keeps the whole of it alive (names, spaces and unknown fields
// included), so the bound keeps that overhead small; a larger message
// is mostly its text anyway.
const maxShared = 4 << 10

// unmarshalWire parses raw into w. Its error is an *InvalidError.
func unmarshalWire(raw []byte, w *wire) error {
	r := readers.Get().(*reader)
	err := r.read(raw, w)
	// Keep nothing of raw in the pool.
	r.in = bytes.Buffer{}
	r.dec.Reset(&r.in)
	r.src, r.bad = "", nil
	if cap(r.buf) > maxKeptBuffer {
		r.buf = nil
	}
	readers.Put(r)
	return err
}

func (r *reader) read(raw []byte, w *wire) error {
	if len(raw) <= maxShared {
		r.src = string(raw)
	}
	r.in = *bytes.NewBuffer(raw)
	r.dec.Reset(&r.in, readOptions...)
	var err error
	switch r.dec.PeekKind() {
	case '{':
		if _, err = r.dec.ReadToken(); err == nil {
			err = r.event(w)
		}
	case 'n':
		_, err = r.dec.ReadToken()
	default:
		return notObject()
	}
	if err != nil {
		if r.dec.StackDepth() >= MaxDepth {
			return &InvalidError{Reason: fmt.Sprintf("event is nested deeper than %d levels", MaxDepth)}
		}
		return notObject()
	}
	if _, err := r.dec.ReadToken(); err != io.EOF {
		return notObject() // trailing data, or a second value
	}
	if r.bad != nil {
		return r.bad
	}
	return nil
}

// wrongType records a field whose JSON type is not the contract's; the
// first one is the error, unless the JSON turns out to be malformed.
func (r *reader) wrongType(field, kind string) {
	if r.bad == nil {
		r.bad = &InvalidError{Field: field, Reason: "must be a JSON " + kind}
	}
}

// skipWrong consumes a value of the wrong type for field.
func (r *reader) skipWrong(field, kind string) error {
	r.wrongType(field, kind)
	return r.dec.SkipValue()
}

// name reads an object member's name, unescaped. The result is valid until
// the next read.
func (r *reader) name() ([]byte, error) {
	v, err := r.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], nil
	}
	r.buf, _ = jsontext.AppendUnquote(r.buf[:0], v)
	return r.buf, nil
}

// unquote returns the string a JSON string value holds; v is the value
// just read.
func (r *reader) unquote(v jsontext.Value) string {
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		// The only error left is an escaped lone surrogate, already
		// replaced by U+FFFD.
		r.buf, _ = jsontext.AppendUnquote(r.buf[:0], v)
		return intern(r.buf)
	}
	if r.src != "" {
		end := int(r.dec.InputOffset()) - 1 // before the closing quote
		return r.src[end-len(s) : end]
	}
	return intern(s)
}

// literal returns a number, true or false as spelled; v is the value just
// read.
func (r *reader) literal(v jsontext.Value) string {
	if r.src != "" {
		end := int(r.dec.InputOffset())
		return r.src[end-len(v) : end]
	}
	return string(v)
}

// intern returns the values that most events repeat without allocating.
func intern(b []byte) string {
	switch string(b) {
	case "message":
		return "message"
	case "handoff":
		return "handoff"
	case "tag":
		return "tag"
	case "info":
		return "info"
	case "customer":
		return "customer"
	case "bot":
		return "bot"
	case "agent":
		return "agent"
	case "requested":
		return "requested"
	case "assigned":
		return "assigned"
	case "transferred":
		return "transferred"
	case "closed":
		return "closed"
	case "text":
		return "text"
	case "":
		return ""
	}
	return string(b)
}

// str reads a string member into dst.
func (r *reader) str(dst *string, field string) error {
	v, err := r.dec.ReadValue()
	if err != nil {
		return err
	}
	switch v.Kind() {
	case '"':
		*dst = r.unquote(v)
	case 'n':
	default:
		r.wrongType(field, "string")
	}
	return nil
}

// open starts reading a member that must be an object, and reports whether
// there is one to read: after a null or a value of another type (recorded)
// there is not.
func (r *reader) open(field string) (bool, error) {
	switch r.dec.PeekKind() {
	case '{':
		_, err := r.dec.ReadToken()
		return err == nil, err
	case 'n':
		_, err := r.dec.ReadToken()
		return false, err
	}
	return false, r.skipWrong(field, "object")
}

// members reads the members of the object being read, its opening brace
// already consumed, up to and including its end: member reads the value of
// each one, and returns r.dec.SkipValue() for a name it does not know.
func (r *reader) members(member func(name []byte) error) error {
	for r.dec.PeekKind() != '}' {
		name, err := r.name()
		if err != nil {
			return err
		}
		if err := member(name); err != nil {
			return err
		}
	}
	_, err := r.dec.ReadToken()
	return err
}

// openPtr starts reading a member that must be an object into *dst, and
// returns where to read it: a new value when *dst is nil, *dst itself
// otherwise (a repeated name merges). After a null or a value of another
// type it sets *dst to nil and returns nil.
func openPtr[T any](r *reader, dst **T, field string) (*T, error) {
	ok, err := r.open(field)
	if !ok {
		*dst = nil
		return nil, err
	}
	if *dst == nil {
		*dst = new(T)
	}
	return *dst, nil
}

func (r *reader) event(w *wire) error {
	return r.members(func(name []byte) error {
		switch string(name) {
		case "event_id":
			return r.str(&w.EventID, "event_id")
		case "type":
			return r.str((*string)(&w.Type), "type")
		case "occurred_at":
			return r.str(&w.OccurredAt, "occurred_at")
		case "tenant":
			return r.str(&w.Tenant, "tenant")
		case "channel":
			return r.str(&w.Channel, "channel")
		case "contact":
			return r.contact(w)
		case "session_id":
			return r.str(&w.SessionID, "session_id")
		case "protocol":
			return r.str(&w.Protocol, "protocol")
		case "author":
			return r.author(&w.Author)
		case "text":
			return r.str(&w.Text, "text")
		case "content_type":
			return r.str(&w.ContentType, "content_type")
		case "attachments":
			return r.attachments(&w.Attachments)
		case "handoff":
			return r.handoff(&w.Handoff)
		case "tag":
			return r.tag(w)
		case "info":
			return r.info(w)
		}
		return r.dec.SkipValue()
	})
}

// contact reads the contact into w. A null after an object clears it, as
// encoding/json cleared the pointer it used to fill.
func (r *reader) contact(w *wire) error {
	ok, err := r.open("contact")
	if !ok {
		w.Contact, w.HasContact = Contact{}, false
		return err
	}
	w.HasContact = true
	c := &w.Contact
	return r.members(func(name []byte) error {
		switch string(name) {
		case "id":
			return r.str(&c.ID, "contact.id")
		case "phone":
			return r.str(&c.Phone, "contact.phone")
		case "name":
			return r.str(&c.Name, "contact.name")
		}
		return r.dec.SkipValue()
	})
}

func (r *reader) author(dst **Author) error {
	a, err := openPtr(r, dst, "author")
	if a == nil {
		return err
	}
	return r.members(func(name []byte) error {
		switch string(name) {
		case "role":
			return r.str(&a.Role, "author.role")
		case "id":
			return r.str(&a.ID, "author.id")
		case "name":
			return r.str(&a.Name, "author.name")
		}
		return r.dec.SkipValue()
	})
}

// attachments reads the list the way encoding/json filled a slice: into the
// elements already there (a repeated name), then truncated; an empty list
// is an empty, non-nil slice.
func (r *reader) attachments(dst *[]Attachment) error {
	switch r.dec.PeekKind() {
	case '[':
	case 'n':
		*dst = nil
		_, err := r.dec.ReadToken()
		return err
	default:
		return r.skipWrong("attachments", "array")
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	s := *dst
	i := 0
	for ; r.dec.PeekKind() != ']'; i++ {
		switch {
		case i < len(s):
		case i < cap(s):
			s = s[:i+1]
		default:
			s = append(s, Attachment{})
		}
		if err := r.attachment(&s[i], i); err != nil {
			return err
		}
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	if i == 0 {
		s = []Attachment{}
	}
	*dst = s[:i]
	return nil
}

func (r *reader) attachment(a *Attachment, i int) error {
	switch r.dec.PeekKind() {
	case '{':
		if _, err := r.dec.ReadToken(); err != nil {
			return err
		}
	case 'n':
		_, err := r.dec.ReadToken()
		return err
	default:
		return r.skipWrong(attachmentField(i, ""), "object")
	}
	return r.members(func(name []byte) error {
		switch string(name) {
		case "url":
			return r.attachmentStr(&a.URL, i, "url")
		case "mime_type":
			return r.attachmentStr(&a.MIMEType, i, "mime_type")
		case "name":
			return r.attachmentStr(&a.Name, i, "name")
		}
		return r.dec.SkipValue()
	})
}

// attachmentStr is str for a member of attachment i. The member's path is
// only built when it is needed for an error.
func (r *reader) attachmentStr(dst *string, i int, member string) error {
	field := ""
	if k := r.dec.PeekKind(); r.bad == nil && k != '"' && k != 'n' {
		field = attachmentField(i, member)
	}
	return r.str(dst, field)
}

func attachmentField(i int, member string) string {
	f := "attachments[" + strconv.Itoa(i) + "]"
	if member != "" {
		f += "." + member
	}
	return f
}

func (r *reader) handoff(dst **Handoff) error {
	h, err := openPtr(r, dst, "handoff")
	if h == nil {
		return err
	}
	return r.members(func(name []byte) error {
		switch string(name) {
		case "action":
			return r.str(&h.Action, "handoff.action")
		case "queue":
			return r.str(&h.Queue, "handoff.queue")
		case "agent":
			return r.agent(&h.Agent)
		case "reason":
			return r.str(&h.Reason, "handoff.reason")
		case "status":
			return r.str(&h.Status, "handoff.status")
		}
		return r.dec.SkipValue()
	})
}

func (r *reader) agent(dst **Agent) error {
	a, err := openPtr(r, dst, "handoff.agent")
	if a == nil {
		return err
	}
	return r.members(func(name []byte) error {
		switch string(name) {
		case "id":
			return r.str(&a.ID, "handoff.agent.id")
		case "name":
			return r.str(&a.Name, "handoff.agent.name")
		}
		return r.dec.SkipValue()
	})
}

func (r *reader) tag(w *wire) error {
	v, err := r.dec.ReadValue()
	if err != nil {
		return err
	}
	switch v.Kind() {
	case '"':
		w.Tag, w.HasTag = r.unquote(v), true
	case 'n':
		w.Tag, w.HasTag = "", false
	default:
		r.wrongType("tag", "string")
	}
	return nil
}

func (r *reader) info(w *wire) error {
	ok, err := r.open("info")
	if !ok {
		w.Info, w.HasInfo = wireInfo{}, false
		return err
	}
	w.HasInfo = true
	in := &w.Info
	return r.members(func(name []byte) error {
		switch string(name) {
		case "key":
			return r.str(&in.Key, "info.key")
		case "value":
			return r.infoValue(&in.Value)
		}
		return r.dec.SkipValue()
	})
}

// infoValue keeps any JSON value: whether its type is allowed is a rule of
// info events only, checked by validateInfo.
func (r *reader) infoValue(dst *infoValue) error {
	v, err := r.dec.ReadValue()
	if err != nil {
		return err
	}
	switch k := v.Kind(); k {
	case '"':
		*dst = infoValue{kind: k, text: r.unquote(v)}
	case '0', 't', 'f':
		*dst = infoValue{kind: k, text: r.literal(v)}
	default:
		*dst = infoValue{kind: k}
	}
	return nil
}
