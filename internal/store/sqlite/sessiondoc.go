package sqlite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// docReader decodes the session documents the store writes (encoding/json's
// Marshal of a session.Session) with the tokens of jsontext: encoding/json's
// reflection was most of the cost of reading an export's sessions. It reads
// exactly that shape: each member by its exact name, once, with the JSON type
// Marshal gives it. Anything else (a name in another case, a repeated name, a
// null where Marshal writes none, invalid UTF-8, a number that is not an int)
// is left to encoding/json, which defines the result
// (TestDocReaderMatchesEncodingJSON holds the two to the same sessions).
type docReader struct {
	in  bytes.Reader
	dec jsontext.Decoder
	// src is the document as one string: its strings without escapes are
	// substrings of it, not an allocation each.
	src string
	buf []byte // an unescaped name or string
	// escaped tells whether the name just read had escapes.
	escaped bool
}

// errShape is the fast path giving up: the document is not in the shape
// Marshal writes.
var errShape = errors.New("session document not in the stored shape")

// decode decodes doc into ss.
func (r *docReader) decode(doc []byte, ss *session.Session) error {
	if err := r.read(doc, ss); err == nil {
		return nil
	}
	*ss = session.Session{}
	if err := json.Unmarshal(doc, ss); err != nil {
		return fmt.Errorf("decode session: %w", err)
	}
	return nil
}

func (r *docReader) read(doc []byte, ss *session.Session) error {
	r.src = string(doc)
	r.in.Reset(doc)
	// Duplicate names are found here, member by member, at less cost.
	r.dec.Reset(&r.in, jsontext.AllowDuplicateNames(true))
	var seen uint32
	err := r.object(func(name []byte) error {
		i, ok := sessionMembers[string(name)]
		if !ok || seen&(1<<i) != 0 {
			return errShape
		}
		seen |= 1 << i
		return r.sessionMember(i, ss)
	})
	if err != nil {
		return err
	}
	if _, err := r.dec.ReadToken(); err != io.EOF {
		return errShape // a second value, or not JSON
	}
	return nil
}

// sessionMembers numbers the members of a session document.
var sessionMembers = map[string]int{
	"tenant": 0, "session_id": 1, "key": 2, "channel": 3, "contact": 4, "started_at": 5,
	"last_activity_at": 6, "window_ends_at": 7, "protocols": 8, "tags": 9, "info": 10,
	"handed_off": 11, "agents": 12, "queues": 13, "message_counts": 14, "attendances": 15, "events": 16,
}

func (r *docReader) sessionMember(i int, ss *session.Session) error {
	switch i {
	case 0:
		return r.str(&ss.Tenant)
	case 1:
		return r.str(&ss.ID)
	case 2:
		return r.str(&ss.Key)
	case 3:
		return r.str(&ss.Channel)
	case 4:
		return r.contact(&ss.Contact)
	case 5:
		return r.time(&ss.StartedAt)
	case 6:
		return r.time(&ss.LastActivityAt)
	case 7:
		return r.time(&ss.WindowEndsAt)
	case 8:
		return r.strings(&ss.Protocols)
	case 9:
		return r.strings(&ss.Tags)
	case 10:
		return r.stringMap(&ss.Info)
	case 11:
		return r.bool(&ss.HandedOff)
	case 12:
		return r.agents(&ss.Agents)
	case 13:
		return r.strings(&ss.Queues)
	case 14:
		return r.counts(&ss.MessageCounts)
	case 15:
		return r.attendances(&ss.Attendances)
	default:
		return r.int(&ss.Events)
	}
}

// object reads an object member by member, calling member with each name
// (valid until the next read) before its value.
func (r *docReader) object(member func(name []byte) error) error {
	if t, err := r.dec.ReadToken(); err != nil || t.Kind() != '{' {
		return errShape
	}
	for r.dec.PeekKind() != '}' {
		v, err := r.dec.ReadValue()
		if err != nil {
			return errShape
		}
		name := v[1 : len(v)-1]
		if r.escaped = bytes.IndexByte(name, '\\') >= 0; r.escaped {
			if r.buf, err = jsontext.AppendUnquote(r.buf[:0], v); err != nil {
				return errShape
			}
			name = r.buf
		}
		if err := member(name); err != nil {
			return err
		}
	}
	_, err := r.dec.ReadToken()
	return err
}

// array reads an array element by element; a null leaves it nil, as
// Marshal writes a nil slice.
func (r *docReader) array(isNull *bool, elem func() error) error {
	switch r.dec.PeekKind() {
	case 'n':
		*isNull = true
		_, err := r.dec.ReadToken()
		return err
	case '[':
	default:
		return errShape
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	for r.dec.PeekKind() != ']' {
		if err := elem(); err != nil {
			return err
		}
	}
	_, err := r.dec.ReadToken()
	return err
}

func (r *docReader) str(dst *string) error {
	v, err := r.dec.ReadValue()
	if err != nil || v.Kind() != '"' {
		return errShape
	}
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		if r.buf, err = jsontext.AppendUnquote(r.buf[:0], v); err != nil {
			return errShape
		}
		*dst = string(r.buf)
		return nil
	}
	end := int(r.dec.InputOffset()) - 1 // before the closing quote
	*dst = r.src[end-len(s) : end]
	return nil
}

// time reads a time as time.Time's UnmarshalJSON does, which is what
// encoding/json calls.
func (r *docReader) time(dst *time.Time) error {
	v, err := r.dec.ReadValue()
	if err != nil || v.Kind() != '"' {
		return errShape
	}
	if dst.UnmarshalJSON(v) != nil {
		return errShape
	}
	return nil
}

func (r *docReader) bool(dst *bool) error {
	v, err := r.dec.ReadValue()
	if err != nil {
		return errShape
	}
	switch v.Kind() {
	case 't':
		*dst = true
	case 'f':
		*dst = false
	default:
		return errShape
	}
	return nil
}

func (r *docReader) int(dst *int) error {
	v, err := r.dec.ReadValue()
	if err != nil || v.Kind() != '0' {
		return errShape
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return errShape
	}
	*dst = n
	return nil
}

func (r *docReader) strings(dst *[]string) error {
	out := []string{}
	var isNull bool
	err := r.array(&isNull, func() error {
		var s string
		err := r.str(&s)
		out = append(out, s)
		return err
	})
	if !isNull {
		*dst = out
	}
	return err
}

func (r *docReader) stringMap(dst *map[string]string) error {
	if r.dec.PeekKind() == 'n' {
		_, err := r.dec.ReadToken()
		return err
	}
	m := map[string]string{}
	err := r.object(func(name []byte) error {
		if _, ok := m[string(name)]; ok {
			return errShape
		}
		key := string(name)
		if !r.escaped {
			end := int(r.dec.InputOffset()) - 1 // before the name's closing quote
			key = r.src[end-len(name) : end]
		}
		var v string
		err := r.str(&v)
		m[key] = v
		return err
	})
	*dst = m
	return err
}

func (r *docReader) contact(c *event.Contact) error {
	var seen [3]bool
	return r.object(func(name []byte) error {
		switch {
		case string(name) == "id" && !seen[0]:
			seen[0] = true
			return r.str(&c.ID)
		case string(name) == "phone" && !seen[1]:
			seen[1] = true
			return r.str(&c.Phone)
		case string(name) == "name" && !seen[2]:
			seen[2] = true
			return r.str(&c.Name)
		}
		return errShape
	})
}

func (r *docReader) agents(dst *[]event.Agent) error {
	out := []event.Agent{}
	var isNull bool
	err := r.array(&isNull, func() error {
		var a event.Agent
		var seen [2]bool
		err := r.object(func(name []byte) error {
			switch {
			case string(name) == "id" && !seen[0]:
				seen[0] = true
				return r.str(&a.ID)
			case string(name) == "name" && !seen[1]:
				seen[1] = true
				return r.str(&a.Name)
			}
			return errShape
		})
		out = append(out, a)
		return err
	})
	if !isNull {
		*dst = out
	}
	return err
}

func (r *docReader) counts(c *session.Counts) error {
	var seen [3]bool
	return r.object(func(name []byte) error {
		switch {
		case string(name) == "customer" && !seen[0]:
			seen[0] = true
			return r.int(&c.Customer)
		case string(name) == "bot" && !seen[1]:
			seen[1] = true
			return r.int(&c.Bot)
		case string(name) == "agent" && !seen[2]:
			seen[2] = true
			return r.int(&c.Agent)
		}
		return errShape
	})
}

// attendanceMembers numbers the members of an attendance.
var attendanceMembers = map[string]int{
	"protocol": 0, "started_at": 1, "ended_at": 2, "status": 3, "handed_off": 4, "tags": 5, "info": 6,
}

func (r *docReader) attendances(dst *[]session.Attendance) error {
	out := []session.Attendance{}
	var isNull bool
	err := r.array(&isNull, func() error {
		var a session.Attendance
		var seen uint32
		err := r.object(func(name []byte) error {
			i, ok := attendanceMembers[string(name)]
			if !ok || seen&(1<<i) != 0 {
				return errShape
			}
			seen |= 1 << i
			switch i {
			case 0:
				return r.str(&a.Protocol)
			case 1:
				return r.time(&a.StartedAt)
			case 2:
				return r.time(&a.EndedAt)
			case 3:
				return r.str(&a.Status)
			case 4:
				return r.bool(&a.HandedOff)
			case 5:
				return r.strings(&a.Tags)
			default:
				return r.stringMap(&a.Info)
			}
		})
		out = append(out, a)
		return err
	})
	if !isNull {
		*dst = out
	}
	return err
}
