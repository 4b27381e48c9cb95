package ingest_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/waitfor"
)

// startControlledBroker is startBroker's broker, whose requests a test may
// answer itself (Cluster().ControlKey).
func startControlledBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{
		Addr: "127.0.0.1:0", Topics: append(append([]string{}, topics...), dlqTopic), Partitions: 3,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// TestSlowFetchAnswers: a broker that answers every fetch 150 ms late (a
// loaded host, a distant broker) costs the ingester nothing but the delay:
// no fetch times out, so none is logged as an error and redialled. With
// kafka-go's MaxWait set to the broker's wait, an answer had 62 ms.
func TestSlowFetchAnswers(t *testing.T) {
	b := startControlledBroker(t)
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

// TestTransientFetchError: a fetch answered with an error kafka-go recovers
// from by itself (it fetches again) does not stop the ingester: it consumes
// on, and stops only when asked. It ended Run with "fetch from kafka",
// so a broker's storage error, or a few seconds of a broker restart,
// restarted every ingester.
func TestTransientFetchError(t *testing.T) {
	b := startControlledBroker(t)
	// KAFKA_STORAGE_ERROR (a broker's log directory failed): kafka-go
	// passes it to FetchMessage and fetches again.
	fault := b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.KafkaStorageError})
	const n = 60
	produce(t, b.Addr(), n)
	sink := &faultySink{stored: map[string]int{}}
	stop := runIngester(t, b.Addr(), sink)
	waitfor.True(t, 20*time.Second, "all events stored", func() bool { stored, _ := sink.count(); return stored == n })
	if fault.Hits() != 1 {
		t.Fatalf("%d fetches failed, want 1", fault.Hits())
	}
	if st := stop(); st.Stored != n {
		t.Errorf("stored %d, want %d", st.Stored, n)
	}
}

// TestFetchGivesUp: fetches that keep failing, with no message between
// them, end Run after Config.FetchGiveUp with the last error.
func TestFetchGivesUp(t *testing.T) {
	b := startControlledBroker(t)
	b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.KafkaStorageError, Count: -1})
	produce(t, b.Addr(), 10)
	const giveUp = time.Second
	in, err := ingest.New(ingest.Config{
		Brokers: []string{b.Addr()}, Topics: topics, Group: "g", DeadLetter: dlqTopic,
		BatchSize: 16, MaxWait: 50 * time.Millisecond, FetchGiveUp: giveUp,
	}, &faultySink{stored: map[string]int{}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err = in.Run(ctx)
	if !errors.Is(err, kafka.KafkaStorageError) {
		t.Fatalf("Run: %v, want a KAFKA_STORAGE_ERROR", err)
	}
	if took := time.Since(start); took < giveUp || ctx.Err() != nil {
		t.Errorf("Run returned after %s, want after %s and before its context ended", took, giveUp)
	}
}

// TestFetchErrorsAQuietSpellApart: two fetch errors with healthy, empty
// fetches between them for longer than half of Config.FetchGiveUp are not
// an outage: the count of failing time starts again, and the ingester goes
// on. Counted from the first error (no message came between them), the
// second ended Run.
func TestFetchErrorsAQuietSpellApart(t *testing.T) {
	b := startControlledBroker(t)
	const giveUp = 2 * time.Second
	first := b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.KafkaStorageError})
	sink := &faultySink{stored: map[string]int{}}
	stop := runIngesterWith(t, b.Addr(), sink, func(c *ingest.Config) { c.FetchGiveUp = giveUp })
	defer stop()
	waitfor.True(t, 20*time.Second, "the first fetch failed", func() bool { return first.Hits() == 1 })
	time.Sleep(giveUp + giveUp/2) // quiet: fetches answered, with nothing
	second := b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.KafkaStorageError})
	waitfor.True(t, 20*time.Second, "the second fetch failed", func() bool { return second.Hits() == 1 })
	produce(t, b.Addr(), 30)
	waitfor.True(t, 20*time.Second, "the events after the second error stored", func() bool { stored, _ := sink.count(); return stored == 30 })
	if st := stop(); st.Stored != 30 { // stop fails the test if Run ended with an error
		t.Errorf("stored %d, want 30", st.Stored)
	}
}

// TestFetchRefused: an error no retry cures (the cluster refuses
// chatreport the topic) ends Run at once with it, not after
// Config.FetchGiveUp; kafka-go would fetch again for ever.
func TestFetchRefused(t *testing.T) {
	b := startControlledBroker(t)
	b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.TopicAuthorizationFailed, Count: -1})
	produce(t, b.Addr(), 10)
	in, err := ingest.New(ingest.Config{
		Brokers: []string{b.Addr()}, Topics: topics, Group: "g", DeadLetter: dlqTopic,
		BatchSize: 16, MaxWait: 50 * time.Millisecond, FetchGiveUp: time.Hour,
	}, &faultySink{stored: map[string]int{}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := in.Run(ctx); !errors.Is(err, kafka.TopicAuthorizationFailed) || ctx.Err() != nil {
		t.Fatalf("Run: %v (context: %v), want TOPIC_AUTHORIZATION_FAILED before the context ended", err, ctx.Err())
	}
}

// TestFetchFromAClosedReader: Fetch returns io.EOF at once from a reader
// that was closed, which no retry reopens.
func TestFetchFromAClosedReader(t *testing.T) {
	b := startControlledBroker(t)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: topics[0], Partition: 0})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ingest.Fetch(ctx, r, 0, zap.NewNop()); !errors.Is(err, io.EOF) || ctx.Err() != nil {
		t.Fatalf("Fetch: %v (context: %v), want io.EOF at once", err, ctx.Err())
	}
}

// TestFetchGivesUpWhileTheStoreIsDown: when fetches give up while a batch
// cannot be stored, Run returns within the shutdown grace, with the fetch's
// error and nothing committed. The batch was retried for ever, and Run
// never returned.
func TestFetchGivesUpWhileTheStoreIsDown(t *testing.T) {
	b := startControlledBroker(t)
	sink := &faultySink{stored: map[string]int{}, failing: true}
	produce(t, b.Addr(), 10)
	const giveUp, grace = time.Second, 300 * time.Millisecond
	in, err := ingest.New(ingest.Config{
		Brokers: []string{b.Addr()}, Topics: topics, Group: "g", DeadLetter: dlqTopic,
		BatchSize: 16, BatchWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond,
		FetchGiveUp: giveUp, ShutdownGrace: grace,
	}, sink, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	waitfor.True(t, 20*time.Second, "a store attempted", func() bool { _, calls := sink.count(); return calls > 0 })
	b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.KafkaStorageError, Count: -1})
	start := time.Now()
	err = <-done
	if !errors.Is(err, kafka.KafkaStorageError) || ctx.Err() != nil {
		t.Fatalf("Run: %v (context: %v), want the fetch's error before the context ended", err, ctx.Err())
	}
	if took := time.Since(start); took > giveUp+grace+5*time.Second {
		t.Errorf("Run returned %s after fetches began to fail, want about %s", took, giveUp+grace)
	}
	if n := committed(t, b.Addr()); n != 0 {
		t.Errorf("%d offsets committed, want none", n)
	}
}

// TestFailedCommitCounted: a batch whose commit fails is stored (the next
// commit covers its offsets) and counted; it was left out of the stats and
// metrics.
func TestFailedCommitCounted(t *testing.T) {
	b := startControlledBroker(t)
	// kafka-go makes three attempts at a commit (reader.go,
	// commitOffsetsWithRetry): all three fail.
	fault := b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Err: kerr.UnknownServerError, Count: 3})
	sink := &faultySink{stored: map[string]int{}}
	stop := runIngester(t, b.Addr(), sink)
	defer stop()
	const n = 30
	produce(t, b.Addr(), n)
	waitfor.True(t, 20*time.Second, "all events stored and a commit failed", func() bool {
		stored, _ := sink.count()
		return stored == n && fault.Hits() == 3
	})
	if st := stop(); st.Stored != n || st.Consumed != n {
		t.Errorf("stats: %d consumed, %d stored, want %d each", st.Consumed, st.Stored, n)
	}
}

// TestJoinMeetsAClosedConnection: a group join whose connection the broker
// closes (a broker shutting down) reaches FetchMessage as a bare io.EOF
// after kafka-go's attempts (segmentio/kafka-go#1222); the ingester fetches
// again, joins once the broker answers, and consumes. io.EOF was taken
// for a closed reader and ended Run.
func TestJoinMeetsAClosedConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("kafka-go waits seconds between join attempts")
	}
	b := startControlledBroker(t)
	cluster := b.Cluster()
	var closed atomic.Int32
	cluster.ControlKey(int16(kmsg.JoinGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		if closed.Add(1) > 3 { // kafka-go gives up a join after three attempts
			return nil, nil, false
		}
		cluster.KeepControl()
		return nil, errors.New("broker shutting down"), true // the connection is closed
	})
	const n = 20
	produce(t, b.Addr(), n)
	sink := &faultySink{stored: map[string]int{}}
	stop := runIngesterWith(t, b.Addr(), sink, func(c *ingest.Config) { c.FetchGiveUp = time.Hour })
	defer stop()
	waitfor.True(t, 60*time.Second, "all events stored after the joins failed", func() bool {
		stored, _ := sink.count()
		return stored == n
	})
	if st := stop(); st.Stored != n { // stop fails the test if Run ended with an error
		t.Errorf("stored %d, want %d", st.Stored, n)
	}
	if closed.Load() < 4 {
		t.Errorf("%d joins, want the three closed and one answered", closed.Load())
	}
}
