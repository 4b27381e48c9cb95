package ingest_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/waitfor"
)

// oneBatch makes everything produced beforehand (n messages) one batch: the
// batch fills up long before it would stop waiting.
func oneBatch(n int, workers int) func(*ingest.Config) {
	return func(c *ingest.Config) {
		c.BatchSize, c.BatchWait, c.Workers = n, 30*time.Second, workers
	}
}

// contactPartitions maps the partition numbers of the test's contacts (0 to
// 6) to contacts of each; the test needs at least two numbers.
func contactPartitions(t *testing.T) map[int][]int {
	t.Helper()
	out := map[int][]int{}
	for c := range 7 {
		e := tagEvent(c)
		p := keyPartition(&e)
		out[p] = append(out[p], c)
	}
	if len(out) < 2 {
		t.Fatalf("the test's contacts all hash to partition numbers %v", out)
	}
	return out
}

// pairSink holds its calls until two are in flight at once (or fails them
// after a time limit); from then on it lets every call through. It records
// the partition numbers of each call's events.
type pairSink struct {
	open chan struct{}

	flight   ingest.Flights
	mu       sync.Mutex
	timeouts int
	calls    []map[int]bool
	stored   map[string]bool
}

func (s *pairSink) Ingest(ctx context.Context, events []event.Event) error {
	parts := map[int]bool{}
	for i := range events {
		parts[keyPartition(&events[i])] = true
	}
	n := s.flight.Enter()
	defer s.flight.Leave()
	s.mu.Lock()
	s.calls = append(s.calls, parts)
	if n == 2 {
		select {
		case <-s.open:
		default:
			close(s.open)
		}
	}
	s.mu.Unlock()
	select {
	case <-s.open:
	case <-time.After(10 * time.Second):
		s.mu.Lock()
		s.timeouts++
		s.mu.Unlock()
		return fmt.Errorf("no second call in flight within 10 s")
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range events {
		s.stored[events[i].EventID] = true
	}
	return nil
}

func (s *pairSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stored)
}

// TestPartitionsStoredConcurrently: a batch spanning several partition
// numbers reaches the sink in two calls at once, each with whole partition
// numbers.
func TestPartitionsStoredConcurrently(t *testing.T) {
	addr := startBroker(t)
	const n = 120
	parts := contactPartitions(t)
	produce(t, addr, n)
	sink := &pairSink{open: make(chan struct{}), stored: map[string]bool{}}
	stop := runIngesterWith(t, addr, sink, oneBatch(n, 2))
	defer stop()
	waitfor.True(t, 15*time.Second, "all events stored", func() bool { return sink.count() == n })
	waitfor.True(t, 15*time.Second, "all offsets committed", func() bool { return committed(t, addr) == n })
	stop()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.timeouts > 0 {
		t.Fatalf("%d calls waited in vain for a concurrent one", sink.timeouts)
	}
	if len(sink.calls) != 2 {
		t.Fatalf("%d sink calls for one batch of %d partition numbers with 2 workers", len(sink.calls), len(parts))
	}
	for p := range parts {
		if sink.calls[0][p] == sink.calls[1][p] {
			t.Fatalf("partition %d in both calls or none: %v", p, sink.calls)
		}
	}
}

// TestPartitionFailureCommitsNothing: while the events of one partition
// number cannot be stored, nothing of their batch is committed, though the
// other numbers' events were stored (a call per number: as many workers as
// numbers), and every attempt stores the whole batch again; a member that
// takes over gets the whole batch and, once the store is back, stores and
// commits it.
func TestPartitionFailureCommitsNothing(t *testing.T) {
	addr := startBroker(t)
	const n = 120
	parts := contactPartitions(t)
	first := tagEvent(0)
	bad := keyPartition(&first)
	var healthy string // an event of another partition number
	for p, cs := range parts {
		if p != bad {
			healthy = tagEvent(cs[0]).EventID
		}
	}
	produce(t, addr, n)
	sink := &faultySink{stored: map[string]int{}, failParts: map[int]bool{bad: true}}
	retries := &retryCounter{}
	stop := runIngesterWith(t, addr, sink, func(c *ingest.Config) {
		oneBatch(n, len(parts))(c)
		c.Observer = retries
	})
	// The healthy groups are stored at every attempt.
	waitfor.True(t, 15*time.Second, "the other partition numbers stored again", func() bool { return sink.times(healthy) >= 2 })
	if got := committed(t, addr); got != 0 {
		t.Fatalf("committed %d offsets while partition %d could not be stored", got, bad)
	}
	if st := stop(); st.Stored != 0 || st.Batches != 0 {
		t.Fatalf("stats of the stopped member %+v", st)
	}
	if got := committed(t, addr); got != 0 {
		t.Fatalf("committed %d offsets after a stop while partition %d could not be stored", got, bad)
	}
	if retries.n.Load() < 1 {
		t.Fatal("no retry observed")
	}

	// A new member gets the batch again and retries until the store is back.
	retries = &retryCounter{}
	stop = runIngesterWith(t, addr, sink, func(c *ingest.Config) {
		oneBatch(n, len(parts))(c)
		c.Observer = retries
	})
	defer stop()
	waitfor.True(t, 15*time.Second, "a retry of the redelivered batch", func() bool { return retries.n.Load() >= 1 })
	sink.setFailParts(nil)
	waitfor.True(t, 15*time.Second, "all events stored", func() bool { stored, _ := sink.count(); return stored == n })
	waitfor.True(t, 15*time.Second, "all offsets committed", func() bool { return committed(t, addr) == n })
	if st := stop(); st.Stored != n || st.Consumed != n || st.Batches != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// batchSums adds up the committed batches' stats.
type batchSums struct {
	mu                              sync.Mutex
	consumed, stored, dead, batches int
}

func (b *batchSums) ObserveBatch(s ingest.BatchStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches++
	for _, t := range s.Topics {
		b.consumed += t.Consumed
		b.stored += t.Stored
		b.dead += t.DeadLettered
	}
}

func (b *batchSums) ObserveRetry(string) {}

// TestDeadLettersPerPartition: in one batch spanning every partition number,
// messages that break the contract and events the store rejects go to the
// dead-letter topic from each group, with the reason and the source partition,
// and the batch stats count them.
func TestDeadLettersPerPartition(t *testing.T) {
	addr := startBroker(t)
	const n = 70
	parts := contactPartitions(t)
	msgs := tagMessages(n)
	// A broken message for each contact, keyed like its events.
	for c := range 7 {
		e := tagEvent(c)
		msgs = append(msgs, kafka.Message{Topic: topics[c%len(topics)], Key: []byte(e.RecommendedKey()),
			Value: []byte(`{"event_id":"broken-` + strconv.Itoa(c) + `"}`)})
	}
	// The store rejects one event of each partition number.
	reject := map[string]string{}
	for p, cs := range parts {
		reject[tagEvent(cs[0]).EventID] = "too long " + strconv.Itoa(p)
	}
	produceMessages(t, addr, msgs)
	sink := &faultySink{stored: map[string]int{}, reject: reject}
	sums := &batchSums{}
	stop := runIngesterWith(t, addr, sink, func(c *ingest.Config) {
		oneBatch(len(msgs), 2)(c)
		c.Observer = sums
	})
	defer stop()
	waitfor.True(t, 15*time.Second, "all offsets committed", func() bool { return committed(t, addr) == int64(len(msgs)) })
	st := stop()
	wantDead := 7 + len(reject)
	if st.DeadLettered != int64(wantDead) || st.Stored != int64(n-len(reject)) || st.Consumed != int64(len(msgs)) {
		t.Fatalf("stats %+v", st)
	}
	sums.mu.Lock()
	if sums.batches != 1 || sums.consumed != len(msgs) || sums.stored != n-len(reject) || sums.dead != wantDead {
		t.Errorf("batch stats: %d batches, %d consumed, %d stored, %d dead-lettered", sums.batches, sums.consumed, sums.stored, sums.dead)
	}
	sums.mu.Unlock()

	seen := map[string]bool{}
	for _, m := range readDeadLetters(t, addr, wantDead) {
		reason := header(m, ingest.HeaderReason)
		source, err := strconv.Atoi(header(m, ingest.HeaderSourcePartition))
		if err != nil {
			t.Fatalf("source partition: %v", err)
		}
		keyed := (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: m.Key}, 0, 1, 2)
		if source != keyed {
			t.Errorf("dead letter keyed %s: source partition %d, want %d", m.Key, source, keyed)
		}
		e, err := event.Decode(m.Value)
		if err != nil { // a broken message
			if reason == "" {
				t.Errorf("broken message %s without a reason", m.Value)
			}
			seen[string(m.Value)] = true
			continue
		}
		if want := "rejected by the store: " + reject[e.EventID]; reason != want {
			t.Errorf("dead letter of %s: reason %q, want %q", e.EventID, reason, want)
		}
		seen[e.EventID] = true
	}
	if len(seen) != wantDead {
		t.Fatalf("%d distinct dead letters of %d", len(seen), wantDead)
	}
}

// poisonSink fails, while poisoning, every call holding the first event it
// was ever given; it stores everything else.
type poisonSink struct {
	mu        sync.Mutex
	poisoning bool
	poison    string
	stored    map[string]bool
}

func (s *poisonSink) Ingest(_ context.Context, events []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poison == "" {
		s.poison = events[0].EventID
	}
	for i := range events {
		if s.poisoning && events[i].EventID == s.poison {
			return fmt.Errorf("cannot store %s", s.poison)
		}
	}
	for i := range events {
		s.stored[events[i].EventID] = true
	}
	return nil
}

func (s *poisonSink) state() (poison string, stored int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.poison, len(s.stored)
}

// TestShutdownKeepsUnstoredBatch: a batch that shutdown could not store
// stays uncommitted, and so do the batches after it, already fetched and
// decoded, that would be stored: committing them would skip it. The next
// member stores it.
func TestShutdownKeepsUnstoredBatch(t *testing.T) {
	addr := startBroker(t)
	const n = 120
	produce(t, addr, n)
	sink := &poisonSink{poisoning: true, stored: map[string]bool{}}
	retries := &retryCounter{}
	stop := runIngester(t, addr, sink, retries)
	waitfor.True(t, 15*time.Second, "the first batch retried", func() bool { return retries.n.Load() >= 1 })
	stop()
	poison, _ := sink.state()
	if sink.stored[poison] {
		t.Fatalf("%s stored", poison)
	}

	sink.mu.Lock()
	sink.poisoning = false
	sink.mu.Unlock()
	stop = runIngester(t, addr, sink)
	defer stop()
	waitfor.True(t, 15*time.Second, "all offsets committed", func() bool { return committed(t, addr) == n })
	if _, stored := sink.state(); stored != n {
		t.Fatalf("%d of %d events stored once every offset was committed", stored, n)
	}
}
