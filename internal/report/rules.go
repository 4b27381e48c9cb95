package report

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// The limits of a filter and a page. The API enforces them and serves them
// to the screen (GET /api/v1/filter/rules), so no client repeats them.
const (
	// MaxIntervalDays is the longest interval a report may cover, in days:
	// calendar days of the report time zone when from is a date.
	MaxIntervalDays  = 31
	MaxTags          = 50
	MaxTagBytes      = 128
	MaxChannels      = 50
	MaxChannelLen    = 32
	MaxNames         = 50  // agents or queues in one filter
	MaxNameBytes     = 128 // an agent id or a queue
	MaxConditions    = 20
	MaxInfoKeyLen    = 128
	MaxValueBytes    = 4096
	MaxContactBytes  = 256
	MaxQueryBytes    = 1000
	DefaultPageLimit = 20
	MaxPageLimit     = 100
)

// MaxInterval is the longest interval a report may cover as a duration.
const MaxInterval = MaxIntervalDays * 24 * time.Hour

// dstSlack lets an interval of 31 calendar days that spans a daylight-saving
// change (31 days and 1 hour long) pass Validate, which has only instants.
const dstSlack = time.Hour

// The formats of a filter's values as regular expressions, in the syntax Go
// and JavaScript share, for clients that check a value before sending it.
// They describe what event.IsUUID, event.IsProtocol, event.IsInfoKey and
// event.IsToken accept (TestPatterns keeps them in step).
const (
	SessionIDPattern = `^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`
	// ProtocolPattern: a date YYYYMMDD of the Gregorian calendar (leap
	// years included), then 9 digits.
	ProtocolPattern = `^(?:[0-9]{4}(?:(?:0[1-9]|1[0-2])(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])(?:29|30)|(?:0[13578]|1[02])31)` +
		`|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)0229)[0-9]{9}$`
	InfoKeyPattern = `^[A-Za-z0-9_.\-]{1,128}$`
	ChannelPattern = `^[a-z0-9][a-z0-9_\-]{0,31}$`
)

// Code names the rule a value broke in a stable, language-neutral way; the
// API sends it as the error's code, and clients translate it. Codes are only
// ever added, never renamed.
type Code string

// The codes of FieldError.
const (
	CodeInvalidTime      Code = "invalid_time"        // from or to neither RFC 3339 nor a date
	CodeIncompleteRange  Code = "interval_incomplete" // from without to, or to without from
	CodeIntervalOrder    Code = "interval_order"      // to not after from
	CodeIntervalTooLong  Code = "interval_too_long"   // more than MaxIntervalDays
	CodeInvalidSessionID Code = "invalid_session_id"  // not a UUID
	CodeInvalidProtocol  Code = "invalid_protocol"    // not 17 digits starting with a date
	CodeTooMany          Code = "too_many"            // more values than Limit
	CodeEmpty            Code = "empty"               // an empty value
	CodeTooLong          Code = "too_long"            // more than Limit bytes, or not UTF-8
	CodeControlCharacter Code = "control_character"   // a control character other than white space in a text value
	CodeInvalidTagMode   Code = "invalid_tag_mode"    // tag_mode other than any or all
	CodeInvalidInfoKey   Code = "invalid_info_key"    // not InfoKeyPattern
	CodeUnknownOperation Code = "unknown_operation"   // not one of Ops
	CodeValueRequired    Code = "value_required"      // an operation that needs a value has none
	CodeValueNotAllowed  Code = "value_not_allowed"   // exists or not_exists with a value
	CodeInvalidChannel   Code = "invalid_channel"     // not ChannelPattern
	CodeInvalidBoolean   Code = "invalid_boolean"     // handed_off other than true or false
	CodeNoWord           Code = "no_word"             // q without letters or digits
	CodeInvalidLimit     Code = "invalid_limit"       // a page limit out of 1..MaxPageLimit
	CodeInvalidCursor    Code = "invalid_cursor"      // a cursor the codec did not issue
	CodeInvalidOutcome   Code = "invalid_outcome"     // not one of session.Outcomes
)

// The fields of a filter and a page as FieldError names them (the API's JSON
// names).
const (
	FieldFrom      = "from"
	FieldTo        = "to"
	FieldSession   = "session"
	FieldProtocol  = "protocol"
	FieldTags      = "tags"
	FieldTagMode   = "tag_mode"
	FieldInfo      = "info"
	FieldChannels  = "channels"
	FieldContact   = "contact"
	FieldHandedOff = "handed_off"
	FieldOutcomes  = "outcomes"
	FieldAgents    = "agents"
	FieldQueues    = "queues"
	FieldQuery     = "q"
	FieldLimit     = "limit"
	FieldCursor    = "cursor"
)

// FieldError is one rule a filter or page broke.
type FieldError struct {
	// Field is the value's field (FieldTags, ...).
	Field string
	// Index is which element of a list field the error is about, from 0
	// (for info, the condition's Pos); -1 when it is about the whole field.
	Index int
	// Part is the part of an info condition: "key", "op" or "value".
	Part string
	Code Code
	// Limit is the bound the value broke (too_many, too_long,
	// invalid_limit, interval_too_long), or 0.
	Limit int
	// Message says what is wrong in English, without naming the field.
	Message string
}

func (e FieldError) Error() string {
	name := e.Field
	if e.Index >= 0 {
		name = fmt.Sprintf("%s[%d]", name, e.Index)
	}
	if e.Part != "" {
		name += "." + e.Part
	}
	return "filter: " + name + ": " + e.Message
}

// fieldErrors collects the errors of a filter: every rule is checked, not
// only up to the first broken one.
type fieldErrors struct {
	errs []FieldError
	// limits also checks what the API accepts from a client beyond what a
	// store can translate: counts, sizes, empty values and control
	// characters. A store copes with those as with any text (storetest's
	// ControlCharacters holds it to that), so Validate leaves them out.
	limits bool
}

func (es *fieldErrors) add(e FieldError, format string, args ...any) {
	e.Message = fmt.Sprintf(format, args...)
	es.errs = append(es.errs, e)
}

// field records an error about a whole field.
func (es *fieldErrors) field(field string, code Code, limit int, format string, args ...any) {
	es.add(FieldError{Field: field, Index: -1, Code: code, Limit: limit}, format, args...)
}

// The rules. ParseFilter checks a filter as sent with all of them;
// Filter.Validate with those a store needs (fieldErrors.limits).

const noControl = "must not contain control characters (U+0000 to U+001F, U+007F to U+009F) other than tab, line and page breaks"

// hasControl reports whether s has a control character other than white
// space (tab, line feed, vertical tab, form feed, carriage return, U+0085).
// A NUL, an escape or a backspace is never part of what an operator
// searches for, and a NUL ends strings in parts of some stores (SQLite's
// full-text queries).
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && !unicode.IsSpace(r) }) >= 0
}

// textError is what is wrong with a text value of at most maxBytes bytes,
// when es checks limits.
func (es *fieldErrors) textError(s string, maxBytes int) (code Code, limit int, message string, bad bool) {
	switch {
	case !es.limits:
	case len(s) > maxBytes || !utf8.ValidString(s):
		return CodeTooLong, maxBytes, fmt.Sprintf("must be at most %d bytes of UTF-8", maxBytes), true
	case hasControl(s):
		return CodeControlCharacter, 0, noControl, true
	}
	return "", 0, "", false
}

// interval checks [from, to) against the latest to the interval may reach.
func (es *fieldErrors) interval(from, to, limit time.Time) {
	switch {
	case !to.After(from):
		es.field(FieldTo, CodeIntervalOrder, 0, "must be after from")
	case to.After(limit):
		es.field(FieldTo, CodeIntervalTooLong, MaxIntervalDays, "the interval may not exceed %d days", MaxIntervalDays)
	}
}

func (es *fieldErrors) sessionID(s string) {
	if !event.IsUUID(s) {
		es.field(FieldSession, CodeInvalidSessionID, 0, "%s", SessionIDMessage)
	}
}

// SessionIDMessage explains what a session id looks like.
const SessionIDMessage = "must be a session id (UUID), e.g. c639c747-4637-4ff5-99c0-9f0e86d3c21b"

func (es *fieldErrors) protocol(s string) {
	if !event.IsProtocol(s) {
		es.field(FieldProtocol, CodeInvalidProtocol, 0, "must be 17 digits starting with a date YYYYMMDD, e.g. 20251007092633646")
	}
}

func (es *fieldErrors) tags(tags []string) {
	if !es.limits {
		return // a tag is any text
	}
	if len(tags) > MaxTags {
		es.field(FieldTags, CodeTooMany, MaxTags, "at most %d tags", MaxTags)
	}
	for i, t := range tags {
		e := FieldError{Field: FieldTags, Index: i}
		if strings.TrimSpace(t) == "" {
			e.Code = CodeEmpty
			es.add(e, "must not be empty")
		} else if code, limit, msg, bad := es.textError(t, MaxTagBytes); bad {
			e.Code, e.Limit = code, limit
			es.add(e, "%s", msg)
		}
	}
}

func (es *fieldErrors) tagMode(m TagMode) {
	if m != TagsAny && m != TagsAll {
		es.field(FieldTagMode, CodeInvalidTagMode, 0, "must be any or all")
	}
}

// conditions checks info conditions; pos, when not nil, is the position
// each was sent at, which errors report as their index.
func (es *fieldErrors) conditions(cs []Condition, pos []int) {
	if es.limits && len(cs) > MaxConditions {
		es.field(FieldInfo, CodeTooMany, MaxConditions, "at most %d conditions", MaxConditions)
	}
	for i, c := range cs {
		if pos != nil {
			i = pos[i]
		}
		bad := func(part string, code Code, limit int, format string, args ...any) {
			es.add(FieldError{Field: FieldInfo, Index: i, Part: part, Code: code, Limit: limit}, format, args...)
		}
		if !event.IsInfoKey(c.Key) {
			bad("key", CodeInvalidInfoKey, 0, "%q is not an information key ([A-Za-z0-9_.-], 1 to %d characters)", c.Key, MaxInfoKeyLen)
		}
		switch {
		case !c.Op.Valid():
			bad("op", CodeUnknownOperation, 0, "unknown operation %q; use one of %s", c.Op, opList())
		case c.Op.TakesValue() && c.Value == "":
			bad("value", CodeValueRequired, 0, "%s needs a value", c.Op)
		case !c.Op.TakesValue() && c.Value != "":
			bad("value", CodeValueNotAllowed, 0, "%s takes no value", c.Op)
		default:
			if code, limit, msg, broke := es.textError(c.Value, MaxValueBytes); broke {
				bad("value", code, limit, "%s", msg)
			}
		}
	}
}

func opList() string {
	names := make([]string, len(Ops))
	for i, o := range Ops {
		names[i] = string(o)
	}
	return strings.Join(names, ", ")
}

func (es *fieldErrors) channels(cs []string) {
	if es.limits && len(cs) > MaxChannels {
		es.field(FieldChannels, CodeTooMany, MaxChannels, "at most %d channels", MaxChannels)
	}
	for i, c := range cs {
		if !event.IsToken(c, MaxChannelLen, false) {
			es.add(FieldError{Field: FieldChannels, Index: i, Code: CodeInvalidChannel}, "%q is not a channel (a lowercase token such as whatsapp)", c)
		}
	}
}

func (es *fieldErrors) outcomes(os []string) {
	if es.limits && len(os) > len(session.Outcomes) {
		es.field(FieldOutcomes, CodeTooMany, len(session.Outcomes), "at most %d outcomes", len(session.Outcomes))
	}
	for i, o := range os {
		if !slices.Contains(session.Outcomes, o) {
			es.add(FieldError{Field: FieldOutcomes, Index: i, Code: CodeInvalidOutcome}, "%q is not an outcome; use one of %s", o, strings.Join(session.Outcomes, ", "))
		}
	}
}

// names checks agent ids or queues: any text, as the platform sent it.
func (es *fieldErrors) names(field string, ns []string) {
	if es.limits && len(ns) > MaxNames {
		es.field(field, CodeTooMany, MaxNames, "at most %d values", MaxNames)
	}
	for i, n := range ns {
		if strings.TrimSpace(n) == "" && es.limits {
			es.add(FieldError{Field: field, Index: i, Code: CodeEmpty}, "must not be empty")
		} else if code, limit, msg, bad := es.textError(n, MaxNameBytes); bad {
			es.add(FieldError{Field: field, Index: i, Code: code, Limit: limit}, "%s", msg)
		}
	}
}

func (es *fieldErrors) contact(c string) {
	if c == "" && es.limits {
		es.field(FieldContact, CodeEmpty, 0, "must not be empty: a contact id, a phone number or part of a name")
	} else if code, limit, msg, bad := es.textError(c, MaxContactBytes); bad {
		es.field(FieldContact, code, limit, "%s", msg)
	}
}

func (es *fieldErrors) query(q string) {
	if q == "" && es.limits {
		es.field(FieldQuery, CodeEmpty, 0, "must not be empty")
	} else if code, limit, msg, bad := es.textError(q, MaxQueryBytes); bad {
		es.field(FieldQuery, code, limit, "%s", msg)
	} else if len(Words(q)) == 0 {
		es.field(FieldQuery, CodeNoWord, 0, "must have a word (letters or digits)")
	}
}

func (es *fieldErrors) pageLimit(n int, ok bool) {
	if !ok || n < 1 || n > MaxPageLimit {
		es.field(FieldLimit, CodeInvalidLimit, MaxPageLimit, "must be a whole number from 1 to %d", MaxPageLimit)
	}
}
