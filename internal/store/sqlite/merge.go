package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// FTS5 writes each transaction's words as a new segment (b-tree) of the
// table's index and merges segments only in the background of later writes
// (automerge: 4 segments of one level into one of the next), so an index
// built by ingest stays a dozen segments on several levels, and every
// FTS5 query seeks in each of them (docs/performance.md, "Full text on
// SQLite: merging the index"). A store opened WithMerger (the process that
// ingests: docs/operations.md, "Who packs and merges") merges both FTS5
// tables down to one segment whenever no update runs, in slices: FTS5's
// 'merge' command writes roughly N pages of merged data per call, and with
// a negative N it first puts all b-trees on one level and merges even two
// of them, so that repeating it until sqlite3_total_changes() moves by
// less than 2 is an incremental 'optimize'
// (https://www.sqlite.org/fts5.html#the_merge_command). Each slice is a
// write transaction of its own on the writer's connection,
// between updates: an update never waits for more than one slice, and a
// slice is not an update (no offsets, no state in memory, no ordering of
// plans is concerned; a slice changes how the index is stored, never what
// it holds).
//
// Nor does a slice run while an export reads a chunk (not while it waits
// for a slow client, which could last for ever). A read transaction that
// begins after another connection committed drops its connection's page
// cache and, with the file memory-mapped, unmaps the map (SQLite's pager,
// pagerBeginReadTransaction), and every page the export reads afterwards
// is faulted in again: with a slice committing every ~40 ms, nearly every
// chunk of an export began that way, which cost the export's readers
// 10-25 % of their CPU on the 200,000-session bench database
// (docs/performance.md, "Export on SQLite: documents by rowid, a cheaper
// event reader, and the merger waits for exports").

// mergeTables are the FTS5 tables the store merges.
var mergeTables = []string{"message_words", "session_words"}

// mergePages is the N of a slice's 'merge' command: about the pages it
// writes, which bounds the time it holds the writer: 10-11 ms (p50), 43-58
// ms (p95) on the 200,000-session bench database (docs/performance.md).
const mergePages = 64

// mergeShare is the most of the writer's time slices take: after a slice
// of d the merger waits (1/mergeShare - 1)·d before the next, so that a
// large index is merged over many short slices and a store that writes
// continually spends at most this share of a core rewriting its index.
const mergeShare = 0.25

// mergeRest is the least time from the end of a pass (every table merged
// to one segment) to the start of the next: each pass rewrites the whole
// index, so under continual writes a pass per rest, not one per write
// (docs/performance.md).
const mergeRest = 10 * time.Minute

// mergePoll is how often the merger looks again whether the updates it
// waits for are over, if none ended meanwhile.
const mergePoll = 50 * time.Millisecond

// merger runs the slices, on a goroutine of the store's life; kick tells it
// an update ended (the index may have new segments), and the store's
// updates count in Store.updating while they run. Only a store opened
// WithMerger has one (Store.merge is nil otherwise).
type merger struct {
	s      *Store
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// passed is closed when the first pass ends (WaitMerged).
	passed chan struct{}
	// slice, when set (by tests), runs in each slice's transaction.
	slice atomic.Pointer[func()]
	// rest is mergeRest, exportWait mergeExportWait, shorter in tests
	// (nanoseconds).
	rest, exportWait atomic.Int64
	// woken counts the updates ended: one that ends during a pass may
	// have added segments to a table the pass found merged.
	woken atomic.Uint64
}

// startMerger starts s's merger: it first merges what the database holds
// already (a database opened after an ingest).
func startMerger(s *Store) *merger {
	ctx, cancel := context.WithCancel(context.Background())
	m := &merger{s: s, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}), passed: make(chan struct{})}
	m.rest.Store(int64(mergeRest))
	m.exportWait.Store(int64(mergeExportWait))
	m.wake()
	go m.run(ctx)
	return m
}

// wake tells the merger that an update ended; it never waits. A nil
// merger (a store opened without WithMerger) does nothing.
func (m *merger) wake() {
	if m == nil {
		return
	}
	m.woken.Add(1)
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *merger) run(ctx context.Context) {
	defer close(m.done)
	var passed time.Time // the end of the last pass
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		}
		for !passed.IsZero() && time.Since(passed) < time.Duration(m.rest.Load()) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(mergePoll):
			}
		}
		woken := m.woken.Load()
		if !m.mergeAll(ctx) {
			return
		}
		if passed.IsZero() {
			close(m.passed)
		}
		passed = time.Now()
		if m.woken.Load() != woken {
			m.wake() // another pass, after the rest
		}
	}
}

// mergeAll merges the tables until each is one segment (mergeInSlices). It
// reports false when ctx ended; a failed slice (the database busy or
// closing) leaves its table to the next pass.
func (m *merger) mergeAll(ctx context.Context) bool {
	hook := func() func() {
		if h := m.slice.Load(); h != nil {
			return *h
		}
		return nil
	}
	_, _ = m.s.mergeInSlices(ctx, m.kick, time.Duration(m.exportWait.Load()), hook, false, nil)
	return ctx.Err() == nil
}

// mergeInSlices merges the tables until each is one segment, a slice at a
// time whenever no update runs and no export reads (waitIdle, woken by
// kick), at most mergeShare of the time. hook, when set, gives the hook of
// each slice (mergeSlice); secure runs the slices with SQLite's
// secure_delete (Forget). budget, when set, bounds the slices of each
// table (mergeBudget): a table whose writer keeps adding segments is never
// one segment for long, and a merge that must end (Forget's) stops there.
// It returns the tables the budget stopped before they were one segment.
// A slice that fails ends its table's merge; mergeInSlices returns the
// first such error, or ctx's.
func (s *Store) mergeInSlices(ctx context.Context, kick <-chan struct{}, exportWait time.Duration, hook func() func(), secure bool, budget map[string]int) (stopped []string, err error) {
	var failed error
	todo := append([]string(nil), mergeTables...)
	ran := map[string]int{}
	for len(todo) > 0 {
		if b, ok := budget[todo[0]]; ok && ran[todo[0]] >= b {
			stopped = append(stopped, todo[0])
			todo = todo[1:]
			continue
		}
		if !waitIdle(ctx, s, kick, exportWait) {
			return stopped, ctx.Err()
		}
		var h func()
		if hook != nil {
			h = hook()
		}
		began := time.Now()
		done, err := s.mergeSlice(ctx, todo[0], h, secure)
		if err == nil {
			ran[todo[0]]++
		}
		pause := time.Duration(float64(time.Since(began)) * (1/mergeShare - 1))
		switch {
		case ctx.Err() != nil:
			return stopped, ctx.Err()
		case errors.Is(err, errWriterBusy):
			pause = mergePoll
		case err != nil || done:
			if failed == nil {
				failed = err
			}
			todo = todo[1:]
		}
		select {
		case <-ctx.Done():
			return stopped, ctx.Err()
		case <-time.After(pause):
		}
	}
	return stopped, failed
}

// mergeExportWait is the longest the merger waits for exports alone.
// Readers of one export, or exports that follow one another, can keep
// Store.exporting above 0 for as long as they run when their clients read
// fast; the segments would grow meanwhile and full-text searches slow
// down. A slice then runs anyway, costing each reader one drop of its page
// cache every mergeExportWait rather than every ~40 ms.
const mergeExportWait = 2 * time.Second

// waitIdle waits until no update runs and no export reads a chunk (one
// that begins meanwhile waits for one slice at most, or meets one slice's
// commit), or until exports alone held it for exportWait, and reports
// false when ctx ended first. kick wakes it when an update ends. The
// merger and the packer (pack.go) wait so between slices.
func waitIdle(ctx context.Context, s *Store, kick <-chan struct{}, exportWait time.Duration) bool {
	var exportsSince time.Time
	for {
		updating, exporting := s.updating.Load() != 0, s.exporting.Load() != 0
		switch {
		case !updating && !exporting:
			return true
		case updating:
			exportsSince = time.Time{}
		case exportsSince.IsZero():
			exportsSince = time.Now()
		case time.Since(exportsSince) >= exportWait:
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-kick:
		case <-time.After(mergePoll):
		}
	}
}

// stop stops the merger and waits for it (and for a slice it runs).
func (m *merger) stop() {
	if m == nil {
		return
	}
	m.cancel()
	<-m.done
}

// WaitMerged waits until the store's merger has ended its first pass
// since Open (both indexes merged to one segment, unless an update added
// segments since), or ctx ends, or the merger stopped before it (the
// store closed): then it reports errNotMerged; a store opened without
// WithMerger reports ErrNoMerger at once. chatreport-bench waits for it
// before it measures searches; serving never waits.
func (s *Store) WaitMerged(ctx context.Context) error {
	m := s.merge
	if m == nil {
		return ErrNoMerger
	}
	return firstPass(ctx, m.passed, m.done, errNotMerged)
}

// firstPass waits until passed is closed (a background job's first pass
// ended) and reports nil, or done (the job stopped) and reports stopped
// unless passed was closed too, or ctx ends.
func firstPass(ctx context.Context, passed, done <-chan struct{}, stopped error) error {
	select {
	case <-passed:
		return nil
	case <-done:
		select {
		case <-passed:
			return nil
		default:
			return stopped
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrNoMerger: WaitMerged on a store opened without WithMerger, which
// never merges.
var ErrNoMerger = errors.New("the store runs no merger (opened without WithMerger)")

// errNotMerged: the merger stopped before its first pass ended.
var errNotMerged = errors.New("the merger stopped before its first pass ended")

// errWriterBusy: the writer was held (by an update, or by a write on
// another connection, exclusive) when a slice was to run; it did not.
var errWriterBusy = errors.New("the writer is busy")

// mergeSlice runs one slice of table's merge in a write transaction of its
// own, taking the writer when free (an update that waits for it meanwhile
// waits for this slice alone), and reports whether the table is merged:
// the slice changed less than 2 rows. hook, when set, runs in the slice's
// transaction; secure: the slice zeroes what it frees (the pages and cells
// of the segments it merged away: secureDeletes), as after a Forget.
func (s *Store) mergeSlice(ctx context.Context, table string, hook func(), secure bool) (done bool, err error) {
	select {
	case s.writer <- struct{}{}:
	default:
		return false, errWriterBusy
	}
	defer s.unlock()
	return s.secureMergeTx(ctx, table, hook, secure, false)
}

// optimize merges table to one segment in one transaction (FTS5's
// 'optimize'), zeroing what it frees, waiting for the writer: what a merge
// in slices that its budget stopped leaves, while no other write can add a
// segment (Forget).
func (s *Store) optimize(ctx context.Context, table string) error {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer s.unlock()
	_, err := s.secureMergeTx(ctx, table, nil, true, true)
	return err
}

// secureMergeTx runs mergeTx, with secure_delete when secure: set on the
// connection, around the transaction, so that it is set back however the
// transaction ends (a cancelled one is rolled back, and a statement in it
// could not set it back).
func (s *Store) secureMergeTx(ctx context.Context, table string, hook func(), secure, whole bool) (done bool, err error) {
	if !secure {
		return s.mergeTx(ctx, table, hook, whole)
	}
	err = secureDeletes(ctx, s.w, func() error {
		var err error
		done, err = s.mergeTx(ctx, table, hook, whole)
		return err
	})
	return done, err
}

// mergeTx is a merge slice's transaction (or, whole, an 'optimize'), the
// writer held.
func (s *Store) mergeTx(ctx context.Context, table string, hook func(), whole bool) (done bool, err error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return false, fmt.Errorf("begin merge of %s: %w", table, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Another connection's writes drop memory as before an update.
	if err := s.checkWriters(ctx, tx); err != nil {
		return false, err
	}
	if hook != nil {
		hook()
	}
	merge := func() error {
		var before, after int64
		if err := tx.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&before); err != nil {
			return fmt.Errorf("merge %s: %w", table, err)
		}
		if whole {
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %[1]s(%[1]s) VALUES('optimize')`, table)); err != nil {
				return fmt.Errorf("optimize %s: %w", table, err)
			}
		} else if _, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %[1]s(%[1]s, rank) VALUES('merge', ?)`, table), -mergePages); err != nil {
			return fmt.Errorf("merge %s: %w", table, err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&after); err != nil {
			return fmt.Errorf("merge %s: %w", table, err)
		}
		done = whole || after-before < 2
		return nil
	}
	if err := merge(); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit merge of %s: %w", table, err)
	}
	s.ckpt.committed()
	return done, nil
}

// mergeBudget is how many slices a merge that must end (Forget's) may run
// per table: half as many again as it takes to rewrite the table's index
// as it is (its blocks, at mergePages a slice), and two more. An ingester
// writing the file meanwhile adds segments that the merge would otherwise
// go on merging for as long as it writes; a table the budget stops is
// then optimized in one transaction (Store.optimize), which nothing can
// add a segment to.
func (s *Store) mergeBudget(ctx context.Context) (map[string]int, error) {
	budget := map[string]int{}
	for _, table := range mergeTables {
		var blocks int
		if err := s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM %s_data`, table)).Scan(&blocks); err != nil {
			return nil, fmt.Errorf("count the blocks of %s: %w", table, err)
		}
		budget[table] = blocks*3/2/mergePages + 2
	}
	return budget, nil
}
