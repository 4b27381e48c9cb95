package api

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// TestJSONLEncoderMatchesEncodingJSON: the export's hand-written encoder
// writes, from the stored events, the bytes encoding/json's Encoder writes
// for the view of the events decoded (what GET /sessions/{id} returns), for
// every kind of event and the strings JSON escapes; with times as the
// decoder keeps them (copied) and in another zone, to the nanosecond
// (decoded).
func TestJSONLEncoderMatchesEncodingJSON(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2025, 10, 7, 9, 26, 33, 646000123, time.FixedZone("", -3*3600)),
		time.Date(2025, 10, 7, 9, 26, 33, 640000000, time.UTC),
	} {
		testJSONLEncoder(t, at)
	}
}

func testJSONLEncoder(t *testing.T, at time.Time) {
	now := time.Date(2025, 10, 9, 12, 0, 0, 0, time.UTC)
	odd := "a\"b\\c\n\r\t\x01\x1f<tag>&amp; \u2028\u2029 ç 🎉 \xff\xfe end"
	contact := event.Contact{ID: "5511987654321", Phone: "+55 11 98765-4321", Name: odd}
	msg := func(id, role, text string) event.Event {
		return event.Event{EventID: id, Type: event.TypeMessage, OccurredAt: at, Tenant: "acme", Channel: "whatsapp",
			Contact: contact, Author: &event.Author{Role: role}, Text: text, ContentType: "text"}
	}
	withAll := msg("m2", event.RoleAgent, "")
	withAll.Author = &event.Author{Role: event.RoleAgent, ID: "ag-1", Name: "Carla <3"}
	withAll.Attachments = []event.Attachment{{URL: "https://x/a.pdf?a=1&b=2", MIMEType: "application/pdf", Name: "a.pdf"}, {URL: "u"}}
	withAll.Protocol = "20251007092633646"
	tag := event.Event{EventID: "t1", Type: event.TypeTag, OccurredAt: at, Tag: "Segunda Via & <Sucesso>"}
	info := event.Event{EventID: "i1", Type: event.TypeInfo, OccurredAt: at, Info: &event.Info{Key: "PLANO", Value: odd}}
	assigned := event.Event{EventID: "h1", Type: event.TypeHandoff, OccurredAt: at, Protocol: "20251007092633646",
		Handoff: &event.Handoff{Action: event.ActionAssigned, Queue: "Financeiro", Agent: &event.Agent{ID: "ag-1", Name: "Carla"}}}
	closed := event.Event{EventID: "h2", Type: event.TypeHandoff, OccurredAt: at,
		Handoff: &event.Handoff{Action: event.ActionClosed, Status: "resolved", Reason: "ok"}}
	bare := event.Event{EventID: "h3", Type: event.TypeHandoff, OccurredAt: at}
	full := session.Session{
		Tenant: "acme", ID: "c639c747-4637-4ff5-99c0-9f0e86d3c21b", Channel: "whatsapp", Contact: contact,
		StartedAt: at, LastActivityAt: at.Add(time.Hour), WindowEndsAt: at.Add(24 * time.Hour),
		Protocols: []string{"20251007092633646"}, Tags: []string{"b", "a<"}, Info: map[string]string{"Z": "1", "A": odd, "M": ""},
		HandedOff: true, Agents: []event.Agent{{ID: "ag-1", Name: "Carla"}, {ID: "ag-2"}},
		MessageCounts: session.Counts{Customer: 3, Bot: 2, Agent: 1},
		Attendances:   []session.Attendance{{Protocol: "20251007092633646", StartedAt: at, EndedAt: at.Add(time.Minute), HandedOff: true}},
	}
	oddSession := full
	oddSession.Info = nil
	oddSession.Contact = event.Contact{ID: odd}
	oddSession.Attendances = []session.Attendance{
		{Protocol: "1", StartedAt: at, EndedAt: at, Status: session.StatusClosed, Tags: []string{odd}, Info: map[string]string{odd: odd, "b": ""}},
		{Protocol: "2", StartedAt: at, Status: session.StatusOpen},
	}
	oddSession.WindowEndsAt = now.Add(time.Hour)
	for name, d := range map[string]struct {
		s      session.Session
		events []event.Event
	}{
		"full":  {full, []event.Event{msg("m1", event.RoleCustomer, odd), withAll, tag, info, assigned, closed, bare}},
		"empty": {session.Session{Tenant: "acme", ID: "x", StartedAt: at}, nil},
		"odd": {oddSession, []event.Event{
			{EventID: "m", Type: event.TypeMessage, OccurredAt: at},                       // no author
			{EventID: "t", Type: event.TypeTag, OccurredAt: at},                           // empty tag
			{EventID: "i", Type: event.TypeInfo, OccurredAt: at},                          // no info
			{EventID: "x", Type: "legacy", OccurredAt: at, Tag: "t", Info: &event.Info{}}, // a type of old
			{EventID: "h", Type: event.TypeHandoff, OccurredAt: at, Handoff: &event.Handoff{Agent: &event.Agent{}}},
		}},
	} {
		sd := report.StoredDetail{Session: d.s}
		var decoded []event.Event
		for _, e := range d.events {
			body, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			sd.Events = append(sd.Events, body)
			de, err := report.DecodeEvent(body)
			if err != nil {
				t.Fatal(err)
			}
			decoded = append(decoded, de)
		}
		v := viewDetail(&d.s, decoded, now)
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(v); err != nil {
			t.Fatal(err)
		}
		got, err := (&jsonlEncoder{now: now}).Append(nil, &sd)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want.Bytes())
		}
	}
}
