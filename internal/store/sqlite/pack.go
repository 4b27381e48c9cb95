package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatreport/chatreport/internal/report"
)

// An export reads a session's events from events_by_key_time: an index step
// and a look-up of the events table by rowid per event, about half of the
// export's CPU on the 200,000-session bench database (docs/performance.md,
// "Export on SQLite: packed events"). event_packs holds a copy of a
// settled session's events in one row, keyed by the session's rowid: what
// eventsStatement reads of it (the count and the bodies in event order,
// joined by eventSep), which the export reads beside the session's
// document (export.go, readDocs) and splits as it splits eventsStatement's
// rows. Triggers delete a pack whenever its session's row changes or an
// event leaves or joins it (migrate.go, eventPacks), in the writing
// transaction, so a pack is never stale; a session without a pack is read
// from events as before.
//
// The store's packer (WithPacker: only the process that ingests runs it)
// fills event_packs in the background, as the merger
// merges the full-text index (merge.go): in slices, each a write
// transaction of its own on the writer's connection, between updates and
// never while an export reads a chunk (a commit makes the next read
// transactions drop their page caches and maps), at most packShare of the
// time. A sweep visits sessions (see below), up to packRowids a slice and
// up to packSliceBytes of bodies packed, and packs those that are settled
// and have no pack:
//
//   - settled: the session's window (session.Session.WindowEndsAt: its last
//     activity plus the session window, or its end) ended before both the
//     wall clock and the newest start of a session of its tenant. The
//     second bound is the tenant's stream time: a backfill (events of the
//     past, ingested now) does not pack the sessions it is still writing,
//     which the wall clock alone would call settled and whose packs every
//     batch would delete again. A late event to a settled session is still
//     stored; its pack is deleted, and the next sweep packs the session
//     again.
//   - a session without events, or whose events are too long for one
//     string (SQLITE_TOOBIG, see readEvents), is not packed.
//
// A sweep runs after the store opens and after updates, at most one per
// packRest: a settled session waits up to that long for its pack.
//
// A sweep visits what may have changed since the last one, not every
// session (packMarks): sessions get rowids above every existing one (a
// rowid table without AUTOINCREMENT takes max(rowid)+1,
// https://sqlite.org/autoinc.html), so a sweep goes on from where the last
// one ended (next), and what it passed and did not pack waits for a later
// sweep in two lists:
//   - pack_todo, a table the triggers fill (migrate.go, eventPacks): a
//     session whose pack a trigger deleted (a late event, a moved event,
//     an update) and a deleted session's rowid;
//   - waiting, in memory: the sessions a sweep found not settled yet, with
//     their tenant and the end of their window, so that a sweep reads one
//     again only once it may have settled (packWaiting).
//
// A sweep deletes orphan packs after another connection wrote
// (packOrphans), then handles pack_todo (packs what is settled, moves what
// is not to waiting, drops what no longer exists), then waiting, then the
// rowids from next on. A session a sweep passed that had no pack and was not waiting
// (no events, or over the string limit) is not visited again while the
// store is open.
//
// SQLite takes another rowid than max(rowid)+1 in two cases: after the
// session with the largest rowid is deleted (max(rowid)+1 is then a rowid
// the sweep may have passed), and at the largest rowid possible, 2^63-1,
// where it picks unused rowids at random. The first is handled: the
// deletion puts the rowid in pack_todo, and a sweep that finds it gone
// lowers next to max(rowid)+1 in the same transaction, so a session that
// takes the rowid later is above next. The second (never reached: a
// billion sessions a day for 25 billion years) would leave the sessions of
// random rowids unpacked until the store opens again.
//
// The marks live in memory, not in the database: the first sweep after
// Open visits every session (after a migration event_packs is empty, and a
// crash may have lost what an in-memory list held), which costs a read of
// the sessions table once per Open (~1.3 s of CPU at 188,000 sessions,
// docs/performance.md); writing them would make a sweep that packs nothing
// commit, and a commit makes the next read transactions drop their caches.

// packRowids is how many sessions a slice visits, which bounds the time a
// slice holds the writer (an update waits for one slice at most): on the
// 200,000-session bench database, sessions of ~26 events and ~8.8 KB of
// bodies, a slice that packs them all writes ~1.1 MB (docs/performance.md).
const packRowids = 128

// packShare is the most of the writer's time the packer takes: after a
// slice of d it waits (1/packShare - 1)·d before the next.
const packShare = 0.25

// packRest is the least time from the end of a sweep to the start of the
// next.
const packRest = time.Minute

// packMarks is what a sweep leaves to the next (see above). Only the
// packer's goroutine (or a test that stopped it) uses it.
type packMarks struct {
	// next is the least rowid no sweep has visited.
	next int64
	// waiting are the sessions below next found not settled, by rowid.
	waiting map[int64]waitingSession
	// visited counts the rowids the slices visited (tests).
	visited int64
	// orphansAt is Store.foreign when the last pass over event_packs for
	// orphans began, orphanNext the least pack rowid it has not checked
	// (0: no pass runs).
	orphansAt  uint64
	orphanNext int64
}

// waitingSession is a session a sweep found not settled: its rowid,
// tenant, and the end of its window then (Unix milliseconds).
type waitingSession struct {
	rowid  int64
	tenant string
	ends   int64
}

// packer packs settled sessions' events (see above), on a goroutine of the
// store's life; kick tells it an update ended.
type packer struct {
	s      *Store
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	marks  packMarks
	// rest is packRest, shorter in tests (nanoseconds).
	rest  atomic.Int64
	woken atomic.Uint64
	// swept is closed when the first sweep ends; firstErr is then what
	// failed in it (sweepError), read only after swept is closed.
	swept     chan struct{}
	sweptOnce sync.Once
	firstErr  error
	// failed counts the slices that failed since Open (tests).
	failed atomic.Int64
}

// sweepError is a sweep whose slices failed: the sweep skipped past each
// (see sweep) and went on.
type sweepError struct {
	failed int
	last   error
}

func (e *sweepError) Error() string {
	return fmt.Sprintf("pack: %d slices failed, the last: %v", e.failed, e.last)
}

func (e *sweepError) Unwrap() error { return e.last }

// startPacker starts s's packer: it first sweeps what the database holds
// (a database opened after an ingest, or migrated with an empty
// event_packs).
func startPacker(s *Store) *packer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &packer{s: s, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}), swept: make(chan struct{})}
	p.rest.Store(int64(packRest))
	p.wake()
	go p.run(ctx)
	return p
}

// wake tells the packer that an update ended; it never waits. A nil
// packer (a store opened without WithPacker) does nothing.
func (p *packer) wake() {
	if p == nil {
		return
	}
	p.woken.Add(1)
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// stop stops the packer and waits for it (and for a slice it runs); a nil
// packer has nothing to stop.
func (p *packer) stop() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}

func (p *packer) run(ctx context.Context) {
	defer close(p.done)
	var passed time.Time // the end of the last sweep
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		for !passed.IsZero() && time.Since(passed) < time.Duration(p.rest.Load()) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(mergePoll):
			}
		}
		woken := p.woken.Load()
		ok, err := p.sweep(ctx)
		if !ok {
			return
		}
		passed = time.Now()
		p.sweptOnce.Do(func() {
			p.firstErr = err
			close(p.swept)
		})
		if p.woken.Load() != woken {
			p.wake() // another sweep, after the rest
		}
	}
}

// sweep runs the slices of a sweep (pack_todo, waiting, the rowids from
// next on), each whenever no update runs and no export reads, and reports
// false when ctx ended. A failed slice does not end the sweep: a slice of
// rowids is skipped past (packNext; its sessions wait for the pass after
// the next Open), a failed step of pack_todo or waiting sessions goes to
// the next step. The failures are counted, logged (a count, never the
// error's text, which may quote a document) and returned (*sweepError).
func (p *packer) sweep(ctx context.Context) (bool, error) {
	var failed *sweepError
	for _, slice := range p.s.sweepSlices() {
		for {
			if !waitIdle(ctx, p.s, p.kick, mergeExportWait) {
				return false, nil
			}
			began := time.Now()
			more, err := slice(ctx, &p.marks)
			pause := time.Duration(float64(time.Since(began)) * (1/packShare - 1))
			if ctx.Err() != nil {
				return false, nil
			}
			if errors.Is(err, errWriterBusy) {
				pause = mergePoll
			} else if err != nil {
				if failed == nil {
					failed = &sweepError{}
				}
				failed.failed++
				failed.last = err
				p.failed.Add(1)
				slog.Warn("sqlite: a packing slice failed; the sweep goes on past it", "failed_since_open", p.failed.Load())
				if !more {
					break
				}
			} else if !more {
				break
			}
			select {
			case <-ctx.Done():
				return false, nil
			case <-time.After(pause):
			}
		}
	}
	if failed != nil {
		return true, failed
	}
	return true, nil
}

// sweepSlices are the steps of a sweep, in order: each runs a slice and
// reports whether it has more.
func (s *Store) sweepSlices() []func(context.Context, *packMarks) (bool, error) {
	var after int64 // the last waiting rowid visited
	return []func(context.Context, *packMarks) (bool, error){
		s.packOrphans,
		s.packQueued,
		func(ctx context.Context, m *packMarks) (bool, error) { return s.packWaiting(ctx, m, &after) },
		s.packNext,
	}
}

// WaitPacked waits until the store's packer has ended its first sweep
// since Open (every session settled then has its pack, unless an update
// deleted it since), or ctx ends, or the packer stopped before it (the
// store closed): then it reports errNotSwept; a store opened without
// WithPacker reports ErrNoPacker at once. When slices of the first
// sweep failed it reports them (*sweepError): sessions may be unpacked. chatreport-bench waits for it
// before it measures the export; serving never waits.
func (s *Store) WaitPacked(ctx context.Context) error {
	if s.pack == nil {
		return ErrNoPacker
	}
	if err := firstPass(ctx, s.pack.swept, s.pack.done, errNotSwept); err != nil {
		return err
	}
	return s.pack.firstErr
}

// ErrNoPacker: WaitPacked on a store opened without WithPacker, which
// never packs.
var ErrNoPacker = errors.New("the store runs no packer (opened without WithPacker)")

// errNotSwept: the packer stopped before its first sweep ended.
var errNotSwept = errors.New("the packer stopped before its first sweep ended")

// packTx runs f in a write transaction of its own, taken when the writer is
// free, and commits it if f reports that it wrote; f reads max(rowid) of
// sessions (last) and lowers m.next to last+1 (see above).
func (s *Store) packTx(ctx context.Context, m *packMarks, f func(tx *sql.Tx, last int64) (wrote bool, err error)) error {
	select {
	case s.writer <- struct{}{}:
	default:
		return errWriterBusy
	}
	defer s.unlock()
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("begin packing: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := s.checkWriters(ctx, tx); err != nil {
		return err
	}
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM sessions`).Scan(&last); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	wrote, err := f(tx, last)
	if err != nil {
		return err
	}
	if wrote { // else no commit to make readers drop their caches
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit packs: %w", err)
		}
		s.ckpt.committed()
	}
	m.next = min(m.next, last+1)
	return nil
}

// packOrphanRows is how many packs a slice of packOrphans checks: it reads
// their keys, not their events.
const packOrphanRows = 8 * packRowids

// packOrphans deletes the packs of the next packOrphanRows rowids of
// event_packs whose session is gone, and reports whether any pack is past
// them. The triggers delete a session's pack with its row (eventPacks), but
// they see a rowid, and sessions' rowids are not stable: a VACUUM or a dump
// and restore renumbers them without firing a trigger. A pack can then
// name a rowid no session has, or one another session took: it reads as
// no pack (every read joins on the owner), but its bodies stay in the
// file, and a Forget of its session after the renumbering deletes the pack
// at the session's new rowid, not this one. So a pass over event_packs
// deletes every pack whose rowid and owner name no session; when it finds
// any, the rowids were renumbered, and the sweep visits every session
// again, as the first after Open does (packNext from the least rowid,
// nothing waiting). Renumbering is another connection's doing, so a pass runs in
// the first sweep after another connection wrote (Store.foreign, which
// the first write transaction after Open counts too).
func (s *Store) packOrphans(ctx context.Context, m *packMarks) (more bool, err error) {
	var (
		next  int64
		found bool
	)
	at := m.orphansAt
	err = s.packTx(ctx, m, func(tx *sql.Tx, _ int64) (bool, error) {
		from := m.orphanNext
		if from == 0 {
			if at == s.foreign {
				return false, nil
			}
			at, from = s.foreign, math.MinInt64
		}
		rows, err := tx.QueryContext(ctx, `SELECT p.session, s.rowid IS NULL FROM event_packs p
			LEFT JOIN sessions s ON s.rowid = p.session AND s.tenant = p.tenant AND s.session_id = p.session_id
			WHERE p.session >= ? ORDER BY p.session LIMIT ?`, from, packOrphanRows)
		if err != nil {
			return false, fmt.Errorf("pack: %w", err)
		}
		defer rows.Close()
		var (
			orphans []int64
			n       int
			r       int64
			orphan  bool
		)
		for rows.Next() {
			if err := rows.Scan(&r, &orphan); err != nil {
				return false, fmt.Errorf("pack: %w", err)
			}
			n++
			if orphan {
				orphans = append(orphans, r)
			}
		}
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("pack: %w", err)
		}
		rows.Close()
		if n == packOrphanRows {
			next = r + 1
		}
		if len(orphans) == 0 {
			return false, nil
		}
		list, err := json.Marshal(orphans)
		if err != nil {
			return false, fmt.Errorf("pack: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM event_packs WHERE session IN (SELECT value FROM json_each(?))`, list); err != nil {
			return false, fmt.Errorf("pack: %w", err)
		}
		found = true
		return true, nil
	})
	if err != nil { // the pass goes on from the same pack at the next sweep
		return false, err
	}
	m.orphansAt, m.orphanNext = at, next
	if found { // renumbered: the marks' rowids mean nothing now
		m.next, m.waiting = 0, nil
	}
	return next != 0, nil
}

// packQueued handles the first packRowids sessions of pack_todo and
// reports whether more may be queued.
func (s *Store) packQueued(ctx context.Context, m *packMarks) (more bool, err error) {
	var (
		queued    []int64
		unsettled []waitingSession
		cutShort  bool // packSessions left sessions of queued for a later slice
	)
	err = s.packTx(ctx, m, func(tx *sql.Tx, _ int64) (bool, error) {
		rows, err := tx.QueryContext(ctx, `SELECT session FROM pack_todo ORDER BY session LIMIT ?`, packRowids)
		if err != nil {
			return false, fmt.Errorf("pack: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r int64
			if err := rows.Scan(&r); err != nil {
				return false, fmt.Errorf("pack: %w", err)
			}
			queued = append(queued, r)
		}
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("pack: %w", err)
		}
		rows.Close()
		if len(queued) == 0 {
			return false, nil
		}
		upTo := queued[len(queued)-1]
		var cut int64
		unsettled, _, cut, err = s.packSessions(ctx, tx, `s.rowid IN (SELECT session FROM pack_todo WHERE session <= ?1)`, upTo)
		if err != nil {
			return false, err
		}
		if cut != 0 { // the rest waits in pack_todo for the next slice
			upTo = cut - 1
			queued = slices.DeleteFunc(queued, func(r int64) bool { return r >= cut })
			cutShort = true
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pack_todo WHERE session <= ?`, upTo); err != nil {
			return false, fmt.Errorf("pack: %w", err)
		}
		return true, nil
	})
	if err != nil {
		return true, err
	}
	m.wait(queued, unsettled)
	m.visited += int64(len(queued))
	return cutShort || len(queued) == packRowids, nil
}

// packWaiting handles the next packRowids sessions of m.waiting above
// *after that may have settled: their window ended before the clock and
// before the newest start of their tenant's sessions. A waiting session
// updated since it was read may have a later window than m holds, never
// an earlier one but for an event moved out or forgotten (which delays its
// pack, as long as its former window lasts); reading it again corrects it.
// It reports whether any is past them.
func (s *Store) packWaiting(ctx context.Context, m *packMarks, after *int64) (more bool, err error) {
	if len(m.waiting) == 0 {
		return false, nil
	}
	var (
		ids       []int64
		unsettled []waitingSession
	)
	err = s.packTx(ctx, m, func(tx *sql.Tx, _ int64) (bool, error) {
		now := time.Now().UnixMilli()
		newest := map[string]int64{}
		for r, w := range m.waiting {
			if r <= *after || w.ends >= now {
				continue
			}
			at, ok := newest[w.tenant]
			if !ok {
				if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(started_at), 0) FROM sessions WHERE tenant = ?`, w.tenant).Scan(&at); err != nil {
					return false, fmt.Errorf("pack: %w", err)
				}
				newest[w.tenant] = at
			}
			if w.ends < at {
				ids = append(ids, r)
			}
		}
		if len(ids) == 0 {
			return false, nil
		}
		slices.Sort(ids)
		more = len(ids) > packRowids
		ids = ids[:min(len(ids), packRowids)]
		list := make([]byte, 0, 16*len(ids))
		for i, r := range ids {
			if i > 0 {
				list = append(list, ',')
			}
			list = strconv.AppendInt(list, r, 10)
		}
		var n int
		var cut int64
		var err error
		unsettled, n, cut, err = s.packSessions(ctx, tx, `s.rowid IN (`+string(list)+`)`)
		if cut != 0 { // the rest stays waiting, for the next slice
			ids = slices.DeleteFunc(ids, func(r int64) bool { return r >= cut })
			more = true
		}
		return n > 0, err
	})
	if err != nil {
		return true, err
	}
	if len(ids) == 0 {
		return false, nil
	}
	m.wait(ids, unsettled)
	m.visited += int64(len(ids))
	*after = ids[len(ids)-1]
	return more, nil
}

// packNext visits the sessions of rowids from m.next to m.next+packRowids
// and reports whether any session is past them.
func (s *Store) packNext(ctx context.Context, m *packMarks) (more bool, err error) {
	var (
		unsettled []waitingSession
		next      int64
	)
	m.next = max(m.next, 1) // the least rowid SQLite chooses
	err = s.packTx(ctx, m, func(tx *sql.Tx, last int64) (bool, error) {
		if m.next > last {
			return false, nil
		}
		next = min(m.next+packRowids, last+1)
		more = next <= last
		var n int
		var cut int64
		var err error
		unsettled, n, cut, err = s.packSessions(ctx, tx, `s.rowid >= ?1 AND s.rowid < ?2`, m.next, next)
		if cut != 0 { // the next slice goes on from cut
			next, more = cut, true
		}
		return n > 0, err
	})
	if err != nil && next != 0 && !errors.Is(err, errWriterBusy) && ctx.Err() == nil {
		// Skip past the failing rowids (see sweep).
		m.next = max(m.next, next)
		return more, err
	}
	if err != nil || next == 0 {
		return false, err
	}
	m.wait(nil, unsettled)
	m.visited += max(next-m.next, 0)
	m.next = max(m.next, next)
	return more, nil
}

// wait takes visited out of m.waiting and puts unsettled in.
func (m *packMarks) wait(visited []int64, unsettled []waitingSession) {
	for _, r := range visited {
		delete(m.waiting, r)
	}
	if m.waiting == nil && len(unsettled) > 0 {
		m.waiting = map[int64]waitingSession{}
	}
	for _, w := range unsettled {
		m.waiting[w.rowid] = w
	}
}

// packSessions packs the settled sessions without a pack among those where
// holds (a condition on sessions s, with args), and returns those without
// a pack that are not settled and how many it packed. The sessions it
// packs sum to at most packSliceBytes of bodies (but for a slice's first,
// which may be larger, up to packMaxBytes): cut is then the least rowid it
// left for a later slice, sessions from it on neither packed nor returned
// as unsettled; else cut is 0.
func (s *Store) packSessions(ctx context.Context, tx *sql.Tx, where string, args ...any) (unsettled []waitingSession, packed int, cut int64, err error) {
	byTenant, unsettled, err := settledUnpacked(ctx, tx, where, args, time.Now())
	if err != nil {
		return nil, 0, 0, err
	}
	sizes := map[int64]int64{}
	for tenant, c := range byTenant {
		if err := c.dropLarge(ctx, tx, tenant, sizes); err != nil {
			return nil, 0, 0, err
		}
	}
	if cut = sliceCut(sizes, packSliceBytes); cut != 0 {
		for _, c := range byTenant {
			c.keepBelow(cut)
		}
		unsettled = slices.DeleteFunc(unsettled, func(w waitingSession) bool { return w.rowid >= cut })
	}
	for tenant, c := range byTenant {
		n, err := writePacks(ctx, tx, tenant, c)
		if err != nil {
			return nil, 0, 0, err
		}
		packed += n
	}
	return unsettled, packed, cut, nil
}

// packSliceBytes bounds the bodies a slice packs (packSessions): the
// sessions of packRowids rowids are ~1.1 MB on the bench database, but one
// tenant's giant sessions would otherwise make a slice read and write up to
// packRowids·packMaxBytes while it holds the writer; a variable for tests.
var packSliceBytes int64 = 4 << 20

// sliceCut is the least rowid of sizes (each session's bodies, by rowid)
// whose bodies, added to those of the rowids below it, pass limit (never
// the least rowid: a slice packs at least one session), or 0 when they
// all fit.
func sliceCut(sizes map[int64]int64, limit int64) int64 {
	rowids := slices.Sorted(maps.Keys(sizes))
	var sum int64
	for i, r := range rowids {
		sum += sizes[r]
		if i > 0 && sum > limit {
			return r
		}
	}
	return 0
}

// keepBelow takes the sessions of rowid cut and above out of c.
func (c *packChunk) keepBelow(cut int64) {
	keep := 0
	for i := range c.list {
		if c.rowids[i] >= cut {
			continue
		}
		c.list[keep], c.rowids[keep], c.ids[keep] = c.list[i], c.rowids[i], c.ids[i]
		keep++
	}
	c.list, c.rowids, c.ids = c.list[:keep], c.rowids[:keep], c.ids[:keep]
}

// packMaxBytes bounds a pack: a session whose events' bodies sum to more
// is not packed (the export reads it from its events), so the packer never
// reads a huge session whole in the writer's process; a variable for tests.
var packMaxBytes int64 = 16 << 20

// packSizes is the summed length of each session's event bodies, over
// eventsStatement's ranges: length() of a BLOB is its bytes
// (https://sqlite.org/lang_corefunc.html#length), summed row by row, so no
// session's bodies are held together. It costs a second pass over the
// events of the sessions a slice packs (not measured); a slice is bounded
// by rowids (packRowids), by packSliceBytes in all and by packMaxBytes for
// each session.
const packSizes = `WITH c(i, session_key, first, last, session_id) AS MATERIALIZED
		(SELECT key, value->>0, value->>1, value->>2, value->>3 FROM json_each(?1))
		SELECT c.i, (SELECT coalesce(sum(length(e.body)), 0) FROM events e WHERE e.tenant = ?2
			AND e.session_key = c.session_key AND e.occurred_at BETWEEN c.first AND c.last
			AND e.session_id = c.session_id)
		FROM c`

// dropLarge takes out of c the sessions whose events sum to more than
// packMaxBytes, before writePacks reads any whole, and sets in sizes the
// sum of each session it keeps, by rowid.
func (c *packChunk) dropLarge(ctx context.Context, tx *sql.Tx, tenant string, sizes map[int64]int64) error {
	rows, err := tx.QueryContext(ctx, packSizes, c.boundSpans(nil), tenant)
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	defer rows.Close()
	large := map[int]bool{}
	for rows.Next() {
		var i int
		var size int64
		if err := rows.Scan(&i, &size); err != nil {
			return fmt.Errorf("pack: %w", err)
		}
		if size > packMaxBytes {
			large[i] = true
		} else {
			sizes[c.rowids[i]] = size
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if len(large) == 0 {
		return nil
	}
	keep := 0
	for i := range c.list {
		if large[i] {
			continue
		}
		c.list[keep], c.rowids[keep], c.ids[keep] = c.list[i], c.rowids[i], c.ids[i]
		keep++
	}
	c.list, c.rowids, c.ids = c.list[:keep], c.rowids[:keep], c.ids[:keep]
	return nil
}

// packChunk is a tenant's sessions to pack in a slice, their rowids and
// their ids (a pack's owner, see eventPacks).
type packChunk struct {
	chunk
	rowids []int64
	ids    []string
}

// settledUnpacked reads the sessions where holds (see packSessions) and
// returns those without a pack that are settled at now (see above), by
// tenant, and the rowids of those without a pack that are not.
func settledUnpacked(ctx context.Context, tx *sql.Tx, where string, args []any, now time.Time) (map[string]*packChunk, []waitingSession, error) {
	rows, err := tx.QueryContext(ctx, `SELECT s.rowid, s.tenant, s.session_id, s.doc FROM sessions s
		WHERE (`+where+`) AND NOT EXISTS (SELECT 1 FROM event_packs p
			WHERE p.session = s.rowid AND p.tenant = s.tenant AND p.session_id = s.session_id)
		ORDER BY s.rowid`, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("pack: %w", err)
	}
	defer rows.Close()
	var (
		r       docReader
		rowid   intColumn
		tenant  string
		id      string
		doc     sql.RawBytes
		found   = map[string]*packChunk{}
		newest  = map[string]int64{} // the newest start of each tenant's sessions
		pending []string             // tenants whose newest start is to be read
	)
	for rows.Next() {
		if err := rows.Scan(&rowid, &tenant, &id, &doc); err != nil {
			return nil, nil, fmt.Errorf("pack: %w", err)
		}
		c := found[tenant]
		if c == nil {
			c = &packChunk{}
			found[tenant] = c
			pending = append(pending, tenant)
		}
		c.list = append(c.list, report.StoredDetail{})
		if err := r.decode(doc, &c.list[len(c.list)-1].Session); err != nil {
			return nil, nil, fmt.Errorf("pack: %w", err)
		}
		c.rowids = append(c.rowids, int64(rowid))
		c.ids = append(c.ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("pack: %w", err)
	}
	rows.Close()
	for _, t := range pending {
		var at int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(started_at), 0) FROM sessions WHERE tenant = ?`, t).Scan(&at); err != nil {
			return nil, nil, fmt.Errorf("pack: %w", err)
		}
		newest[t] = at
	}
	var unsettled []waitingSession
	for t, c := range found {
		keep := 0
		for i := range c.list {
			ends := c.list[i].Session.WindowEndsAt
			if !ends.Before(now) || ends.UnixMilli() >= newest[t] {
				unsettled = append(unsettled, waitingSession{c.rowids[i], t, ends.UnixMilli()})
				continue
			}
			c.list[keep], c.rowids[keep], c.ids[keep] = c.list[i], c.rowids[i], c.ids[i]
			keep++
		}
		c.list, c.rowids, c.ids = c.list[:keep], c.rowids[:keep], c.ids[:keep]
		if keep == 0 {
			delete(found, t)
		}
	}
	return found, unsettled, nil
}

// writePacks reads the events of c's sessions (as Session and the export
// do) and writes each session's pack, and returns how many it wrote.
func writePacks(ctx context.Context, tx *sql.Tx, tenant string, c *packChunk) (int, error) {
	if err := c.readEvents(ctx, tx, tenant); err != nil {
		return 0, fmt.Errorf("pack: %w", err)
	}
	// A pack of another session under the rowid (rowids renumbered, see
	// eventPacks) is replaced.
	insert, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO event_packs (session, tenant, session_id, events) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return 0, fmt.Errorf("pack: %w", err)
	}
	defer insert.Close()
	var pack []byte
	n := 0
	for k, sp := range c.spans {
		if sp.count == 0 {
			continue
		}
		pack = strconv.AppendInt(pack[:0], int64(sp.count), 10)
		pack = append(append(pack, eventSep), c.bytes[sp.from:sp.to]...)
		if _, err := insert.ExecContext(ctx, c.rowids[k], tenant, c.ids[k], pack); err != nil {
			if tooBig(err) {
				continue // read from events, a row per event
			}
			return n, fmt.Errorf("pack: %w", err)
		}
		n++
	}
	return n, nil
}
