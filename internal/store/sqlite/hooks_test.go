package sqlite

import (
	"context"
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
	merged, err = s.mergeSlice(ctx, table, f)
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
