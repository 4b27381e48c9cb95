package sqlite

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/simulate"
)

// decodeStored reads a stored body as encoding/json does: the simulator's
// events of every type, each as the ingester stores it (event.Decode of the
// wire form, then json.Marshal).
func TestDecodeStoredMatchesEncodingJSON(t *testing.T) {
	g := simulate.NewGenerator(simulate.Options{Seed: 7, Tenants: []string{"acme", "globex"}, Sessions: 300,
		Start: simulate.DefaultStart, Spread: 48 * time.Hour})
	types := map[event.Type]int{}
	for n := 0; n < 5000; {
		evs, ok := g.Next()
		if !ok {
			break
		}
		for i := range evs {
			raw, err := json.Marshal(&evs[i])
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := event.Decode(raw)
			if err != nil {
				t.Fatalf("simulated event %s: %v", raw, err)
			}
			body, _ := json.Marshal(decoded)
			assertDecodedAsStored(t, body)
			types[decoded.Type]++
			n++
		}
	}
	if len(types) < 4 {
		t.Fatalf("only event types %v in the traffic", types)
	}
}

// A body event.Decode refuses (here a text over the contract's limit, as if
// stored before the limit) is read as encoding/json reads it; a body that
// is not an event is an error.
func TestDecodeStoredRefusedByTheContract(t *testing.T) {
	e := event.Event{EventID: "e1", Type: event.TypeMessage, OccurredAt: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC),
		Tenant: "acme", Channel: "whatsapp", Contact: event.Contact{ID: "c1"},
		Author: &event.Author{Role: "customer"}, Text: strings.Repeat("a", event.MaxTextBytes+1)}
	body, _ := json.Marshal(e)
	if _, err := event.Decode(body); err == nil {
		t.Fatal("the contract accepts the body: the test needs one it refuses")
	}
	assertDecodedAsStored(t, body)
	if _, err := decodeStored([]byte(`{"event_id": 1`)); err == nil {
		t.Error("a body that is not an event decoded")
	}
}

func assertDecodedAsStored(t *testing.T, body []byte) {
	t.Helper()
	var want event.Event
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatal(err)
	}
	got, err := decodeStored(body)
	if err != nil {
		t.Fatalf("decodeStored(%.200s): %v", body, err)
	}
	if !got.OccurredAt.Equal(want.OccurredAt) || got.OccurredAt.Location() != want.OccurredAt.Location() {
		t.Fatalf("occurred_at %v, want %v", got.OccurredAt, want.OccurredAt)
	}
	g, w := *got, want
	g.OccurredAt, w.OccurredAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("decoded %+v\n       want %+v", g, w)
	}
}

// A body stored by a release before the consumer used event.Decode reads
// back as Decode reads an event now, which decodeStored's comment says: a
// time kept to the millisecond, a message without a content_type given
// Decode's default.
func TestDecodeStoredNormalisesOlderBodies(t *testing.T) {
	body := []byte(`{"event_id":"e1","type":"message","occurred_at":"2026-12-03T10:00:00.123456789Z","tenant":"acme",` +
		`"channel":"whatsapp","contact":{"id":"c1"},"author":{"role":"customer"},"text":"oi"}`)
	var old event.Event
	if err := json.Unmarshal(body, &old); err != nil {
		t.Fatal(err)
	}
	got, err := decodeStored(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := old.OccurredAt.Truncate(time.Millisecond); !got.OccurredAt.Equal(want) {
		t.Errorf("occurred_at %v, want %v (to the millisecond)", got.OccurredAt, want)
	}
	now, err := event.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if old.ContentType != "" || got.ContentType != now.ContentType || got.ContentType == "" {
		t.Errorf("content_type stored %q, read back %q, Decode gives %q", old.ContentType, got.ContentType, now.ContentType)
	}
}
