package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/waitfor"
)

// TestSlowFetchAnswers: a broker that answers every fetch 150 ms late (a
// loaded host, a distant broker) costs the ingester nothing but the delay:
// no fetch times out, so none is logged as an error and redialled. With
// kafka-go's MaxWait set to the broker's wait, an answer had 62 ms.
func TestSlowFetchAnswers(t *testing.T) {
	b, err := broker.Start(context.Background(), broker.Config{
		Addr: "127.0.0.1:0", Topics: append(append([]string{}, topics...), dlqTopic), Partitions: 3,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cluster := b.Cluster()
	cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		cluster.SleepControl(func() { time.Sleep(150 * time.Millisecond) })
		return nil, nil, false // answered as usual, late
	})
	const n = 60
	produce(t, b.Addr(), n)

	core, logs := observer.New(zapcore.WarnLevel)
	sink := &faultySink{stored: map[string]int{}}
	cfg := ingest.Config{
		Brokers: []string{b.Addr()}, Topics: topics, Group: "g", DeadLetter: dlqTopic,
		BatchSize: 16, BatchWait: 10 * time.Millisecond, ShutdownGrace: 300 * time.Millisecond,
		// MaxWait left to its default, 250 ms, as the commands run it.
	}
	in, err := ingest.New(cfg, sink, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	waitfor.True(t, 20*time.Second, "all events stored", func() bool { stored, _ := sink.count(); return stored == n })
	// Idle fetches: each waits at the broker and is answered late.
	time.Sleep(1500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "timeout") || strings.Contains(e.Message, "unknown error") {
			t.Errorf("logged %q", e.Message)
		}
	}
}
