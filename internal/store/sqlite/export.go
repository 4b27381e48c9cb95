package sqlite

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/chatreport/chatreport/internal/jsonenc"
	"github.com/chatreport/chatreport/internal/report"
)

// exportReaders is how many chunks an export reads and encodes at once, each
// reader in read transactions of its own connection: one per core the Go
// scheduler runs on, at least two and at most maxExportReaders. Choosing a
// chunk's sessions needs the last session of the chunk before it, but it
// reads the report order's index alone (~1–3 % of the work); reading the
// sessions' documents and events and encoding them does not, so every
// reader works on a chunk of its own (docs/performance.md). Every
// connection holds its own page cache and its own map of the file, so an
// export uses no more of them than it has readers.
func exportReaders() int {
	return min(max(runtime.GOMAXPROCS(0), 2), maxExportReaders)
}

// maxExportReaders bounds the connections (and the chunks in memory) of one
// export.
const maxExportReaders = 4

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
	// An export holds two chunks per reader: one being read by each, and
	// encoded ones waiting to be written. They are reused, so an export's
	// memory is that of a few chunks whatever its length.
	readers := exportReaders()
	chunks := 2 * readers
	x := &export{
		s:     s,
		f:     f,
		free:  make(chan *exportChunk, chunks),
		order: make(chan *exportChunk, chunks),
		turn:  make(chan turn, 1),
	}
	for range chunks {
		x.free <- &exportChunk{ready: make(chan struct{}, 1)}
	}
	x.turn <- turn{}
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() { x.read(ctx, newEncoder()) })
	}
	go func() {
		wg.Wait()
		close(x.order)
	}()
	var err error
	last := false // the chunk that ends the export was emitted
	for c := range x.order {
		<-c.ready
		if err == nil {
			err = c.err
		}
		if err == nil && len(c.list) > 0 {
			err = emit(c.out, c.ends)
		}
		if err == nil {
			last = len(c.chosen) < report.ExportChunk
			err = ctx.Err()
		}
		if err != nil {
			cancel() // the readers stop, ending the transactions they hold
		}
		x.free <- c
	}
	if err == nil && !last {
		// ctx ended after the last check, and the readers stopped
		// before choosing the rest: the export is not complete.
		if err = ctx.Err(); err == nil {
			err = errors.New("export: the readers stopped before the last chunk")
		}
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
	chosen []chosen // the chunk's sessions, in order
	rowids bool     // their rowids were read
	// unpacked are the indexes of the sessions without a pack (readDocs).
	unpacked []int
	ids      []byte // their ids, as a JSON array
	out      []byte // the chunk's sessions, encoded
	ends     []int  // where each ends in out
	err      error
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
		// From here to the chunk's encoding nothing waits for the client:
		// the merger runs no slice meanwhile (merge.go), as its commits
		// would make the next transactions drop their caches and maps;
		// while the readers wait for a slow client, it may.
		x.s.exporting.Add(1)
		c.err = nil
		if conn == nil {
			if conn, restore, c.err = x.s.exportConn(ctx); c.err != nil {
				c.err = fmt.Errorf("export: %w", c.err)
			}
		}
		var tx *sql.Tx
		if c.err == nil {
			tx, c.err = c.choose(ctx, conn, translate(&x.f, t.cur), x.s.planner)
		}
		x.order <- c // never blocks: it has room for every chunk
		if c.err != nil || len(c.chosen) < report.ExportChunk {
			x.turn <- turn{done: true}
		} else {
			last := &c.chosen[len(c.chosen)-1]
			x.turn <- turn{cur: &report.Cursor{StartedAt: time.UnixMilli(last.startedAt), SessionID: last.id}}
		}
		if c.err == nil {
			c.err = c.readAndEncode(ctx, tx, x.f.Tenant, enc)
		}
		x.s.exporting.Add(-1)
		c.ready <- struct{}{}
	}
}

// chosen is a session chosen for a chunk: its place in the report order,
// and its row in sessions when the choosing statement read it.
type chosen struct {
	startedAt int64 // Unix ms
	id        string
	rowid     int64
}

// choose begins a read transaction on conn and chooses c's sessions in it:
// up to report.ExportChunk matching w, newest first. It reads the report
// order's index (or the drivers' ranges) alone, as Search does to choose a
// page, so that the next reader's turn comes soon; the sessions' documents
// are read after (readDocs).
func (c *exportChunk) choose(ctx context.Context, conn *sql.Conn, w *where, p planner) (*sql.Tx, error) {
	c.chosen, c.list = c.chosen[:0], c.list[:0]
	// Read-only transactions begin DEFERRED: they take no write lock. One
	// whose context ends is rolled back by database/sql.
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin read: %w", err)
	}
	if err := c.chooseIn(ctx, tx, w, p); err != nil {
		tx.Rollback() //nolint:errcheck // read-only
		return nil, err
	}
	return tx, nil
}

// chooseIn reads the started_at and id of c's sessions in tx: the cursor
// the next chunk starts after, and the ids readDocs looks up. Where the
// statement reads the sessions table's index (not a driver's rows alone),
// it also reads each session's rowid, which every index of a rowid table
// holds (https://sqlite.org/fileformat2.html#representation_of_sql_indices):
// readDocs then reads each document by it, without a look-up of the key.
func (c *exportChunk) chooseIn(ctx context.Context, tx *sql.Tx, w *where, p planner) error {
	if err := w.drive(ctx, tx, report.DefaultTotalBound, p); err != nil {
		return err
	}
	list := "s.started_at AS started_at, s.session_id AS session_id, 0"
	if c.rowids = w.sessionRows(); c.rowids {
		list = "s.started_at AS started_at, s.session_id AS session_id, s.rowid"
	}
	q, args := w.query(list, true, " LIMIT ?", report.ExportChunk)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("choose sessions: %w", err)
	}
	defer rows.Close()
	var (
		at, rowid intColumn
		id        string
	)
	for rows.Next() {
		if err := rows.Scan(&at, &id, &rowid); err != nil {
			return fmt.Errorf("choose sessions: %w", err)
		}
		c.chosen = append(c.chosen, chosen{startedAt: int64(at), id: id, rowid: int64(rowid)})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("choose sessions: %w", err)
	}
	return nil
}

// readDocs reads the documents of c's chosen sessions in one statement, in
// their order, with their events' packs (pack.go): the events of a packed
// session are its pack, one row, where reading them from events takes an
// index step and a look-up of the table by rowid per event. It returns the
// indexes of the sessions that have no pack, whose events readAndEncode
// reads as Session does. Their rowids (or else their ids) are bound as one
// JSON array read with json_each (https://sqlite.org/json1.html#jeach; its
// key is the index in the array), which CROSS JOIN makes the outer loop
// (https://sqlite.org/optoverview.html#crossjoin): one seek of the sessions
// table by rowid per session, or one look-up of its key (sessions_by_id)
// and then the seek, as Search's join does, and one seek of event_packs by
// the same rowid.
func (c *exportChunk) readDocs(ctx context.Context, tx *sql.Tx, tenant string) (unpacked []int, err error) {
	c.list = c.list[:0]
	c.spans, c.bytes = c.spans[:0], c.bytes[:0]
	if c.unpacked == nil { // nil would read every session's events
		c.unpacked = make([]int, 0, report.ExportChunk)
	}
	c.unpacked = c.unpacked[:0]
	if len(c.chosen) == 0 {
		return nil, nil
	}
	c.ids = append(c.ids[:0], '[')
	for i := range c.chosen {
		if i > 0 {
			c.ids = append(c.ids, ',')
		}
		if c.rowids {
			c.ids = strconv.AppendInt(c.ids, c.chosen[i].rowid, 10)
		} else {
			c.ids = jsonenc.AppendString(c.ids, c.chosen[i].id, false)
		}
	}
	c.ids = append(c.ids, ']')
	q := docsByID
	if c.rowids {
		q = docsByRowid
	}
	rows, err := tx.QueryContext(ctx, q, string(c.ids), tenant)
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	defer rows.Close()
	var (
		r    docReader
		i    intColumn
		doc  sql.RawBytes
		pack = packedEvents{joined: joinedEvents{c: &c.chunk}}
	)
	for rows.Next() {
		pack.missing = false
		if err := rows.Scan(&i, &doc, &pack); err != nil {
			return nil, fmt.Errorf("scan session: %w", err)
		}
		// Each chosen session has its row in the snapshot it was chosen
		// in; the check only guards the order the lines are written in.
		k := len(c.list)
		if int(i) != k {
			return nil, fmt.Errorf("read sessions: session %d read as %d", i, k)
		}
		if pack.missing {
			c.unpacked = append(c.unpacked, k)
		} else {
			c.spans[len(c.spans)-1].session = k
		}
		c.list = append(c.list, report.StoredDetail{})
		if err := r.decode(doc, &c.list[k].Session); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	if len(c.list) != len(c.chosen) {
		return nil, fmt.Errorf("read sessions: %d of %d", len(c.list), len(c.chosen))
	}
	return c.unpacked, nil
}

// packedEvents scans readDocs' pack column: NULL for a session without a
// pack, else a span of the chunk as joinedEvents adds it.
type packedEvents struct {
	joined  joinedEvents
	missing bool
}

func (p *packedEvents) Scan(src any) error {
	if src == nil {
		p.missing = true
		return nil
	}
	return p.joined.Scan(src)
}

// The statements of readDocs: by the sessions' rowids, or by their ids,
// each session with its pack (NULL without one, or with a pack whose owner
// is another session, see eventPacks). The tenant is checked either way; the rowids were read in the same snapshot, by a statement of
// the tenant's.
const (
	docsByRowid = `WITH c(i, r) AS MATERIALIZED (SELECT key, value FROM json_each(?1))
		SELECT c.i, d.doc, p.events FROM c CROSS JOIN sessions d ON d.rowid = c.r
			LEFT JOIN event_packs p ON p.session = d.rowid AND p.tenant = d.tenant AND p.session_id = d.session_id
			WHERE d.tenant = ?2`
	docsByID = `WITH c(i, session_id) AS MATERIALIZED (SELECT key, value FROM json_each(?1))
		SELECT c.i, d.doc, p.events FROM c CROSS JOIN sessions d ON d.tenant = ?2 AND d.session_id = c.session_id
			LEFT JOIN event_packs p ON p.session = d.rowid AND p.tenant = d.tenant AND p.session_id = d.session_id`
)

// readAndEncode reads the documents and events of c's sessions in tx, which
// it ends, and encodes the sessions with enc.
func (c *exportChunk) readAndEncode(ctx context.Context, tx *sql.Tx, tenant string, enc report.Encoder) error {
	err := ctx.Err()
	var unpacked []int
	if err == nil {
		unpacked, err = c.readDocs(ctx, tx, tenant)
	}
	if err == nil {
		err = c.readEventsOf(ctx, tx, tenant, unpacked)
	}
	if err == nil {
		err = c.split()
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
	if err = conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&restore); err != nil {
		conn.Close() // nothing changed
		return nil, 0, err
	}
	if _, err = conn.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = %d", exportCachePages)); err != nil {
		// The pragma may have run before ctx ended and failed the call.
		releaseExportConn(conn, restore)
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
