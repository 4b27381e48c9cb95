package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

// The examples of docs/events.md, one per kind of event. Other tests derive
// their cases from these with variant, so every case differs from a known-good
// event in exactly the way its name says.
const (
	customerMessage = `{
  "event_id": "01JA2M7Q9X4TB2C8D5E6F7G8H9",
  "type": "message",
  "occurred_at": "2025-10-07T09:26:33.646-03:00",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321", "phone": "+5511987654321", "name": "Maria Souza"},
  "session_id": "c639c747-4637-4ff5-99c0-9f0e86d3c21b",
  "protocol": "20251007092633646",
  "author": {"role": "customer"},
  "text": "Oi, preciso da segunda via da minha conta"
}`
	botMessage = `{
  "event_id": "01JA2M7R2B7KQ1W3E5R7T9Y1U3",
  "type": "message",
  "occurred_at": "2025-10-07T12:26:34Z",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321"},
  "author": {"role": "bot", "id": "flow-billing", "name": "Assistente Acme"},
  "text": "Claro! Vou transferir você para um atendente."
}`
	agentMessage = `{
  "event_id": "agent-msg-88412",
  "type": "message",
  "occurred_at": "2025-10-07T12:31:02.5Z",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321"},
  "session_id": "C639C747-4637-4FF5-99C0-9F0E86D3C21B",
  "protocol": "20251007092633646",
  "author": {"role": "agent", "id": "agent-042", "name": "João Lima"},
  "text": "Segue a sua fatura.",
  "content_type": "text",
  "attachments": [
    {"url": "https://files.acme.example/invoices/2025-10.pdf", "mime_type": "application/pdf", "name": "fatura-2025-10.pdf"}
  ]
}`
	handoffRequested = `{
  "event_id": "handoff-7781-requested",
  "type": "handoff",
  "occurred_at": "2025-10-07T12:26:35Z",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321"},
  "protocol": "20251007092633646",
  "handoff": {"action": "requested", "queue": "billing", "reason": "customer asked for a human"}
}`
	handoffAssigned = `{
  "event_id": "handoff-7781-assigned",
  "type": "handoff",
  "occurred_at": "2025-10-07T12:29:10Z",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321"},
  "protocol": "20251007092633646",
  "handoff": {"action": "assigned", "queue": "billing", "agent": {"id": "agent-042", "name": "João Lima"}}
}`
	handoffTransferred = `{
  "event_id": "handoff-7781-transferred",
  "type": "handoff",
  "occurred_at": "2025-10-07T12:40:00Z",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321"},
  "protocol": "20251007092633646",
  "handoff": {"action": "transferred", "queue": "billing-level2", "agent": {"id": "agent-077", "name": "Ana Reis"}, "reason": "needs a supervisor"}
}`
	handoffClosed = `{
  "event_id": "handoff-7781-closed",
  "type": "handoff",
  "occurred_at": "2025-10-07T12:52:41Z",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321"},
  "protocol": "20251007092633646",
  "handoff": {"action": "closed", "agent": {"id": "agent-077", "name": "Ana Reis"}, "status": "resolved"}
}`
	tagEvent = `{
  "event_id": "tag-5511987654321-1759829300",
  "type": "tag",
  "occurred_at": "2025-10-07T09:28:20-03:00",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321"},
  "tag": "Segunda Via Sucesso"
}`
	infoString = `{
  "event_id": "info-1",
  "type": "info",
  "occurred_at": "2025-10-07T09:28:21-03:00",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321"},
  "info": {"key": "plano", "value": "Controle 30GB"}
}`
	infoNumber = `{
  "event_id": "info-2",
  "type": "info",
  "occurred_at": "2025-10-07T09:28:21-03:00",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321"},
  "info": {"key": "valor_fatura", "value": 189.90}
}`
	infoBoolean = `{
  "event_id": "info-3",
  "type": "info",
  "occurred_at": "2025-10-07T09:28:21-03:00",
  "tenant": "acme",
  "channel": "whatsapp",
  "contact": {"id": "5511987654321"},
  "info": {"key": "NAO_TRANSBORDADA", "value": true}
}`
)

var examples = []struct{ name, raw string }{
	{"customer message", customerMessage},
	{"bot message", botMessage},
	{"agent message", agentMessage},
	{"handoff requested", handoffRequested},
	{"handoff assigned", handoffAssigned},
	{"handoff transferred", handoffTransferred},
	{"handoff closed", handoffClosed},
	{"tag", tagEvent},
	{"info string", infoString},
	{"info number", infoNumber},
	{"info boolean", infoBoolean},
}

// edit changes a decoded JSON object in place.
type edit func(map[string]any)

// set puts v at a dot-separated path, creating objects on the way.
func set(path string, v any) edit {
	return func(o map[string]any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := o[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				o[k] = next
			}
			o = next
		}
		o[keys[len(keys)-1]] = v
	}
}

// del removes the field at a dot-separated path.
func del(path string) edit {
	return func(o map[string]any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := o[k].(map[string]any)
			if !ok {
				return
			}
			o = next
		}
		delete(o, keys[len(keys)-1])
	}
}

// raw is a JSON value written out as is, e.g. a number whose spelling matters.
func raw(s string) json.RawMessage { return json.RawMessage(s) }

// variant returns base with the edits applied. Numbers keep their spelling.
func variant(base string, edits ...edit) []byte {
	dec := json.NewDecoder(strings.NewReader(base))
	dec.UseNumber()
	var o map[string]any
	if err := dec.Decode(&o); err != nil {
		panic("bad base event: " + err.Error())
	}
	for _, e := range edits {
		e(o)
	}
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	return b
}

func decodeOK(t testing.TB, raw []byte) event.Event {
	t.Helper()
	ev, err := event.Decode(raw)
	if err != nil {
		t.Fatalf("Decode(%.200s) = %v, want no error", raw, err)
	}
	return ev
}

// equalEvent compares events, times by instant.
func equalEvent(a, b event.Event) bool {
	if !a.OccurredAt.Equal(b.OccurredAt) {
		return false
	}
	a.OccurredAt, b.OccurredAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestDecodeExamples(t *testing.T) {
	contact := event.Contact{ID: "5511987654321"}
	tests := []struct {
		name string
		raw  string
		want event.Event
	}{
		{"customer message", customerMessage, event.Event{
			EventID:     "01JA2M7Q9X4TB2C8D5E6F7G8H9",
			Type:        event.TypeMessage,
			OccurredAt:  time.Date(2025, 10, 7, 12, 26, 33, 646e6, time.UTC),
			Tenant:      "acme",
			Channel:     "whatsapp",
			Contact:     event.Contact{ID: "5511987654321", Phone: "+5511987654321", Name: "Maria Souza"},
			SessionID:   "c639c747-4637-4ff5-99c0-9f0e86d3c21b",
			Protocol:    "20251007092633646",
			Author:      &event.Author{Role: event.RoleCustomer},
			Text:        "Oi, preciso da segunda via da minha conta",
			ContentType: "text",
		}},
		{"bot message", botMessage, event.Event{
			EventID:     "01JA2M7R2B7KQ1W3E5R7T9Y1U3",
			Type:        event.TypeMessage,
			OccurredAt:  time.Date(2025, 10, 7, 12, 26, 34, 0, time.UTC),
			Tenant:      "acme",
			Channel:     "whatsapp",
			Contact:     contact,
			Author:      &event.Author{Role: event.RoleBot, ID: "flow-billing", Name: "Assistente Acme"},
			Text:        "Claro! Vou transferir você para um atendente.",
			ContentType: "text",
		}},
		{"agent message", agentMessage, event.Event{
			EventID:     "agent-msg-88412",
			Type:        event.TypeMessage,
			OccurredAt:  time.Date(2025, 10, 7, 12, 31, 2, 5e8, time.UTC),
			Tenant:      "acme",
			Channel:     "whatsapp",
			Contact:     contact,
			SessionID:   "c639c747-4637-4ff5-99c0-9f0e86d3c21b",
			Protocol:    "20251007092633646",
			Author:      &event.Author{Role: event.RoleAgent, ID: "agent-042", Name: "João Lima"},
			Text:        "Segue a sua fatura.",
			ContentType: "text",
			Attachments: []event.Attachment{{
				URL:      "https://files.acme.example/invoices/2025-10.pdf",
				MIMEType: "application/pdf",
				Name:     "fatura-2025-10.pdf",
			}},
		}},
		{"handoff requested", handoffRequested, event.Event{
			EventID:    "handoff-7781-requested",
			Type:       event.TypeHandoff,
			OccurredAt: time.Date(2025, 10, 7, 12, 26, 35, 0, time.UTC),
			Tenant:     "acme",
			Channel:    "whatsapp",
			Contact:    contact,
			Protocol:   "20251007092633646",
			Handoff:    &event.Handoff{Action: event.ActionRequested, Queue: "billing", Reason: "customer asked for a human"},
		}},
		{"handoff assigned", handoffAssigned, event.Event{
			EventID:    "handoff-7781-assigned",
			Type:       event.TypeHandoff,
			OccurredAt: time.Date(2025, 10, 7, 12, 29, 10, 0, time.UTC),
			Tenant:     "acme",
			Channel:    "whatsapp",
			Contact:    contact,
			Protocol:   "20251007092633646",
			Handoff: &event.Handoff{Action: event.ActionAssigned, Queue: "billing",
				Agent: &event.Agent{ID: "agent-042", Name: "João Lima"}},
		}},
		{"handoff transferred", handoffTransferred, event.Event{
			EventID:    "handoff-7781-transferred",
			Type:       event.TypeHandoff,
			OccurredAt: time.Date(2025, 10, 7, 12, 40, 0, 0, time.UTC),
			Tenant:     "acme",
			Channel:    "whatsapp",
			Contact:    contact,
			Protocol:   "20251007092633646",
			Handoff: &event.Handoff{Action: event.ActionTransferred, Queue: "billing-level2",
				Agent: &event.Agent{ID: "agent-077", Name: "Ana Reis"}, Reason: "needs a supervisor"},
		}},
		{"handoff closed", handoffClosed, event.Event{
			EventID:    "handoff-7781-closed",
			Type:       event.TypeHandoff,
			OccurredAt: time.Date(2025, 10, 7, 12, 52, 41, 0, time.UTC),
			Tenant:     "acme",
			Channel:    "whatsapp",
			Contact:    contact,
			Protocol:   "20251007092633646",
			Handoff: &event.Handoff{Action: event.ActionClosed,
				Agent: &event.Agent{ID: "agent-077", Name: "Ana Reis"}, Status: "resolved"},
		}},
		{"tag", tagEvent, event.Event{
			EventID:    "tag-5511987654321-1759829300",
			Type:       event.TypeTag,
			OccurredAt: time.Date(2025, 10, 7, 12, 28, 20, 0, time.UTC),
			Tenant:     "acme",
			Channel:    "whatsapp",
			Contact:    contact,
			Tag:        "Segunda Via Sucesso",
		}},
		{"info string", infoString, event.Event{
			EventID:    "info-1",
			Type:       event.TypeInfo,
			OccurredAt: time.Date(2025, 10, 7, 12, 28, 21, 0, time.UTC),
			Tenant:     "acme",
			Channel:    "whatsapp",
			Contact:    contact,
			Info:       &event.Info{Key: "plano", Value: "Controle 30GB"},
		}},
		{"info number", infoNumber, event.Event{
			EventID:    "info-2",
			Type:       event.TypeInfo,
			OccurredAt: time.Date(2025, 10, 7, 12, 28, 21, 0, time.UTC),
			Tenant:     "acme",
			Channel:    "whatsapp",
			Contact:    contact,
			Info:       &event.Info{Key: "valor_fatura", Value: "189.90"},
		}},
		{"info boolean", infoBoolean, event.Event{
			EventID:    "info-3",
			Type:       event.TypeInfo,
			OccurredAt: time.Date(2025, 10, 7, 12, 28, 21, 0, time.UTC),
			Tenant:     "acme",
			Channel:    "whatsapp",
			Contact:    contact,
			Info:       &event.Info{Key: "NAO_TRANSBORDADA", Value: "true"},
		}},
	}
	if len(tests) != len(examples) {
		t.Fatalf("%d expectations for %d examples", len(tests), len(examples))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeOK(t, []byte(tt.raw))
			if !equalEvent(got, tt.want) {
				t.Errorf("Decode:\n got %+v\nwant %+v", got, tt.want)
			}
			if got.OccurredAt.Location() != time.UTC {
				t.Errorf("occurred_at in %v, want UTC", got.OccurredAt.Location())
			}
			if key := got.RecommendedKey(); key != "acme/whatsapp/5511987654321" {
				t.Errorf("RecommendedKey = %q", key)
			}
		})
	}
}

func TestDecodeNormalises(t *testing.T) {
	tests := []struct {
		name  string
		raw   []byte
		check func(*testing.T, event.Event)
	}{
		{"occurred_at with a negative offset becomes UTC",
			variant(botMessage, set("occurred_at", "2025-10-07T21:30:00-03:00")),
			wantTime(time.Date(2025, 10, 8, 0, 30, 0, 0, time.UTC))},
		{"occurred_at with a positive offset becomes UTC",
			variant(botMessage, set("occurred_at", "2025-10-07T00:15:00+05:30")),
			wantTime(time.Date(2025, 10, 6, 18, 45, 0, 0, time.UTC))},
		{"occurred_at -00:00 is UTC",
			variant(botMessage, set("occurred_at", "2025-10-07T09:26:33-00:00")),
			wantTime(time.Date(2025, 10, 7, 9, 26, 33, 0, time.UTC))},
		{"occurred_at is kept to the millisecond",
			variant(botMessage, set("occurred_at", "2025-10-07T09:26:33.123456789Z")),
			wantTime(time.Date(2025, 10, 7, 9, 26, 33, 123000000, time.UTC))},
		{"occurred_at drops digits past milliseconds, without rounding",
			variant(botMessage, set("occurred_at", "2025-10-07T09:26:33.9999999999Z")),
			wantTime(time.Date(2025, 10, 7, 9, 26, 33, 999000000, time.UTC))},
		{"occurred_at on a leap day",
			variant(botMessage, set("occurred_at", "2024-02-29T23:59:59+00:00")),
			wantTime(time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC))},
		{"session_id is lower-cased",
			variant(botMessage, set("session_id", "C639C747-4637-4FF5-99C0-9F0E86D3C21B")),
			func(t *testing.T, ev event.Event) {
				if ev.SessionID != "c639c747-4637-4ff5-99c0-9f0e86d3c21b" {
					t.Errorf("SessionID = %q", ev.SessionID)
				}
			}},
		{"content_type defaults to text",
			variant(botMessage, del("content_type")),
			wantContentType("text")},
		{"empty content_type defaults to text",
			variant(botMessage, set("content_type", "")),
			wantContentType("text")},
		{"null content_type defaults to text",
			variant(botMessage, set("content_type", nil)),
			wantContentType("text")},
		{"content_type is kept",
			variant(botMessage, set("content_type", "interactive/buttons")),
			wantContentType("interactive/buttons")},
		{"a message may have no text",
			variant(agentMessage, del("text")),
			func(t *testing.T, ev event.Event) {
				if ev.Text != "" || len(ev.Attachments) != 1 {
					t.Errorf("Text = %q, %d attachments", ev.Text, len(ev.Attachments))
				}
			}},
		{"text is kept byte for byte",
			variant(botMessage, set("text", "  linha 1\nlinha 2 😀 <b>&</b>\t")),
			func(t *testing.T, ev event.Event) {
				if ev.Text != "  linha 1\nlinha 2 😀 <b>&</b>\t" {
					t.Errorf("Text = %q", ev.Text)
				}
			}},
		{"tag keeps its spaces and case",
			variant(tagEvent, set("tag", " Segunda Via Sucesso ")),
			func(t *testing.T, ev event.Event) {
				if ev.Tag != " Segunda Via Sucesso " {
					t.Errorf("Tag = %q", ev.Tag)
				}
			}},
		{"fields of other types are dropped",
			variant(tagEvent,
				set("author", map[string]any{"role": "robot"}),
				set("text", "hello"),
				set("content_type", "image"),
				set("attachments", []any{map[string]any{"url": ""}}),
				set("handoff", map[string]any{"action": "opened"}),
				set("info", map[string]any{"key": "not a key", "value": []any{1}})),
			func(t *testing.T, ev event.Event) {
				if ev.Author != nil || ev.Text != "" || ev.ContentType != "" || ev.Attachments != nil ||
					ev.Handoff != nil || ev.Info != nil || ev.Tag != "Segunda Via Sucesso" {
					t.Errorf("tag event kept fields of other types: %+v", ev)
				}
			}},
		{"a message drops tag, handoff and info",
			variant(botMessage, set("tag", ""), set("handoff", map[string]any{}), set("info", map[string]any{})),
			func(t *testing.T, ev event.Event) {
				if ev.Tag != "" || ev.Handoff != nil || ev.Info != nil {
					t.Errorf("message kept fields of other types: %+v", ev)
				}
			}},
		{"absent session_id and protocol stay empty",
			variant(botMessage, del("session_id"), del("protocol")),
			wantSessionProtocol("", "")},
		{"null session_id and protocol are absent",
			variant(botMessage, set("session_id", nil), set("protocol", nil)),
			wantSessionProtocol("", "")},
		{"empty session_id and protocol are absent",
			variant(botMessage, set("session_id", ""), set("protocol", "")),
			wantSessionProtocol("", "")},
		{"handoff status on a non-closed action is kept",
			variant(handoffRequested, set("handoff.status", "pending")),
			func(t *testing.T, ev event.Event) {
				if ev.Handoff.Status != "pending" {
					t.Errorf("Status = %q", ev.Handoff.Status)
				}
			}},
		{"null handoff agent is absent",
			variant(handoffRequested, set("handoff.agent", nil)),
			func(t *testing.T, ev event.Event) {
				if ev.Handoff.Agent != nil {
					t.Errorf("Agent = %+v", ev.Handoff.Agent)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, decodeOK(t, tt.raw)) })
	}
}

func wantTime(want time.Time) func(*testing.T, event.Event) {
	return func(t *testing.T, ev event.Event) {
		if !ev.OccurredAt.Equal(want) || ev.OccurredAt.Location() != time.UTC {
			t.Errorf("OccurredAt = %v, want %v", ev.OccurredAt, want)
		}
	}
}

func wantContentType(want string) func(*testing.T, event.Event) {
	return func(t *testing.T, ev event.Event) {
		if ev.ContentType != want {
			t.Errorf("ContentType = %q, want %q", ev.ContentType, want)
		}
	}
}

func wantSessionProtocol(session, protocol string) func(*testing.T, event.Event) {
	return func(t *testing.T, ev event.Event) {
		if ev.SessionID != session || ev.Protocol != protocol {
			t.Errorf("SessionID, Protocol = %q, %q; want %q, %q", ev.SessionID, ev.Protocol, session, protocol)
		}
	}
}

func TestDecodeInfoValue(t *testing.T) {
	tests := []struct {
		value json.RawMessage
		want  string
	}{
		{raw(`"Controle 30GB"`), "Controle 30GB"},
		{raw(`""`), ""},
		{raw(`"  spaced  "`), "  spaced  "},
		{raw(`"caf\u00e9 \"quoted\""`), `café "quoted"`},
		{raw(`"1.50"`), "1.50"},
		{raw(`1.50`), "1.50"},
		{raw(`-3`), "-3"},
		{raw(`0`), "0"},
		{raw(`-0`), "-0"},
		{raw(`42`), "42"},
		{raw(`189.90`), "189.90"},
		{raw(`1e3`), "1e3"},
		{raw(`-2.5E-7`), "-2.5E-7"},
		{raw(`12345678901234567890123`), "12345678901234567890123"},
		{raw(`true`), "true"},
		{raw(`false`), "false"},
	}
	for _, tt := range tests {
		t.Run(string(tt.value), func(t *testing.T) {
			ev := decodeOK(t, variant(infoString, set("info.value", tt.value)))
			if ev.Info == nil || ev.Info.Value != tt.want {
				t.Errorf("Info = %+v, want value %q", ev.Info, tt.want)
			}
		})
	}
	// A number keeps its spelling even inside an event with odd spacing.
	ev := decodeOK(t, []byte(strings.Replace(infoNumber, `"value": 189.90`, "\"value\" :\n\t 189.90 \n", 1)))
	if ev.Info.Value != "189.90" {
		t.Errorf("spaced number: Value = %q", ev.Info.Value)
	}
}

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
	}{
		{"tenant of one letter", variant(botMessage, set("tenant", "a"))},
		{"tenant of one digit", variant(botMessage, set("tenant", "7"))},
		{"tenant with _ and -", variant(botMessage, set("tenant", "acme_br-2"))},
		{"channel webchat", variant(botMessage, set("channel", "webchat"))},
		{"channel telegram", variant(botMessage, set("channel", "telegram"))},
		{"channel with _", variant(botMessage, set("channel", "instagram_dm"))},
		{"contact without phone and name", variant(customerMessage, del("contact.phone"), del("contact.name"))},
		{"contact id that is not a phone", variant(customerMessage, set("contact.id", "wa-username:maria.souza"))},
		{"contact phone null", variant(customerMessage, set("contact.phone", nil))},
		{"session_id nil UUID", variant(botMessage, set("session_id", "00000000-0000-0000-0000-000000000000"))},
		{"session_id max UUID", variant(botMessage, set("session_id", "ffffffff-ffff-ffff-ffff-ffffffffffff"))},
		{"session_id version 7", variant(botMessage, set("session_id", "01928c3e-6a4f-7b2e-9d1c-3f5a7b9c1d2e"))},
		{"session_id mixed case", variant(botMessage, set("session_id", "c639C747-4637-4ff5-99C0-9f0e86d3c21b"))},
		{"protocol on a leap day", variant(botMessage, set("protocol", "20240229000000001"))},
		{"protocol on a century leap day", variant(botMessage, set("protocol", "20000229123456789"))},
		{"protocol on 31 December", variant(botMessage, set("protocol", "20251231235959999"))},
		{"occurred_at in year 0000", variant(botMessage, set("occurred_at", "0000-01-01T00:00:00Z"))},
		{"occurred_at +23:59", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33+23:59"))},
		{"author role customer", variant(botMessage, set("author", map[string]any{"role": "customer"}))},
		{"author role agent", variant(botMessage, set("author.role", "agent"))},
		{"empty text", variant(botMessage, set("text", ""))},
		{"empty attachments", variant(agentMessage, set("attachments", []any{}))},
		{"attachment with only a url", variant(agentMessage, set("attachments", []any{map[string]any{"url": "https://x.example/a.png"}}))},
		{"status abandoned", variant(handoffClosed, set("handoff.status", "abandoned"))},
		{"status cancelled_inactivity", variant(handoffClosed, set("handoff.status", "cancelled_inactivity"))},
		{"status another token", variant(handoffClosed, set("handoff.status", "transferred-to-email"))},
		{"status starting with _", variant(handoffClosed, set("handoff.status", "_legacy"))},
		{"closed without status", variant(handoffClosed, del("handoff.status"))},
		{"closed without agent", variant(handoffClosed, del("handoff.agent"))},
		{"agent without name", variant(handoffAssigned, set("handoff.agent", map[string]any{"id": "agent-042"}))},
		{"tag with accents", variant(tagEvent, set("tag", "Emissão de 2ª via"))},
		{"tag of one character", variant(tagEvent, set("tag", "x"))},
		{"tag of a zero-width space", variant(tagEvent, set("tag", "\u200b"))},
		{"info key with . and -", variant(infoString, set("info.key", "cliente.plano-atual_v2"))},
		{"unknown top-level fields", variant(botMessage, set("schema_version", 2), set("trace", map[string]any{"id": "abc"}))},
		{"unknown nested fields", variant(agentMessage, set("contact.email", "m@example.com"), set("author.avatar", "x"),
			set("attachments", []any{map[string]any{"url": "https://x.example/a.png", "size": 1234}}))},
		{"unknown handoff and info fields", variant(handoffAssigned, set("handoff.agent.team", "billing"), set("handoff.priority", 3))},
		{"escaped characters", []byte(strings.Replace(botMessage, `"Claro!`, `"\u00c9 \ud83d\ude00 \/ \"q\" Claro!`, 1))},
		{"lone surrogate escape", []byte(strings.Replace(botMessage, `"Claro!`, `"\ud800 Claro!`, 1))},
		{"leading and trailing white space", []byte(" \n\t" + botMessage + "\r\n ")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { decodeOK(t, tt.raw) })
	}
}

func TestDecodeRejects(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	attachments := func(n int) []any {
		a := make([]any, n)
		for i := range a {
			a[i] = map[string]any{"url": "https://x.example/a.png"}
		}
		return a
	}
	tests := []struct {
		name  string
		raw   []byte
		field string
	}{
		// event_id
		{"event_id missing", variant(botMessage, del("event_id")), "event_id"},
		{"event_id empty", variant(botMessage, set("event_id", "")), "event_id"},
		{"event_id null", variant(botMessage, set("event_id", nil)), "event_id"},
		{"event_id too long", variant(botMessage, set("event_id", long(129))), "event_id"},
		// type
		{"type missing", variant(botMessage, del("type")), "type"},
		{"type empty", variant(botMessage, set("type", "")), "type"},
		{"type unknown", variant(botMessage, set("type", "event")), "type"},
		{"type upper-case", variant(botMessage, set("type", "Message")), "type"},
		// occurred_at
		{"occurred_at missing", variant(botMessage, del("occurred_at")), "occurred_at"},
		{"occurred_at empty", variant(botMessage, set("occurred_at", "")), "occurred_at"},
		{"occurred_at without offset", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33")), "occurred_at"},
		{"occurred_at date only", variant(botMessage, set("occurred_at", "2025-10-07")), "occurred_at"},
		{"occurred_at with a space", variant(botMessage, set("occurred_at", "2025-10-07 09:26:33Z")), "occurred_at"},
		{"occurred_at lower-case t and z", variant(botMessage, set("occurred_at", "2025-10-07t09:26:33z")), "occurred_at"},
		{"occurred_at offset without colon", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33-0300")), "occurred_at"},
		{"occurred_at offset of one hour digit", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33-3:00")), "occurred_at"},
		{"occurred_at dot without fraction", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33.Z")), "occurred_at"},
		{"occurred_at 30 February", variant(botMessage, set("occurred_at", "2025-02-30T09:26:33Z")), "occurred_at"},
		{"occurred_at 29 February of a common year", variant(botMessage, set("occurred_at", "2025-02-29T09:26:33Z")), "occurred_at"},
		{"occurred_at month 13", variant(botMessage, set("occurred_at", "2025-13-07T09:26:33Z")), "occurred_at"},
		{"occurred_at hour 24", variant(botMessage, set("occurred_at", "2025-10-07T24:00:00Z")), "occurred_at"},
		{"occurred_at leap second", variant(botMessage, set("occurred_at", "2016-12-31T23:59:60Z")), "occurred_at"},
		{"occurred_at Brazilian format", variant(botMessage, set("occurred_at", "07/10/2025 09:26")), "occurred_at"},
		// tenant
		{"tenant missing", variant(botMessage, del("tenant")), "tenant"},
		{"tenant empty", variant(botMessage, set("tenant", "")), "tenant"},
		{"tenant upper-case", variant(botMessage, set("tenant", "Acme")), "tenant"},
		{"tenant starting with -", variant(botMessage, set("tenant", "-acme")), "tenant"},
		{"tenant starting with _", variant(botMessage, set("tenant", "_acme")), "tenant"},
		{"tenant with a space", variant(botMessage, set("tenant", "ac me")), "tenant"},
		{"tenant with a slash", variant(botMessage, set("tenant", "acme/br")), "tenant"},
		{"tenant with a dot", variant(botMessage, set("tenant", "acme.br")), "tenant"},
		{"tenant with an accent", variant(botMessage, set("tenant", "acmé")), "tenant"},
		{"tenant with a trailing newline", variant(botMessage, set("tenant", "acme\n")), "tenant"},
		{"tenant too long", variant(botMessage, set("tenant", "a"+long(63))), "tenant"},
		// channel
		{"channel missing", variant(botMessage, del("channel")), "channel"},
		{"channel empty", variant(botMessage, set("channel", "")), "channel"},
		{"channel upper-case", variant(botMessage, set("channel", "WhatsApp")), "channel"},
		{"channel with a space", variant(botMessage, set("channel", "web chat")), "channel"},
		{"channel starting with _", variant(botMessage, set("channel", "_whatsapp")), "channel"},
		{"channel too long", variant(botMessage, set("channel", "c"+long(32))), "channel"},
		// contact
		{"contact missing", variant(botMessage, del("contact")), "contact"},
		{"contact null", variant(botMessage, set("contact", nil)), "contact"},
		{"contact id missing", variant(botMessage, set("contact", map[string]any{"phone": "+5511987654321"})), "contact.id"},
		{"contact id empty", variant(botMessage, set("contact.id", "")), "contact.id"},
		{"contact id null", variant(botMessage, set("contact.id", nil)), "contact.id"},
		{"contact id too long", variant(botMessage, set("contact.id", long(257))), "contact.id"},
		{"contact phone too long", variant(botMessage, set("contact.phone", long(257))), "contact"},
		{"contact name too long", variant(botMessage, set("contact.name", long(257))), "contact"},
		// session_id
		{"session_id without hyphens", variant(botMessage, set("session_id", "c639c74746374ff599c09f0e86d3c21b")), "session_id"},
		{"session_id in braces", variant(botMessage, set("session_id", "{c639c747-4637-4ff5-99c0-9f0e86d3c21b}")), "session_id"},
		{"session_id as a URN", variant(botMessage, set("session_id", "urn:uuid:c639c747-4637-4ff5-99c0-9f0e86d3c21b")), "session_id"},
		{"session_id one digit short", variant(botMessage, set("session_id", "c639c747-4637-4ff5-99c0-9f0e86d3c21")), "session_id"},
		{"session_id one digit long", variant(botMessage, set("session_id", "c639c747-4637-4ff5-99c0-9f0e86d3c21bb")), "session_id"},
		{"session_id with a non-hex digit", variant(botMessage, set("session_id", "g639c747-4637-4ff5-99c0-9f0e86d3c21b")), "session_id"},
		{"session_id with hyphens misplaced", variant(botMessage, set("session_id", "c639c7474-637-4ff5-99c0-9f0e86d3c21b")), "session_id"},
		{"session_id with spaces", variant(botMessage, set("session_id", " c639c747-4637-4ff5-99c0-9f0e86d3c21b")), "session_id"},
		// protocol
		{"protocol of 16 digits", variant(botMessage, set("protocol", "2025100709263364")), "protocol"},
		{"protocol of 18 digits", variant(botMessage, set("protocol", "202510070926336460")), "protocol"},
		{"protocol with a letter", variant(botMessage, set("protocol", "2025100709263364a")), "protocol"},
		{"protocol with hyphens", variant(botMessage, set("protocol", "2025-10-07-092633")), "protocol"},
		{"protocol in month 13", variant(botMessage, set("protocol", "20251307092633646")), "protocol"},
		{"protocol in month 00", variant(botMessage, set("protocol", "20250007092633646")), "protocol"},
		{"protocol on day 00", variant(botMessage, set("protocol", "20251000092633646")), "protocol"},
		{"protocol on 31 April", variant(botMessage, set("protocol", "20250431092633646")), "protocol"},
		{"protocol on 29 February of a common year", variant(botMessage, set("protocol", "20250229092633646")), "protocol"},
		{"protocol on 29 February 1900", variant(botMessage, set("protocol", "19000229092633646")), "protocol"},
		{"protocol with a space", variant(botMessage, set("protocol", " 20251007092633646")), "protocol"},
		// message
		{"message without author", variant(botMessage, del("author")), "author"},
		{"message with null author", variant(botMessage, set("author", nil)), "author"},
		{"author without role", variant(botMessage, del("author.role")), "author.role"},
		{"author role unknown", variant(botMessage, set("author.role", "system")), "author.role"},
		{"author role upper-case", variant(botMessage, set("author.role", "Bot")), "author.role"},
		{"author id too long", variant(botMessage, set("author.id", long(257))), "author"},
		{"author name too long", variant(botMessage, set("author.name", long(257))), "author"},
		{"text over 64 KiB", variant(botMessage, set("text", long(64<<10+1))), "text"},
		{"too many attachments", variant(agentMessage, set("attachments", attachments(65))), "attachments"},
		{"attachment without url", variant(agentMessage, set("attachments", []any{
			map[string]any{"url": "https://x.example/a.png"}, map[string]any{"name": "b.png"}})), "attachments[1].url"},
		{"attachment null", variant(agentMessage, set("attachments", []any{nil})), "attachments[0].url"},
		// handoff
		{"handoff missing", variant(handoffRequested, del("handoff")), "handoff"},
		{"handoff null", variant(handoffRequested, set("handoff", nil)), "handoff"},
		{"handoff action missing", variant(handoffRequested, del("handoff.action")), "handoff.action"},
		{"handoff action unknown", variant(handoffRequested, set("handoff.action", "opened")), "handoff.action"},
		{"handoff action upper-case", variant(handoffRequested, set("handoff.action", "Closed")), "handoff.action"},
		{"handoff agent without id", variant(handoffAssigned, set("handoff.agent", map[string]any{"name": "João Lima"})), "handoff.agent"},
		{"handoff agent id too long", variant(handoffAssigned, set("handoff.agent.id", long(257))), "handoff.agent"},
		{"handoff agent name too long", variant(handoffAssigned, set("handoff.agent.name", long(257))), "handoff.agent"},
		{"handoff status upper-case", variant(handoffClosed, set("handoff.status", "Resolved")), "handoff.status"},
		{"handoff status with a space", variant(handoffClosed, set("handoff.status", "cancelled inactivity")), "handoff.status"},
		{"handoff status too long", variant(handoffClosed, set("handoff.status", long(65))), "handoff.status"},
		// tag
		{"tag missing", variant(tagEvent, del("tag")), "tag"},
		{"tag null", variant(tagEvent, set("tag", nil)), "tag"},
		{"tag empty", variant(tagEvent, set("tag", "")), "tag"},
		{"tag of spaces", variant(tagEvent, set("tag", "   ")), "tag"},
		{"tag of white space", variant(tagEvent, set("tag", "\t\n\v\f\r \u00a0\u2003\u3000")), "tag"},
		{"tag too long", variant(tagEvent, set("tag", long(129))), "tag"},
		// info
		{"info missing", variant(infoString, del("info")), "info"},
		{"info null", variant(infoString, set("info", nil)), "info"},
		{"info key missing", variant(infoString, del("info.key")), "info.key"},
		{"info key empty", variant(infoString, set("info.key", "")), "info.key"},
		{"info key with a space", variant(infoString, set("info.key", "NAO TRANSBORDADA")), "info.key"},
		{"info key with a slash", variant(infoString, set("info.key", "cliente/plano")), "info.key"},
		{"info key with an accent", variant(infoString, set("info.key", "situação")), "info.key"},
		{"info key too long", variant(infoString, set("info.key", long(129))), "info.key"},
		{"info value missing", variant(infoString, del("info.value")), "info.value"},
		{"info value null", variant(infoString, set("info.value", nil)), "info.value"},
		{"info value object", variant(infoString, set("info.value", map[string]any{"a": 1})), "info.value"},
		{"info value array", variant(infoString, set("info.value", []any{"a"})), "info.value"},
		{"info value too long", variant(infoString, set("info.value", long(4097))), "info.value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantInvalid(t, tt.raw, tt.field)
		})
	}
}

// wantInvalid checks that Decode rejects raw with an *InvalidError about field.
func wantInvalid(t *testing.T, raw []byte, field string) *event.InvalidError {
	t.Helper()
	ev, err := event.Decode(raw)
	if err == nil {
		t.Fatalf("Decode(%.300s) = %+v, want an error about %q", raw, ev, field)
	}
	var ie *event.InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("Decode error %T %v, want *event.InvalidError", err, err)
	}
	if ie.Field != field {
		t.Errorf("Field = %q, want %q (error %q)", ie.Field, field, err)
	}
	if ie.Reason == "" {
		t.Errorf("empty Reason")
	}
	if field != "" && !strings.HasPrefix(err.Error(), field+": ") {
		t.Errorf("Error() = %q, want it to start with %q", err, field+": ")
	}
	return ie
}

// A field of the wrong JSON type fails the JSON decoding itself; the error
// names the field by its JSON path and never Go's type names.
func TestDecodeWrongJSONType(t *testing.T) {
	tests := []struct {
		field string
		raw   []byte
	}{
		{"event_id", variant(botMessage, set("event_id", 42))},
		{"type", variant(botMessage, set("type", 1))},
		{"occurred_at", variant(botMessage, set("occurred_at", 1759829193))},
		{"tenant", variant(botMessage, set("tenant", []any{"acme"}))},
		{"channel", variant(botMessage, set("channel", true))},
		{"contact", variant(botMessage, set("contact", "5511987654321"))},
		{"id", variant(botMessage, set("contact.id", 5511987654321))},
		{"phone", variant(botMessage, set("contact.phone", 5511987654321))},
		{"session_id", variant(botMessage, set("session_id", map[string]any{}))},
		{"protocol", variant(botMessage, set("protocol", 20251007092633646))},
		{"author", variant(botMessage, set("author", "bot"))},
		{"text", variant(botMessage, set("text", []any{"a", "b"}))},
		{"attachments", variant(agentMessage, set("attachments", map[string]any{"url": "x"}))},
		{"url", variant(agentMessage, set("attachments", []any{map[string]any{"url": 1}}))},
		{"handoff", variant(handoffRequested, set("handoff", "requested"))},
		{"agent", variant(handoffAssigned, set("handoff.agent", "agent-042"))},
		{"tag", variant(tagEvent, set("tag", 7))},
		{"info", variant(infoString, set("info", "plano=x"))},
		{"key", variant(infoString, set("info.key", 1))},
		// Wrong types are rejected even in fields the event's type ignores.
		{"tag", variant(botMessage, set("tag", false))},
		{"author", variant(tagEvent, set("author", 1))},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			_, err := event.Decode(tt.raw)
			var ie *event.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("Decode error %T %v, want *event.InvalidError", err, err)
			}
			if ie.Field != tt.field && !strings.HasSuffix(ie.Field, "."+tt.field) {
				t.Errorf("Field = %q, want it to name %q", ie.Field, tt.field)
			}
			if strings.Contains(ie.Error(), "Go ") || strings.Contains(ie.Error(), "wire") {
				t.Errorf("Error() = %q leaks Go names", ie)
			}
		})
	}
}

func TestDecodeNotAnEvent(t *testing.T) {
	tests := []struct {
		name string
		raw  string
	}{
		{"empty", ""},
		{"white space", " \n"},
		{"text", "not json"},
		{"truncated", customerMessage[:len(customerMessage)/2]},
		{"array", `[` + botMessage + `]`},
		{"string", `"hello"`},
		{"number", `42`},
		{"true", `true`},
		{"two events", botMessage + tagEvent},
		{"trailing garbage", botMessage + ` x`},
		{"trailing comma", strings.TrimSuffix(botMessage, "}") + ",}"},
		{"single quotes", `{'event_id': 'a'}`},
		{"NaN", strings.Replace(infoNumber, "189.90", "NaN", 1)},
		{"number with a plus", strings.Replace(infoNumber, "189.90", "+189.90", 1)},
		{"number with a leading zero", strings.Replace(infoNumber, "189.90", "0189.90", 1)},
		{"hex number", strings.Replace(infoNumber, "189.90", "0x10", 1)},
		{"control character in a string", strings.Replace(botMessage, "Claro!", "Claro!\x01", 1)},
		{"bad escape", strings.Replace(botMessage, "Claro!", `Claro!\x`, 1)},
		{"byte order mark", "\ufeff" + botMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantInvalid(t, []byte(tt.raw), "") })
	}
	t.Run("null", func(t *testing.T) {
		// null decodes into nothing, so the first rule to fail is event_id.
		wantInvalid(t, []byte("null"), "event_id")
	})
	t.Run("empty object", func(t *testing.T) { wantInvalid(t, []byte("{}"), "event_id") })
}

func TestDecodeInvalidUTF8(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"in text", strings.Replace(botMessage, "Claro!", "Claro!\xff", 1)},
		{"in a field name", strings.Replace(botMessage, `"text"`, "\"te\xc3xt\"", 1)},
		{"in an unknown field", strings.Replace(botMessage, `"text"`, "\"x\": \"\xed\xa0\x80\", \"text\"", 1)},
		{"overlong encoding", strings.Replace(botMessage, "Claro!", "Claro!\xc0\xaf", 1)},
		{"truncated sequence", strings.Replace(botMessage, "Claro!", "Claro!\xe2\x82", 1)},
		{"latin-1 ã", strings.Replace(botMessage, "Claro!", "N\xe3o", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ie := wantInvalid(t, []byte(tt.raw), "")
			if !strings.Contains(ie.Reason, "UTF-8") {
				t.Errorf("Reason = %q, want it to mention UTF-8", ie.Reason)
			}
		})
	}
}

// Limits are counted in bytes of UTF-8: a multi-byte character uses several.
func TestDecodeLimits(t *testing.T) {
	tests := []struct {
		name  string
		field string
		at    []byte // exactly at the limit: accepted
		over  []byte // one byte over: rejected
	}{
		{"event_id 128", "event_id",
			variant(botMessage, set("event_id", strings.Repeat("e", 128))),
			variant(botMessage, set("event_id", strings.Repeat("e", 129)))},
		{"event_id 128 in two-byte characters", "event_id",
			variant(botMessage, set("event_id", strings.Repeat("é", 64))),
			variant(botMessage, set("event_id", strings.Repeat("é", 64)+"e"))},
		{"tenant 63", "tenant",
			variant(botMessage, set("tenant", strings.Repeat("t", 63))),
			variant(botMessage, set("tenant", strings.Repeat("t", 64)))},
		{"channel 32", "channel",
			variant(botMessage, set("channel", strings.Repeat("c", 32))),
			variant(botMessage, set("channel", strings.Repeat("c", 33)))},
		{"contact.id 256", "contact.id",
			variant(botMessage, set("contact.id", strings.Repeat("i", 256))),
			variant(botMessage, set("contact.id", strings.Repeat("i", 257)))},
		{"contact.name 256 in two-byte characters", "contact",
			variant(botMessage, set("contact.name", strings.Repeat("ã", 128))),
			variant(botMessage, set("contact.name", strings.Repeat("ã", 128)+"a"))},
		{"contact.phone 256", "contact",
			variant(botMessage, set("contact.phone", strings.Repeat("9", 256))),
			variant(botMessage, set("contact.phone", strings.Repeat("9", 257)))},
		{"author.id 256", "author",
			variant(botMessage, set("author.id", strings.Repeat("a", 256))),
			variant(botMessage, set("author.id", strings.Repeat("a", 257)))},
		{"author.name 256", "author",
			variant(botMessage, set("author.name", strings.Repeat("a", 256))),
			variant(botMessage, set("author.name", strings.Repeat("a", 257)))},
		{"text 64 KiB", "text",
			variant(botMessage, set("text", strings.Repeat("t", 64<<10))),
			variant(botMessage, set("text", strings.Repeat("t", 64<<10+1)))},
		{"text 64 KiB in two-byte characters", "text",
			variant(botMessage, set("text", strings.Repeat("ç", 32<<10))),
			variant(botMessage, set("text", strings.Repeat("ç", 32<<10)+"c"))},
		{"text 64 KiB in four-byte characters", "text",
			variant(botMessage, set("text", strings.Repeat("😀", 16<<10))),
			variant(botMessage, set("text", strings.Repeat("😀", 16<<10)+"!"))},
		{"handoff.agent.id 256", "handoff.agent",
			variant(handoffAssigned, set("handoff.agent.id", strings.Repeat("a", 256))),
			variant(handoffAssigned, set("handoff.agent.id", strings.Repeat("a", 257)))},
		{"handoff.agent.name 256", "handoff.agent",
			variant(handoffAssigned, set("handoff.agent.name", strings.Repeat("a", 256))),
			variant(handoffAssigned, set("handoff.agent.name", strings.Repeat("a", 257)))},
		{"handoff.status 64", "handoff.status",
			variant(handoffClosed, set("handoff.status", strings.Repeat("s", 64))),
			variant(handoffClosed, set("handoff.status", strings.Repeat("s", 65)))},
		{"tag 128", "tag",
			variant(tagEvent, set("tag", strings.Repeat("g", 128))),
			variant(tagEvent, set("tag", strings.Repeat("g", 129)))},
		{"tag 128 in two-byte characters", "tag",
			variant(tagEvent, set("tag", strings.Repeat("ç", 64))),
			variant(tagEvent, set("tag", strings.Repeat("ç", 64)+"c"))},
		{"info.key 128", "info.key",
			variant(infoString, set("info.key", strings.Repeat("K", 128))),
			variant(infoString, set("info.key", strings.Repeat("K", 129)))},
		{"info.value 4096", "info.value",
			variant(infoString, set("info.value", strings.Repeat("v", 4096))),
			variant(infoString, set("info.value", strings.Repeat("v", 4097)))},
		{"info.value 4096 as a number", "info.value",
			variant(infoString, set("info.value", raw(strings.Repeat("9", 4096)))),
			variant(infoString, set("info.value", raw(strings.Repeat("9", 4097))))},
		{"info.value 4096 after unescaping", "info.value",
			variant(infoString, set("info.value", strings.Repeat("é", 2048))),
			variant(infoString, set("info.value", strings.Repeat("é", 2048)+"e"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decodeOK(t, tt.at)
			wantInvalid(t, tt.over, tt.field)
		})
	}
	t.Run("64 attachments", func(t *testing.T) {
		a := make([]any, 64)
		for i := range a {
			a[i] = map[string]any{"url": "https://x.example/a.png"}
		}
		if ev := decodeOK(t, variant(agentMessage, set("attachments", a))); len(ev.Attachments) != 64 {
			t.Errorf("%d attachments", len(ev.Attachments))
		}
		wantInvalid(t, variant(agentMessage, set("attachments", append(a, a[0]))), "attachments")
	})
}

// padded returns base with an unknown field that brings it to exactly size bytes.
func padded(t testing.TB, base string, size int) []byte {
	t.Helper()
	b := variant(base, set("padding", ""))
	b = variant(base, set("padding", strings.Repeat("p", size-len(b))))
	if len(b) != size {
		t.Fatalf("padded to %d bytes, want %d", len(b), size)
	}
	return b
}

func TestDecodeEventSize(t *testing.T) {
	decodeOK(t, padded(t, botMessage, event.MaxEventBytes))
	ie := wantInvalid(t, padded(t, botMessage, event.MaxEventBytes+1), "")
	if !strings.Contains(ie.Reason, "1048577") {
		t.Errorf("Reason = %q, want the size", ie.Reason)
	}
	// The size is checked before anything else, so even garbage is reported
	// for its size.
	ie = wantInvalid(t, bytes.Repeat([]byte{0xff}, event.MaxEventBytes+1), "")
	if !strings.Contains(ie.Reason, "limit") {
		t.Errorf("Reason = %q, want the size limit", ie.Reason)
	}
	if event.MaxEventBytes != 1<<20 || event.MaxTextBytes != 64<<10 {
		t.Errorf("limits %d and %d, docs/events.md says 1 MiB and 64 KiB", event.MaxEventBytes, event.MaxTextBytes)
	}
}

// The reason is the chatreport-reason header of a dead-lettered event;
// docs/events.md quotes this one.
func TestDeadLetterReason(t *testing.T) {
	_, err := event.Decode(variant(botMessage, set("occurred_at", "2025-10-07 09:26:33")))
	if got, want := err.Error(), "occurred_at: must be RFC 3339 with a UTC offset"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = event.Decode(variant(botMessage, del("type")))
	if got, want := err.Error(), "type: required"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// Forms that time.Parse and encoding/json let through and the contract does
// not: timestamps that are not RFC 3339, and field names in another case,
// which are unknown fields (so the event lacks the field).
func TestDecodeStrictForms(t *testing.T) {
	tests := []struct {
		name  string
		raw   []byte
		field string
	}{
		{"occurred_at hour of one digit", variant(botMessage, set("occurred_at", "2025-10-07T9:26:33Z")), "occurred_at"},
		{"occurred_at comma before the fraction", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33,5Z")), "occurred_at"},
		{"occurred_at offset of 24 hours", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33+24:00")), "occurred_at"},
		{"occurred_at offset with 60 minutes", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33+05:60")), "occurred_at"},
		{"occurred_at moved before year 0 by its offset", variant(botMessage, set("occurred_at", "0000-01-01T00:00:00+01:00")), "occurred_at"},
		{"occurred_at moved past year 9999 by its offset", variant(botMessage, set("occurred_at", "9999-12-31T23:59:59-00:01")), "occurred_at"},
		{"field name in upper case", []byte(strings.Replace(botMessage, `"event_id"`, `"EVENT_ID"`, 1)), "event_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantInvalid(t, tt.raw, tt.field) })
	}
}

func TestCompareAndBefore(t *testing.T) {
	at := time.Date(2025, 10, 7, 12, 0, 0, 0, time.UTC)
	a := &event.Event{EventID: "a", OccurredAt: at}
	b := &event.Event{EventID: "b", OccurredAt: at}
	c := &event.Event{EventID: "a", OccurredAt: at.Add(time.Nanosecond)}
	if !a.Before(b) || b.Before(a) || !b.Before(c) || a.Before(a) {
		t.Error("Before does not order by (occurred_at, event_id)")
	}
	if event.Compare(a, b) >= 0 || event.Compare(b, c) >= 0 || event.Compare(c, a) <= 0 || event.Compare(a, a) != 0 {
		t.Error("Compare does not order by (occurred_at, event_id)")
	}
	ev := decodeOK(t, []byte(tagEvent))
	if ev.Ref() != (event.Ref{Tenant: "acme", EventID: "tag-5511987654321-1759829300"}) {
		t.Errorf("Ref = %+v", ev.Ref())
	}
}

func FuzzDecode(f *testing.F) {
	for _, ex := range examples {
		f.Add([]byte(ex.raw))
	}
	for _, s := range []string{
		"", "{}", "null", "[]", `{"type":"tag"}`, "\xff",
		string(variant(agentMessage, set("attachments", []any{}))),
		string(variant(infoString, set("info.value", raw("-0.000e+12")))),
		string(variant(botMessage, set("occurred_at", "0000-01-01T00:00:00Z"))),
		string(variant(botMessage, set("occurred_at", "9999-12-31T23:59:59.999999999Z"))),
		string(variant(botMessage, set("occurred_at", "0000-01-01T00:00:00+01:00"))), // rejected: year -1 in UTC
		string(variant(tagEvent, set("tag", "\u00a0x\u3000"))),
		strings.Replace(botMessage, "Claro!", `\ud800\u0000\u2028`, 1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := event.Decode(raw)
		if err != nil {
			var ie *event.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T %v, want *event.InvalidError", err, err)
			}
			return
		}
		checkInvariants(t, ev)
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", ev, err)
		}
		ev2, err := event.Decode(again)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		if !equalEvent(normalised(ev), normalised(ev2)) {
			t.Fatalf("round trip changed the event:\n first %+v\nsecond %+v", ev, ev2)
		}
	})
}

// normalised treats an empty attachment list like none: Decode keeps the empty
// slice that was sent, and omitempty drops it when re-encoding.
func normalised(ev event.Event) event.Event {
	if len(ev.Attachments) == 0 {
		ev.Attachments = nil
	}
	return ev
}

// checkInvariants holds for every accepted event.
func checkInvariants(t *testing.T, ev event.Event) {
	t.Helper()
	if ev.OccurredAt.Location() != time.UTC {
		t.Errorf("OccurredAt in %v", ev.OccurredAt.Location())
	}
	if ev.SessionID != strings.ToLower(ev.SessionID) {
		t.Errorf("SessionID %q not lower-case", ev.SessionID)
	}
	if ev.EventID == "" || ev.Tenant == "" || ev.Channel == "" || ev.Contact.ID == "" {
		t.Errorf("required field empty: %+v", ev)
	}
	message := ev.Author != nil || ev.Text != "" || ev.ContentType != "" || ev.Attachments != nil
	switch ev.Type {
	case event.TypeMessage:
		if ev.Author == nil || ev.ContentType == "" || ev.Handoff != nil || ev.Tag != "" || ev.Info != nil {
			t.Errorf("message fields: %+v", ev)
		}
	case event.TypeHandoff:
		if ev.Handoff == nil || message || ev.Tag != "" || ev.Info != nil {
			t.Errorf("handoff fields: %+v", ev)
		}
	case event.TypeTag:
		if strings.TrimSpace(ev.Tag) == "" || message || ev.Handoff != nil || ev.Info != nil {
			t.Errorf("tag fields: %+v", ev)
		}
	case event.TypeInfo:
		if ev.Info == nil || message || ev.Handoff != nil || ev.Tag != "" {
			t.Errorf("info fields: %+v", ev)
		}
	default:
		t.Errorf("type %q accepted", ev.Type)
	}
}
