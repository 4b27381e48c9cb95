package session_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
)

// indexedSession has the shape of the Elasticsearch store's session document
// (internal/store/elastic, sessionDoc): the summary plus the fields that
// exist to be queried, the texts of its messages among them.
type indexedSession struct {
	session.Session
	InfoKeys        []string         `json:"info_keys"`
	InfoKV          []string         `json:"info_kv"`
	ContactName     string           `json:"contact_name,omitempty"`
	ContactPhoneRev string           `json:"contact_phone_rev,omitempty"`
	Messages        []indexedMessage `json:"messages"`
}

type indexedMessage struct {
	Text string `json:"text"`
}

func newIndexedSession(x sessiontest.Expected) *indexedSession {
	d := &indexedSession{Session: x.Session, ContactName: strings.ToLower(x.Session.Contact.Name), Messages: []indexedMessage{}}
	for k, v := range x.Session.Info {
		d.InfoKeys = append(d.InfoKeys, k)
		d.InfoKV = append(d.InfoKV, k+"="+strings.ToLower(v))
	}
	slices.Sort(d.InfoKeys)
	slices.Sort(d.InfoKV)
	for _, e := range x.Events {
		if e.Type == event.TypeMessage && e.Text != "" {
			d.Messages = append(d.Messages, indexedMessage{Text: e.Text})
		}
	}
	return d
}

// cpuTime is the CPU time the process has used: on a shared machine it
// varies less than the wall-clock ns/op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEncodeSession encodes session documents as the stores do
// (SQLite: json.Marshal of the summary; Elasticsearch: a json.Encoder over
// the bulk body), and with go-json-experiment/json writing the same bytes:
//
//	go test ./internal/session/ -run '^$' -bench EncodeSession -count 10 | tee encode-session.txt
//	benchstat -col /impl encode-session.txt
func BenchmarkEncodeSession(b *testing.B) {
	events := sessiontest.Generate(rand.New(rand.NewPCG(1, 2)), sessiontest.Options{
		Tenants: []string{"acme"}, Conversations: 200, MaxEvents: 30,
		Start: sessiontest.Base, Spread: 30 * 24 * time.Hour,
	})
	var docs []*indexedSession
	for _, x := range sessiontest.Reference(sessiontest.Definition(), events) {
		docs = append(docs, newIndexedSession(x))
	}
	slices.SortFunc(docs, func(a, b *indexedSession) int { return strings.Compare(a.ID, b.ID) })
	v1Options := jsonv2.JoinOptions(jsonv2.Deterministic(true), jsonv2.FormatNilSliceAsNull(true), jsonv2.FormatNilMapAsNull(true))
	encoders := []struct {
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
			b.Fatalf("%s does not write what encoding/json writes", e.name)
		}
		b.Run("session-doc/impl="+e.name, func(b *testing.B) {
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
			got, err := m.marshal(&docs[i].Session)
			want, _ := json.Marshal(&docs[i].Session)
			if err != nil || !bytes.Equal(got, want) {
				b.Fatalf("%s writes %s (%v), encoding/json %s", m.name, got, err, want)
			}
		}
		b.Run("session-summary/impl="+m.name, func(b *testing.B) {
			b.ReportAllocs()
			start := cpuTime()
			i := 0
			for b.Loop() {
				if _, err := m.marshal(&docs[i%len(docs)].Session); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
