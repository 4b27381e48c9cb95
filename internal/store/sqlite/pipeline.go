package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/chatreport/chatreport/internal/session"
)

// An update has two stages: it plans (takes its keys' states from memory,
// runs the assembler, encodes the event bodies and session documents,
// computes the fingerprints and side rows, and puts the keys' states back
// as the plan leaves them), then writes (one write transaction: SQLite's
// work and the commit). Plans are made one at a time, writes are made one
// at a time in the order of their plans, and an update plans while the one
// planned before it writes: with two batches in flight the Go work of one
// runs on one core while SQLite writes the other on the other core.
//
// A plan reads the database only inside its own write transaction, so a
// key memory does not hold makes the update wait for the writes planned
// before it and then plan as one serial update did. A plan made from
// memory relies on every write planned before it succeeding: the states it
// took are those writes' results. When a write fails, or another
// connection wrote, memory is dropped (invalidate) and every plan made from
// states taken before that is made again, reading every key from the
// database (serial), before it writes.

// errStoredElsewhere: an event the reader reported new is stored already,
// under another key of the tenant (event ids must be unique per tenant, and
// the first one stored wins) or at another time than its copy in the batch.
var errStoredElsewhere = errors.New("an event reported new is stored already")

// errStale: the plan used states from memory that were dropped since.
var errStale = errors.New("the update's plan used states dropped since")

// Update runs fn and applies the changes it returns in one write
// transaction. fn may run more than once: when its plan used states that
// were dropped (errStale), or when a new event's id turns out to be stored
// already outside what memory holds of its key (errStoredElsewhere), the
// transaction is rolled back and fn runs again with the keys read from the
// database (and Known answered by it, for errStoredElsewhere).
func (s *Store) Update(ctx context.Context, fn func(context.Context, session.Reader) (session.Changes, error)) error {
	s.updating.Add(1)
	defer s.updated()
	s.planMu.Lock()
	r := s.newReader()
	p, err := r.plan(ctx, fn)
	if err == nil && !r.locked {
		// The writer is taken before the next plan begins: writes follow
		// the order of their plans.
		err = r.lock(ctx)
	}
	s.planMu.Unlock()
	if r.locked {
		defer s.unlock()
	}
	if err != nil && p != nil {
		// Planned and put in memory, but not to be written.
		s.invalidate()
	}
	if err != nil {
		if r.tx != nil {
			r.tx.Rollback() //nolint:errcheck // the update failed already
		}
		return err
	}
	err = s.write(ctx, r, p)
	if errors.Is(err, errStale) {
		err = s.serial(ctx, fn, false)
	}
	if errors.Is(err, errStoredElsewhere) {
		err = s.serial(ctx, fn, true)
	}
	return err
}

// updated counts an update's end and wakes the merger (merge.go) and the
// packer (pack.go).
func (s *Store) updated() {
	s.updating.Add(-1)
	s.merge.wake()
	s.pack.wake()
}

// newReader is a reader for an update planned now.
func (s *Store) newReader() *reader {
	s.epochMu.Lock()
	defer s.epochMu.Unlock()
	return &reader{s: s, epoch: s.epoch, reads: map[session.StateID]*keyRead{}}
}

// lock takes the writer for r's update, waiting for the writes planned
// before it.
func (r *reader) lock(ctx context.Context) error {
	select {
	case r.s.writer <- struct{}{}:
		r.locked = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unlock lets the writer go.
func (s *Store) unlock() { <-s.writer }

// exclusive runs fn with no update planning or writing, and drops memory
// after it: fn writes on another connection than the writer's.
func (s *Store) exclusive(ctx context.Context, fn func() error) error {
	s.planMu.Lock()
	defer s.planMu.Unlock()
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer s.unlock()
	defer s.invalidate()
	return fn()
}

// txn returns the update's write transaction, beginning it (and taking the
// writer) when first needed.
func (r *reader) txn(ctx context.Context) (*sql.Tx, error) {
	if r.tx != nil {
		return r.tx, nil
	}
	if !r.locked {
		if err := r.lock(ctx); err != nil {
			return nil, err
		}
	}
	tx, err := r.s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	if err := r.s.checkWriters(ctx, tx); err != nil {
		tx.Rollback() //nolint:errcheck // the update failed already
		return nil, err
	}
	r.tx = tx
	return tx, nil
}

// plan runs fn and encodes what its changes write, then puts the states of
// the keys read back in memory as the changes leave them (unless the plan
// is stale already, or serial). On an error the states taken are let go.
func (r *reader) plan(ctx context.Context, fn func(context.Context, session.Reader) (session.Changes, error)) (*planned, error) {
	ch, err := fn(ctx, r)
	if err != nil {
		if !r.serial {
			r.release()
		}
		return nil, err
	}
	p, err := planWrite(ch, r)
	if err != nil {
		if !r.serial {
			r.release()
		}
		return nil, err
	}
	if r.serial {
		return p, nil
	}
	r.s.epochMu.Lock()
	defer r.s.epochMu.Unlock()
	if r.stale() {
		r.release()
		return p, nil
	}
	r.keep(&p.ch, p.sums)
	return p, nil
}

// stale reports whether r's plan used states from memory that were dropped
// since it began. Under epochMu.
func (r *reader) stale() bool { return r.usedMemory && r.epoch != r.s.epoch }

// invalidate drops the states in memory and makes the plans that used them
// stale.
func (s *Store) invalidate() {
	s.epochMu.Lock()
	defer s.epochMu.Unlock()
	s.states.Reset()
	s.epoch++
}

// write writes p, planned by r, in r's transaction (begun now if the plan
// did not read the database). A plan gone stale is not written
// (errStale); a failed write drops memory, whose states of p's keys (and
// of the plans after it) assumed it succeeded.
func (s *Store) write(ctx context.Context, r *reader, p *planned) error {
	tx, err := r.txn(ctx)
	if err != nil {
		s.invalidate()
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	s.epochMu.Lock()
	stale := r.stale()
	s.epochMu.Unlock()
	if stale {
		return errStale
	}
	if s.beforeWrite != nil {
		err = s.beforeWrite()
	}
	if err == nil {
		err = apply(ctx, tx, p)
	}
	if err != nil {
		s.invalidate()
		return err
	}
	if err := tx.Commit(); err != nil {
		s.invalidate()
		return fmt.Errorf("commit: %w", err)
	}
	s.ckpt.committed()
	return nil
}

// serial runs fn again and writes its changes, the writer held: every key
// is read from the database (a plan running meanwhile may hold the keys in
// memory), and memory is left as it is (the keys written are not in it:
// the failure that made this update serial dropped it, and a plan after
// this one reads them from the database once this write is over).
func (s *Store) serial(ctx context.Context, fn func(context.Context, session.Reader) (session.Changes, error), knownByDB bool) error {
	r := s.newReader()
	r.locked, r.serial, r.knownByDB = true, true, knownByDB
	p, err := r.plan(ctx, fn)
	if err != nil {
		if r.tx != nil {
			r.tx.Rollback() //nolint:errcheck // the update failed already
		}
		return err
	}
	return s.write(ctx, r, p)
}
