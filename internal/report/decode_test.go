package report_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestDecodeEvent: a stored body (json.Marshal of the event) reads back as
// encoding/json reads it, through the event decoder; a body today's contract
// rejects still reads.
func TestDecodeEvent(t *testing.T) {
	b := storetest.B{Contact: "5511987654321", Phone: "+55 11 98765-4321", Name: "Cláudia", SessionID: "c639c747-4637-4ff5-99c0-9f0e86d3c21b", Protocol: "20251007092633646"}
	msg := b.Msg("m1", time.Minute, event.RoleAgent, "Olá \"mundo\"\n\u00e7")
	msg.Attachments = []event.Attachment{{URL: "https://x/y.pdf", MIMEType: "application/pdf", Name: "y.pdf"}}
	msg.OccurredAt = msg.OccurredAt.In(time.FixedZone("", -3*3600))
	for _, e := range []event.Event{msg, b.Tag("t", 0, "Segunda Via"), b.Info("i", 0, "PLANO", "Fibra"),
		b.Handoff("h", 0, event.ActionAssigned, ""), b.Handoff("c", 0, event.ActionClosed, "resolved")} {
		body, _ := json.Marshal(&e)
		var want event.Event
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		got, err := report.DecodeEvent(body)
		if err != nil {
			t.Fatal(err)
		}
		if !got.OccurredAt.Equal(want.OccurredAt) {
			t.Fatalf("%s: time %v, want %v", e.EventID, got.OccurredAt, want.OccurredAt)
		}
		got.OccurredAt, want.OccurredAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", e.EventID, got, want)
		}
	}
	old := []byte(`{"event_id":"x","type":"tag","occurred_at":"2025-10-07T09:00:00Z","tenant":"acme","channel":"whatsapp","contact":{"id":"c"},"tag":""}`)
	if e, err := report.DecodeEvent(old); err != nil || e.EventID != "x" {
		t.Fatalf("a body the contract rejects: %+v, %v", e, err)
	}
}
