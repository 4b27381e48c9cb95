package elastic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// acceptAll is a minimal stand-in for the benchmark: every bulk item is
// applied, every read finds nothing. It measures the client side only.
type acceptAll struct{ seq atomic.Int64 }

func (a *acceptAll) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/_mget"):
		var body struct{ Docs []mgetDoc }
		json.NewDecoder(r.Body).Decode(&body)
		var b bytes.Buffer
		b.WriteString(`{"docs":[`)
		for i, d := range body.Docs {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"_index":%q,"_id":%q,"found":false}`, d.Index, d.ID)
		}
		b.WriteString(`]}`)
		w.Write(b.Bytes())
	case strings.HasSuffix(r.URL.Path, "/_bulk"):
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
		var b bytes.Buffer
		b.WriteString(`{"errors":false,"items":[`)
		n := 0
		for sc.Scan() {
			line := sc.Bytes()
			var action string
			switch {
			case bytes.HasPrefix(line, []byte(`{"index"`)):
				action = "index"
			case bytes.HasPrefix(line, []byte(`{"create"`)):
				action = "create"
			case bytes.HasPrefix(line, []byte(`{"delete"`)):
				action = "delete"
			default:
				continue
			}
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			fmt.Fprintf(&b, `{%q:{"status":201,"_seq_no":%d,"_primary_term":1}}`, action, a.seq.Add(1))
		}
		b.WriteString(`]}`)
		w.Write(b.Bytes())
	default:
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{}`))
	}
}

// BenchmarkWritePath: batches of 2,000 events through the assembler and the
// store, against a loopback server that accepts everything; reports CPU of
// the client side per event. Conversations of 20 messages (the contact
// comes back a day later), in two shapes: 500 going on at once, so that a
// batch brings each 4 messages; and 2,000 at once, 1 message each per batch,
// as live traffic does where a batch spans a fraction of a second.
func BenchmarkWritePath(b *testing.B) {
	for _, contacts := range []int{500, 2000} {
		b.Run(fmt.Sprintf("per-batch=%d", 2000/contacts), func(b *testing.B) { benchmarkWritePath(b, contacts) })
	}
}

func benchmarkWritePath(b *testing.B, contacts int) {
	srv := httptest.NewServer(&acceptAll{})
	defer srv.Close()
	s, err := New(Config{Addresses: []string{srv.URL}, IndexPrefix: "bench"}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 2000
	a := assembler(s)
	roles := []string{event.RoleCustomer, event.RoleBot}
	n := 0
	next := func() []event.Event {
		out := make([]event.Event, batch)
		for i := range out {
			c := storetest.B{Contact: fmt.Sprintf("55119%08d", n%contacts), Name: "Maria Souza", Phone: "+55 11 98765-4321"}
			// Conversations of 20 messages; the contact comes back the
			// next day.
			r := n / contacts
			at := time.Duration(r/20)*25*time.Hour + time.Duration(r%20)*time.Second
			out[i] = c.Msg(fmt.Sprintf("e%d", n), at, roles[n%2], "Olá, preciso da segunda via da minha fatura")
			n++
		}
		return out
	}
	for range 3 { // warm up: every key in memory
		if err := a.Ingest(b.Context(), next()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := a.Ingest(b.Context(), next()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
}
