package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// legacyWire is the struct encoding/json filled before the reader of
// wire.go: the reference that the differential tests and benchmarks compare
// the reader with. encoding/json matches names case-insensitively, which is
// the one difference the reader is meant to have.
type legacyWire struct {
	EventID     string       `json:"event_id"`
	Type        Type         `json:"type"`
	OccurredAt  string       `json:"occurred_at"`
	Tenant      string       `json:"tenant"`
	Channel     string       `json:"channel"`
	Contact     *Contact     `json:"contact"`
	SessionID   string       `json:"session_id"`
	Protocol    string       `json:"protocol"`
	Author      *Author      `json:"author"`
	Text        string       `json:"text"`
	ContentType string       `json:"content_type"`
	Attachments []Attachment `json:"attachments"`
	Handoff     *Handoff     `json:"handoff"`
	Tag         *string      `json:"tag"`
	Info        *legacyInfo  `json:"info"`
}

type legacyInfo struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// legacyDecode is Decode as it was with encoding/json.
func legacyDecode(raw []byte) (Event, error) {
	if len(raw) > MaxEventBytes {
		return Event{}, invalid("", "event is %d bytes, over the %d-byte limit", len(raw), MaxEventBytes)
	}
	if !utf8.Valid(raw) {
		return Event{}, invalid("", "event is not valid UTF-8")
	}
	var lw legacyWire
	if err := json.Unmarshal(raw, &lw); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return Event{}, invalid(typeErr.Field, "must be a JSON %s", legacyKind(typeErr.Type.Kind()))
		}
		return Event{}, invalid("", "not a JSON event object")
	}
	w := wire{
		EventID: lw.EventID, Type: lw.Type, OccurredAt: lw.OccurredAt, Tenant: lw.Tenant,
		Channel: lw.Channel, SessionID: lw.SessionID, Protocol: lw.Protocol,
		Author: lw.Author, Text: lw.Text, ContentType: lw.ContentType, Attachments: lw.Attachments,
		Handoff: lw.Handoff,
	}
	if lw.Tag != nil {
		w.Tag, w.HasTag = *lw.Tag, true
	}
	if lw.Contact != nil {
		w.Contact, w.HasContact = *lw.Contact, true
	}
	if lw.Info != nil {
		w.Info, w.HasInfo = wireInfo{Key: lw.Info.Key}, true
		v := bytes.TrimSpace(lw.Info.Value)
		switch {
		case len(v) == 0:
		case v[0] == '"':
			w.Info.Value.kind = '"'
			if err := json.Unmarshal(v, &w.Info.Value.text); err != nil {
				return Event{}, invalid("info.value", "not a JSON string")
			}
		case bytes.Equal(v, []byte("true")), bytes.Equal(v, []byte("false")):
			w.Info.Value = infoValue{kind: jsontext.Kind(v[0]), text: string(v)}
		case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
			var n json.Number
			if err := json.Unmarshal(v, &n); err != nil {
				return Event{}, invalid("info.value", "not a JSON number")
			}
			w.Info.Value = infoValue{kind: '0', text: n.String()}
		default:
			w.Info.Value.kind = jsontext.Kind(v[0])
		}
	}
	return w.validate()
}

func legacyKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "object"
	case reflect.Slice:
		return "array"
	case reflect.Bool:
		return "boolean"
	}
	return "value of another type"
}

// legacyParseTime is ParseTime as it was: the strict form checked by hand,
// then time.Parse.
func legacyParseTime(s string) (time.Time, error) {
	bad := errors.New("not an RFC 3339 timestamp with an offset")
	const layout = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(layout)+1 {
		return time.Time{}, bad
	}
	for i := 0; i < len(layout); i++ {
		if (layout[i] == 'd') != (s[i] >= '0' && s[i] <= '9') || layout[i] != 'd' && s[i] != layout[i] {
			return time.Time{}, bad
		}
	}
	rest := s[len(layout):]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return time.Time{}, bad
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		isDigits(rest[1:3]) && isDigits(rest[4:6]) && rest[1:3] <= "23" && rest[4:6] <= "59":
	default:
		return time.Time{}, bad
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, bad
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, bad
	}
	return t, nil
}
