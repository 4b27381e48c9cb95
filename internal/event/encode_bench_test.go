package event_test

import (
	"testing"

	"github.com/chatreport/chatreport/internal/benchkit"
	"github.com/chatreport/chatreport/internal/event"
)

// indexedEvent has the shape of the Elasticsearch store's event document
// (internal/store/elastic, eventDoc): the event plus its grouping key and
// session. The stores encode events with encoding/json: SQLite stores
// json.Marshal(&event) as the body, the bulk writer encodes documents with a
// json.Encoder that does not escape HTML.
type indexedEvent struct {
	event.Event
	Key     string `json:"key"`
	Session string `json:"session"`
}

// BenchmarkEncode encodes the documented events as the stores do: a line of
// a bulk body (event-doc) and the body SQLite stores (event-body), with
// encoding/json and with go-json-experiment/json writing the same bytes:
//
//	go test ./internal/event/ -run '^$' -bench Encode -count 10 | tee encode.txt
//	benchstat -col /impl encode.txt
func BenchmarkEncode(b *testing.B) {
	var docs, bodies []any
	for _, ex := range examples {
		ev := decodeOK(b, []byte(ex.raw))
		d := &indexedEvent{Event: ev, Key: ev.RecommendedKey(), Session: "c639c747-4637-4ff5-99c0-9f0e86d3c21b"}
		docs = append(docs, d)
		bodies = append(bodies, &d.Event)
	}
	benchkit.EncodeDocs(b, "event-doc", docs)
	benchkit.MarshalBodies(b, "event-body", bodies)
}
