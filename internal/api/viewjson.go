package api

import (
	"encoding/json"
	"time"

	"github.com/chatreport/chatreport/internal/jsonenc"
)

// appendDetail appends d as encoding/json's Encoder writes it (HTML
// characters escaped): the session's fields through encoding/json, its
// messages and events (most of the bytes) without reflection. The JSON lines
// export writes one per session, and encoding/json spent more on it than
// the store did reading the session. TestAppendDetailMatchesEncodingJSON
// holds the two to the same bytes.
func appendDetail(b []byte, d *detailView) ([]byte, error) {
	head, err := json.Marshal(&d.sessionView)
	if err != nil {
		return b, err
	}
	b = append(b, head[:len(head)-1]...) // without its closing brace
	b = append(b, `,"messages":[`...)
	for i := range d.Messages {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMessage(b, &d.Messages[i])
	}
	b = append(b, `],"events":[`...)
	for i := range d.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTimelineEvent(b, &d.Events[i])
	}
	return append(b, "]}\n"...), nil
}

func appendMessage(b []byte, m *messageView) []byte {
	b = appendKey(b, '{', "event_id")
	b = appendString(b, m.EventID)
	b = appendKey(b, ',', "occurred_at")
	b = appendTime(b, m.OccurredAt)
	b = appendKey(b, ',', "author")
	b = appendKey(b, '{', "role")
	b = appendString(b, m.Author.Role)
	b = appendKey(b, ',', "id")
	b = appendNullable(b, m.Author.ID)
	b = appendKey(b, ',', "name")
	b = appendNullable(b, m.Author.Name)
	b = append(b, '}')
	b = appendKey(b, ',', "text")
	b = appendString(b, m.Text)
	b = appendKey(b, ',', "content_type")
	b = appendString(b, m.ContentType)
	b = appendKey(b, ',', "attachments")
	b = append(b, '[')
	for i := range m.Attachments {
		a := &m.Attachments[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, '{', "url")
		b = appendString(b, a.URL)
		b = appendKey(b, ',', "mime_type")
		b = appendNullable(b, a.MIMEType)
		b = appendKey(b, ',', "name")
		b = appendNullable(b, a.Name)
		b = append(b, '}')
	}
	b = append(b, ']')
	b = appendKey(b, ',', "protocol")
	b = appendNullable(b, m.Protocol)
	return append(b, '}')
}

func appendTimelineEvent(b []byte, e *timelineEvent) []byte {
	b = appendKey(b, '{', "event_id")
	b = appendString(b, e.EventID)
	b = appendKey(b, ',', "occurred_at")
	b = appendTime(b, e.OccurredAt)
	b = appendKey(b, ',', "type")
	b = appendString(b, string(e.Type))
	b = appendKey(b, ',', "protocol")
	b = appendNullable(b, e.Protocol)
	if h := e.Handoff; h != nil {
		b = appendKey(b, ',', "handoff")
		b = appendKey(b, '{', "action")
		b = appendString(b, h.Action)
		b = appendKey(b, ',', "queue")
		b = appendNullable(b, h.Queue)
		b = appendKey(b, ',', "agent")
		if h.Agent == nil {
			b = append(b, "null"...)
		} else {
			b = appendAgent(b, h.Agent)
		}
		b = appendKey(b, ',', "reason")
		b = appendNullable(b, h.Reason)
		b = appendKey(b, ',', "status")
		b = appendNullable(b, h.Status)
		b = append(b, '}')
	}
	if e.Tag != nil {
		b = appendKey(b, ',', "tag")
		b = appendString(b, *e.Tag)
	}
	if e.Info != nil {
		b = appendKey(b, ',', "info")
		b = appendKey(b, '{', "key")
		b = appendString(b, e.Info.Key)
		b = appendKey(b, ',', "value")
		b = appendString(b, e.Info.Value)
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendAgent(b []byte, a *agentView) []byte {
	b = appendKey(b, '{', "id")
	b = appendString(b, a.ID)
	b = appendKey(b, ',', "name")
	b = appendNullable(b, a.Name)
	return append(b, '}')
}

// appendKey appends sep and "key": (keys here need no escaping).
func appendKey(b []byte, sep byte, key string) []byte {
	b = append(b, sep, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendNullable(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendTime appends t as time.Time's MarshalJSON does.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString quotes s as encoding/json does by default (HTML-escaped).
func appendString(b []byte, s string) []byte { return jsonenc.AppendString(b, s, true) }
