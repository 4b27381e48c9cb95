package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/waitfor"
)

var topics = []string{"t.bot", "t.handoff", "t.agent"}

const dlqTopic = "t.dlq"

// faultySink fails while failing is set, or when a call holds events of a
// partition number in failParts, and rejects the refs in reject.
type faultySink struct {
	mu        sync.Mutex
	failing   bool
	failParts map[int]bool
	calls     int
	reject    map[string]string // event id → reason
	stored    map[string]int    // event id → times stored
}

type rejection map[event.Ref]string

func (r rejection) Error() string                  { return fmt.Sprintf("%d events rejected", len(r)) }
func (r rejection) Rejected() map[event.Ref]string { return r }

func (s *faultySink) Ingest(_ context.Context, events []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failing {
		return errors.New("store unavailable")
	}
	for i := range events {
		if p := keyPartition(&events[i]); s.failParts[p] {
			return fmt.Errorf("store unavailable for partition %d", p)
		}
	}
	rej := rejection{}
	for _, e := range events {
		if reason, ok := s.reject[e.EventID]; ok {
			rej[e.Ref()] = reason
			continue
		}
		s.stored[e.EventID]++
	}
	if len(rej) > 0 {
		return rej
	}
	return nil
}

func (s *faultySink) set(failing bool) {
	s.mu.Lock()
	s.failing = failing
	s.mu.Unlock()
}

func (s *faultySink) setFailParts(parts map[int]bool) {
	s.mu.Lock()
	s.failParts = parts
	s.mu.Unlock()
}

// times returns how many times the event was stored.
func (s *faultySink) times(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored[id]
}

func (s *faultySink) count() (stored, calls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stored), s.calls
}

func startBroker(t *testing.T) string {
	t.Helper()
	return startControlledBroker(t).Addr()
}

// produce sends n tag events, e000 to e<n-1>, of contacts 0 to 6 (event i
// is contact i%7's) over the event topics.
func produce(t *testing.T, addr string, n int) {
	t.Helper()
	produceMessages(t, addr, tagMessages(n))
}

func tagEvent(i int) event.Event {
	base := time.Date(2025, 10, 7, 9, 0, 0, 0, time.UTC)
	return event.Event{
		EventID: fmt.Sprintf("e%03d", i), Type: event.TypeTag, OccurredAt: base.Add(time.Duration(i) * time.Second),
		Tenant: "acme", Channel: "whatsapp", Contact: event.Contact{ID: strconv.Itoa(i % 7)}, Tag: "t",
	}
}

func tagMessages(n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		e := tagEvent(i)
		v, _ := json.Marshal(e)
		msgs[i] = kafka.Message{Topic: topics[i%len(topics)], Key: []byte(e.RecommendedKey()), Value: v}
	}
	return msgs
}

// produceMessages sends msgs with the platform's partitioner.
func produceMessages(t *testing.T, addr string, msgs []kafka.Message) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, Transport: tr}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// retryCounter observes retries as they happen.
type retryCounter struct{ n atomic.Int64 }

func (c *retryCounter) ObserveBatch(ingest.BatchStats) {}
func (c *retryCounter) ObserveRetry(string)            { c.n.Add(1) }

func runIngester(t *testing.T, addr string, sink ingest.Sink, obs ...ingest.Observer) (stop func() ingest.Stats) {
	t.Helper()
	var observer ingest.Observer
	if len(obs) > 0 {
		observer = obs[0]
	}
	return runIngesterWith(t, addr, sink, func(c *ingest.Config) { c.Observer = observer })
}

// runIngesterWith runs an ingester of group "g" configured as runIngester's,
// then changed by edit.
func runIngesterWith(t *testing.T, addr string, sink ingest.Sink, edit func(*ingest.Config)) (stop func() ingest.Stats) {
	t.Helper()
	cfg := ingest.Config{
		Brokers: []string{addr}, Topics: topics, Group: "g", DeadLetter: dlqTopic,
		BatchSize: 16, BatchWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, ShutdownGrace: 300 * time.Millisecond,
	}
	edit(&cfg)
	in, err := ingest.New(cfg, sink, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	return sync.OnceValue(func() ingest.Stats {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		return in.Stats()
	})
}

// committed returns the group's committed offsets summed over the partitions
// of every event topic (-1 offsets, nothing committed, count as 0).
func committed(t *testing.T, addr string) int64 {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
	req := &kafka.OffsetFetchRequest{GroupID: "g", Topics: map[string][]int{}}
	for _, tp := range topics {
		req.Topics[tp] = []int{0, 1, 2}
	}
	resp, err := c.OffsetFetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				t.Fatal(p.Error)
			}
			if p.CommittedOffset > 0 {
				sum += p.CommittedOffset
			}
		}
	}
	return sum
}

// TestStoreOutage: while the store fails nothing is committed; a new member
// after a stop gets every event, and once the store is back everything is
// stored and committed.
func TestStoreOutage(t *testing.T) {
	addr := startBroker(t)
	const n = 120
	produce(t, addr, n)
	sink := &faultySink{failing: true, stored: map[string]int{}}
	retries := &retryCounter{}
	stop := runIngester(t, addr, sink, retries)
	// Retries are observed as they happen (the calls alone would not say:
	// the batches in flight after the first make calls of their own).
	waitfor.True(t, 15*time.Second, "two retries observed", func() bool { return retries.n.Load() >= 2 })
	stop()
	if got := committed(t, addr); got != 0 {
		t.Fatalf("committed %d offsets while the store was down", got)
	}

	sink.set(false)
	stop = runIngester(t, addr, sink)
	defer stop()
	waitfor.True(t, 15*time.Second, "all events stored", func() bool { stored, _ := sink.count(); return stored == n })
	waitfor.True(t, 15*time.Second, "all offsets committed", func() bool { return committed(t, addr) == n })
	if st := stop(); st.Stored != n || st.DeadLettered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStoreRejections: events the store refuses go to the dead-letter topic
// with its reason; the rest are stored and everything is committed.
func TestStoreRejections(t *testing.T) {
	addr := startBroker(t)
	const n = 60
	produce(t, addr, n)
	sink := &faultySink{stored: map[string]int{}, reject: map[string]string{"e007": "mapper_parsing_exception", "e042": "too long"}}
	stop := runIngester(t, addr, sink)
	defer stop()
	waitfor.True(t, 15*time.Second, "events stored", func() bool { stored, _ := sink.count(); return stored == n-2 })
	waitfor.True(t, 15*time.Second, "all offsets committed", func() bool { return committed(t, addr) == n })

	got := map[string]string{}
	for _, m := range readDeadLetters(t, addr, 2) {
		e, err := event.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[e.EventID] = header(m, ingest.HeaderReason)
	}
	if got["e007"] != "rejected by the store: mapper_parsing_exception" || got["e042"] != "rejected by the store: too long" {
		t.Fatalf("dead letters %v", got)
	}
	if st := stop(); st.DeadLettered != 2 || st.Stored != n-2 {
		t.Fatalf("stats %+v", st)
	}
}

// readDeadLetters reads the first n messages of the dead-letter topic.
func readDeadLetters(t *testing.T, addr string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: "dlq-reader", GroupTopics: []string{dlqTopic},
		StartOffset: kafka.FirstOffset, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read dead letter %d of %d: %v", len(out)+1, n, err)
		}
		out = append(out, m)
	}
	return out
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  ingest.Config
		want string // in the error
	}{
		{"no brokers", ingest.Config{Topics: topics, Group: "g", DeadLetter: "d", BatchSize: 10}, "broker"},
		{"no topics", ingest.Config{Brokers: []string{"x:1"}, Group: "g", DeadLetter: "d", BatchSize: 10}, "topic"},
		{"no group", ingest.Config{Brokers: []string{"x:1"}, Topics: topics, DeadLetter: "d", BatchSize: 10}, "group"},
		{"no dead letter", ingest.Config{Brokers: []string{"x:1"}, Topics: topics, Group: "g", BatchSize: 10}, "dead"},
		{"negative workers", ingest.Config{Brokers: []string{"x:1"}, Topics: topics, Group: "g", DeadLetter: "d", Workers: -1, BatchSize: 10}, "worker"},
		// No default of its own beside the configuration's
		// (config.Ingest.BatchSizeOf).
		{"no batch size", ingest.Config{Brokers: []string{"x:1"}, Topics: topics, Group: "g", DeadLetter: "d"}, "batch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ingest.New(tc.cfg, &faultySink{}, zap.NewNop())
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Fatalf("%v, want an error naming %q", err, tc.want)
			}
		})
	}
}
