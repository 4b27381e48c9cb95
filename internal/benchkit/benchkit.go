// Package benchkit holds what the benchmarks of several packages share:
// the CPU time per operation they report, and the JSON encoders they
// compare. Only tests import it.
package benchkit

import (
	"bytes"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// CPUTime is the CPU time the process has used: on a shared machine it
// varies less than the wall-clock ns/op.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Loop runs op(0), op(1)... for b.Loop, reporting B/op and allocs/op plus
// cpu-ns/op: the process's CPU time (garbage collection included) per op.
func Loop(b *testing.B, op func(i int) error) {
	b.ReportAllocs()
	start := CPUTime()
	i := 0
	for b.Loop() {
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(CPUTime()-start)/float64(b.N), "cpu-ns/op")
}

// V1Options make go-json-experiment/json write what encoding/json writes for
// the documents the stores encode (checked by EncodeDocs and MarshalBodies),
// so the comparison is of the same bytes.
var V1Options = jsonv2.JoinOptions(jsonv2.Deterministic(true), jsonv2.FormatNilSliceAsNull(true), jsonv2.FormatNilMapAsNull(true))

// encoders write one document as a line of a bulk body into buf, as the
// Elasticsearch store's bulk writer does (a json.Encoder that does not
// escape HTML); the first is the reference.
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
		if err := jsonv2.MarshalWrite(buf, v, V1Options); err != nil {
			return err
		}
		return buf.WriteByte('\n')
	}},
}

// marshalers encode one value alone, as SQLite stores a body (json.Marshal);
// the first is the reference.
var marshalers = []struct {
	name    string
	marshal func(v any) ([]byte, error)
}{
	{"encoding-json", json.Marshal},
	{"json-experiment", func(v any) ([]byte, error) {
		return jsonv2.Marshal(v, V1Options, jsontext.EscapeForHTML(true))
	}},
}

// EncodeDocs runs the sub-benchmarks name+"/impl=" each encoder, each
// writing docs in turn as lines of a bulk body, after checking that every
// encoder writes the same bytes as encoding/json.
func EncodeDocs(b *testing.B, name string, docs []any) {
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
			b.Fatalf("%s writes\n%.2000s\nencoding/json\n%.2000s", e.name, got.Bytes(), want.Bytes())
		}
		b.Run(name+"/impl="+e.name, func(b *testing.B) {
			var buf bytes.Buffer
			b.SetBytes(int64(want.Len() / len(docs)))
			Loop(b, func(i int) error {
				buf.Reset()
				return e.encode(&buf, docs[i%len(docs)])
			})
		})
	}
}

// MarshalBodies runs the sub-benchmarks name+"/impl=" each marshaler, each
// marshalling bodies in turn, after checking that every marshaler writes
// the same bytes as encoding/json.
func MarshalBodies(b *testing.B, name string, bodies []any) {
	for _, m := range marshalers {
		for _, v := range bodies {
			got, err := m.marshal(v)
			want, _ := marshalers[0].marshal(v)
			if err != nil || !bytes.Equal(got, want) {
				b.Fatalf("%s writes %s (%v), encoding/json %s", m.name, got, err, want)
			}
		}
		b.Run(name+"/impl="+m.name, func(b *testing.B) {
			Loop(b, func(i int) error {
				_, err := m.marshal(bodies[i%len(bodies)])
				return err
			})
		})
	}
}
