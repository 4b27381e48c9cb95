package sqlite_test

import (
	"context"
	"database/sql"
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
	s.st.SetBeforeWrite(func() {
		once.Do(func() {
			select {
			case <-ready:
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not happen while the first update was writing", what)
			}
		})
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
	dir := t.TempDir()
	s, ref := openAt(t, filepath.Join(dir, "s.db")), openAt(t, filepath.Join(dir, "ref.db"))
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
	holdFirstWrite(t, s, thirdPlanned, "the third batch's plan")
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
	sameDump(t, "pipelined", dump(t, s.path), dump(t, ref.path))
}

// TestPipelineStalePlan: an update planned from the states the update
// before it left in memory, whose write then fails, is planned again from
// the database: it does not write what the failed update would have.
func TestPipelineStalePlan(t *testing.T) {
	dir := t.TempDir()
	s, ref := openAt(t, filepath.Join(dir, "s.db")), openAt(t, filepath.Join(dir, "ref.db"))
	// Writing an event "boom" fails, as a full disk would.
	db, err := sql.Open("sqlite", "file:"+s.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TRIGGER boom BEFORE INSERT ON events WHEN new.event_id = 'boom'
		BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	db.Close()
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
