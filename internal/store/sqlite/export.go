package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/chatreport/chatreport/internal/report"
)

// exportReaders is how many chunks an export reads and encodes at once, each
// in a read transaction of its own connection. Choosing a chunk's sessions
// needs the last session of the chunk before it, but reading its events and
// encoding them (most of an export's work) does not: with two readers both
// cores work on one export (docs/performance.md).
const exportReaders = 2

// exportChunks is how many chunks an export holds at once: those being read,
// the one being chosen and the one being written. They are reused, so an
// export's memory is that of a few chunks whatever its length.
const exportChunks = exportReaders + 2

// Export encodes every session f matches, complete with its events, in the
// order of Search, and passes them to emit a chunk of report.ExportChunk
// sessions at a time, in order. It pages by keyset like a client following
// cursors; each chunk is one snapshot, read in a read transaction that ends
// before its sessions are emitted, so no transaction stays open while emit
// writes to a slow client. A session that an update changes during the
// export appears as one of its chunk's snapshots. While emit writes a chunk,
// the next ones are chosen, read and encoded on other goroutines, each
// reader with its own encoder from newEncoder. Export stops at the first
// error of emit, or when ctx ends, and returns once those goroutines have
// stopped.
func (s *Store) Export(ctx context.Context, f report.Filter, newEncoder func() report.Encoder, emit report.Emit) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	x := &export{
		s:     s,
		f:     f,
		free:  make(chan *exportChunk, exportChunks),
		order: make(chan *exportChunk, exportChunks),
		work:  make(chan *exportChunk),
	}
	for range exportChunks {
		x.free <- &exportChunk{ready: make(chan struct{}, 1)}
	}
	var wg sync.WaitGroup
	wg.Go(func() { x.choose(ctx) })
	for range exportReaders {
		wg.Go(func() { x.read(ctx, newEncoder()) })
	}
	var err error
	for c := range x.order {
		<-c.ready
		if err == nil {
			err = c.err
		}
		if err == nil && len(c.list) > 0 {
			err = emit(c.out, len(c.list))
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			cancel() // the chooser stops; the readers drop what they hold
		}
		x.free <- c
	}
	wg.Wait()
	for range exportChunks {
		if c := <-x.free; c.conn != nil {
			c.conn.Close()
		}
	}
	return err
}

// export is one export on its way. Chunks go from free to the chooser, which
// passes each to order (the order they are emitted in) and to work (where a
// reader takes it), and back to free once emitted.
type export struct {
	s     *Store
	f     report.Filter
	free  chan *exportChunk
	order chan *exportChunk
	work  chan *exportChunk
}

// exportChunk is a chunk of an export with its connection, kept for the
// whole export: the pool keeps only two idle connections, and an export
// uses more at once.
type exportChunk struct {
	chunk
	conn *sql.Conn
	tx   *sql.Tx // from choosing to reading the events
	out  []byte  // the chunk's sessions, encoded
	err  error
	// ready receives once the chunk is read and encoded, or failed.
	ready chan struct{}
}

// choose chooses every chunk's sessions in turn, each after the last
// session of the one before, and leaves its transaction open for a reader.
func (x *export) choose(ctx context.Context) {
	defer close(x.order)
	defer close(x.work)
	var cur *report.Cursor
	for {
		var c *exportChunk
		select {
		case c = <-x.free:
		case <-ctx.Done():
			return
		}
		c.err = x.s.chooseChunk(ctx, c, translate(&x.f, cur))
		x.order <- c // never blocks: it has room for every chunk
		if c.err != nil {
			c.ready <- struct{}{}
			return
		}
		x.work <- c
		if len(c.list) < report.ExportChunk {
			return
		}
		last := &c.list[len(c.list)-1].Session
		cur = &report.Cursor{StartedAt: last.StartedAt, SessionID: last.ID}
	}
}

// chooseChunk begins c's read transaction and chooses its sessions.
func (s *Store) chooseChunk(ctx context.Context, c *exportChunk, w *where) error {
	if c.conn == nil {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		c.conn = conn
	}
	// Read-only transactions begin DEFERRED: they take no write lock. One
	// whose context ends is rolled back by database/sql.
	tx, err := c.conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	if err := c.choose(ctx, tx, w, report.ExportChunk); err != nil {
		tx.Rollback() //nolint:errcheck // read-only
		return err
	}
	c.tx = tx
	return nil
}

// read reads the events of the chunks the chooser passes and encodes them
// with enc, until the chooser is done. Once ctx ends it only ends their
// transactions.
func (x *export) read(ctx context.Context, enc report.Encoder) {
	for c := range x.work {
		c.err = c.readAndEncode(ctx, x.f.Tenant, enc)
		c.ready <- struct{}{}
	}
}

func (c *exportChunk) readAndEncode(ctx context.Context, tenant string, enc report.Encoder) error {
	err := ctx.Err()
	if err == nil {
		err = c.readEvents(ctx, c.tx, tenant)
	}
	c.tx.Rollback() //nolint:errcheck // read-only
	c.tx = nil
	if err != nil {
		return err
	}
	c.out = c.out[:0]
	for i := range c.list {
		if c.out, err = enc.Append(c.out, &c.list[i]); err != nil {
			return err
		}
	}
	return nil
}
