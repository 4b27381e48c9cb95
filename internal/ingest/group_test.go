package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
)

// barrierTimeout bounds how long a call of barrierSink waits for the others
// of its wave: far longer than goroutines need to start, short enough to
// fail a test that would otherwise hang.
const barrierTimeout = 10 * time.Second

// barrierSink holds calls in waves: a call returns once want calls are in
// flight together (or fails after barrierTimeout). It records what each call
// carried and the most calls it saw in flight.
type barrierSink struct {
	want int

	mu      sync.Mutex
	arrived int
	release chan struct{} // closed when the current wave is complete
	calls   [][]string    // event ids of each call

	flight Flights
}

func newBarrierSink(want int) *barrierSink {
	return &barrierSink{want: want, release: make(chan struct{})}
}

func (s *barrierSink) Ingest(ctx context.Context, events []event.Event) error {
	ids := make([]string, len(events))
	for i := range events {
		ids[i] = events[i].EventID
	}
	s.flight.Enter()
	defer s.flight.Leave()
	s.mu.Lock()
	s.calls = append(s.calls, ids)
	wave := s.release
	s.arrived++
	if s.arrived == s.want {
		close(s.release)
		s.arrived, s.release = 0, make(chan struct{})
	}
	s.mu.Unlock()
	select {
	case <-wave:
		return nil
	case <-time.After(barrierTimeout):
		return fmt.Errorf("no %d calls in flight together within %s", s.want, barrierTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// partitionedBatch is events spread over partition numbers 0..partitions-1
// of three topics, interleaved as a fetch interleaves them; each event id
// names its partition ("p1-..."). Every tenth message of partition 0 breaks
// the contract.
func partitionedBatch(t *testing.T, partitions, perPartition int) []kafka.Message {
	t.Helper()
	topics := []string{"t.bot", "t.handoff", "t.agent"}
	base := time.Date(2025, 10, 7, 9, 0, 0, 0, time.UTC)
	var batch []kafka.Message
	offsets := map[string]int64{}
	for i := range perPartition {
		for p := range partitions {
			topic := topics[i%len(topics)]
			tp := fmt.Sprintf("%s/%d", topic, p)
			e := event.Event{
				EventID: fmt.Sprintf("p%d-e%03d", p, i), Type: event.TypeTag, OccurredAt: base.Add(time.Duration(i) * time.Second),
				Tenant: "acme", Channel: "whatsapp", Contact: event.Contact{ID: fmt.Sprintf("c%d", p)}, Tag: "t",
			}
			value, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if p == 0 && i%10 == 9 {
				value = []byte(`{"event_id":"broken"}`)
			}
			batch = append(batch, kafka.Message{Topic: topic, Partition: p, Offset: offsets[tp], Value: value})
			offsets[tp]++
		}
	}
	return batch
}

func newTestIngester(workers int, sink Sink) *Ingester {
	cfg := Config{Workers: workers}
	cfg.Defaults()
	return &Ingester{cfg: cfg, sink: sink, log: zap.NewNop()}
}

func TestGroupByPartition(t *testing.T) {
	batch := partitionedBatch(t, 3, 5)
	groups := groupByPartition(batch)
	if len(groups) != 3 {
		t.Fatalf("%d groups", len(groups))
	}
	seen := 0
	for want, g := range groups {
		if g.partition != want {
			t.Errorf("group %d holds partition %d: groups are in order of first appearance", want, g.partition)
		}
		last := -1
		for _, i := range g.msgs {
			if batch[i].Partition != g.partition {
				t.Errorf("group of partition %d holds a message of partition %d", g.partition, batch[i].Partition)
			}
			if i <= last {
				t.Errorf("group of partition %d is not in batch order", g.partition)
			}
			last = i
		}
		seen += len(g.msgs)
	}
	if seen != len(batch) {
		t.Fatalf("groups hold %d of %d messages", seen, len(batch))
	}
}

// TestStoreAllConcurrent: a batch reaches the sink in as many calls as
// there are workers, all at once (the sink lets no call finish before that
// many are in flight), each with whole partition numbers.
func TestStoreAllConcurrent(t *testing.T) {
	for _, workers := range []int{2, 4} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			const partitions = 8
			batch := partitionedBatch(t, partitions, 20)
			sink := newBarrierSink(workers)
			in := newTestIngester(workers, sink)
			p := in.prepare(batch)
			if err := in.storeAll(context.Background(), p.calls); err != nil {
				t.Fatal(err)
			}
			if sink.flight.Most() != workers || len(sink.calls) != workers {
				t.Fatalf("%d calls, at most %d in flight, with %d workers", len(sink.calls), sink.flight.Most(), workers)
			}
			stored := 0
			callOf := map[string]int{} // partition → call
			for c, ids := range sink.calls {
				for _, id := range ids {
					partition, _, _ := strings.Cut(id, "-")
					if other, ok := callOf[partition]; ok && other != c {
						t.Fatalf("events of %s in calls %d and %d", partition, other, c)
					}
					callOf[partition] = c
				}
				stored += len(ids)
			}
			if broken := 2; stored != len(batch)-broken || len(callOf) != partitions {
				t.Fatalf("stored %d events of %d partitions; %d messages with %d broken", stored, len(callOf), len(batch), broken)
			}
		})
	}
}

// TestStoreAllOneWorker: with one worker the batch goes to the sink in one
// call.
func TestStoreAllOneWorker(t *testing.T) {
	batch := partitionedBatch(t, 3, 20)
	sink := newBarrierSink(1)
	in := newTestIngester(1, sink)
	p := in.prepare(batch)
	if err := in.storeAll(context.Background(), p.calls); err != nil {
		t.Fatal(err)
	}
	if len(sink.calls) != 1 || len(sink.calls[0]) != len(batch)-2 {
		t.Fatalf("%d calls for a batch of 3 partition numbers and %d valid events", len(sink.calls), len(batch)-2)
	}
}

func TestShareOut(t *testing.T) {
	groups := func(sizes ...int) []*group {
		var gs []*group
		for p, n := range sizes {
			gs = append(gs, &group{partition: p, events: make([]event.Event, n)})
		}
		return gs
	}
	describe := func(calls [][]*group) string {
		var out []string
		for _, c := range calls {
			var ps []string
			for _, g := range c {
				ps = append(ps, fmt.Sprintf("%d:%d", g.partition, len(g.events)))
			}
			out = append(out, strings.Join(ps, ","))
		}
		return strings.Join(out, " | ")
	}
	for _, tc := range []struct {
		sizes []int
		n     int
		want  string
	}{
		{[]int{10, 7, 5, 3, 1}, 2, "0:10,3:3 | 1:7,2:5,4:1"},
		{[]int{5, 0, 5}, 4, "0:5 | 2:5"},
		{[]int{3, 9, 4}, 1, "1:9,2:4,0:3"},
		{[]int{0, 0}, 2, ""},
	} {
		if got := describe(shareOut(groups(tc.sizes...), tc.n)); got != tc.want {
			t.Errorf("shareOut(%v, %d) = %q, want %q", tc.sizes, tc.n, got, tc.want)
		}
	}
}

// TestPrepare: every message is decoded into its group, or becomes a dead
// letter of its group.
func TestPrepare(t *testing.T) {
	batch := partitionedBatch(t, 3, 20)
	p := newTestIngester(2, nil).prepare(batch)
	var events, invalid int
	for _, g := range p.groups {
		for j := range g.events {
			if m := batch[g.source[j]]; m.Partition != g.partition || !strings.HasPrefix(g.events[j].EventID, fmt.Sprintf("p%d-", g.partition)) {
				t.Errorf("event %s of message %s/%d in the group of partition %d", g.events[j].EventID, m.Topic, m.Partition, g.partition)
			}
		}
		for _, d := range g.invalid {
			if batch[d.at].Partition != g.partition || string(d.msg.Value) != `{"event_id":"broken"}` {
				t.Errorf("dead letter of message %d in the group of partition %d", d.at, g.partition)
			}
		}
		events += len(g.events)
		invalid += len(g.invalid)
	}
	if events != len(batch)-2 || invalid != 2 {
		t.Fatalf("%d events and %d dead letters of %d messages, 2 broken", events, invalid, len(batch))
	}
}

// countingSink stores, failing the calls of some partitions.
type countingSink struct {
	mu     sync.Mutex
	fail   map[string]bool // event id prefixes ("p1") whose calls fail
	stored map[string]int  // event id → times stored
}

func (s *countingSink) Ingest(_ context.Context, events []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix, _, _ := strings.Cut(events[0].EventID, "-")
	if s.fail[prefix] {
		return errors.New("store unavailable for " + prefix)
	}
	for i := range events {
		s.stored[events[i].EventID]++
	}
	return nil
}

// TestStoreAllFailure: one call failing fails the attempt, after every other
// call stored its events; the next attempt stores everything again.
func TestStoreAllFailure(t *testing.T) {
	batch := partitionedBatch(t, 3, 10)
	sink := &countingSink{stored: map[string]int{}, fail: map[string]bool{"p1": true}}
	in := newTestIngester(3, sink)
	p := in.prepare(batch)
	err := in.storeAll(context.Background(), p.calls)
	if err == nil || !strings.Contains(err.Error(), "partitions [1]: store unavailable for p1") {
		t.Fatalf("error %v", err)
	}
	if sink.stored["p0-e000"] != 1 || sink.stored["p2-e000"] != 1 || sink.stored["p1-e000"] != 0 {
		t.Fatalf("stored %v", sink.stored)
	}
	sink.fail = nil
	if err := in.storeAll(context.Background(), p.calls); err != nil {
		t.Fatal(err)
	}
	if sink.stored["p0-e000"] != 2 || sink.stored["p1-e000"] != 1 || sink.stored["p2-e000"] != 2 {
		t.Fatalf("stored %v", sink.stored)
	}
}

func TestWorkersDefault(t *testing.T) {
	cfg := Config{}
	cfg.Defaults()
	if cfg.Workers < 1 {
		t.Fatalf("default workers %d", cfg.Workers)
	}
	cfg.Workers = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "workers") {
		t.Fatalf("negative workers: %v", err)
	}
}
