package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// segments counts the segments (b-trees) of the FTS5 table's index. FTS5
// stores every page of segment S in <table>_data under a rowid whose bits
// above the lowest 37 are S (fts5_index.c: fts5_dri(segid, dlidx, height,
// pgno) with FTS5_DATA_PAGE_B 31, FTS5_DATA_HEIGHT_B 5, FTS5_DATA_DLI_B 1;
// the averages and structure records have segment 0, and a segment's
// tombstone pages segment S + 2^16). It seeks from one segment to the next
// instead of reading every page.
func segments(ctx context.Context, db *sql.DB, table string) (int, error) {
	const segShift = 37
	seen := map[int64]bool{}
	next := int64(1) << segShift
	for {
		var id int64
		err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT id FROM %s_data WHERE id >= ? ORDER BY id LIMIT 1`, table), next).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return len(seen), nil
		}
		if err != nil {
			return 0, fmt.Errorf("segments of %s: %w", table, err)
		}
		seg := id >> segShift
		seen[seg&0xffff] = true
		next = (seg + 1) << segShift
	}
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The helper counts what FTS5 wrote: with automerge off, one segment per
// transaction that inserted, and one after 'optimize'.
func TestSegmentsHelper(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "fts.db"))
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		`CREATE VIRTUAL TABLE w USING fts5(text)`,
		`INSERT INTO w(w, rank) VALUES('automerge', 0)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		if _, err := db.ExecContext(ctx, `INSERT INTO w(text) VALUES(?)`, fmt.Sprintf("word%d common", i)); err != nil {
			t.Fatal(err)
		}
		if n, err := segments(ctx, db, "w"); err != nil || n != i+1 {
			t.Fatalf("after %d inserts: %d segments (%v), want %d", i+1, n, err, i+1)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO w(w) VALUES('optimize')`); err != nil {
		t.Fatal(err)
	}
	if n, err := segments(ctx, db, "w"); err != nil || n != 1 {
		t.Fatalf("after optimize: %d segments (%v), want 1", n, err)
	}
}

// Once writes stop, the store merges both FTS5 tables to one segment each
// (merge.go), and searches answer as before.
func TestMergeToOneSegment(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(ctx, t, sqlite.WithMerger())
	// Paused while writing, to see the segments the writes leave.
	s.PauseMerge()
	db := openDB(t, path)
	a := session.NewAssembler(pipeline.MustDefault(), s)
	events := mergeTraffic(600)
	for len(events) > 0 {
		n := min(len(events), 10)
		if err := a.Ingest(ctx, events[:n]); err != nil {
			t.Fatal(err)
		}
		events = events[n:]
	}
	queries := []string{"alfa", "bravo", "charlie", "alfa bravo", "número", "eco delta", "nada"}
	before := mergeSearches(t, s, queries)
	for _, table := range []string{"message_words", "session_words"} {
		if n, err := segments(ctx, db, table); err != nil || n < 2 {
			t.Fatalf("%s: %d segments (%v) after 60 writes, want several", table, n, err)
		}
	}
	s.ResumeMerge()
	for _, table := range []string{"message_words", "session_words"} {
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			n, err := segments(ctx, db, table)
			if err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %d segments after writes stopped", table, n)
			}
		}
	}
	after := mergeSearches(t, s, queries)
	for i, q := range queries {
		if !slices.Equal(before[i], after[i]) {
			t.Errorf("%q: %v before merging, %v after", q, before[i], after[i])
		}
	}
	if len(before[0]) == 0 || len(before[3]) == 0 {
		t.Fatalf("the searches found nothing: %v", before)
	}
}

// Only a store opened WithMerger merges (store.go): one opened without it
// on a database of many segments leaves them, where a merger's pass on
// open would merge them, and WaitMerged says ErrNoMerger; the same file
// opened with it is merged to one segment per table by that pass, which
// WaitMerged waits for.
func TestMergesOnlyWithMerger(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	db := openDB(t, path)
	count := func() []int {
		t.Helper()
		var n []int
		for _, table := range []string{"message_words", "session_words"} {
			c, err := segments(ctx, db, table)
			if err != nil {
				t.Fatal(err)
			}
			n = append(n, c)
		}
		return n
	}
	open := func(opts ...sqlite.Option) *sqlite.Store {
		t.Helper()
		s, err := sqlite.Open(ctx, path, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	s := open()
	ingestByTen(ctx, t, session.NewAssembler(pipeline.MustDefault(), s), mergeTraffic(60))
	s.Close()
	written := count()
	if slices.Min(written) < 2 {
		t.Fatalf("segments %v after 6 writes, want several per table", written)
	}

	s = open()
	if s.Merges() {
		t.Fatal("a store opened without WithMerger says it merges")
	}
	if err := s.WaitMerged(ctx); !errors.Is(err, sqlite.ErrNoMerger) {
		t.Fatalf("WaitMerged without a merger: %v, want ErrNoMerger", err)
	}
	time.Sleep(1500 * time.Millisecond) // a pass on open merges this index in milliseconds
	if now := count(); !slices.Equal(now, written) {
		t.Fatalf("segments %v after opening without WithMerger, want %v (unmerged)", now, written)
	}
	s.Close()

	s = open(sqlite.WithMerger())
	defer s.Close()
	if !s.Merges() {
		t.Fatal("a store opened WithMerger says it does not merge")
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := s.WaitMerged(wctx); err != nil {
		t.Fatal(err)
	}
	if now := count(); !slices.Equal(now, []int{1, 1}) {
		t.Fatalf("segments %v after the pass on open, want one per table", now)
	}
}

// mergeTraffic is n messages of n/3 contacts' sessions, of a few words.
func mergeTraffic(n int) []event.Event {
	vocab := []string{"alfa", "bravo", "charlie", "delta", "eco"}
	var events []event.Event
	for i := range n {
		b := storetest.B{Contact: fmt.Sprintf("c%04d", i/3)}
		text := fmt.Sprintf("%s %s número %d", vocab[i%5], vocab[(i/5)%5], i)
		events = append(events, b.Msg(fmt.Sprintf("m%04d", i), time.Duration(i)*time.Minute, event.RoleCustomer, text))
	}
	return events
}

func mergeSearches(t *testing.T, s *sqlite.Store, queries []string) [][]string {
	t.Helper()
	var out [][]string
	for _, q := range queries {
		f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-24 * time.Hour), To: storetest.Base.Add(30 * 24 * time.Hour), Query: q}
		out = append(out, searchAll(t, s, f))
	}
	return out
}

// A slice never runs while an update writes: the merger waits for no
// update to run, and a slice asked for while an update's transaction is
// open does not run at all.
func TestMergeSliceOutsideUpdates(t *testing.T) {
	ctx := context.Background()
	s, _ := openMerging(ctx, t)
	var ran atomic.Int32
	slice := func() { ran.Add(1) }
	s.SetMergeSlice(slice)
	held, release := make(chan struct{}), make(chan struct{})
	s.SetBeforeWrite(func() error {
		select {
		case held <- struct{}{}:
			<-release
		default:
		}
		return nil
	})
	a := session.NewAssembler(pipeline.MustDefault(), s)
	done := make(chan error, 1)
	go func() { done <- a.Ingest(ctx, mergeTraffic(30)) }()
	<-held
	ran.Store(0) // the slices of the empty index at Open, before the update
	// The update's write transaction is open: a slice asked for now does
	// not run, and the merger runs none while the update takes 1.5 s.
	if ran, _, err := s.MergeSlice(ctx, "message_words", slice); err != nil || ran {
		t.Fatalf("slice during an update: ran %v, %v", ran, err)
	}
	time.Sleep(1500 * time.Millisecond)
	if ran.Load() != 0 {
		t.Fatalf("%d slices ran while an update wrote", ran.Load())
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The update over, the merger runs its slices.
	for deadline := time.Now().Add(30 * time.Second); ran.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no slice ran once the store was idle")
		}
	}
}

// After a pass, the next waits for the rest (merge.go, mergeRest): writes
// that follow a merged index stay in segments of their own until then.
func TestMergeRestsBetweenPasses(t *testing.T) {
	ctx := context.Background()
	s, path := openMerging(ctx, t)
	db := openDB(t, path)
	a := session.NewAssembler(pipeline.MustDefault(), s)
	events := mergeTraffic(60)
	ingest := func(from, to int) { t.Helper(); ingestByTen(ctx, t, a, events[from:to]) }
	waitSegments := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			n, err := segments(ctx, db, "message_words")
			if err != nil {
				t.Fatal(err)
			}
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d segments, want %d", n, want)
			}
		}
	}
	ingest(0, 30)
	waitSegments(1)
	time.Sleep(200 * time.Millisecond) // the pass ends
	s.SetMergeRest(time.Hour)
	ingest(30, 60)
	time.Sleep(time.Second)
	if n, err := segments(ctx, db, "message_words"); err != nil || n < 2 {
		t.Fatalf("%d segments (%v) a second after writes that followed a pass, want them unmerged", n, err)
	}
	s.SetMergeRest(0)
	waitSegments(1)
}

// No slice runs while an export reads a chunk (merge.go): a slice's commit
// would make the export's next read transaction drop its cache and map.
// Once the export is over, the merger runs the slices it held back; and
// an export waiting for a client that does not read holds none back.
func TestMergeWaitsForExport(t *testing.T) {
	ctx := context.Background()
	s, _ := openMerging(ctx, t)
	var ran atomic.Int32
	s.SetMergeSlice(func() { ran.Add(1) })
	a := session.NewAssembler(pipeline.MustDefault(), s)
	events := mergeTraffic(90)
	ingest := func(from, to int) { t.Helper(); ingestByTen(ctx, t, a, events[from:to]) }
	waitSlice := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ran.Load() == 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no slice ran %s", what)
			}
		}
	}
	ingest(0, 30)
	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(24 * time.Hour)}
	// export runs an export whose first encoding (in the reader, between
	// its read and its chunk's end) or first write (the client) waits
	// for release once held is told.
	export := func(inEncoder bool) (held, release chan struct{}, done chan error) {
		held, release, done = make(chan struct{}), make(chan struct{}), make(chan error, 1)
		var once sync.Once
		hold := func() { once.Do(func() { held <- struct{}{}; <-release }) }
		newEncoder := func() report.Encoder { return idEncoder{} }
		if inEncoder {
			newEncoder = func() report.Encoder { return holdingEncoder{hold} }
		}
		go func() {
			done <- s.Export(ctx, f, newEncoder, func([]byte, []int) error {
				if !inEncoder {
					hold()
				}
				return nil
			})
		}()
		return held, release, done
	}

	// A reader is encoding its chunk: updates add segments, and each
	// update's end wakes the merger, which runs no slice meanwhile (1.5 s
	// here); once the export is over, it does.
	held, release, done := export(true)
	<-held
	// A slice that passed its wait before the export began may still be
	// running, or about to take the writer (merge.go: a chunk that begins
	// meanwhile meets one slice's commit at most); the first update waits
	// for one that runs, and one more may follow it.
	ingest(30, 40)
	ran.Store(0)
	ingest(40, 60)
	time.Sleep(1500 * time.Millisecond)
	if n := ran.Load(); n > 1 {
		t.Fatalf("%d slices ran while an export read", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitSlice("once the export was over")

	// The client does not read: the readers, their chunks read, wait for
	// it, and the merger runs its slices.
	held, release, done = export(false)
	<-held
	ran.Store(0)
	ingest(60, 90)
	waitSlice("while an export waited for its client")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A reader reads for longer than the merger waits for exports alone
	// (exports that never leave a gap): a slice runs anyway.
	s.SetMergeExportWait(200 * time.Millisecond)
	held, release, done = export(true)
	<-held
	ran.Store(0)
	ingest(0, 30) // the same events again: an update that ends wakes the merger
	waitSlice("while an export read for longer than the merger waits for exports")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// idEncoder encodes a session as its id.
type idEncoder struct{}

func (idEncoder) Append(dst []byte, d *report.StoredDetail) ([]byte, error) {
	return append(append(dst, d.Session.ID...), '\n'), nil
}

// holdingEncoder is idEncoder calling hold first.
type holdingEncoder struct{ hold func() }

func (h holdingEncoder) Append(dst []byte, d *report.StoredDetail) ([]byte, error) {
	h.hold()
	return idEncoder{}.Append(dst, d)
}

// openMerging opens a store in a temporary directory with its merger,
// which rests not at all between passes, closed when the test ends, and
// its path.
func openMerging(ctx context.Context, t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	s, path := openStore(ctx, t, sqlite.WithMerger())
	s.SetMergeRest(0)
	return s, path
}

// openStore opens a new store in a temporary directory with opts, closed
// when the test ends, and returns it with its database's path.
func openStore(ctx context.Context, t testing.TB, opts ...sqlite.Option) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := sqlite.Open(ctx, path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// ingestByTen stores events through a, ten at a time: an update each.
func ingestByTen(ctx context.Context, t *testing.T, a *session.Assembler, events []event.Event) {
	t.Helper()
	for i := 0; i < len(events); i += 10 {
		if err := a.Ingest(ctx, events[i:min(i+10, len(events))]); err != nil {
			t.Fatal(err)
		}
	}
}
