package sqlite

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"fmt"
	"sync"

	"github.com/chatreport/chatreport/internal/report"
)

// exportReaders is how many chunks an export reads and encodes at once, each
// reader in read transactions of its own connection. Choosing a chunk's
// sessions needs the last session of the chunk before it, but reading its
// events and encoding them (most of an export's work) does not: with two
// readers both cores work on one export (docs/performance.md). Every
// connection holds its own page cache and its own map of the file, so an
// export uses no more of them than it has readers.
const exportReaders = 2

// exportChunks is how many chunks an export holds at once: one being read
// by each reader, and encoded ones waiting to be written. They are reused,
// so an export's memory is that of a few chunks whatever its length.
const exportChunks = 2 * exportReaders

// Export encodes every session f matches, complete with its events, in the
// order of Search, and passes them to emit a chunk of report.ExportChunk
// sessions at a time, in order. It pages by keyset like a client following
// cursors; each chunk is one snapshot, read in a read transaction that ends
// before its sessions are emitted, so no transaction stays open while emit
// writes to a slow client. A session that an update changes during the
// export appears as one of its chunk's snapshots. Readers take turns to
// choose the next chunk after the last one chosen, then read and encode it
// with their own encoder from newEncoder while the next reader chooses the
// following one and emit writes the one before. Export stops at the first
// error of emit, or when ctx ends, and returns once its readers have
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
		turn:  make(chan turn, 1),
	}
	for range exportChunks {
		x.free <- &exportChunk{ready: make(chan struct{}, 1)}
	}
	x.turn <- turn{}
	var wg sync.WaitGroup
	for range exportReaders {
		wg.Go(func() { x.read(ctx, newEncoder()) })
	}
	go func() {
		wg.Wait()
		close(x.order)
	}()
	var err error
	for c := range x.order {
		<-c.ready
		if err == nil {
			err = c.err
		}
		if err == nil && len(c.list) > 0 {
			err = emit(c.out, c.ends)
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			cancel() // the readers stop, ending the transactions they hold
		}
		x.free <- c
	}
	return err
}

// export is one export on its way. A reader takes a chunk from free and the
// turn, chooses the chunk's sessions and passes it to order (the order the
// chunks are emitted in) and the turn to the next reader; the chunk goes
// back to free once emitted.
type export struct {
	s     *Store
	f     report.Filter
	free  chan *exportChunk
	order chan *exportChunk
	turn  chan turn
}

// turn is the right to choose the next chunk: the sessions after cur (all
// when nil), or none when done.
type turn struct {
	cur  *report.Cursor
	done bool
}

// exportChunk is a chunk of an export on its way to emit.
type exportChunk struct {
	chunk
	out  []byte // the chunk's sessions, encoded
	ends []int  // where each ends in out
	err  error
	// ready receives once the chunk is read and encoded, or failed.
	ready chan struct{}
}

// read chooses, reads and encodes chunks in turn with the other readers,
// on a connection of its own, until the last chunk is chosen or ctx ends.
func (x *export) read(ctx context.Context, enc report.Encoder) {
	var (
		conn    *sql.Conn
		restore int64
	)
	defer func() {
		if conn != nil {
			releaseExportConn(conn, restore)
		}
	}()
	for {
		var c *exportChunk
		select {
		case c = <-x.free:
		case <-ctx.Done():
			return
		}
		var t turn
		select {
		case t = <-x.turn:
		case <-ctx.Done():
			return
		}
		if t.done {
			x.turn <- t
			return
		}
		c.err = nil
		if conn == nil {
			if conn, restore, c.err = x.s.exportConn(ctx); c.err != nil {
				c.err = fmt.Errorf("export: %w", c.err)
			}
		}
		var tx *sql.Tx
		if c.err == nil {
			tx, c.err = chooseChunk(ctx, conn, &c.chunk, translate(&x.f, t.cur))
		}
		x.order <- c // never blocks: it has room for every chunk
		if c.err != nil || len(c.list) < report.ExportChunk {
			x.turn <- turn{done: true}
		} else {
			last := &c.list[len(c.list)-1].Session
			x.turn <- turn{cur: &report.Cursor{StartedAt: last.StartedAt, SessionID: last.ID}}
		}
		if c.err == nil {
			c.err = c.readAndEncode(ctx, tx, x.f.Tenant, enc)
		}
		c.ready <- struct{}{}
	}
}

// chooseChunk begins a read transaction on conn and chooses c's sessions in
// it.
func chooseChunk(ctx context.Context, conn *sql.Conn, c *chunk, w *where) (*sql.Tx, error) {
	// Read-only transactions begin DEFERRED: they take no write lock. One
	// whose context ends is rolled back by database/sql.
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin read: %w", err)
	}
	if err := c.choose(ctx, tx, w, report.ExportChunk); err != nil {
		tx.Rollback() //nolint:errcheck // read-only
		return nil, err
	}
	return tx, nil
}

// readAndEncode reads the events of c's sessions in tx, which it ends, and
// encodes the sessions with enc.
func (c *exportChunk) readAndEncode(ctx context.Context, tx *sql.Tx, tenant string, enc report.Encoder) error {
	err := ctx.Err()
	if err == nil {
		err = c.readEvents(ctx, tx, tenant)
	}
	tx.Rollback() //nolint:errcheck // read-only
	if err != nil {
		return err
	}
	c.out, c.ends = c.out[:0], c.ends[:0]
	for i := range c.list {
		if c.out, err = enc.Append(c.out, &c.list[i]); err != nil {
			return err
		}
		c.ends = append(c.ends, len(c.out))
	}
	return nil
}

// exportCachePages is the page cache of an export's connection
// (https://sqlite.org/pragma.html#pragma_cache_size; negative: KiB). An
// export reads each page of a chunk about once, and only the B-trees'
// upper pages again; the 64 MiB the store gives each connection would
// hold, per reader, pages no one reads twice.
const exportCachePages = -16 << 10

// exportConn is a connection of the pool for an export's reader, with
// exportCachePages of cache until releaseExportConn gives it back the cache
// it had (restore).
func (s *Store) exportConn(ctx context.Context) (conn *sql.Conn, restore int64, err error) {
	if conn, err = s.db.Conn(ctx); err != nil {
		return nil, 0, err
	}
	err = conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&restore)
	if err == nil {
		_, err = conn.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = %d", exportCachePages))
	}
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	return conn, restore, nil
}

// releaseExportConn gives conn its cache back and returns it to the pool.
// It runs after the export's context may have ended.
func releaseExportConn(conn *sql.Conn, restore int64) {
	if _, err := conn.ExecContext(context.Background(), fmt.Sprintf("PRAGMA cache_size = %d", restore)); err != nil {
		// A connection with the small cache is still correct, but the
		// pool's next user expects the usual one: the driver's
		// ErrBadConn makes database/sql close it instead.
		conn.Raw(func(any) error { return sqldriver.ErrBadConn }) //nolint:errcheck // the point is the error
	}
	conn.Close()
}
