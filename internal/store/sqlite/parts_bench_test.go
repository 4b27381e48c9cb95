package sqlite_test

import (
	"context"
	"hash/fnv"
	"sync"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/benchkit"
	"github.com/chatreport/chatreport/internal/event"
)

// BenchmarkAssembleIntoSQLiteParts measures what splitting a batch costs
// the embedded store: each op is a batch of 2,000 simulated events stored as
// one call (the ingester with one worker), as two concurrent calls of
// disjoint session keys (two workers), or as three (a call per partition
// number of the embedded broker) one or two at a time. Besides events/s it
// reports the process CPU time per 1,000 events, which a shared machine
// disturbs less than wall time.
//
//	go test ./internal/store/sqlite -run '^$' -bench AssembleIntoSQLiteParts -benchtime 40x
func BenchmarkAssembleIntoSQLiteParts(b *testing.B) {
	for _, bc := range []struct {
		name           string
		parts, workers int
	}{{"one call", 1, 1}, {"2 calls at once", 2, 2}, {"3 calls, 1 at a time", 3, 1}, {"3 calls, 2 at a time", 3, 2}} {
		b.Run(bc.name, func(b *testing.B) {
			benchmarkParts(b, bc.parts, bc.workers)
		})
	}
}

func benchmarkParts(b *testing.B, parts, workers int) {
	ctx := context.Background()
	a := benchAssembler(ctx, b)
	batches := decodedBatches(b)
	part := func(e *event.Event) int {
		h := fnv.New32a()
		h.Write([]byte(e.RecommendedKey()))
		return int(h.Sum32() % uint32(parts))
	}
	next := func() [][]event.Event {
		out := make([][]event.Event, parts)
		for _, e := range batches() {
			p := part(&e)
			out[p] = append(out[p], e)
		}
		return out
	}
	store := func(batch [][]event.Event) {
		sem := make(chan struct{}, workers)
		var wg sync.WaitGroup
		for _, p := range batch {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := a.Ingest(ctx, p); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	events := 0
	var cpu time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		batch := next()
		before := benchkit.CPUTime()
		b.StartTimer()
		store(batch)
		b.StopTimer()
		cpu += benchkit.CPUTime() - before
		b.StartTimer()
		for _, p := range batch {
			events += len(p)
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(events), "cpu-ms/1k-events")
}
