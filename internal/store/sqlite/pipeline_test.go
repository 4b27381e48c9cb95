package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// updateSignalling stores batch as ingest does, closing planned once the
// assembler computed its changes (the first time: a plan made again runs
// the assembler again).
func (s *storeAt) updateSignalling(batch []event.Event, planned chan struct{}) error {
	a := session.NewAssembler(sessiontest.Definition(), s.st)
	var once sync.Once
	return s.st.Update(context.Background(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
		ch, err := a.Assemble(ctx, r, batch)
		once.Do(func() { close(planned) })
		return ch, err
	})
}

// holdFirstWrite makes the store's first write wait until ready is closed
// (or fail the test after a while); later writes go on at once.
func holdFirstWrite(t *testing.T, s *storeAt, ready <-chan struct{}, what string) {
	var once sync.Once
	s.st.SetBeforeWrite(func() error {
		once.Do(func() {
			select {
			case <-ready:
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not happen while the first update was writing", what)
			}
		})
		return nil
	})
}

// pipelineBatches are three batches of one key: the second and third read
// the key as the one before them leaves it.
func pipelineBatches(failing string) (first, second, third []event.Event) {
	b := storetest.B{Contact: "c1"}
	first = []event.Event{b.Msg("m1", 0, event.RoleCustomer, "oi"), b.Tag("t1", time.Minute, "Fatura")}
	second = []event.Event{b.Msg("m2", 2*time.Minute, event.RoleBot, "olá"), b.Msg(failing, 3*time.Minute, event.RoleCustomer, "boleto"),
		b.Info("i1", 4*time.Minute, "NAO_TRANSBORDADA", "true")}
	third = []event.Event{b.Msg("m0", -time.Minute, event.RoleCustomer, "fatura"), b.Msg("m4", 5*time.Minute, event.RoleAgent, "obrigado"),
		b.Tag("t2", 6*time.Minute, "Reclamação")}
	return first, second, third
}

// TestPipelinePlansWhileWriting: an update plans (runs the assembler on the
// key states the update before it left in memory) while that update writes,
// and both write what one update after the other writes.
func TestPipelinePlansWhileWriting(t *testing.T) {
	inFlight(t, 0, "pipelined", func(s *storeAt, thirdPlanned <-chan struct{}) {
		holdFirstWrite(t, s, thirdPlanned, "the third batch's plan")
	})
}

// inFlight stores pipelineBatches' first batch, then the second and the
// third, the third planned while the second writes (hold holds that write
// until the third's plan is made), with a key-state budget (0: the
// store's), and requires what a store of each batch in turn holds.
func inFlight(t *testing.T, budget int, what string, hold func(s *storeAt, thirdPlanned <-chan struct{})) {
	t.Helper()
	dir := t.TempDir()
	s, ref := openAt(t, filepath.Join(dir, "s.db")), openAt(t, filepath.Join(dir, "ref.db"))
	if budget > 0 {
		s.st.SetStateBudget(budget)
	}
	first, second, third := pipelineBatches("m3")
	for _, batch := range [][]event.Event{first, second, third} {
		if err := ref.ingest(batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ingest(first); err != nil {
		t.Fatal(err)
	}
	secondPlanned, thirdPlanned := make(chan struct{}), make(chan struct{})
	hold(s, thirdPlanned)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = s.updateSignalling(second, secondPlanned) })
	<-secondPlanned
	wg.Go(func() { errs[1] = s.updateSignalling(third, thirdPlanned) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	sameDump(t, what, dump(t, s.path), dump(t, ref.path))
}

// TestPipelineStalePlan: an update planned from the states the update
// before it left in memory, whose write then fails, is planned again from
// the database: it does not write what the failed update would have.
func TestPipelineStalePlan(t *testing.T) {
	dir := t.TempDir()
	s, ref := openAt(t, filepath.Join(dir, "s.db")), openAt(t, filepath.Join(dir, "ref.db"))
	// Writing an event "boom" fails, as a full disk would.
	failBoom(t, s.path)
	first, failed, third := pipelineBatches("boom")
	for _, batch := range [][]event.Event{first, third} {
		if err := ref.ingest(batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ingest(first); err != nil {
		t.Fatal(err)
	}
	failedPlanned, thirdPlanned := make(chan struct{}), make(chan struct{})
	holdFirstWrite(t, s, thirdPlanned, "the third batch's plan")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = s.updateSignalling(failed, failedPlanned) })
	<-failedPlanned
	wg.Go(func() { errs[1] = s.updateSignalling(third, thirdPlanned) })
	wg.Wait()
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "disk full") {
		t.Fatalf("the update with the failing event: %v, want it to fail", errs[0])
	}
	if errs[1] != nil {
		t.Fatalf("the update planned while it wrote: %v", errs[1])
	}
	sameDump(t, "after a failed write", dump(t, s.path), dump(t, ref.path))
	// Memory holds nothing of the failed update: the key's next batch
	// writes what it does on a store without it.
	b := storetest.B{Contact: "c1"}
	last := []event.Event{b.Msg("m9", 9*time.Minute, event.RoleCustomer, "fatura")}
	for _, st := range []*storeAt{s, ref} {
		if err := st.ingest(last); err != nil {
			t.Fatal(err)
		}
	}
	sameDump(t, "the batch after", dump(t, s.path), dump(t, ref.path))
}

// TestPipelineMatchesReference: batches stored as the ingester stores them
// (each update begun once the one before it planned, so that plans and
// writes overlap), with some writes failing (and their batches stored again
// later, as a redelivery does), leave the sessions of the reference.
func TestPipelineMatchesReference(t *testing.T) {
	seeds := uint64(3)
	if testing.Short() {
		seeds = 1
	}
	for _, budget := range []int{0, 1} {
		for seed := uint64(1); seed <= seeds; seed++ {
			t.Run(fmt.Sprint("budget ", budget, " seed ", seed), func(t *testing.T) {
				pipelineMatchesReference(t, seed, budget)
			})
		}
	}
}

// pipelineMatchesReference is TestPipelineMatchesReference of one seed,
// with a memory of keys of budget bytes (0: the default; 1: it holds none,
// so that plans read every key from the database, beside the writes in
// flight).
func pipelineMatchesReference(t *testing.T, seed uint64, budget int) {
	tenants, want, batches := stateTraffic(seed)
	dir := t.TempDir()
	s, ref := openAt(t, filepath.Join(dir, "s.db")), openAt(t, filepath.Join(dir, "ref.db"))
	if budget > 0 {
		s.st.SetStateBudget(budget)
	}
	for i, batch := range batches {
		if err := ref.ingest(batch); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	var mu sync.Mutex
	failing := errors.New("disk full")
	s.st.SetBeforeWrite(func() error {
		// Time for the next update to plan from what this
		// one put in memory.
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(6) == 0 {
			return failing
		}
		return nil
	})
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for i, batch := range batches {
		planned := make(chan struct{})
		wg.Go(func() { errs[i] = s.updateSignalling(batch, planned) })
		select {
		case <-planned:
		case <-time.After(10 * time.Second):
			t.Fatalf("batch %d did not plan", i)
		}
	}
	wg.Wait()
	s.st.SetBeforeWrite(nil)
	failed := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, failing) {
			t.Fatalf("batch %d: %v", i, err)
		}
		failed++
		if err := s.ingest(batches[i]); err != nil {
			t.Fatalf("batch %d again: %v", i, err)
		}
	}
	if failed == 0 {
		t.Fatal("no write failed: the test does not test failures")
	}
	from, to := sessiontest.Base.Add(-24*time.Hour), sessiontest.Base.Add(30*24*time.Hour)
	if err := sessiontest.Check(context.Background(), s.st, tenants, from, to, want); err != nil {
		t.Fatalf("%d of %d batches failed once: %v", failed, len(batches), err)
	}
	// Every row as one write after the other writes them; the
	// full-text rowids number messages in the order they were
	// written, so only their count is compared.
	sameDump(t, "rows", withoutWordRowids(dump(t, s.path)), withoutWordRowids(dump(t, ref.path)))
}

// withoutWordRowids is a dump without the full-text index's rowids (its
// last section), but with their count.
func withoutWordRowids(d string) string {
	lines := strings.Split(strings.TrimSuffix(d, "\n"), "\n")
	end := len(lines) - 1 // the full-text section's count
	start := end
	for start > 0 && !strings.HasPrefix(lines[start-1], "-- ") {
		start--
	}
	return strings.Join(append(lines[:start:start], lines[end]), "\n")
}

// holdFirstWriteUpTo makes the store's first write wait until ready is
// closed or d passed, whichever comes first; later writes go on at once.
func holdFirstWriteUpTo(s *storeAt, ready <-chan struct{}, d time.Duration) {
	var once sync.Once
	s.st.SetBeforeWrite(func() error {
		once.Do(func() {
			select {
			case <-ready:
			case <-time.After(d):
			}
		})
		return nil
	})
}

// TestPipelineKeyOfTheWriteInFlight: a key the write in flight changes is
// read after that write, never from a snapshot older than its commit,
// although memory does not hold it (evicted at once here: a budget of one
// byte). Planning the third batch from the database as the first batch
// left it would write its session without the second batch's events.
func TestPipelineKeyOfTheWriteInFlight(t *testing.T) {
	// A plan that read the key beside the write would be done at once;
	// the right one waits for the write, held a while.
	inFlight(t, 1, "the key read while its write was in flight", func(s *storeAt, thirdPlanned <-chan struct{}) {
		holdFirstWriteUpTo(s, thirdPlanned, 300*time.Millisecond)
	})
}
