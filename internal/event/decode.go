package event

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the contract.
const (
	MaxEventBytes     = 1 << 20
	MaxTextBytes      = 64 << 10
	maxEventIDLen     = 128
	maxTenantLen      = 63
	maxChannelLen     = 32
	maxContactIDLen   = 256
	maxNameLen        = 256
	maxTagLen         = 128
	maxInfoKeyLen     = 128
	maxInfoValueLen   = 4096
	maxAttachments    = 64
	protocolLen       = 17
	canonicalUUIDLen  = 36
	defaultContentTyp = "text"
)

// byteOrderMark is U+FEFF in UTF-8.
var byteOrderMark = []byte("\xef\xbb\xbf")

// InvalidError says why an event breaks the contract. Field is the JSON path of
// the offending field ("" for the event as a whole).
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func invalid(field, format string, args ...any) *InvalidError {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Decode parses and validates one Kafka message value. Any error it returns is
// an *InvalidError: the event belongs in the dead-letter topic.
func Decode(raw []byte) (Event, error) {
	if len(raw) > MaxEventBytes {
		return Event{}, invalid("", "event is %d bytes, over the %d-byte limit", len(raw), MaxEventBytes)
	}
	if !utf8.Valid(raw) {
		return Event{}, invalid("", "event is not valid UTF-8")
	}
	if bytes.HasPrefix(raw, byteOrderMark) {
		// RFC 8259 forbids sending one; every consumer of the topic
		// would have to skip it.
		return Event{}, invalid("", "event starts with a byte-order mark (U+FEFF): send the JSON without it")
	}
	var w wire
	if err := unmarshalWire(raw, &w); err != nil {
		return Event{}, err
	}
	return w.validate()
}

func (w *wire) validate() (Event, error) {
	e := Event{
		EventID:   w.EventID,
		Type:      w.Type,
		Tenant:    w.Tenant,
		Channel:   w.Channel,
		SessionID: strings.ToLower(w.SessionID),
		Protocol:  w.Protocol,
	}
	if n := len(w.EventID); n == 0 || n > maxEventIDLen {
		return e, invalid("event_id", "required, 1 to %d characters", maxEventIDLen)
	}
	switch w.Type {
	case TypeMessage, TypeHandoff, TypeTag, TypeInfo:
	case "":
		return e, invalid("type", "required")
	default:
		return e, invalid("type", "must be message, handoff, tag or info")
	}
	if w.OccurredAt == "" {
		return e, invalid("occurred_at", "required")
	}
	at, err := ParseTime(w.OccurredAt)
	if err != nil {
		return e, invalid("occurred_at", "must be RFC 3339 with a UTC offset")
	}
	// Kept to the millisecond: every store (SQLite integers, Elasticsearch
	// dates) represents that exactly for any year, so all of them order
	// events the same way.
	e.OccurredAt = at.Truncate(time.Millisecond)
	if !IsToken(w.Tenant, maxTenantLen, false) {
		return e, invalid("tenant", "required, [a-z0-9][a-z0-9_-]{0,62}")
	}
	if !IsToken(w.Channel, maxChannelLen, false) {
		return e, invalid("channel", "required, a lowercase token of at most %d characters", maxChannelLen)
	}
	if !w.HasContact {
		return e, invalid("contact", "required")
	}
	if n := len(w.Contact.ID); n == 0 || n > maxContactIDLen {
		return e, invalid("contact.id", "required, at most %d characters", maxContactIDLen)
	}
	if len(w.Contact.Phone) > maxNameLen || len(w.Contact.Name) > maxNameLen {
		return e, invalid("contact", "phone and name may have at most %d characters", maxNameLen)
	}
	e.Contact = w.Contact
	if e.SessionID != "" && !IsUUID(e.SessionID) {
		return e, invalid("session_id", "must be a UUID")
	}
	if e.Protocol != "" && !IsProtocol(e.Protocol) {
		return e, invalid("protocol", "must be 17 digits starting with a valid date YYYYMMDD")
	}
	switch w.Type {
	case TypeMessage:
		return e, w.validateMessage(&e)
	case TypeHandoff:
		return e, w.validateHandoff(&e)
	case TypeTag:
		if !w.HasTag || strings.TrimSpace(w.Tag) == "" || len(w.Tag) > maxTagLen {
			return e, invalid("tag", "required for a tag event, 1 to %d characters", maxTagLen)
		}
		e.Tag = w.Tag
	case TypeInfo:
		return e, w.validateInfo(&e)
	}
	return e, nil
}

func (w *wire) validateMessage(e *Event) error {
	if w.Author == nil {
		return invalid("author", "required for a message")
	}
	switch w.Author.Role {
	case RoleCustomer, RoleBot, RoleAgent:
	default:
		return invalid("author.role", "must be customer, bot or agent")
	}
	if len(w.Author.ID) > maxNameLen || len(w.Author.Name) > maxNameLen {
		return invalid("author", "id and name may have at most %d characters", maxNameLen)
	}
	if len(w.Text) > MaxTextBytes {
		return invalid("text", "is %d bytes, over the %d-byte limit", len(w.Text), MaxTextBytes)
	}
	if len(w.Attachments) > maxAttachments {
		return invalid("attachments", "at most %d", maxAttachments)
	}
	for i, a := range w.Attachments {
		if a.URL == "" {
			return invalid(fmt.Sprintf("attachments[%d].url", i), "required")
		}
	}
	e.Author = w.Author
	e.Text = w.Text
	e.ContentType = w.ContentType
	if e.ContentType == "" {
		e.ContentType = defaultContentTyp
	}
	e.Attachments = w.Attachments
	return nil
}

func (w *wire) validateHandoff(e *Event) error {
	h := w.Handoff
	if h == nil {
		return invalid("handoff", "required for a handoff event")
	}
	switch h.Action {
	case ActionRequested, ActionAssigned, ActionTransferred, ActionClosed:
	default:
		return invalid("handoff.action", "must be requested, assigned, transferred or closed")
	}
	if h.Agent != nil && (h.Agent.ID == "" || len(h.Agent.ID) > maxNameLen || len(h.Agent.Name) > maxNameLen) {
		return invalid("handoff.agent", "needs an id; id and name at most %d characters", maxNameLen)
	}
	if h.Status != "" && !IsToken(h.Status, 64, true) {
		return invalid("handoff.status", "must be a token such as resolved, abandoned or cancelled_inactivity")
	}
	e.Handoff = h
	return nil
}

func (w *wire) validateInfo(e *Event) error {
	in := &w.Info
	if !w.HasInfo {
		return invalid("info", "required for an info event")
	}
	if !IsInfoKey(in.Key) {
		return invalid("info.key", "required, [A-Za-z0-9_.-]{1,128}")
	}
	var value string
	switch in.Value.kind {
	case 0:
		return invalid("info.value", "required")
	case '"', '0', 't', 'f':
		value = in.Value.text
	default:
		return invalid("info.value", "must be a string, number or boolean")
	}
	if len(value) > maxInfoValueLen {
		return invalid("info.value", "at most %d bytes", maxInfoValueLen)
	}
	e.Info = &Info{Key: in.Key, Value: value}
	return nil
}

// IsToken reports whether s is 1..max characters of [a-z0-9_-] starting with a
// letter or digit (an underscore first is allowed when loose is set).
func IsToken(s string, max int, loose bool) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && (i > 0 || loose):
		default:
			return false
		}
	}
	return true
}

// IsInfoKey reports whether s is a valid additional-information key.
func IsInfoKey(s string) bool {
	if len(s) == 0 || len(s) > maxInfoKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// IsUUID reports whether s is a UUID in its canonical 8-4-4-4-12 hex form, of
// any version, in either case.
func IsUUID(s string) bool {
	if len(s) != canonicalUUIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// IsProtocol reports whether s is an attendance protocol: 17 digits whose
// first eight are a valid calendar date YYYYMMDD.
func IsProtocol(s string) bool {
	if len(s) != protocolLen || !isDigits(s) {
		return false
	}
	return isDate(atoi(s[0:4]), atoi(s[4:6]), atoi(s[6:8]))
}

var errNotRFC3339 = errors.New("not an RFC 3339 timestamp with an offset")

// ParseTime parses a strict RFC 3339 timestamp with an offset (Z or ±hh:mm),
// as UTC: YYYY-MM-DDThh:mm:ss, an optional fraction after a dot (digits past
// the ninth are dropped), then Z or an offset of hours 00-23 and minutes
// 00-59. The date must exist; leap seconds (ss = 60) are rejected, and so are
// times whose UTC year is not between 0 and 9999, which could not be written
// back as RFC 3339. Unlike time.Parse it accepts no one-digit hours and no
// comma before the fraction.
func ParseTime(s string) (time.Time, error) {
	const layout = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(layout)+1 {
		return time.Time{}, errNotRFC3339
	}
	for i := 0; i < len(layout); i++ {
		if (layout[i] == 'd') != (s[i] >= '0' && s[i] <= '9') || layout[i] != 'd' && s[i] != layout[i] {
			return time.Time{}, errNotRFC3339
		}
	}
	year, month, day := atoi(s[0:4]), atoi(s[5:7]), atoi(s[8:10])
	hour, minute, second := atoi(s[11:13]), atoi(s[14:16]), atoi(s[17:19])
	if !isDate(year, month, day) || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, errNotRFC3339
	}
	rest := s[len(layout):]
	nsec := 0
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			if n <= 9 {
				nsec = nsec*10 + int(rest[n]-'0')
			}
			n++
		}
		if n == 1 {
			return time.Time{}, errNotRFC3339
		}
		for i := n; i <= 9; i++ {
			nsec *= 10
		}
		rest = rest[n:]
	}
	offset := 0 // seconds east of UTC
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		isDigits(rest[1:3]) && isDigits(rest[4:6]) && rest[1:3] <= "23" && rest[4:6] <= "59":
		offset = atoi(rest[1:3])*3600 + atoi(rest[4:6])*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, errNotRFC3339
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, nsec, time.UTC)
	t = t.Add(-time.Duration(offset) * time.Second)
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, errNotRFC3339
	}
	return t, nil
}

// atoi is the value of a string of ASCII digits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// isDate reports whether year-month-day is a date of the proleptic
// Gregorian calendar, as time.Parse checks it.
func isDate(year, month, day int) bool {
	if month < 1 || month > 12 || day < 1 {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days = 29
	}
	return day <= days
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
