package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
// The store's packer fills event_packs in the background, as the merger
// merges the full-text index (merge.go): in slices, each a write
// transaction of its own on the writer's connection, between updates and
// never while an export reads a chunk (a commit makes the next read
// transactions drop their page caches and maps), at most packShare of the
// time. A sweep visits the sessions in rowid order, packSlice rowids a
// slice, and packs those that are settled and have no pack:
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
// packRest: a settled session waits up to that long for its pack, and a
// store whose sessions are all packed reads the sessions table once per
// packRest while it is written to.

// packRowids is how many rowids of sessions a slice visits, which bounds
// the time a slice holds the writer (an update waits for one slice at
// most): on the 200,000-session bench database, sessions of ~26 events and
// ~8.8 KB of bodies, a slice that packs them all writes ~1.1 MB
// (docs/performance.md).
const packRowids = 128

// packShare is the most of the writer's time the packer takes: after a
// slice of d it waits (1/packShare - 1)·d before the next.
const packShare = 0.5

// packRest is the least time from the end of a sweep to the start of the
// next.
const packRest = time.Minute

// packer packs settled sessions' events (see above), on a goroutine of the
// store's life; kick tells it an update ended.
type packer struct {
	s      *Store
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// rest is packRest, shorter in tests (nanoseconds).
	rest  atomic.Int64
	woken atomic.Uint64
	// swept is closed when the first sweep ends.
	swept     chan struct{}
	sweptOnce sync.Once
}

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

// wake tells the packer that an update ended; it never waits.
func (p *packer) wake() {
	p.woken.Add(1)
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// stop stops the packer and waits for it (and for a slice it runs).
func (p *packer) stop() {
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
		if !p.sweep(ctx) {
			return
		}
		passed = time.Now()
		p.sweptOnce.Do(func() { close(p.swept) })
		if p.woken.Load() != woken {
			p.wake() // another sweep, after the rest
		}
	}
}

// sweep packs the settled sessions without a pack, a slice at a time
// whenever no update runs and no export reads, and reports false when ctx
// ended.
func (p *packer) sweep(ctx context.Context) bool {
	var after int64
	for {
		if !waitIdle(ctx, p.s, p.kick, mergeExportWait) {
			return false
		}
		began := time.Now()
		next, more, err := p.s.packSlice(ctx, after)
		pause := time.Duration(float64(time.Since(began)) * (1/packShare - 1))
		switch {
		case ctx.Err() != nil:
			return false
		case errors.Is(err, errWriterBusy):
			pause = mergePoll
		case err != nil || !more:
			// A failed slice (the database busy or closing) leaves the
			// rest to the next sweep.
			return true
		default:
			after = next
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
	}
}

// WaitPacked waits until the store's packer has ended its first sweep
// since Open (every session settled then has its pack, unless an update
// deleted it since), or ctx ends. chatreport-bench waits for it before
// it measures the export; serving never waits.
func (s *Store) WaitPacked(ctx context.Context) error {
	select {
	case <-s.pack.swept:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// packSlice packs the settled sessions without a pack whose rowids are in
// (after, after+packRowids], in a write transaction of its own taken when
// the writer is free, and returns where the next slice starts and whether
// any session is past it.
func (s *Store) packSlice(ctx context.Context, after int64) (next int64, more bool, err error) {
	select {
	case s.writer <- struct{}{}:
	default:
		return after, true, errWriterBusy
	}
	defer s.unlock()
	tx, err := s.begin(ctx)
	if err != nil {
		return after, false, fmt.Errorf("begin packing: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := s.checkWriters(ctx, tx); err != nil {
		return after, false, err
	}
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM sessions`).Scan(&last); err != nil {
		return after, false, fmt.Errorf("pack: %w", err)
	}
	if after >= last {
		return after, false, nil
	}
	next = after + packRowids
	byTenant, err := settledUnpacked(ctx, tx, after, next, time.Now())
	if err != nil {
		return after, false, err
	}
	packed := 0
	for tenant, c := range byTenant {
		n, err := writePacks(ctx, tx, tenant, c)
		if err != nil {
			return after, false, err
		}
		packed += n
	}
	if packed == 0 {
		return next, next < last, nil // nothing written: no commit to make readers drop their caches
	}
	if err := tx.Commit(); err != nil {
		return after, false, fmt.Errorf("commit packs: %w", err)
	}
	s.ckpt.committed()
	return next, next < last, nil
}

// packChunk is a tenant's sessions to pack in a slice, and their rowids.
type packChunk struct {
	chunk
	rowids []int64
}

// settledUnpacked reads the sessions without a pack whose rowids are in
// (after, upTo] and returns those settled at now (see above), by tenant.
func settledUnpacked(ctx context.Context, tx *sql.Tx, after, upTo int64, now time.Time) (map[string]*packChunk, error) {
	rows, err := tx.QueryContext(ctx, `SELECT s.rowid, s.tenant, s.doc FROM sessions s
		WHERE s.rowid > ?1 AND s.rowid <= ?2 AND NOT EXISTS (SELECT 1 FROM event_packs p WHERE p.session = s.rowid)
		ORDER BY s.rowid`, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	defer rows.Close()
	var (
		r       docReader
		rowid   intColumn
		tenant  string
		doc     sql.RawBytes
		found   = map[string]*packChunk{}
		newest  = map[string]int64{} // the newest start of each tenant's sessions
		pending []string             // tenants whose newest start is to be read
	)
	for rows.Next() {
		if err := rows.Scan(&rowid, &tenant, &doc); err != nil {
			return nil, fmt.Errorf("pack: %w", err)
		}
		c := found[tenant]
		if c == nil {
			c = &packChunk{}
			found[tenant] = c
			pending = append(pending, tenant)
		}
		c.list = append(c.list, report.StoredDetail{})
		if err := r.decode(doc, &c.list[len(c.list)-1].Session); err != nil {
			return nil, fmt.Errorf("pack: %w", err)
		}
		c.rowids = append(c.rowids, int64(rowid))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	rows.Close()
	for _, t := range pending {
		var at int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(started_at), 0) FROM sessions WHERE tenant = ?`, t).Scan(&at); err != nil {
			return nil, fmt.Errorf("pack: %w", err)
		}
		newest[t] = at
	}
	for t, c := range found {
		keep := 0
		for i := range c.list {
			ends := c.list[i].Session.WindowEndsAt
			if !ends.Before(now) || ends.UnixMilli() >= newest[t] {
				continue
			}
			c.list[keep], c.rowids[keep] = c.list[i], c.rowids[i]
			keep++
		}
		c.list, c.rowids = c.list[:keep], c.rowids[:keep]
		if keep == 0 {
			delete(found, t)
		}
	}
	return found, nil
}

// writePacks reads the events of c's sessions (as Session and the export
// do) and writes each session's pack, and returns how many it wrote.
func writePacks(ctx context.Context, tx *sql.Tx, tenant string, c *packChunk) (int, error) {
	if err := c.readEvents(ctx, tx, tenant); err != nil {
		return 0, fmt.Errorf("pack: %w", err)
	}
	insert, err := tx.PrepareContext(ctx, `INSERT INTO event_packs (session, events) VALUES (?, ?)`)
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
		if _, err := insert.ExecContext(ctx, c.rowids[k], pack); err != nil {
			if tooBig(err) {
				continue // read from events, a row per event
			}
			return n, fmt.Errorf("pack: %w", err)
		}
		n++
	}
	return n, nil
}
