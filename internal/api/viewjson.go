package api

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/jsonenc"
	"github.com/chatreport/chatreport/internal/session"
)

// appendSessionFields appends viewSession(s, now) without its closing brace.
func appendSessionFields(b []byte, s *session.Session, now time.Time) ([]byte, error) {
	var err error
	b = appendKey(b, '{', "session_id")
	b = appendString(b, s.ID)
	b = appendKey(b, ',', "channel")
	b = appendString(b, s.Channel)
	b = appendKey(b, ',', "contact")
	b = appendKey(b, '{', "id")
	b = appendString(b, s.Contact.ID)
	b = appendKey(b, ',', "phone")
	b = appendOrNull(b, s.Contact.Phone)
	b = appendKey(b, ',', "name")
	b = appendOrNull(b, s.Contact.Name)
	b = append(b, '}')
	b = appendKey(b, ',', "started_at")
	if b, err = appendCheckedTime(b, s.StartedAt); err != nil {
		return b, err
	}
	b = appendKey(b, ',', "last_activity_at")
	if b, err = appendCheckedTime(b, s.LastActivityAt); err != nil {
		return b, err
	}
	b = appendKey(b, ',', "window_ends_at")
	if b, err = appendCheckedTime(b, s.WindowEndsAt); err != nil {
		return b, err
	}
	b = appendKey(b, ',', "status")
	b = appendString(b, s.StatusAt(now))
	b = appendKey(b, ',', "protocols")
	b = appendStrings(b, s.Protocols)
	b = appendKey(b, ',', "tags")
	b = appendStrings(b, s.Tags)
	b = appendKey(b, ',', "info")
	b = appendStringMap(b, s.Info)
	b = appendKey(b, ',', "handed_off")
	b = strconv.AppendBool(b, s.HandedOff)
	b = appendKey(b, ',', "agents")
	b = append(b, '[')
	for i := range s.Agents {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEventAgent(b, &s.Agents[i])
	}
	b = append(b, ']')
	b = appendKey(b, ',', "message_counts")
	b = appendKey(b, '{', "customer")
	b = strconv.AppendInt(b, int64(s.MessageCounts.Customer), 10)
	b = appendKey(b, ',', "bot")
	b = strconv.AppendInt(b, int64(s.MessageCounts.Bot), 10)
	b = appendKey(b, ',', "agent")
	b = strconv.AppendInt(b, int64(s.MessageCounts.Agent), 10)
	b = append(b, '}')
	b = appendKey(b, ',', "attendances")
	b = append(b, '[')
	for i := range s.Attendances {
		a := &s.Attendances[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, '{', "protocol")
		b = appendString(b, a.Protocol)
		b = appendKey(b, ',', "started_at")
		if b, err = appendCheckedTime(b, a.StartedAt); err != nil {
			return b, err
		}
		b = appendKey(b, ',', "ended_at")
		if b, err = appendCheckedTime(b, a.EndedAt); err != nil {
			return b, err
		}
		b = appendKey(b, ',', "status")
		b = appendString(b, a.Status)
		b = appendKey(b, ',', "outcome")
		b = appendString(b, s.AttendanceOutcome(i, now))
		b = appendKey(b, ',', "handed_off")
		b = strconv.AppendBool(b, a.HandedOff)
		b = appendKey(b, ',', "tags")
		b = appendStrings(b, a.Tags)
		b = appendKey(b, ',', "info")
		b = appendStringMap(b, a.Info)
		b = append(b, `,"matched":null}`...)
	}
	return append(b, ']'), nil
}

func appendMessage(b []byte, e *event.Event) []byte {
	b = appendKey(b, '{', "event_id")
	b = appendString(b, e.EventID)
	b = appendKey(b, ',', "occurred_at")
	b = appendTime(b, e.OccurredAt)
	b = appendKey(b, ',', "author")
	b = appendKey(b, '{', "role")
	var role, id, name string
	if a := e.Author; a != nil {
		role, id, name = a.Role, a.ID, a.Name
	}
	b = appendString(b, role)
	b = appendKey(b, ',', "id")
	b = appendOrNull(b, id)
	b = appendKey(b, ',', "name")
	b = appendOrNull(b, name)
	b = append(b, '}')
	b = appendKey(b, ',', "text")
	b = appendString(b, e.Text)
	b = appendKey(b, ',', "content_type")
	b = appendString(b, e.ContentType)
	b = appendKey(b, ',', "attachments")
	b = append(b, '[')
	for i := range e.Attachments {
		a := &e.Attachments[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, '{', "url")
		b = appendString(b, a.URL)
		b = appendKey(b, ',', "mime_type")
		b = appendOrNull(b, a.MIMEType)
		b = appendKey(b, ',', "name")
		b = appendOrNull(b, a.Name)
		b = append(b, '}')
	}
	b = append(b, ']')
	b = appendKey(b, ',', "protocol")
	b = appendOrNull(b, e.Protocol)
	return append(b, '}')
}

func appendTimelineEvent(b []byte, e *event.Event) []byte {
	b = appendKey(b, '{', "event_id")
	b = appendString(b, e.EventID)
	b = appendKey(b, ',', "occurred_at")
	b = appendTime(b, e.OccurredAt)
	b = appendKey(b, ',', "type")
	b = appendString(b, string(e.Type))
	b = appendKey(b, ',', "protocol")
	b = appendOrNull(b, e.Protocol)
	switch e.Type {
	case event.TypeHandoff:
		if h := e.Handoff; h != nil {
			b = appendKey(b, ',', "handoff")
			b = appendKey(b, '{', "action")
			b = appendString(b, h.Action)
			b = appendKey(b, ',', "queue")
			b = appendOrNull(b, h.Queue)
			b = appendKey(b, ',', "agent")
			if h.Agent == nil {
				b = append(b, "null"...)
			} else {
				b = appendEventAgent(b, h.Agent)
			}
			b = appendKey(b, ',', "reason")
			b = appendOrNull(b, h.Reason)
			b = appendKey(b, ',', "status")
			b = appendOrNull(b, h.Status)
			b = append(b, '}')
		}
	case event.TypeTag:
		b = appendKey(b, ',', "tag")
		b = appendString(b, e.Tag)
	case event.TypeInfo:
		if in := e.Info; in != nil {
			b = appendKey(b, ',', "info")
			b = appendKey(b, '{', "key")
			b = appendString(b, in.Key)
			b = appendKey(b, ',', "value")
			b = appendString(b, in.Value)
			b = append(b, '}')
		}
	}
	return append(b, '}')
}

// appendEventAgent appends viewAgent(*a).
func appendEventAgent(b []byte, a *event.Agent) []byte {
	b = appendKey(b, '{', "id")
	b = appendString(b, a.ID)
	b = appendKey(b, ',', "name")
	b = appendOrNull(b, a.Name)
	return append(b, '}')
}

// appendStrings appends xs, [] when nil (nonNil).
func appendStrings(b []byte, xs []string) []byte {
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, x)
	}
	return append(b, ']')
}

// appendStringMap appends m with its keys sorted, as encoding/json does,
// {} when nil.
func appendStringMap(b []byte, m map[string]string) []byte {
	if len(m) == 0 {
		return append(b, "{}"...)
	}
	keys := slices.Sorted(maps.Keys(m))
	for i, k := range keys {
		sep := byte(',')
		if i == 0 {
			sep = '{'
		}
		b = appendString(append(b, sep), k)
		b = appendString(append(b, ':'), m[k])
	}
	return append(b, '}')
}

// appendKey appends sep and "key": (keys here need no escaping).
func appendKey(b []byte, sep byte, key string) []byte {
	b = append(b, sep, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// appendOrNull appends s, or null when it is empty (orNull).
func appendOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// appendTime appends t in UTC as time.Time's MarshalJSON does. (Events'
// times were checked when they came in; appendCheckedTime checks the others.)
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendCheckedTime appends t in UTC, or fails where MarshalJSON fails: a
// year outside [0, 9999].
func appendCheckedTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("time %v: year outside of range [0,9999]", t)
	}
	return appendTime(b, t), nil
}

// appendString quotes s as encoding/json does by default (HTML-escaped).
func appendString(b []byte, s string) []byte { return jsonenc.AppendString(b, s, true) }
