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
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
	"github.com/chatreport/chatreport/internal/waitfor"
)

// smallBatches stores batches of 16 messages, each in one sink call, with
// inFlight batches at once.
func smallBatches(inFlight int, edit ...func(*ingest.Config)) func(*ingest.Config) {
	return func(c *ingest.Config) {
		c.BatchSize, c.Workers, c.InFlight = 16, 1, inFlight
		for _, e := range edit {
			e(c)
		}
	}
}

// holdSink holds the call holding event hold until release is closed and
// lets every other call through, counting the calls that began and those
// that returned.
type holdSink struct {
	hold    string
	release chan struct{}

	mu              sync.Mutex
	began, returned int
	stored          map[string]bool
}

func (s *holdSink) Ingest(ctx context.Context, events []event.Event) error {
	s.mu.Lock()
	s.began++
	s.mu.Unlock()
	if containsEvent(events, s.hold) {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range events {
		s.stored[events[i].EventID] = true
	}
	s.returned++
	return nil
}

func (s *holdSink) counts() (began, returned, stored int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.began, s.returned, len(s.stored)
}

// TestBatchesOverlap: with two batches in flight (of one partition, so that
// the first holds the first event), the second batch reaches the sink while
// the first is still being stored, and once stored it waits for the first: nothing is committed until the first is stored, and no
// third batch starts meanwhile. With one in flight the second batch waits
// for the first's commit.
func TestBatchesOverlap(t *testing.T) {
	for _, tc := range []struct {
		inFlight int
		overlap  bool
	}{{1, false}, {2, true}} {
		t.Run(map[bool]string{false: "one in flight", true: "two in flight"}[tc.overlap], func(t *testing.T) {
			addr := startBroker(t)
			const n = 120
			produceInOrder(t, addr, tagMessages(n))
			sink := &holdSink{hold: tagEvent(0).EventID, release: make(chan struct{}), stored: map[string]bool{}}
			stop := runIngesterWith(t, addr, sink, smallBatches(tc.inFlight))
			defer stop()
			if tc.overlap {
				waitfor.True(t, 15*time.Second, "the second batch stored while the first is held",
					func() bool { _, returned, _ := sink.counts(); return returned >= 1 })
			} else {
				waitfor.True(t, 15*time.Second, "the first batch in the sink", func() bool { began, _, _ := sink.counts(); return began >= 1 })
			}
			// Time for a third batch, or a commit, to happen if either could.
			time.Sleep(500 * time.Millisecond)
			began, returned, _ := sink.counts()
			if want := map[bool]int{false: 1, true: 2}[tc.overlap]; began != want || returned != want-1 {
				t.Fatalf("while the first batch is held: %d calls began, %d returned; want %d and %d", began, returned, want, want-1)
			}
			if got := committed(t, addr); got != 0 {
				t.Fatalf("committed %d offsets while the first batch is held", got)
			}
			close(sink.release)
			waitfor.True(t, 15*time.Second, "all events stored", func() bool { _, _, stored := sink.counts(); return stored == n })
			waitfor.True(t, 15*time.Second, "all offsets committed", func() bool { return committed(t, addr) == n })
			if st := stop(); st.Stored != n || st.Consumed != n {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// call is what a sequenceSink saw of one call: its first event, whether it
// succeeded, and the order of its beginning and end among all calls' ones.
type call struct {
	first      string
	ok         bool
	begin, end int
}

// sequenceSink fails, while failing, every call holding the event poison,
// stores the others (counting each event's stores), and logs every call.
// The first call holding poison fails only once a later call was stored (or
// after 5 s), so that a later batch is stored while the first has yet to
// be.
type sequenceSink struct {
	poison string
	later  latch

	mu       sync.Mutex
	failing  bool
	poisoned int // calls that held poison
	tick     int
	calls    []call
	stored   map[string]int
}

func (s *sequenceSink) Ingest(_ context.Context, events []event.Event) error {
	s.mu.Lock()
	s.tick++
	c := call{first: events[0].EventID, begin: s.tick}
	held := containsEvent(events, s.poison)
	if held {
		s.poisoned++
	}
	first := held && s.poisoned == 1
	fail := s.failing && held
	s.mu.Unlock()
	if first {
		s.later.wait(5 * time.Second)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick++
	c.end, c.ok = s.tick, !fail
	s.calls = append(s.calls, c)
	if fail {
		return errors.New("store unavailable for the first batch")
	}
	for i := range events {
		s.stored[events[i].EventID]++
	}
	if !held {
		s.later.open()
	}
	return nil
}

// latch is a gate opened once.
type latch struct {
	once sync.Once
	ch   chan struct{}
	init sync.Once
}

func (l *latch) c() chan struct{} {
	l.init.Do(func() { l.ch = make(chan struct{}) })
	return l.ch
}

func (l *latch) open() { l.once.Do(func() { close(l.c()) }) }

// wait returns once the latch is open or d has passed.
func (l *latch) wait(d time.Duration) {
	select {
	case <-l.c():
	case <-time.After(d):
	}
}

func containsEvent(events []event.Event, id string) bool {
	for i := range events {
		if events[i].EventID == id {
			return true
		}
	}
	return false
}

func (s *sequenceSink) heal() {
	s.mu.Lock()
	s.failing = false
	s.mu.Unlock()
}

// laterStored is how many calls without the poisoned event succeeded.
func (s *sequenceSink) laterStored() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.ok && c.first != s.poison {
			n++
		}
	}
	return n
}

// produceInOrder sends msgs to partition 0 of the first event topic, so
// that batches follow the order of msgs: the first batch holds msgs[0].
func produceInOrder(t *testing.T, addr string, msgs []kafka.Message) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	first := kafka.BalancerFunc(func(_ kafka.Message, partitions ...int) int { return partitions[0] })
	w := &kafka.Writer{Addr: kafka.TCP(addr), Balancer: first, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, Transport: tr}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range msgs {
		msgs[i].Topic = topics[0]
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// TestFailedBatchHoldsBackLaterCommits: while the first batch cannot be
// stored, the batch after it is stored but not committed; once the first is
// stored, the second is stored again (its first attempt began before the
// first batch's successful one) and both are committed.
func TestFailedBatchHoldsBackLaterCommits(t *testing.T) {
	addr := startBroker(t)
	const n = 120
	msgs := tagMessages(n)
	produceInOrder(t, addr, msgs)
	sink := &sequenceSink{poison: tagEvent(0).EventID, failing: true, stored: map[string]int{}}
	retries := &retryCounter{}
	stop := runIngesterWith(t, addr, sink, smallBatches(0, func(c *ingest.Config) { c.Observer = retries }))
	defer stop()
	waitfor.True(t, 15*time.Second, "a later batch stored and the first retried",
		func() bool { return sink.laterStored() >= 1 && retries.n.Load() >= 2 })
	if got := committed(t, addr); got != 0 {
		t.Fatalf("committed %d offsets while the first batch could not be stored", got)
	}
	sink.mu.Lock()
	var second string // the first event of the batch stored while the first failed
	for _, c := range sink.calls {
		if c.ok && c.first != sink.poison {
			second = c.first
			break
		}
	}
	sink.mu.Unlock()
	sink.heal()
	waitfor.True(t, 15*time.Second, "all events stored", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return len(sink.stored) == n })
	waitfor.True(t, 15*time.Second, "all offsets committed", func() bool { return committed(t, addr) == n })
	st := stop()
	if st.Stored != n || st.Consumed != n {
		t.Fatalf("stats %+v", st)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	firstStored := -1
	for _, c := range sink.calls {
		if c.ok && c.first == sink.poison {
			firstStored = c.end
			break
		}
	}
	again := false
	for _, c := range sink.calls {
		again = again || (c.ok && c.first == second && c.begin > firstStored)
	}
	if firstStored < 0 || !again {
		t.Fatalf("the batch stored while the first failed was not stored again after the first: calls %+v", sink.calls)
	}
}

// poisonedAssembler fails, while poisoning, every call holding the event
// poison, and assembles every other call into its store. A call holding
// poison fails only once a later call was stored (or after 5 s).
type poisonedAssembler struct {
	next   ingest.Sink
	poison string
	later  latch

	mu        sync.Mutex
	poisoning bool
	stored    int // calls that succeeded
}

func (s *poisonedAssembler) Ingest(ctx context.Context, events []event.Event) error {
	s.mu.Lock()
	fail := s.poisoning && containsEvent(events, s.poison)
	s.mu.Unlock()
	if fail {
		s.later.wait(5 * time.Second)
		return errors.New("store unavailable for the first batch")
	}
	if err := s.next.Ingest(ctx, events); err != nil {
		return err
	}
	s.mu.Lock()
	s.stored++
	s.mu.Unlock()
	if !containsEvent(events, s.poison) {
		s.later.open()
	}
	return nil
}

func (s *poisonedAssembler) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored
}

// TestRestartAfterHeldBackBatch: an ingester stops (its shutdown grace runs
// out) while its first batch cannot be stored and later batches were stored
// into SQLite; nothing was committed, so a new member consumes everything
// again, and the store then holds exactly the reference sessions: nothing
// lost, nothing stored twice.
func TestRestartAfterHeldBackBatch(t *testing.T) {
	addr := startBroker(t)
	def := pipeline.MustDefault()
	rng := rand.New(rand.NewPCG(20261203, 13))
	tenants := []string{"acme", "globex"}
	events := sessiontest.Generate(rng, sessiontest.Options{
		Tenants: tenants, Conversations: 40, MaxEvents: 10,
		Start: sessiontest.Base, Spread: 2 * 24 * time.Hour,
	})
	// No event twice in the topic: the sink poisons the first event's id,
	// and a copy in a later batch would hold that one back too.
	arrival := sessiontest.Arrange(rng, events, sessiontest.Late)
	msgs := make([]kafka.Message, 0, len(arrival))
	decoded := map[event.Ref]event.Event{}
	for _, e := range arrival {
		value, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if decoded[e.Ref()], err = event.Decode(value); err != nil {
			t.Fatalf("generated an invalid event: %v", err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(e.RecommendedKey()), Value: value})
	}
	consumed := make([]event.Event, 0, len(decoded))
	for _, e := range decoded {
		consumed = append(consumed, e)
	}
	want := sessiontest.Reference(def, consumed)
	produceInOrder(t, addr, msgs)

	path := filepath.Join(t.TempDir(), "restart.db")
	st := openSQLite(t, path)
	sink := &poisonedAssembler{next: session.NewAssembler(def, st), poison: arrival[0].EventID, poisoning: true}
	retries := &retryCounter{}
	config := smallBatches(0, func(c *ingest.Config) { c.BatchSize, c.Observer = 50, retries })
	stop := runIngesterWith(t, addr, sink, config)
	waitfor.True(t, 15*time.Second, "a later batch stored and the first retried",
		func() bool { return sink.calls() >= 1 && retries.n.Load() >= 1 })
	stop()
	if got := committed(t, addr); got != 0 {
		t.Fatalf("committed %d offsets past a batch that was never stored", got)
	}
	sink.mu.Lock()
	sink.poisoning = false
	sink.mu.Unlock()

	stop = runIngesterWith(t, addr, sink, config)
	defer stop()
	waitfor.True(t, 20*time.Second, "all offsets committed", func() bool { return committed(t, addr) == int64(len(msgs)) })
	stop()
	from, to := sessiontest.Base.Add(-24*time.Hour), sessiontest.Base.Add(60*24*time.Hour)
	if err := sessiontest.Check(context.Background(), st, tenants, from, to, want); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownPastAFailedCommit: at shutdown, a stored batch whose commit
// fails does not make the batches after it count as not stored: the next,
// stored too, is committed, and its offsets cover the first's. It was
// dropped, to be delivered again.
func TestShutdownPastAFailedCommit(t *testing.T) {
	b := startControlledBroker(t)
	const n = 32 // two batches of 16, of one partition
	produceInOrder(t, b.Addr(), tagMessages(n))
	sink := &holdSink{hold: tagEvent(0).EventID, release: make(chan struct{}), stored: map[string]bool{}}
	stop := runIngesterWith(t, b.Addr(), sink, smallBatches(2, func(c *ingest.Config) { c.ShutdownGrace = 10 * time.Second }))
	defer stop()
	waitfor.True(t, 15*time.Second, "the second batch stored while the first is held",
		func() bool { _, returned, _ := sink.counts(); return returned == 1 })
	// kafka-go makes three attempts at a commit: the first batch's fail.
	fault := b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Err: kerr.UnknownServerError, Count: 3})
	stopped := make(chan ingest.Stats, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond) // the shutdown begins with the first batch held
	close(sink.release)
	st := <-stopped
	if fault.Hits() != 3 {
		t.Fatalf("%d commits failed, want the first batch's 3", fault.Hits())
	}
	if got := committed(t, b.Addr()); got != n {
		t.Errorf("committed %d offsets, want %d (the second batch's commit covers the first)", got, n)
	}
	if st.Stored != n {
		t.Errorf("stored %d, want %d", st.Stored, n)
	}
}
