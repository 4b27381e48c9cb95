package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/chatreport/chatreport/internal/session"
)

// SetBeforeWrite makes f run as each plan's write begins
// (pipeline.go), for tests that order an update's plan against another's
// write; an error from f fails the write.
func (s *Store) SetBeforeWrite(f func() error) { s.beforeWrite = f }

// SetMergeSlice makes f run in each slice of the merger's (merge.go).
func (s *Store) SetMergeSlice(f func()) { s.merge.slice.Store(&f) }

// MergeSlice runs one slice of table's merge now, as the merger does, with
// f in its transaction, and reports whether it ran (the writer was free)
// and whether the table is merged.
func (s *Store) MergeSlice(ctx context.Context, table string, f func()) (ran, merged bool, err error) {
	merged, err = s.mergeSlice(ctx, table, f, false)
	if errors.Is(err, errWriterBusy) {
		return false, false, nil
	}
	return true, merged, err
}

// SetMergeRest sets the least time between two passes of the merger.
func (s *Store) SetMergeRest(d time.Duration) { s.merge.rest.Store(int64(d)) }

// SetMergeExportWait sets the longest the merger waits for exports alone.
func (s *Store) SetMergeExportWait(d time.Duration) { s.merge.exportWait.Store(int64(d)) }

// PauseMerge stops the merger; ResumeMerge starts it again. No update
// may run meanwhile.
func (s *Store) PauseMerge()  { s.merge.stop() }
func (s *Store) ResumeMerge() { s.merge = startMerger(s) }

// SetStateBudget replaces the store's memory of keys by an empty one of
// budget (in KeyState.Cost's bytes): a budget smaller than any state holds
// none, every key put back is evicted at once.
func (s *Store) SetStateBudget(budget int) {
	s.states = session.NewStateCache(budget, session.DefaultStateIdle, (*session.KeyState).Cost)
}

// SetWALWait sets how long Forget waits for readers at each try to
// truncate the WAL.
func (s *Store) SetWALWait(d time.Duration) { s.walWait = d }

// SetForgetSlices bounds Forget's merge slices per table at n.
func (s *Store) SetForgetSlices(n int) { s.forgetSlices = &n }

// SecureDeletes reads PRAGMA secure_delete on the writer's connection and
// on every idle connection of the pool.
func (s *Store) SecureDeletes(ctx context.Context) ([]int, error) {
	var on []int
	var v int
	if err := s.w.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&v); err != nil {
		return nil, err
	}
	on = append(on, v)
	var conns []*sql.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range s.db.Stats().Idle {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
		if err := c.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&v); err != nil {
			return nil, err
		}
		on = append(on, v)
	}
	return on, nil
}
