package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/versions"
)

// Tests of the batches stored at once (Config.InFlight) and of the order in
// which their progress is saved.

// onePartition produces n events to one partition, all before the To of
// toConfig, and returns them in offset order.
func (f *fixture) onePartition(n int) []event.Ref {
	f.t.Helper()
	msgs := make([]msg, n)
	for i := range msgs {
		msgs[i] = msg{topic: topics[0], partition: 0, at: t0}
	}
	return f.produce(msgs...)
}

// toConfig is the fixture's config with a To that every produced message
// precedes, passed already: the replay ends once it stored them all.
func (f *fixture) toConfig() Config {
	f.clock.Set(t0.Add(3 * time.Hour))
	cfg := f.config()
	cfg.To = t0.Add(time.Hour)
	return cfg
}

// TestBatchesInFlight: up to InFlight batches are stored at once, never
// more.
func TestBatchesInFlight(t *testing.T) {
	for _, inFlight := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("in flight %d", inFlight), func(t *testing.T) {
			f := newFixture(t)
			f.inFlight = inFlight
			all := f.produce(everywhere(6, t0)...)
			var mu sync.Mutex
			storing, most := 0, 0
			// Each store lasts until inFlight are under way (a second at
			// most: the last batches), and a little more, so that a store
			// beyond inFlight would overlap them.
			f.target.beforeIngest = func(context.Context, []event.Event) error {
				mu.Lock()
				storing++
				most = max(most, storing)
				mu.Unlock()
				for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
					mu.Lock()
					all := storing >= inFlight
					mu.Unlock()
					if all {
						break
					}
					time.Sleep(time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond)
				mu.Lock()
				storing--
				mu.Unlock()
				return nil
			}
			if err := f.result(f.start(context.Background(), f.toConfig(), nil)); err != nil {
				t.Fatal(err)
			}
			f.checkIngested(all)
			mu.Lock()
			defer mu.Unlock()
			if most != inFlight {
				t.Fatalf("at most %d batches stored at once, want %d", most, inFlight)
			}
		})
	}
}

// gate holds the store of the batch holding one event until hold returns,
// and tells which events that batch held.
type gate struct {
	mu   sync.Mutex
	held []event.Ref
}

func (f *fixture) gate(at event.Ref, hold func(ctx context.Context) error) *gate {
	g := &gate{}
	f.target.mu.Lock()
	defer f.target.mu.Unlock()
	f.target.beforeIngest = func(ctx context.Context, events []event.Event) error {
		if !slices.ContainsFunc(events, func(e event.Event) bool { return e.Ref() == at }) {
			return nil
		}
		g.mu.Lock()
		for _, e := range events {
			g.held = append(g.held, e.Ref())
		}
		g.mu.Unlock()
		f.notify.signal()
		return hold(ctx)
	}
	return g
}

// laterStored waits until the target holds an event that comes after every
// event of the held batch, and returns the offset of the held batch's first
// event (all is every event of the partition, in offset order).
func (f *fixture) laterStored(g *gate, all []event.Ref) int64 {
	f.t.Helper()
	held := func() []event.Ref {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.held
	}
	f.waitFor("a batch after the held one stored", func() bool {
		h := held()
		if len(h) == 0 {
			return false
		}
		stored := f.target.snapshot()
		return slices.ContainsFunc(all[slices.Index(all, h[len(h)-1])+1:], func(r event.Ref) bool { return stored[r] > 0 })
	})
	return int64(slices.Index(all, held()[0]))
}

// TestProgressSavedInBatchOrder: while a batch is being stored, a later one
// stored meanwhile is not saved (every save is checked: checkSaved); once
// the held one is stored, everything is.
func TestProgressSavedInBatchOrder(t *testing.T) {
	f := newFixture(t)
	f.inFlight = 2
	all := f.onePartition(16)
	release := make(chan struct{})
	g := f.gate(all[4], func(context.Context) error { <-release; return nil })
	done := f.start(context.Background(), f.toConfig(), nil)
	held := f.laterStored(g, all)
	if next := f.saved().Next["chat.events.bot/0"]; next > held {
		t.Fatalf("saved next offset %d while the batch from %d is being stored", next, held)
	}
	close(release)
	if err := f.result(done); err != nil {
		t.Fatal(err)
	}
	f.checkIngested(all)
	if p := f.saved(); p.Next["chat.events.bot/0"] != int64(len(all)) || p.Events != int64(len(all)) {
		t.Fatalf("saved progress %+v", p)
	}
}

// TestResumeAfterAnUnstoredBatch: a replay interrupted while a batch was
// not stored yet and a later one was saves nothing from the unstored one
// on; resumed, it stores every event.
func TestResumeAfterAnUnstoredBatch(t *testing.T) {
	f := newFixture(t)
	f.inFlight = 2
	all := f.onePartition(16)
	g := f.gate(all[4], func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := f.toConfig()
	done := f.start(ctx, cfg, nil)
	held := f.laterStored(g, all)
	cancel()
	if err := f.result(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted replay: %v", err)
	}
	if p := f.saved(); p.Next["chat.events.bot/0"] > held {
		t.Fatalf("saved progress %+v while the batch from %d was not stored", p, held)
	}

	f.target.mu.Lock()
	f.target.beforeIngest = nil
	f.target.mu.Unlock()
	if err := f.result(f.start(context.Background(), cfg, nil)); err != nil {
		t.Fatal(err)
	}
	stored := f.target.snapshot()
	for _, r := range all {
		if stored[r] == 0 {
			t.Errorf("event %s not stored", r.EventID)
		}
	}
	if p := f.saved(); p.Next["chat.events.bot/0"] != int64(len(all)) || p.Events != int64(len(all)) {
		t.Fatalf("saved progress after the resume %+v", p)
	}
}

// TestToReachedSavedAfterTheBatchesBefore: a batch holding a partition's
// first message after To ends the partition in the saved progress only
// once every batch before it was stored, not when one before them completes
// (a resume would skip the ones not stored).
func TestToReachedSavedAfterTheBatchesBefore(t *testing.T) {
	f := newFixture(t)
	f.inFlight = 3
	all := f.onePartition(8)
	f.produce(msg{topic: topics[0], partition: 0, at: t0.Add(2 * time.Hour)})
	cfg := f.toConfig()
	// Batches of 4: A (stored slowly), B (held), C (past To).
	cfg.Poll = 100 * time.Millisecond
	// A batch cut otherwise fails the test (hookWait) rather than hang it;
	// so does a failure of the test while a store waits (ctx).
	bStoring, release := make(chan struct{}), make(chan struct{})
	var bOnce sync.Once
	f.target.beforeIngest = func(ctx context.Context, events []event.Event) error {
		switch events[0].Ref() {
		case all[0]:
			if err := f.hookWait(ctx, bStoring, "B stored while A is"); err != nil {
				return err
			}
			time.Sleep(3 * cfg.Poll) // C is prepared meanwhile
		case all[4]:
			bOnce.Do(func() { close(bStoring) }) // once: a retried store comes here again
			return f.hookWait(ctx, release, "B's release")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := f.start(ctx, cfg, nil)
	f.waitFor("A saved", func() bool {
		state, _ := f.target.LoadReplayState(context.Background())
		return state != nil && f.saved().Events == 4
	})
	if p := f.saved(); p.ToReached != nil {
		t.Fatalf("saved progress %+v while B is being stored", p)
	}
	close(release)
	if err := f.result(done); err != nil {
		t.Fatal(err)
	}
	f.checkIngested(all)
	if p := f.saved(); !p.ToReached["chat.events.bot/0"] || p.Next["chat.events.bot/0"] != int64(len(all)) {
		t.Fatalf("saved progress %+v", p)
	}
}

// TestFailedBatchStopsTheReplay: a batch that cannot be stored for good
// (the target abandoned) ends the replay once the batches in flight ended,
// and a later batch stored meanwhile is not saved.
func TestFailedBatchStopsTheReplay(t *testing.T) {
	f := newFixture(t)
	f.inFlight = 2
	all := f.onePartition(16)
	fail := make(chan struct{})
	g := f.gate(all[4], func(context.Context) error {
		<-fail
		return fmt.Errorf("version %s: %w", target, versions.ErrNotWritable)
	})
	done := f.start(context.Background(), f.toConfig(), nil)
	held := f.laterStored(g, all)
	close(fail)
	if err := f.result(done); !errors.Is(err, versions.ErrNotWritable) {
		t.Fatalf("replay whose batch was refused: %v", err)
	}
	if p := f.saved(); p.Next["chat.events.bot/0"] > held {
		t.Fatalf("saved progress %+v past the refused batch from %d", p, held)
	}
}

// TestFailedSaveStopsTheReplayAtOnce: a progress save that fails ends the
// replay at once with its error, while a later batch retries its store
// (the target down for it): the replay does not wait for the target to
// come back. The save that fails is a batch's, or a step's (the partitions'
// ends, once To passed).
func TestFailedSaveStopsTheReplayAtOnce(t *testing.T) {
	errDiskFull := errors.New("disk full")
	for _, tc := range []struct {
		name string
		// fails tells the saves that fail by the progress they save.
		fails func(p progress) bool
		// afterStore, when set, runs once the first batch was saved and
		// the last one retries.
		afterStore func(f *fixture)
	}{
		{name: "after a batch", fails: func(p progress) bool { return p.Events > 0 }},
		{name: "at a step", fails: func(p progress) bool { return p.ToEnd != nil },
			afterStore: func(f *fixture) { f.clock.Set(t0.Add(3 * time.Hour)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			// Every batch of the partition fits in flight, however it
			// is cut: the first waits for the last.
			f.inFlight = 8
			all := f.onePartition(8)
			cfg := f.toConfig()
			f.clock.Set(t0.Add(30 * time.Minute)) // To not passed yet: the ends are not saved
			retrying := make(chan struct{})
			var once sync.Once
			f.target.beforeIngest = func(ctx context.Context, events []event.Event) error {
				has := func(r event.Ref) bool {
					return slices.ContainsFunc(events, func(e event.Event) bool { return e.Ref() == r })
				}
				switch {
				case has(all[0]):
					select {
					case <-retrying:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				case has(all[len(all)-1]):
					once.Do(func() { close(retrying) })
					return errors.New("target unavailable")
				}
				return nil
			}
			f.target.beforeSave = func(state []byte) error {
				var p progress
				if err := json.Unmarshal(state, &p); err != nil || tc.fails(p) {
					return errDiskFull
				}
				return nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := f.start(ctx, cfg, nil)
			if tc.afterStore != nil {
				f.waitFor("the first batch saved", func() bool {
					state, _ := f.target.LoadReplayState(context.Background())
					return state != nil && f.saved().Events > 0
				})
				<-retrying
				tc.afterStore(f)
			}
			select {
			case err := <-done:
				if !errors.Is(err, errDiskFull) || errors.Is(err, context.Canceled) {
					t.Fatalf("replay whose save failed: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("the replay did not end after a save failed, while a later batch retried its store")
			}
		})
	}
}

// TestStopWhileASaveFails: a replay that stops (interrupted, or its target
// abandoned) while a batch is in flight completes that batch once stored;
// when the batch's save fails, the replay's error says so: an interrupted
// replay does not end with ctx's error (the command would say its progress
// is saved), an abandoned one has both errors.
func TestStopWhileASaveFails(t *testing.T) {
	errDiskFull := errors.New("disk full")
	for _, tc := range []struct {
		name string
		stop func(f *fixture, cancel context.CancelFunc)
		want []error
	}{
		{name: "interrupted", stop: func(_ *fixture, cancel context.CancelFunc) { cancel() }, want: []error{errDiskFull}},
		{name: "abandoned", stop: func(f *fixture, _ context.CancelFunc) {
			if _, err := f.reg.Abandon(context.Background(), target); err != nil {
				f.t.Fatal(err)
			}
		}, want: []error{errDiskFull, versions.ErrNotWritable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			all := f.onePartition(4)
			// The batch is stored once the replay stops.
			g := f.gate(all[0], func(ctx context.Context) error { <-ctx.Done(); return nil })
			f.target.beforeSave = func(state []byte) error {
				var p progress
				if err := json.Unmarshal(state, &p); err != nil || p.Events > 0 {
					return errDiskFull
				}
				return nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := f.start(ctx, f.toConfig(), nil)
			f.waitFor("the batch held", func() bool {
				g.mu.Lock()
				defer g.mu.Unlock()
				return len(g.held) > 0
			})
			tc.stop(f, cancel)
			err := f.result(done)
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("replay stopped while a save failed: %v, want %v in it", err, want)
				}
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("replay stopped while a save failed: %v, ctx's error", err)
			}
		})
	}
}

// TestDoneAfterTheBatchesInFlight: a batch read while following and still
// being stored when the live offsets are read (they are below its message:
// the partition is done by its saved progress) holds the end of the
// replay until it is stored: Run does not return while one of its
// goroutines writes the target.
func TestDoneAfterTheBatchesInFlight(t *testing.T) {
	f := newFixture(t)
	history := f.produce(everywhere(5, t0)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the held store when the test fails
	done := f.start(ctx, f.config(), nil)
	f.waitPhase(Following, func(s Status) bool { return s.Events == int64(len(history)) })

	holding, release := make(chan struct{}), make(chan struct{})
	f.target.mu.Lock()
	f.target.beforeIngest = func(ctx context.Context, events []event.Event) error {
		if slices.Contains(history, events[0].Ref()) {
			return nil
		}
		close(holding) // the one batch after the history: stored once
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.target.mu.Unlock()
	later := f.produce(msg{topic: topics[0], partition: 0, at: t0}) // offset 5
	select {
	case <-holding:
	case <-time.After(timeout):
		t.Fatal("the message after the history was not stored")
	}
	if _, err := f.reg.Swap(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	f.waitPhase(Swapped, nil)
	f.commitLive(5)
	f.clock.Add(time.Minute)
	f.waitFor("the live offsets read", func() bool {
		p := f.status.last().Phase
		return p == Finishing || p == Done
	})
	time.Sleep(5 * f.config().Poll) // a few turns of the loop
	if p := f.status.last().Phase; p != Finishing || !running(done) {
		t.Fatalf("the replay ended (phase %v) while a batch was being stored", p)
	}

	close(release)
	if err := f.result(done); err != nil {
		t.Fatal(err)
	}
	f.checkIngested(history, later)
	want := int64(len(history) + len(later))
	if st := f.status.last(); st.Phase != Done || st.Events != want {
		t.Fatalf("final status %+v", st)
	}
	if p := f.saved(); p.Events != want || p.Next["chat.events.bot/0"] != 6 {
		t.Fatalf("saved progress %+v", p)
	}
}

// BenchmarkReplayInFlight replays benchEvents events, from four partitions,
// into a target whose every Ingest takes 20 ms (a store's round trips), with
// one batch stored at a time and with four, and reports the events stored
// per second.
func BenchmarkReplayInFlight(b *testing.B) {
	const benchEvents, batch = 40000, 1000
	for _, inFlight := range []int{1, 4} {
		b.Run(fmt.Sprintf("in flight %d", inFlight), func(b *testing.B) {
			f := newFixture(b)
			f.inFlight = inFlight
			f.produceMany(benchEvents)
			cfg := f.toConfig()
			cfg.BatchSize = batch
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				f.target = &fakeTarget{notify: f.notify, ingested: map[event.Ref]int{},
					afterIngest: func() { time.Sleep(20 * time.Millisecond) }}
				if err := f.result(f.start(context.Background(), cfg, nil)); err != nil {
					b.Fatal(err)
				}
				if n := f.target.count(); n != benchEvents {
					b.Fatalf("%d events stored, want %d", n, benchEvents)
				}
			}
			b.ReportMetric(float64(benchEvents*b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// produceMany produces n events spread over every partition, many a request
// (they are not recorded for checkSaved).
func (f *fixture) produceMany(n int) {
	f.t.Helper()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(f.addr), Balancer: toPartition{}, BatchSize: 1000, BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll, Transport: transport}
	defer w.Close()
	msgs := make([]kafka.Message, 0, n)
	for i := range n {
		e := event.Event{EventID: fmt.Sprintf("b-%d", i), Type: event.TypeMessage, OccurredAt: t0, Tenant: "acme", Channel: "whatsapp",
			Contact: event.Contact{ID: fmt.Sprintf("551198765%04d", i%7)}, Author: &event.Author{Role: "customer"}, Text: "oi"}
		value, err := json.Marshal(&e)
		if err != nil {
			f.t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Topic: topics[i%2], Partition: i / 2 % partitionsPerTopic, Time: t0, Value: value})
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		f.t.Fatalf("produce: %v", err)
	}
}
