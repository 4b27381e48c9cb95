package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
)

type discardSink struct{}

func (discardSink) Ingest(context.Context, []event.Event) error { return nil }

// TestDeadLetterWriterStopsWithIngester: once an ingester has dead-lettered
// anything, no goroutine of its dead-letter writer outlives Run. (With the
// writer on kafka.DefaultTransport, kafka-go's connection pool goroutines,
// connPool.discover and conn.run, stayed behind.)
func TestDeadLetterWriterStopsWithIngester(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and a consumer group")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0", Topics: []string{"leak.events", "leak.dlq"}, Partitions: 1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w := newKeyedWriter(b.Addr())
	if err := w.WriteMessages(ctx, kafka.Message{Topic: "leak.events", Key: []byte("k"), Value: []byte(`{"event_id":"broken"}`)}); err != nil {
		t.Fatal(err)
	}
	w.close()

	in, err := ingest.New(ingest.Config{
		Brokers: []string{b.Addr()}, Topics: []string{"leak.events"}, Group: "leak", DeadLetter: "leak.dlq",
		BatchSize: 10, BatchWait: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond,
	}, discardSink{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(runCtx) }()
	for in.Stats().DeadLettered == 0 {
		if ctx.Err() != nil {
			t.Fatal("the broken event was never dead-lettered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
