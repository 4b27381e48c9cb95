package replay

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/versions"
)

// Unit tests of a run's own logic, without a broker: which messages of a
// fetched batch it stores, what it records of them, when a partition is
// done, and how it writes the target.

var (
	bot0 = partitionKey{"chat.events.bot", 0}
	bot1 = partitionKey{"chat.events.bot", 1}
)

// newRun is a run into a fresh target that a registry lists as being built.
func newRun(t *testing.T, p *progress, parts ...partitionKey) (*run, *fakeTarget) {
	t.Helper()
	reg := versions.OpenFile(t.TempDir())
	if _, err := reg.Register(t.Context(), target, t0); err != nil {
		t.Fatal(err)
	}
	if p.Next == nil {
		p.Next = map[string]int64{}
	}
	ft := &fakeTarget{notify: newNotifier(), ingested: map[event.Ref]int{}}
	work, cancelWork := context.WithCancel(t.Context())
	t.Cleanup(cancelWork)
	return &run{cfg: Config{Version: target, Registry: reg, Now: time.Now}, target: ft, p: p, parts: parts,
		planned: reach{next: map[string]int64{}}, log: zap.NewNop(), ends: map[partitionKey]int64{}, started: time.Now(),
		work: work, cancelWork: cancelWork}, ft
}

// store stores one batch as the loop does: prepared, launched, completed.
func (r *run) store(ctx context.Context, batch []fetched) error {
	r.launch(r.prepare(batch))
	return r.settle(ctx)
}

// at is a message of partition k at offset holding event id (an invalid
// message when id is "").
func at(k partitionKey, offset int64, id string) fetched {
	value := []byte("not an event")
	if id != "" {
		e := event.Event{EventID: id, Type: event.TypeMessage, OccurredAt: t0, Tenant: "acme", Channel: "whatsapp",
			Contact: event.Contact{ID: "5511987650000"}, Author: &event.Author{Role: "customer"}, Text: "oi"}
		value, _ = json.Marshal(&e)
	}
	return fetched{key: k, msg: kafka.Message{Topic: k.topic, Partition: k.partition, Offset: offset, Value: value}}
}

func pastTo(f fetched) fetched { f.pastTo = true; return f }

func ref(id string) event.Ref { return event.Ref{Tenant: "acme", EventID: id} }

func TestStoreKeepsWhatBelongsToTheReplay(t *testing.T) {
	tests := []struct {
		name     string
		progress progress
		batch    []fetched
		stored   []string // event ids
		want     progress // Next, Events, Invalid, ToReached
	}{
		{
			name:   "every message, offsets advance past each",
			batch:  []fetched{at(bot0, 0, "a"), at(bot0, 1, "b"), at(bot1, 5, "c")},
			stored: []string{"a", "b", "c"},
			want:   progress{Next: map[string]int64{"chat.events.bot/0": 2, "chat.events.bot/1": 6}, Events: 3},
		},
		{
			name:     "messages read before a resume are skipped",
			progress: progress{Next: map[string]int64{"chat.events.bot/0": 2}},
			batch:    []fetched{at(bot0, 1, "old"), at(bot0, 2, "new")},
			stored:   []string{"new"},
			want:     progress{Next: map[string]int64{"chat.events.bot/0": 3}, Events: 1},
		},
		{
			name:   "an invalid message is counted and passed",
			batch:  []fetched{at(bot0, 0, ""), at(bot0, 1, "b")},
			stored: []string{"b"},
			want:   progress{Next: map[string]int64{"chat.events.bot/0": 2}, Events: 1, Invalid: 1},
		},
		{
			name:     "the live offsets end a partition, even past a gap",
			progress: progress{Stop: map[string]int64{"chat.events.bot/0": 2}},
			batch:    []fetched{at(bot0, 1, "b"), at(bot0, 4, "after")},
			stored:   []string{"b"},
			want:     progress{Next: map[string]int64{"chat.events.bot/0": 2}, Stop: map[string]int64{"chat.events.bot/0": 2}, Events: 1},
		},
		{
			name:     "the end once To passed ends a partition",
			progress: progress{ToEnd: map[string]int64{"chat.events.bot/1": 1}},
			batch:    []fetched{at(bot1, 0, "a"), at(bot1, 1, "after")},
			stored:   []string{"a"},
			want:     progress{Next: map[string]int64{"chat.events.bot/1": 1}, ToEnd: map[string]int64{"chat.events.bot/1": 1}, Events: 1},
		},
		{
			name:   "the first message after To ends its partition, unreplayed",
			batch:  []fetched{at(bot0, 0, "a"), pastTo(at(bot0, 1, "late")), at(bot1, 0, "c")},
			stored: []string{"a", "c"},
			want: progress{Next: map[string]int64{"chat.events.bot/0": 1, "chat.events.bot/1": 1},
				ToReached: map[string]bool{"chat.events.bot/0": true}, Events: 2},
		},
		{
			name:     "a partition done is not read further",
			progress: progress{ToReached: map[string]bool{"chat.events.bot/0": true}},
			batch:    []fetched{at(bot0, 7, "x"), at(bot1, 0, "c")},
			stored:   []string{"c"},
			want:     progress{Next: map[string]int64{"chat.events.bot/1": 1}, ToReached: map[string]bool{"chat.events.bot/0": true}, Events: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ft := newRun(t, &tc.progress, bot0, bot1)
			if err := r.store(t.Context(), tc.batch); err != nil {
				t.Fatal(err)
			}
			want := map[event.Ref]int{}
			for _, id := range tc.stored {
				want[ref(id)] = 1
			}
			if got := ft.snapshot(); !reflect.DeepEqual(got, want) {
				t.Errorf("stored %v, want %v", got, want)
			}
			if !reflect.DeepEqual(*r.p, tc.want) {
				t.Errorf("progress %+v, want %+v", *r.p, tc.want)
			}
			saved, err := loadProgress(t.Context(), ft)
			if err != nil || !reflect.DeepEqual(saved, r.p) {
				t.Errorf("saved progress %+v (%v), want %+v", saved, err, r.p)
			}
		})
	}
}

// TestPlannedAndStored: a batch prepared while one before it is in flight
// is filtered by what that one reaches (planned); the progress takes each
// batch's Next, ToReached and invalid messages only once it completes, and
// planned then keeps only what the batches still in flight reach.
func TestPlannedAndStored(t *testing.T) {
	r, ft := newRun(t, &progress{}, bot0, bot1)
	first := r.prepare([]fetched{at(bot0, 0, "a"), at(bot0, 1, ""), at(bot1, 0, "c")})
	// Read again (a reader's retry): passed by the plan, not stored twice.
	second := r.prepare([]fetched{at(bot0, 1, ""), at(bot1, 0, "c"), pastTo(at(bot0, 2, "late")), at(bot1, 1, "d")})
	if len(second.events) != 1 || second.invalid != 0 {
		t.Fatalf("second batch %+v: want d alone", second)
	}
	if r.done(bot0) || !r.doneReading(bot0) || r.p.Next["chat.events.bot/0"] != 0 || r.p.ToReached != nil || r.p.Invalid != 0 {
		t.Fatalf("before any batch completed: done %v, done reading %v, progress %+v", r.done(bot0), r.doneReading(bot0), *r.p)
	}
	for i, b := range []*flight{first, second} {
		if err := r.complete(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		want := progress{Next: map[string]int64{"chat.events.bot/0": 2, "chat.events.bot/1": 1}, Events: 2, Invalid: 1}
		if i == 1 {
			want.Next["chat.events.bot/1"], want.ToReached, want.Events = 2, map[string]bool{"chat.events.bot/0": true}, 3
		}
		if saved, err := loadProgress(t.Context(), ft); err != nil || !reflect.DeepEqual(*saved, want) {
			t.Fatalf("saved after batch %d: %+v (%v), want %+v", i+1, saved, err, want)
		}
		var wantPlanned reach
		if i == 0 {
			wantPlanned = second.reach
		}
		if !maps.Equal(r.planned.next, wantPlanned.next) || !maps.Equal(r.planned.toReached, wantPlanned.toReached) {
			t.Fatalf("planned after batch %d: %+v, want %+v", i+1, r.planned, wantPlanned)
		}
	}
	if !r.done(bot0) {
		t.Fatal("a partition past To not done once its batch completed")
	}
}

// An event the target refuses for good is counted as rejected, not as
// stored, and the replay passes it.
func TestStoreCountsRejected(t *testing.T) {
	r, ft := newRun(t, &progress{}, bot0)
	ft.reject = map[event.Ref]string{ref("b"): "mapping"}
	if err := r.store(t.Context(), []fetched{at(bot0, 0, "a"), at(bot0, 1, "b"), at(bot0, 2, "c")}); err != nil {
		t.Fatal(err)
	}
	if r.p.Events != 2 || r.p.Rejected != 1 || r.p.Next["chat.events.bot/0"] != 3 {
		t.Fatalf("progress %+v: want 2 events, 1 rejected, next 3", *r.p)
	}
}

func TestIngestWritesThroughTheFence(t *testing.T) {
	errDown := errors.New("store down")
	t.Run("retries until stored", func(t *testing.T) {
		r, ft := newRun(t, &progress{})
		failures := 2
		flaky := &flakyTarget{fakeTarget: ft, failures: failures, err: errDown}
		r.target = flaky
		if _, err := r.ingest(t.Context(), []event.Event{{Tenant: "acme", EventID: "a"}}); err != nil {
			t.Fatal(err)
		}
		if ft.calls() != 1 || flaky.calls != failures+1 {
			t.Fatalf("%d calls, %d stored; want %d calls, 1 stored", flaky.calls, ft.calls(), failures+1)
		}
	})
	t.Run("abandoned target: no write, ErrNotWritable", func(t *testing.T) {
		r, ft := newRun(t, &progress{})
		if _, err := r.cfg.Registry.Abandon(t.Context(), target); err != nil {
			t.Fatal(err)
		}
		_, err := r.ingest(t.Context(), []event.Event{{Tenant: "acme", EventID: "a"}})
		if !errors.Is(err, versions.ErrNotWritable) || ft.calls() != 0 {
			t.Fatalf("err %v after %d writes; want ErrNotWritable and none", err, ft.calls())
		}
	})
	t.Run("ctx ends: the store's error", func(t *testing.T) {
		r, ft := newRun(t, &progress{})
		ft.fail = errDown
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := r.ingest(ctx, []event.Event{{Tenant: "acme", EventID: "a"}})
		if !errors.Is(err, errDown) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v; want the store's error and ctx's", err)
		}
	})
}

// flakyTarget fails its first calls with err, then is fakeTarget.
type flakyTarget struct {
	*fakeTarget
	failures, calls int
	err             error
}

func (f *flakyTarget) Ingest(ctx context.Context, events []event.Event) error {
	f.calls++
	if f.calls <= f.failures {
		return f.err
	}
	return f.fakeTarget.Ingest(ctx, events)
}

// TestStatus: each partition's lag runs to the end it is known to have,
// or to where it ends (the live offsets, the end once To passed).
func TestStatus(t *testing.T) {
	bot2 := partitionKey{"chat.events.bot", 2}
	r, _ := newRun(t, &progress{
		Next:  map[string]int64{"chat.events.bot/0": 4, "chat.events.bot/1": 10, "chat.events.bot/2": 3},
		Stop:  map[string]int64{"chat.events.bot/1": 10},
		ToEnd: map[string]int64{"chat.events.bot/2": 5},
	}, bot0, bot1, bot2)
	r.ends[bot0], r.ends[bot1], r.ends[bot2] = 9, 50, 50
	st := r.status()
	want := []PartitionStatus{
		{Topic: "chat.events.bot", Partition: 0, Next: 4, End: 9, Lag: 5},
		{Topic: "chat.events.bot", Partition: 1, Next: 10, End: 10, Done: true},
		{Topic: "chat.events.bot", Partition: 2, Next: 3, End: 5, Lag: 2},
	}
	if !reflect.DeepEqual(st.Partitions, want) || st.Remaining != 7 {
		t.Fatalf("partitions %+v, remaining %d; want %+v, 7", st.Partitions, st.Remaining, want)
	}
	if r.allDone() {
		t.Fatal("all done with two partitions to go")
	}
	r.p.Next["chat.events.bot/0"], r.p.Next["chat.events.bot/2"] = 9, 5
	r.p.Stop["chat.events.bot/0"] = 9
	if !r.allDone() {
		t.Fatalf("not done: %+v", r.status().Partitions)
	}
}

func TestProgressSavedAndLoaded(t *testing.T) {
	ft := &fakeTarget{notify: newNotifier(), ingested: map[event.Ref]int{}}
	p, err := loadProgress(t.Context(), ft)
	if err != nil || p.Next == nil || p.Events != 0 {
		t.Fatalf("a replay never saved: %+v, %v", p, err)
	}
	p = &progress{Next: map[string]int64{"t/0": 3}, Stop: map[string]int64{"t/0": 9}, Events: 3, Invalid: 1, Rejected: 2}
	if err := saveProgress(t.Context(), ft, p); err != nil {
		t.Fatal(err)
	}
	got, err := loadProgress(t.Context(), ft)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("loaded %+v (%v), want %+v", got, err, p)
	}
	ft.state = []byte(`{"events": 3}`)
	if got, err := loadProgress(t.Context(), ft); err != nil || got.Next == nil {
		t.Fatalf("a state without next: %+v, %v", got, err)
	}
	ft.state = []byte("garbage")
	if _, err := loadProgress(t.Context(), ft); err == nil {
		t.Fatal("unreadable progress loaded")
	}

}

// TestBatchSizeRequired: a replay has no batch size of its own beside the
// configuration's (config.Ingest.BatchSizeOf, which the command passes).
func TestBatchSizeRequired(t *testing.T) {
	cfg := Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"t"}, Version: "v2", Registry: versions.OpenFile(t.TempDir())}
	if err := Run(t.Context(), cfg, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "batch size") {
		t.Fatalf("a replay without a batch size: %v", err)
	}
}
