package sqlite_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/simulate"
	"github.com/chatreport/chatreport/internal/store/sqlite"
)

// BenchmarkAssembleIntoSQLite measures the embedded store's write path
// without Kafka: simulated events, decoded as the consumer decodes them,
// through session.Assembler into a SQLite store, one batch of 2,000 events
// (the ingester's default) per op. It reports events/s and allocations per
// event; `chatreport-bench` measures the same path behind the broker.
//
//	go test ./internal/store/sqlite -run '^$' -bench AssembleIntoSQLite -benchtime 50x -cpuprofile cpu.out
func BenchmarkAssembleIntoSQLite(b *testing.B) {
	ctx := context.Background()
	a := benchAssembler(ctx, b)
	next := decodedBatches(b)
	events := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		batch := next()
		b.StartTimer()
		if err := a.Ingest(ctx, batch); err != nil {
			b.Fatal(err)
		}
		events += len(batch)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
}

// benchAssembler is an assembler of the default pipeline over a new SQLite
// store, closed when b ends.
func benchAssembler(ctx context.Context, b *testing.B) *session.Assembler {
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return session.NewAssembler(pipeline.MustDefault(), st)
}

// decodedBatches returns a source of batches of simulated events, decoded as
// the consumer decodes them: each call, 2,000 events (the ingester's
// default batch size) and the rest of the last conversation step.
func decodedBatches(b *testing.B) func() []event.Event {
	const batchSize = 2000
	g := simulate.NewGenerator(simulate.Options{Seed: 1, Tenants: []string{"acme"}, Sessions: 1 << 30,
		Start: simulate.DefaultStart, Spread: 1 << 20 * time.Hour})
	return func() []event.Event {
		batch := make([]event.Event, 0, batchSize+64)
		for len(batch) < batchSize {
			evs, _ := g.Next()
			for i := range evs {
				raw, err := json.Marshal(&evs[i])
				if err != nil {
					b.Fatal(err)
				}
				e, err := event.Decode(raw)
				if err != nil {
					b.Fatal(err)
				}
				batch = append(batch, e)
			}
		}
		return batch
	}
}
