package event_test

import (
	"bytes"
	"encoding/json"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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

// v1Options make go-json-experiment/json write what encoding/json writes for
// these types (checked below), so the comparison is of the same bytes.
var v1Options = jsonv2.JoinOptions(jsonv2.Deterministic(true), jsonv2.FormatNilSliceAsNull(true), jsonv2.FormatNilMapAsNull(true))

// encoders write one document as a line of a bulk body into buf.
var encoders = []struct {
	name   string
	encode func(buf *bytes.Buffer, v any) error
}{
	{"encoding-json", func(buf *bytes.Buffer, v any) error {
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}},
	{"json-experiment", func(buf *bytes.Buffer, v any) error {
		if err := jsonv2.MarshalWrite(buf, v, v1Options); err != nil {
			return err
		}
		return buf.WriteByte('\n')
	}},
}

// BenchmarkEncode encodes the documented events as the stores do: a line of
// a bulk body (event-doc) and the body SQLite stores (event-body):
//
//	go test ./internal/event/ -run '^$' -bench Encode -count 10 | tee encode.txt
//	benchstat -col /impl encode.txt
func BenchmarkEncode(b *testing.B) {
	var docs []any
	for _, ex := range examples {
		ev := decodeOK(b, []byte(ex.raw))
		docs = append(docs, &indexedEvent{Event: ev, Key: ev.RecommendedKey(), Session: "c639c747-4637-4ff5-99c0-9f0e86d3c21b"})
	}
	var want bytes.Buffer
	for _, d := range docs {
		if err := encoders[0].encode(&want, d); err != nil {
			b.Fatal(err)
		}
	}
	for _, e := range encoders {
		var got bytes.Buffer
		for _, d := range docs {
			if err := e.encode(&got, d); err != nil {
				b.Fatal(err)
			}
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			b.Fatalf("%s writes\n%s\nencoding/json\n%s", e.name, got.Bytes(), want.Bytes())
		}
		b.Run("event-doc/impl="+e.name, func(b *testing.B) {
			var buf bytes.Buffer
			b.ReportAllocs()
			b.SetBytes(int64(want.Len() / len(docs)))
			start := cpuTime()
			i := 0
			for b.Loop() {
				buf.Reset()
				if err := e.encode(&buf, docs[i%len(docs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
	marshalers := []struct {
		name    string
		marshal func(v any) ([]byte, error)
	}{
		{"encoding-json", json.Marshal},
		{"json-experiment", func(v any) ([]byte, error) {
			return jsonv2.Marshal(v, v1Options, jsontext.EscapeForHTML(true))
		}},
	}
	for _, m := range marshalers {
		for i := range docs {
			got, err := m.marshal(&docs[i].(*indexedEvent).Event)
			want, _ := json.Marshal(&docs[i].(*indexedEvent).Event)
			if err != nil || !bytes.Equal(got, want) {
				b.Fatalf("%s writes %s (%v), encoding/json %s", m.name, got, err, want)
			}
		}
		b.Run("event-body/impl="+m.name, func(b *testing.B) {
			b.ReportAllocs()
			start := cpuTime()
			i := 0
			for b.Loop() {
				if _, err := m.marshal(&docs[i%len(docs)].(*indexedEvent).Event); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
