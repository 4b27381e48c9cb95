package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/heappeak"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// The export benchmark's database: 100,000 sessions of six events each, one
// every 20 seconds from storetest.Base, seeded once per test binary.
const (
	benchSessions = 100_000
	benchSpacing  = 20 * time.Second
)

var exportFixture struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func removeExportFixture() {
	if exportFixture.dir != "" {
		os.RemoveAll(exportFixture.dir)
	}
}

// exportFixturePath seeds the database through Store.Update with the
// sessions the assembler would compute, skipping its per-batch reads so that
// seeding takes seconds.
func exportFixturePath(b *testing.B) string {
	exportFixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "chatreport-bench-")
		if err != nil {
			exportFixture.err = err
			return
		}
		exportFixture.dir, exportFixture.path = dir, filepath.Join(dir, "export.db")
		exportFixture.err = seedExport(exportFixture.path, benchSessions)
	})
	if exportFixture.err != nil {
		b.Fatal(exportFixture.err)
	}
	return exportFixture.path
}

func seedExport(path string, n int) error {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	policy := pipeline.MustDefault().PolicyFor("whatsapp")
	const batch = 5000
	for start := 0; start < n; start += batch {
		var ch session.Changes
		for i := start; i < min(start+batch, n); i++ {
			c := storetest.B{Contact: fmt.Sprintf("55119%08d", i), Phone: fmt.Sprintf("+55 11 9%08d", i), Name: fmt.Sprintf("Cliente %d", i)}
			at := time.Duration(i) * benchSpacing
			events := []*event.Event{
				ptr(c.Msg(fmt.Sprintf("b%06d-1", i), at, event.RoleCustomer, "Olá, preciso da segunda via do boleto de outubro, por favor")),
				ptr(c.Msg(fmt.Sprintf("b%06d-2", i), at+time.Second, event.RoleBot, "Claro! Para continuar, informe o CPF do titular da conta.")),
				ptr(c.Tag(fmt.Sprintf("b%06d-3", i), at+2*time.Second, "Segunda Via Sucesso")),
				ptr(c.Info(fmt.Sprintf("b%06d-4", i), at+3*time.Second, "PLANO", "Fibra 500 Mega")),
				ptr(c.Msg(fmt.Sprintf("b%06d-5", i), at+4*time.Second, event.RoleCustomer, "123.456.789-00")),
				ptr(c.Msg(fmt.Sprintf("b%06d-6", i), at+5*time.Second, event.RoleBot, "Pronto! Enviei o boleto para o seu e-mail cadastrado.")),
			}
			id := session.DeriveID(events[0])
			ch.Sessions = append(ch.Sessions, session.Summarize(id, session.KeyOf(events[0]), policy, events))
			for _, e := range events {
				ch.Events = append(ch.Events, session.Stored{Event: e, SessionID: id})
			}
		}
		if err := st.Update(ctx, func(context.Context, session.Reader) (session.Changes, error) { return ch, nil }); err != nil {
			return err
		}
	}
	return nil
}

// discard is a ResponseWriter that keeps nothing, so the benchmark measures
// the export's memory, not a recorder's.
type discard struct {
	header http.Header
	code   int
	bytes  int64
	lines  int
}

func (d *discard) Header() http.Header  { return d.header }
func (d *discard) WriteHeader(code int) { d.code = code }
func (d *discard) Flush()               {}
func (d *discard) Write(p []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	d.bytes += int64(len(p))
	d.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// BenchmarkExport streams exports of 10,000 and 100,000 sessions through the
// handler. Memory stays flat: peak-heap-MiB (the largest heap sampled during
// the export, garbage included) is about the same for both sizes, and B/op
// grows with the sessions written, not with what is held at once.
//
//	go test ./internal/api -run '^$' -bench BenchmarkExport -benchmem -benchtime 1x
func BenchmarkExport(b *testing.B) {
	st, err := sqlite.Open(context.Background(), exportFixturePath(b), sqlite.WithPacker(), sqlite.WithMerger())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// The export reads the settled sessions' packs and a merged index, as
	// in production once the ingester's packer and merger have passed:
	// measured after their first passes, not while they run.
	if err := st.WaitPacked(b.Context()); err != nil {
		b.Fatal(err)
	}
	if err := st.WaitMerged(b.Context()); err != nil {
		b.Fatal(err)
	}
	s := newServer(b, testConfig(b), st)
	from := storetest.Base.Format(time.RFC3339)
	for _, tc := range []struct {
		sessions int
		format   string
	}{
		{10_000, formatJSONL},
		{100_000, formatJSONL},
		{100_000, formatCSV},
	} {
		to := storetest.Base.Add(time.Duration(tc.sessions) * benchSpacing).Format(time.RFC3339)
		target := "/api/v1/export?format=" + tc.format + "&from=" + from + "&to=" + to
		b.Run(fmt.Sprintf("%s/sessions=%d", tc.format, tc.sessions), func(b *testing.B) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			sampler := heappeak.Start(2 * time.Millisecond)
			var written int64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, target, nil)
				r.Header.Set("Authorization", "Bearer "+acmeKey)
				w := &discard{header: http.Header{}}
				s.ServeHTTP(w, r)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
				want := tc.sessions
				if tc.format == formatCSV {
					want = tc.sessions*4 + 1 // a row per message, and the header
				}
				if w.lines != want {
					b.Fatalf("%d lines, want %d", w.lines, want)
				}
				written = w.bytes
			}
			b.StopTimer()
			peak := sampler.Stop()
			b.SetBytes(written)
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(before.HeapAlloc)/(1<<20), "start-heap-MiB")
			b.ReportMetric(float64(tc.sessions)*float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
		})
	}
}

func ptr[T any](v T) *T { return &v }
