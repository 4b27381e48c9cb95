package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/waitfor"
)

var (
	itTopics     = []string{"chat.events.bot", "chat.events.handoff", "chat.events.agent"}
	itDeadLetter = "chat.events.dlq"
)

// TestIngestMatchesReference runs the whole write path — producer, embedded
// broker, consumer group, assembler, SQLite — on a few thousand events of
// three tenants, a quarter of them arriving up to three days late and some
// produced twice, and compares the stored sessions with the reference
// implementation: (a) two ingesters of one group share a store and one of them
// stops mid-stream, so its partitions move to the other; (b) a fresh group
// replays every topic into an empty store. Both end states must be exactly
// the reference.
func TestIngestMatchesReference(t *testing.T) {
	if testing.Short() {
		t.Skip("an integration test of about 20 s")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0", Topics: append(itTopics[:3:3], itDeadLetter), Partitions: 3}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	def := pipeline.MustDefault()
	rng := rand.New(rand.NewPCG(20251007, 3))
	tenants := []string{"acme", "globex", "initech"}
	events := sessiontest.Generate(rng, sessiontest.Options{
		Tenants: tenants, Conversations: 450, MaxEvents: 14,
		Start: sessiontest.Base, Spread: 6 * 24 * time.Hour,
	})
	arrival := sessiontest.Arrange(rng, sessiontest.Duplicate(rng, events, 0.05), sessiontest.Late)
	msgs := make([]kafka.Message, 0, len(arrival)+3)
	// The reference sees the events as the consumer decodes them.
	decoded := map[event.Ref]event.Event{}
	for i, e := range arrival {
		value, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if decoded[e.Ref()], err = event.Decode(value); err != nil {
			t.Fatalf("generated an invalid event: %v", err)
		}
		msgs = append(msgs, kafka.Message{Topic: itTopics[rng.IntN(3)], Key: []byte(e.RecommendedKey()), Value: value})
		if i%1000 == 500 { // a few events that break the contract
			msgs = append(msgs, kafka.Message{Topic: itTopics[i%3], Key: []byte(e.RecommendedKey()), Value: []byte(`{"event_id":"broken"}`)})
		}
	}
	var consumed []event.Event
	for _, e := range decoded {
		consumed = append(consumed, e)
	}
	want := sessiontest.Reference(def, consumed)
	t.Logf("%d events (%d distinct), %d messages, %d sessions", len(arrival), len(events), len(msgs), len(want))
	from, to := sessiontest.Base.Add(-24*time.Hour), sessiontest.Base.Add(60*24*time.Hour)
	check := func(st *sqlite.Store) error { return sessiontest.Check(ctx, st, tenants, from, to, want) }

	w := newKeyedWriter(b.Addr())
	defer w.close()

	t.Run("two ingesters, one stops", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "shared.db")
		first, second := len(msgs)*4/10, len(msgs)*7/10
		if err := w.WriteMessages(ctx, msgs[:first]...); err != nil {
			t.Fatalf("produce: %v", err)
		}
		// The first member takes every partition; the second joins once
		// the first is storing, as when a deployment scales out.
		a := startMember(ctx, t, b.Addr(), "group-a", path, def)
		defer a.stop(t)
		for a.in.Stats().Stored == 0 {
			if ctx.Err() != nil {
				t.Fatal("the first member never stored anything")
			}
			time.Sleep(50 * time.Millisecond)
		}
		bb := startMember(ctx, t, b.Addr(), "group-a", path, def)
		defer bb.stop(t)
		// Trickle the middle part until the group is shared: two members,
		// each assigned partitions.
		deadline := time.Now().Add(40 * time.Second)
		var shared map[string][]int
		for {
			if shared = assignment(ctx, t, w.transport, b.Addr(), "group-a"); len(shared) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the group never shared the partitions: %+v, %+v", a.in.Stats(), bb.in.Stats())
			}
			if first < second {
				next := min(second, first+50)
				if err := w.WriteMessages(ctx, msgs[first:next]...); err != nil {
					t.Fatalf("produce: %v", err)
				}
				first = next
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Both members now consume the rest of the middle part.
		if err := w.WriteMessages(ctx, msgs[first:second]...); err != nil {
			t.Fatalf("produce: %v", err)
		}
		first = second
		time.Sleep(500 * time.Millisecond)
		a.stop(t)
		moved := bb.sink.mark()
		if err := w.WriteMessages(ctx, msgs[first:]...); err != nil {
			t.Fatalf("produce: %v", err)
		}
		waitfor.Check(t, 40*time.Second, "the store to match the reference", func() error { return check(bb.store) })
		bb.stop(t)
		// Every partition number carries later events; the remaining
		// member consumed all of them, its former peer's included.
		if got := moved([]int{0, 1, 2}); len(got) != 3 {
			t.Errorf("after one member of %v stopped, the other consumed partitions %v only", shared, got)
		} else {
			t.Logf("assignment %v, then all partitions to one member; stopped %+v, remaining %+v", shared, a.in.Stats(), bb.in.Stats())
		}
		final := openSQLite(t, path)
		if err := check(final); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("replay into an empty store", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "replay.db")
		r := startMember(ctx, t, b.Addr(), "group-replay", path, def)
		defer r.stop(t)
		waitfor.Check(t, 40*time.Second, "the store to match the reference", func() error { return check(r.store) })
		r.stop(t)
		if err := check(openSQLite(t, path)); err != nil {
			t.Fatal(err)
		}
	})
}

// keyedWriter produces with the platform's partitioner, on its own transport so
// its connections close with the test.
type keyedWriter struct {
	*kafka.Writer
	transport *kafka.Transport
}

func newKeyedWriter(addr string) *keyedWriter {
	tr := &kafka.Transport{}
	return &keyedWriter{
		Writer: &kafka.Writer{
			Addr:         kafka.TCP(addr),
			Balancer:     &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
			BatchSize:    500,
			Transport:    tr,
		},
		transport: tr,
	}
}

func (w *keyedWriter) close() {
	_ = w.Writer.Close() // nothing left to flush: every write waited
	w.transport.CloseIdleConnections()
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// member is one ingester with its own handle on the database, as a separate
// process would have.
type member struct {
	in    *ingest.Ingester
	sink  *partitionSink
	store *sqlite.Store
	once  sync.Once
	stopF func() error
}

func startMember(ctx context.Context, t *testing.T, addr, group, path string, def *pipeline.Definition) *member {
	t.Helper()
	st := openSQLite(t, path)
	sink := &partitionSink{next: session.NewAssembler(def, st), seen: map[int]bool{}}
	in, err := ingest.New(ingest.Config{
		Brokers: []string{addr}, Topics: itTopics, Group: group, DeadLetter: itDeadLetter,
		BatchSize: 200, BatchWait: 20 * time.Millisecond, MaxWait: 100 * time.Millisecond,
	}, sink, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(runCtx) }()
	return &member{in: in, sink: sink, store: st, stopF: func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("ingester did not stop within 30 s")
		}
	}}
}

func (r *member) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		if err := r.stopF(); err != nil {
			t.Errorf("ingester: %v", err)
		}
	})
}

// partitionSink passes events on and notes the partition number of each
// event's key (the same in every topic: the murmur2 partitioner).
type partitionSink struct {
	next ingest.Sink
	mu   sync.Mutex
	seen map[int]bool
}

func keyPartition(e *event.Event) int {
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(e.RecommendedKey())}, 0, 1, 2)
}

func (s *partitionSink) Ingest(ctx context.Context, events []event.Event) error {
	if err := s.next.Ingest(ctx, events); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range events {
		s.seen[keyPartition(&events[i])] = true
	}
	return nil
}

// mark forgets the partitions seen so far; the function it returns tells
// which of ps were seen since.
func (s *partitionSink) mark() func(ps []int) []int {
	s.mu.Lock()
	clear(s.seen)
	s.mu.Unlock()
	return func(ps []int) []int {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []int
		for _, p := range ps {
			if s.seen[p] {
				out = append(out, p)
			}
		}
		return out
	}
}

// assignment returns the partition numbers each member of a stable group is
// assigned, leaving out members without any.
func assignment(ctx context.Context, t *testing.T, tr *kafka.Transport, addr, group string) map[string][]int {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].Error != nil || resp.Groups[0].GroupState != "Stable" {
		return nil
	}
	out := map[string][]int{}
	for _, m := range resp.Groups[0].Members {
		seen := map[int]bool{}
		for _, topic := range m.MemberAssignments.Topics {
			for _, p := range topic.Partitions {
				seen[p] = true
			}
		}
		for p := range 3 {
			if seen[p] {
				out[m.MemberID] = append(out[m.MemberID], p)
			}
		}
	}
	return out
}
