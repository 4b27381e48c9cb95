// Package sqlite is the embedded store: sessions and events in one SQLite
// database file (WAL mode), for running chatreport on one machine.
package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	sqldriver "database/sql/driver"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

//go:embed schema.sql
var schema string

// Store is a SQLite database of sessions and events. It is safe for
// concurrent use; writes are serialised, and an update is planned while
// the one before it writes (pipeline.go).
type Store struct {
	db *sql.DB
	// refs names events in errors (WithRefKey).
	refs idref.Key
	// planMu serialises planning an update (its reads, the assembler and
	// the encoding of what it writes); writer is held by the update that
	// writes (or reads the database to plan), one at a time, in the order
	// they were planned.
	planMu sync.Mutex
	writer chan struct{}
	// epochMu guards epoch, which counts the times the states in memory
	// were dropped because they may not match the database (a write
	// failed, or another connection wrote): a plan made from states taken
	// before a drop is made again.
	epochMu sync.Mutex
	epoch   uint64
	// w is the connection every Update writes on, so that PRAGMA
	// data_version on it tells whether another connection (of this
	// process or another) wrote since (dataVersion, read in the last
	// update): then the states in memory may be stale and are dropped.
	// Both are the writer's.
	w           *sql.Conn
	dataVersion int64
	// foreign counts the times checkWriters found that another connection
	// wrote (or the first time it read dataVersion); the writer's. The
	// packer looks for orphan packs after each (pack.go, packOrphans).
	foreign uint64
	// states are the session keys this store wrote, held in memory between
	// updates (docs/sessions.md, "What memory holds").
	states *session.StateCache[*session.KeyState]
	// ckpt checkpoints the WAL off the writer's path (checkpoint.go).
	ckpt *checkpointer
	// merge merges the full-text index between updates and exports'
	// reads (merge.go); updating counts the updates running, exporting
	// the export readers reading a chunk.
	merge    *merger
	updating atomic.Int32
	// pack packs settled sessions' events between updates and exports'
	// reads (pack.go).
	pack      *packer
	exporting atomic.Int32
	// planner is how searches choose their plan (plan.go): the automatic
	// plan, but in tests that run every plan.
	planner planner
	// forgetSlices, when set, bounds Forget's merge slices per table
	// below mergeBudget (tests: the optimize that follows).
	forgetSlices *int
	// walWait is how long truncateWAL waits for readers at each try
	// (walTruncateWait, shorter in tests).
	walWait time.Duration
	// beforeWrite, when set (by tests), runs as a plan's write begins; an
	// error fails the write, as a full disk would.
	beforeWrite func() error
}

var _ session.Store = (*Store)(nil)

// Option is an option of Open.
type Option func(*options)

type options struct {
	packer, merger bool
	refs           idref.Key
}

// WithPacker runs the store's packer (pack.go) while the store is open.
// Only the process that ingests passes it (docs/operations.md, "Who
// packs and merges"): a sweep costs CPU and takes the write lock in
// slices, which a process that only reads (serve) or writes once (forget,
// index) has no use for, and it would compete with the ingester for the
// lock.
func WithPacker() Option { return func(o *options) { o.packer = true } }

// WithMerger runs the store's full-text merger (merge.go) while the store
// is open. For the same reason only the process that ingests passes it
// (with WithPacker): its pass on open and its slices cost CPU and take the
// write lock. The ingester's merger merges what another process wrote in
// its next pass: on open for a database it opens (a replay's target after
// the swap), else after its next update. The two are separate options so
// that a test of one runs without the other's slices holding the writer.
func WithMerger() Option { return func(o *options) { o.merger = true } }

// WithRefKey names events in the store's errors, which are logged, by
// their references under k (log.ref_key) rather than by their event_ids,
// which may embed a phone number; without it, by the process's random
// key's.
func WithRefKey(k idref.Key) Option { return func(o *options) { o.refs = k } }

// Open opens (creating if needed) the database at path.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(OFF)", "temp_store(MEMORY)", "cache_size(-65536)", fmt.Sprintf("wal_autocheckpoint(%d)", walBoundPages),
		// Reads through a memory map: a page the 64 MiB cache misses costs
		// no pread system call (15 % of the export's CPU without it).
		"mmap_size(17179869184)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("create or migrate sqlite schema in %s: %w", path, err)
	}
	w, err := writerConn(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	ckpt, err := startCheckpointer(ctx, db)
	if err != nil {
		w.Close()
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	states := session.NewStateCache(session.DefaultStateBudget, session.DefaultStateIdle, (*session.KeyState).Cost)
	s := &Store{db: db, refs: o.refs, writer: make(chan struct{}, 1), w: w, states: states, ckpt: ckpt, walWait: walTruncateWait}
	if o.merger {
		s.merge = startMerger(s)
	}
	if o.packer {
		s.pack = startPacker(s)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.pack.stop()
	s.merge.stop()
	s.ckpt.stop()
	s.w.Close()
	return s.db.Close()
}

// Packs reports whether the store runs the packer (WithPacker).
func (s *Store) Packs() bool { return s.pack != nil }

// Merges reports whether the store runs the full-text merger (WithMerger).
func (s *Store) Merges() bool { return s.merge != nil }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// writerCacheKiB is the writer's page cache, in KiB of pages ("PRAGMA
// cache_size = -N": https://sqlite.org/pragma.html#pragma_cache_size),
// smaller than the readers' 64 MiB: the ingester's resident memory is
// bounded (docs/performance.md, "Held events encoded"), and each cached
// page costs twice its size there, since SQLite allocates a page with its
// header (4 KiB and ~200 bytes) and the C allocator of modernc.org/libc
// rounds that up to its 8 KiB size class. It is sized for the pages a
// batch of up to 4,000 events changes: when they outgrow the cache, SQLite
// writes some of them to the WAL before the commit ("spills":
// https://www.sqlite.org/pragma.html#pragma_cache_spill), writes them again
// when they change again and reads them back with pread. At 16 MiB that was
// 5-6 % of the ingester's CPU in the steady and late phases by profile, and
// the pread of pages the cache had no room for another 3-4 %; at 32 MiB the
// ingester's peak RSS with 100,000 open sessions is ~225 MiB, under its 256
// (docs/performance.md, "SQLite ingest: the writer's page cache and FTS5's
// automerge").
const writerCacheKiB = 32 << 10

// writerConn is a connection of db for the writer. It reads without the
// memory map the readers use: pages read through a map count in the
// process's resident memory (the whole file, over time, for the ingester,
// which touches every key's pages), where pages read with read() stay in
// the kernel's page cache; and with a page cache of writerCacheKiB.
// mmap_size and cache_size are per connection:
// https://www.sqlite.org/pragma.html#pragma_mmap_size
func writerConn(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	w, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := w.ExecContext(ctx, `PRAGMA mmap_size = 0`); err != nil {
		w.Close()
		return nil, fmt.Errorf("writer without memory map: %w", err)
	}
	if _, err := w.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = %d`, -writerCacheKiB)); err != nil {
		w.Close()
		return nil, fmt.Errorf("writer's page cache: %w", err)
	}
	return w, nil
}

// begin starts a write transaction on the writer's connection, and on a
// new one if that one broke: its data_version is another connection's, so
// memory is dropped (no data_version is 0).
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if !errors.Is(err, sql.ErrConnDone) && !errors.Is(err, sqldriver.ErrBadConn) {
		return tx, err
	}
	s.w.Close()
	if s.w, err = writerConn(ctx, s.db); err != nil {
		return nil, err
	}
	s.dataVersion = 0
	return s.w.BeginTx(ctx, nil)
}

// checkWriters drops the states in memory when another connection wrote
// since the last update: "The integer values returned by two invocations
// of "PRAGMA data_version" from the same connection will be different if
// changes were committed to the database by any other connection in the
// interim" (https://www.sqlite.org/pragma.html#pragma_data_version). It is
// read inside the write transaction, which holds the write lock: nobody
// writes between it and the commit.
func (s *Store) checkWriters(ctx context.Context, tx *sql.Tx) error {
	var v int64
	if err := tx.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		return fmt.Errorf("read data version: %w", err)
	}
	if v != s.dataVersion {
		s.invalidate()
		s.dataVersion = v
		s.foreign++
	}
	return nil
}

// reader reads for an update: from the states in memory of the keys this
// store wrote, and from the database for the others, inside the update's
// write transaction (begun by txn when first needed).
type reader struct {
	s *Store
	// tx is the update's write transaction once begun; locked: the update
	// holds the writer.
	tx     *sql.Tx
	locked bool
	// knownByDB: Known asks the database, not the states read.
	knownByDB bool
	// serial: the update takes no state from memory and puts none back
	// (a plan made again, pipeline.go); usedMemory: it took a state.
	serial, usedMemory bool
	// epoch is the store's when the update began.
	epoch uint64
	// reads are the keys read, with what KeyEvents returned of each.
	reads      map[session.StateID]*keyRead
	prefetched bool
	// anchorStmt and eventsStmt read a key the states do not hold.
	anchorStmt, eventsStmt *sql.Stmt
}

// keyRead is one key as the update read it: the key's state (taken from
// memory, or built from what the database returned) and the events
// KeyEvents returned, st.Tail(j).
type keyRead struct {
	st         *session.KeyState
	j          int
	tail       []session.Stored
	fromMemory bool
}

var (
	_ session.Reader     = (*reader)(nil)
	_ session.Prefetcher = (*reader)(nil)
)

// Prefetch reads the keys of a batch: from memory when it holds them from
// the request's Since on, else from the database.
func (r *reader) Prefetch(ctx context.Context, reqs []session.KeyRequest) error {
	r.prefetched = true
	for _, q := range reqs {
		if _, err := r.read(ctx, q.Tenant, q.Key, q.Since); err != nil {
			return err
		}
	}
	return nil
}

// read returns the key's events from the session since falls in on.
func (r *reader) read(ctx context.Context, tenant, key string, since time.Time) (*keyRead, error) {
	id := session.StateID{Tenant: tenant, Key: key}
	kr := r.reads[id]
	if kr == nil {
		kr = &keyRead{}
		if !r.serial {
			// Never waits: plans are made one at a time, and a plan
			// made again (serial) takes nothing.
			st, ok, err := r.s.states.Take(ctx, id)
			if err != nil {
				return nil, err
			}
			kr.st, kr.fromMemory = st, ok
			r.usedMemory = r.usedMemory || ok
		}
		r.reads[id] = kr
	}
	if kr.fromMemory {
		if j, ok := kr.st.Anchor(since); ok {
			kr.j, kr.tail = j, kr.st.Tail(j)
			return kr, nil
		}
	}
	st, err := r.readKey(ctx, tenant, key, since)
	if err != nil {
		return nil, err
	}
	kr.st, kr.j, kr.tail, kr.fromMemory = st, 0, st.Events, false
	return kr, nil
}

// readKey reads a key from the database: its events from the start of the
// latest session that started at or before since on, all of them when none
// did (then the state is complete).
func (r *reader) readKey(ctx context.Context, tenant, key string, since time.Time) (*session.KeyState, error) {
	tx, err := r.txn(ctx)
	if err != nil {
		return nil, err
	}
	if r.anchorStmt == nil {
		if r.anchorStmt, err = tx.PrepareContext(ctx, `SELECT max(started_at) FROM sessions
			WHERE tenant = ? AND session_key = ? AND started_at <= ?`); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		if r.eventsStmt, err = tx.PrepareContext(ctx, `SELECT session_id, body FROM events
			WHERE tenant = ? AND session_key = ? AND occurred_at >= ?
			ORDER BY occurred_at, event_id`); err != nil { // events_by_key_time's order
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	var anchor sql.NullInt64
	if err := r.anchorStmt.QueryRowContext(ctx, tenant, key, since.UnixMilli()).Scan(&anchor); err != nil {
		return nil, fmt.Errorf("query key events: %w", err)
	}
	st := &session.KeyState{Tenant: tenant, Key: key, Complete: !anchor.Valid}
	from := int64(math.MinInt64)
	if anchor.Valid {
		from = anchor.Int64
	}
	rows, err := r.eventsStmt.QueryContext(ctx, tenant, key, from)
	if err != nil {
		return nil, fmt.Errorf("query key events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e session.Stored
		var body []byte
		if err := rows.Scan(&e.SessionID, &body); err != nil {
			return nil, fmt.Errorf("scan key event: %w", err)
		}
		if e.Event, err = decodeStored(body); err != nil {
			return nil, err
		}
		st.Events = append(st.Events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query key events: %w", err)
	}
	return st, nil
}

// decodeStored decodes a stored event's body (encoding/json's encoding of
// event.Event) with event.Decode, the consumer's decoder, which costs about
// a third of encoding/json's Unmarshal (docs/performance.md, "Event codec:
// decoding with jsontext"). A body the store wrote from a decoded event
// reads back as that event (FuzzDecode: decoding what encoding/json made of
// a decoded event gives the same event). A body stored by a release before
// the consumer used Decode reads back as Decode reads it, as the event
// would be read if it came again: a time kept to the millisecond (the
// store orders events by milliseconds anyway) and a message without a
// content_type given Decode's default. A body Decode refuses (stored under
// limits of the contract that changed since) is read with encoding/json.
func decodeStored(body []byte) (*event.Event, error) {
	e, err := event.Decode(body)
	if err == nil {
		return &e, nil
	}
	e = event.Event{}
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("decode stored event: %w", err)
	}
	return &e, nil
}

// Known reports the events stored already. After Prefetch, those are the
// events of the batch among what was read of their keys: every event of a
// key from its request's Since on was read. An event whose id is stored
// under another key, or at another time than the batch says, is not among
// them; writing it finds it (errStoredElsewhere), and the database answers
// again.
func (r *reader) Known(ctx context.Context, refs []event.Ref) (map[event.Ref]bool, error) {
	if r.knownByDB || !r.prefetched {
		return r.knownInDB(ctx, refs)
	}
	out := make(map[event.Ref]bool, len(refs))
	for _, ref := range refs {
		out[ref] = false
	}
	for _, kr := range r.reads {
		for i := range kr.tail {
			ref := kr.tail[i].Ref()
			if _, asked := out[ref]; asked {
				out[ref] = true
			}
		}
	}
	return out, nil
}

// knownInDB asks the database which of refs are stored.
func (r *reader) knownInDB(ctx context.Context, refs []event.Ref) (map[event.Ref]bool, error) {
	tx, err := r.txn(ctx)
	if err != nil {
		return nil, err
	}
	l, _ := newLookup(refs)
	found, err := storedOf(ctx, tx, l)
	if err != nil {
		return nil, err
	}
	known := make(map[event.Ref]bool, len(found))
	for _, ref := range found {
		known[ref] = true
	}
	return known, nil
}

// refOf is the ref column of an event: a hash of its identity (FNV-1a, 64
// bits) that is never 0, the mark of a row a migration has not hashed yet.
func refOf(tenant, eventID string) int64 {
	h := fnv.New64a()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(eventID))
	if v := int64(h.Sum64()); v != 0 {
		return v
	}
	return 1
}

// lookup is a look-up of events by identity (storedOf): the identities
// asked, and their hashes as one JSON array (so that no bound on parameters
// splits the statement).
type lookup struct {
	asked map[event.Ref]bool
	param []byte
}

// newLookup is the look-up of refs, and whether one is among them twice.
func newLookup(refs []event.Ref) (l lookup, twice *event.Ref) {
	hashes := make([]int64, len(refs))
	l.asked = make(map[event.Ref]bool, len(refs))
	for i, ref := range refs {
		hashes[i] = refOf(ref.Tenant, ref.EventID)
		if l.asked[ref] && twice == nil {
			twice = &refs[i]
		}
		l.asked[ref] = true
	}
	l.param, _ = json.Marshal(hashes) // numbers: always marshals
	return l, twice
}

// storedOf returns which of l's identities are stored, in one statement on
// events_by_ref_hash: the rows of their hashes are read, and their
// identities compared (two identities may share a hash). The statement is
// not scoped by tenant: the hash covers the tenant, rows of another tenant
// that share a hash are dropped by the comparison, and nothing read leaves
// this function.
func storedOf(ctx context.Context, tx *sql.Tx, l lookup) ([]event.Ref, error) {
	rows, err := tx.QueryContext(ctx, `SELECT tenant, event_id FROM events INDEXED BY events_by_ref_hash
		WHERE ref IN (SELECT value FROM json_each(?))`, l.param)
	if err != nil {
		return nil, fmt.Errorf("look up events: %w", err)
	}
	defer rows.Close()
	var found []event.Ref
	for rows.Next() {
		var ref event.Ref
		if err := rows.Scan(&ref.Tenant, &ref.EventID); err != nil {
			return nil, fmt.Errorf("look up events: %w", err)
		}
		if l.asked[ref] {
			found = append(found, ref)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up events: %w", err)
	}
	return found, nil
}

func (r *reader) KeyEvents(ctx context.Context, tenant, key string, since time.Time) ([]session.Stored, error) {
	kr, err := r.read(ctx, tenant, key, since)
	if err != nil {
		return nil, err
	}
	return kr.tail, nil
}

// stored reports whether e is among the stored events the update read of
// its key: a change to it moves it to another session; any other event of
// the changes is new.
func (r *reader) stored(e *session.Stored) bool {
	kr := r.reads[session.StateID{Tenant: e.Tenant, Key: session.KeyOf(e.Event)}]
	if kr == nil {
		return false
	}
	i, found := slices.BinarySearchFunc(kr.tail, e, func(x session.Stored, y *session.Stored) int {
		return event.Compare(x.Event, y.Event)
	})
	return found && kr.tail[i].Ref() == e.Ref()
}

// held returns, if the update read s's key from memory (ok), s as the
// state holds it: its start and the fingerprints it was written with, nil
// when it is not stored at all. The state holds every session of the key
// from Sessions[j] on, and a recomputed session starts there or later.
func (r *reader) held(s *session.Session) (h *session.HeldSession, ok bool) {
	kr := r.reads[session.StateID{Tenant: s.Tenant, Key: s.Key}]
	if kr == nil || !kr.fromMemory {
		return nil, false
	}
	for i := range kr.st.Sessions[kr.j:] {
		if h := &kr.st.Sessions[kr.j+i]; h.ID == s.ID {
			return h, true
		}
	}
	return nil, true
}

// release lets go of the states the update took: a failed update leaves
// them out of memory.
func (r *reader) release() {
	for id := range r.reads {
		r.s.states.Release(id)
	}
}

// keep puts the states of the keys read back in memory, as the committed
// changes ch left them (sums: the fingerprints of ch.Sessions as written).
// Changes to a key the update did not read (a caller other than the
// assembler) leave memory unable to follow: it is dropped.
func (r *reader) keep(ch *session.Changes, sums [][]session.Fingerprint) {
	byKey := ch.ByKey(sums)
	if !r.readAll(byKey, ch.Deleted) {
		r.s.states.Reset()
	}
	for id, kr := range r.reads {
		switch kc := byKey[id]; {
		case kc != nil:
			r.s.states.Put(id, kr.st.Advance(kr.j, kr.tail, kc))
		case kr.fromMemory:
			r.s.states.Put(id, kr.st)
		default:
			// Read from the database and unchanged: the state read does
			// not name the key's sessions, so it is not kept.
			r.s.states.Release(id)
		}
	}
}

// readAll reports whether the changes touch only keys the update read.
func (r *reader) readAll(byKey map[session.StateID]*session.KeyChanges, deleted []session.Ref) bool {
	for id := range byKey {
		if r.reads[id] == nil {
			return false
		}
	}
	if len(deleted) == 0 {
		return true
	}
	read := map[session.Ref]bool{}
	for id, kr := range r.reads {
		for i := range kr.tail {
			read[session.Ref{Tenant: id.Tenant, ID: kr.tail[i].SessionID}] = true
		}
	}
	for _, d := range deleted {
		if !read[d] {
			return false
		}
	}
	return true
}

// deleteRows deletes the rows of table of (tenant, session_id) pairs.
func deleteRows(table string) multiRow {
	return multiRow{head: `DELETE FROM ` + table + ` WHERE (tenant, session_id) IN (VALUES `, tail: `)`, cols: 2}
}

// planned is an update's changes and what writing them takes that needs no
// database: the new events with their bodies encoded, the stored ones that
// moved, and the sessions' rows that changed with their fingerprints. An
// update plans while the update before it writes (pipeline.go).
type planned struct {
	ch    session.Changes
	fresh []freshEvent
	// stored looks the new events up (storedElsewhere).
	stored lookup
	moves  []*session.Stored
	// restarted are sessions memory holds with another start bucket;
	// starts, the sessions whose stored start memory does not hold
	// (startsMoved).
	restarted []restarted
	starts    []session.Session
	writes    []sessionWrite
	// sums are the fingerprints of ch.Sessions as written.
	sums [][]session.Fingerprint
}

// freshEvent is a new event and the values of its row that it does not
// hold as they are: its body, key and ref.
type freshEvent struct {
	e    *session.Stored
	body []byte
	key  string
	ref  int64
}

// planWrite encodes what writing ch takes, from what r read. An event new
// twice in ch is an error.
func planWrite(ch session.Changes, r *reader) (*planned, error) {
	p := &planned{ch: ch}
	var refs []event.Ref
	for i := range p.ch.Events {
		e := &p.ch.Events[i]
		if r.stored(e) {
			p.moves = append(p.moves, e)
			continue
		}
		body, _ := json.Marshal(e.Event) // plain data: always marshals
		p.fresh = append(p.fresh, freshEvent{e: e, body: body, key: session.KeyOf(e.Event), ref: refOf(e.Tenant, e.EventID)})
		refs = append(refs, e.Ref())
	}
	if len(refs) > 0 {
		var twice *event.Ref
		if p.stored, twice = newLookup(refs); twice != nil {
			return nil, fmt.Errorf("write events: event %s of tenant %q twice in one write", r.s.refs.Scoped(twice.Tenant, twice.EventID), twice.Tenant)
		}
	}
	for i := range p.ch.Sessions {
		ss := &p.ch.Sessions[i]
		switch h, ok := r.held(ss); {
		case !ok:
			p.starts = append(p.starts, *ss)
		case h != nil && bucket(h.Start.UnixMilli()) != bucket(ss.StartedAt.UnixMilli()):
			p.restarted = append(p.restarted, restarted{ss.Tenant, ss.ID, ss.Key})
		}
	}
	p.writes, p.sums = planSessions(p.ch.Sessions, r)
	return p, nil
}

// apply writes p.
func apply(ctx context.Context, tx *sql.Tx, p *planned) error {
	ch := &p.ch
	for _, del := range []multiRow{deleteRows("sessions"), sideParts[0].del, sideParts[1].del, sideParts[2].del, sideParts[3].del, deleteRows("session_buckets")} {
		if _, err := del.exec(ctx, tx, len(ch.Deleted), func(i int, dst []any) []any {
			return append(dst, ch.Deleted[i].Tenant, ch.Deleted[i].ID)
		}); err != nil {
			return fmt.Errorf("delete sessions: %w", err)
		}
	}
	words, mv, err := writeEvents(ctx, tx, p.fresh, p.stored, p.moves)
	if err != nil {
		return err
	}
	rs, err := startsMoved(ctx, tx, p.starts)
	if err != nil {
		return err
	}
	rs = append(rs, p.restarted...)
	if err := writeSessions(ctx, tx, p.writes); err != nil {
		return err
	}
	if err := noteBuckets(ctx, tx, ch.Sessions); err != nil {
		return err
	}
	return indexWords(ctx, tx, words, mv, rs, ch.Sessions)
}

// insertEvents inserts new events with the ids given.
var insertEvents = multiRow{head: `INSERT INTO events (id, tenant, event_id, session_key, session_id, occurred_at, type, body, ref) VALUES `, cols: 9}

// writeEvents inserts new events (fresh) and moves stored ones to their new
// session. It returns the new messages to index, and the stored messages
// that moved.
func writeEvents(ctx context.Context, tx *sql.Tx, fresh []freshEvent, stored lookup, moves []*session.Stored) ([]word, []moved, error) {
	var mv []moved
	if len(moves) > 0 {
		move, err := tx.PrepareContext(ctx, `UPDATE events INDEXED BY events_by_ref_hash SET session_id = ?
			WHERE ref = ? AND tenant = ? AND event_id = ?`)
		if err != nil {
			return nil, nil, fmt.Errorf("prepare: %w", err)
		}
		defer move.Close()
		for _, e := range moves {
			if _, err := move.ExecContext(ctx, e.SessionID, refOf(e.Tenant, e.EventID), e.Tenant, e.EventID); err != nil {
				return nil, nil, fmt.Errorf("move event: %w", err)
			}
			if e.Type == event.TypeMessage && e.Text != "" {
				mv = append(mv, moved{e.Tenant, e.EventID})
			}
		}
	}
	if len(fresh) == 0 {
		return nil, mv, nil
	}
	// An event id is unique per tenant, and the first event stored wins:
	// one stored under another key, or at another time than the batch
	// says, was not among what the update read of its key.
	if err := storedElsewhere(ctx, tx, stored); err != nil {
		return nil, nil, err
	}
	// The rows take the ids after the last one: the transaction holds the
	// write lock, so no other writer takes them meanwhile, and the ids are
	// the full-text index's rowids without reading them back.
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&last); err != nil {
		return nil, nil, fmt.Errorf("write events: %w", err)
	}
	var words []word
	for i, f := range fresh {
		if e := f.e; e.Type == event.TypeMessage && e.Text != "" {
			words = append(words, word{last + 1 + int64(i), e.Tenant, e.SessionID, e.Text})
		}
	}
	if _, err := insertEvents.exec(ctx, tx, len(fresh), func(i int, dst []any) []any {
		f := &fresh[i]
		return append(dst, last+1+int64(i), f.e.Tenant, f.e.EventID, f.key, f.e.SessionID, f.e.OccurredAt.UnixMilli(), string(f.e.Type), f.body, f.ref)
	}); err != nil {
		return nil, nil, fmt.Errorf("write events: %w", err)
	}
	return words, mv, nil
}

// storedElsewhere returns errStoredElsewhere if any of the events l looks
// up is stored. events_by_ref_hash is not a unique index (hashes may
// collide), so identities are unique because every write passes here (and
// planWrite refuses an event twice in one write).
func storedElsewhere(ctx context.Context, tx *sql.Tx, l lookup) error {
	found, err := storedOf(ctx, tx, l)
	if err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	if len(found) > 0 {
		return errStoredElsewhere
	}
	return nil
}

// indexWords brings the full-text index to the transaction's changes: new
// messages are added, moved ones (mv, and those of the sessions whose start
// moved, rs) deleted and added again under their session's start (see
// schema.sql). It writes message_words last, in one statement to delete and
// one to insert.
func indexWords(ctx context.Context, tx *sql.Tx, words []word, mv []moved, rs []restarted, sessions []session.Session) error {
	again, err := reindexed(ctx, tx, mv, rs)
	if err != nil {
		return err
	}
	words = append(words, again...)
	if len(words) == 0 {
		return nil
	}
	starts := make(map[[2]string]int64, len(sessions))
	for i := range sessions {
		starts[[2]string{sessions[i].Tenant, sessions[i].ID}] = bucket(sessions[i].StartedAt.UnixMilli())
	}
	keys, err := keyWords(ctx, tx, words, starts)
	if err != nil {
		return err
	}
	return addWords(ctx, tx, words, keys)
}

// upsertSessions writes sessions' rows.
var upsertSessions = multiRow{head: `
		INSERT INTO sessions (tenant, session_id, session_key, started_at, channel, contact_id,
			contact_phone_rev, contact_name_folded, handed_off, doc)
		VALUES `, tail: `
		ON CONFLICT (tenant, session_id) DO UPDATE SET
			session_key = excluded.session_key, started_at = excluded.started_at,
			channel = excluded.channel, contact_id = excluded.contact_id,
			contact_phone_rev = excluded.contact_phone_rev,
			contact_name_folded = excluded.contact_name_folded,
			handed_off = excluded.handed_off, doc = excluded.doc`, cols: 10}

// sidePart is a side table of sessions: a session's rows in it, and the
// statements that write them. A session's rows are written as a difference
// from what is stored: its stored rows are read, and only new or changed rows
// are upserted and vanished ones deleted. A session that gains a tag so
// writes one row and one index entry, where deleting and inserting all its
// rows wrote every entry of its tags twice. del deletes sessions' rows.
type sidePart struct {
	table  string
	cols   []string
	upsert multiRow
	del    multiRow
	// drop deletes rows by their primary key.
	drop multiRow
	// key is how many of a row's first values are its primary key.
	key  int
	rows func(s *session.Session, out [][]any) [][]any
}

// newSidePart is the side part of table, whose rows are the values of cols
// (tenant and session_id first), keyed by the first key of them.
func newSidePart(table string, cols []string, key int, rows func(s *session.Session, out [][]any) [][]any) sidePart {
	set := make([]string, 0, len(cols)-key)
	for _, c := range cols[key:] {
		set = append(set, c+" = excluded."+c)
	}
	return sidePart{
		table: table,
		cols:  cols,
		upsert: multiRow{head: `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES `,
			tail: ` ON CONFLICT (` + strings.Join(cols[:key], ", ") + `) DO UPDATE SET ` + strings.Join(set, ", "), cols: len(cols)},
		del:  deleteRows(table),
		drop: multiRow{head: `DELETE FROM ` + table + ` WHERE (` + strings.Join(cols[:key], ", ") + `) IN (VALUES `, tail: `)`, cols: key},
		key:  key,
		rows: rows,
	}
}

// sideParts are the side tables, in the order of their fingerprints after
// the document's (session.HeldSession.Sums).
var sideParts = []sidePart{
	newSidePart("session_tags", []string{"tenant", "session_id", "tag", "started_at", "channel", "handed_off"}, 3,
		func(s *session.Session, out [][]any) [][]any {
			for _, t := range s.Tags {
				out = append(out, []any{s.Tenant, s.ID, t, s.StartedAt.UnixMilli(), s.Channel, handedOff(s)})
			}
			return out
		}),
	newSidePart("session_protocols", []string{"tenant", "session_id", "protocol", "started_at", "channel", "handed_off"}, 3,
		func(s *session.Session, out [][]any) [][]any {
			for _, p := range s.Protocols {
				out = append(out, []any{s.Tenant, s.ID, p, s.StartedAt.UnixMilli(), s.Channel, handedOff(s)})
			}
			return out
		}),
	newSidePart("session_info", []string{"tenant", "session_id", "key", "value", "value_lower", "started_at", "channel", "handed_off"}, 3,
		func(s *session.Session, out [][]any) [][]any {
			for _, k := range slices.Sorted(maps.Keys(s.Info)) {
				v := s.Info[k]
				out = append(out, []any{s.Tenant, s.ID, k, v, strings.ToLower(v), s.StartedAt.UnixMilli(), s.Channel, handedOff(s)})
			}
			return out
		}),
	newSidePart("session_marks", []string{"tenant", "session_id", "kind", "value", "until_ms"}, 4, markRows),
}

// fingerprint identifies what a session's rows hold: the document, or a
// side table's rows (each value with its length, so that no two lists
// encode alike).
func fingerprint(doc []byte, rows [][]any) session.Fingerprint {
	h := sha256.New()
	h.Write(doc)
	var b []byte
	for _, row := range rows {
		b = append(appendValues(append(b[:0], '('), row), ')')
		h.Write(b)
	}
	var f session.Fingerprint
	copy(f[:], h.Sum(nil))
	return f
}

// appendValues appends the encoding of a row's values (strings and
// integers, each string with its length) to b: two lists of values encode
// alike only if they are equal. Values read back from the database may be
// of other types; they are encoded too, never a panic on stored data.
func appendValues(b []byte, vals []any) []byte {
	for _, v := range vals {
		switch v := v.(type) {
		case string:
			b = binary.AppendUvarint(append(b, 's'), uint64(len(v)))
			b = append(b, v...)
		case int64:
			b = binary.AppendVarint(append(b, 'i'), v)
		case []byte: // a stored value SQLite returns as a blob
			b = binary.AppendUvarint(append(b, 'b'), uint64(len(v)))
			b = append(b, v...)
		case nil:
			b = append(b, 'n')
		default:
			// Another type read back from the database (a float, a time)
			// never equals a row built in Go: the row is written again,
			// which is what a stored row that cannot be compared needs.
			s := fmt.Sprint(v)
			b = binary.AppendUvarint(append(b, '?'), uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

// updateDocs replaces sessions' documents, where nothing else of their
// rows changed: no index of sessions holds the document, so none is
// touched (an upsert sets every column and rewrites both indexes' entries).
var updateDocs = multiRow{head: `UPDATE sessions SET doc = v.column3 FROM (VALUES `,
	tail: `) AS v WHERE sessions.tenant = v.column1 AND sessions.session_id = v.column2`, cols: 3}

// sessionWrite is a session to write: which of its rows changed.
type sessionWrite struct {
	s   *session.Session
	doc []byte
	// cols are the sessions row but for the document; row: they changed,
	// else docOnly: only the document did.
	cols         []any
	row, docOnly bool
	// parts[p]: sideParts[p]'s rows changed (rows are the new ones), and
	// clear[p]: the old ones may exist.
	parts [][][]any
	clear []bool
}

// sessionCols is the sessions row of s but for its document (doc).
func sessionCols(s *session.Session) []any {
	return []any{s.Tenant, s.ID, s.Key, s.StartedAt.UnixMilli(), s.Channel, s.Contact.ID,
		report.ReversedPhoneDigits(s.Contact.Phone), report.Fold(s.Contact.Name), handedOff(s)}
}

// handedOff is the handed_off column of s's rows: the side tables carry it
// beside the session's channel (schema.sql), so that a range of them tests
// both without looking the session up.
func handedOff(s *session.Session) int64 {
	if s.HandedOff {
		return 1
	}
	return 0
}

// insertNames adds folded contact names to contact_names (the names the
// contact filter scans, schema.sql).
var insertNames = multiRow{head: `INSERT OR IGNORE INTO contact_names (tenant, name) VALUES `, cols: 2}

// planSessions returns what changed of the sessions: a session the update
// read from memory is compared with the fingerprints it was written with,
// and only its rows that differ are written; a new session of a key read
// from memory has no rows to delete. It returns the fingerprints of every
// session too: its document's, its sessions row's, then each side part's.
func planSessions(sessions []session.Session, r *reader) ([]sessionWrite, [][]session.Fingerprint) {
	if len(sessions) == 0 {
		return nil, nil
	}
	const fixed = 2 // the document, the other columns
	sums := make([][]session.Fingerprint, len(sessions))
	var writes []sessionWrite
	for i := range sessions {
		s := &sessions[i]
		doc, _ := json.Marshal(s) // plain data: always marshals
		w := sessionWrite{s: s, doc: doc, cols: sessionCols(s), parts: make([][][]any, len(sideParts)), clear: make([]bool, len(sideParts))}
		sum := make([]session.Fingerprint, fixed+len(sideParts))
		sum[0], sum[1] = fingerprint(doc, nil), fingerprint(nil, [][]any{w.cols})
		h, ok := r.held(s)
		known := h != nil
		var held []session.Fingerprint
		if known {
			held = h.Sums
		}
		same := func(k int) bool { return ok && len(held) == len(sum) && held[k] == sum[k] }
		w.row = !same(1)
		w.docOnly = !w.row && !same(0)
		changed := w.row || w.docOnly
		for p, part := range sideParts {
			rows := part.rows(s, nil)
			sum[fixed+p] = fingerprint(nil, rows)
			if same(fixed + p) {
				continue
			}
			w.parts[p], w.clear[p] = rows, !ok || known
			changed = true
		}
		sums[i] = sum
		if changed {
			writes = append(writes, w)
		}
	}
	return writes, sums
}

// writeSessions writes the sessions' rows that changed (planSessions).
func writeSessions(ctx context.Context, tx *sql.Tx, writes []sessionWrite) error {
	var rowWrites, docWrites []*sessionWrite
	for i := range writes {
		switch w := &writes[i]; {
		case w.row:
			rowWrites = append(rowWrites, w)
		case w.docOnly:
			docWrites = append(docWrites, w)
		}
	}
	if _, err := upsertSessions.exec(ctx, tx, len(rowWrites), func(i int, dst []any) []any {
		return append(append(dst, rowWrites[i].cols...), rowWrites[i].doc)
	}); err != nil {
		return fmt.Errorf("write sessions: %w", err)
	}
	if _, err := updateDocs.exec(ctx, tx, len(docWrites), func(i int, dst []any) []any {
		return append(dst, docWrites[i].s.Tenant, docWrites[i].s.ID, docWrites[i].doc)
	}); err != nil {
		return fmt.Errorf("write sessions: %w", err)
	}
	// A session's name changes only with its row.
	if _, err := insertNames.exec(ctx, tx, len(rowWrites), func(i int, dst []any) []any {
		return append(dst, rowWrites[i].s.Tenant, report.Fold(rowWrites[i].s.Contact.Name))
	}); err != nil {
		return fmt.Errorf("write contact names: %w", err)
	}
	for p, part := range sideParts {
		if err := part.write(ctx, tx, writes, p); err != nil {
			return fmt.Errorf("write sessions: %w", err)
		}
	}
	return nil
}

// markRows are the rows of session_marks of s: what the agent, queue and
// outcome filters read. Only an at_end row's until_ms is read (the end of
// the session's window, which moves with each event of the session); the
// others hold 0, so that a session's new events leave them as stored and
// writing the difference (sidePart.write) skips them.
func markRows(s *session.Session, out [][]any) [][]any {
	add := func(kind, value string, until int64) { out = append(out, []any{s.Tenant, s.ID, kind, value, until}) }
	for _, a := range s.Agents {
		add("agent", a.ID, 0)
	}
	for _, q := range s.Queues {
		add("queue", q, 0)
	}
	final, atEnd := s.OutcomeMarks()
	for _, o := range final {
		add("outcome", o, 0)
	}
	for _, o := range atEnd {
		add("at_end", o, s.WindowEndsAt.UnixMilli())
	}
	return out
}

// write writes the rows of part (the p-th) that changed in writes: a
// session that may have rows has them read, and only its rows that are not
// stored as they are are upserted, and its stored rows that are not among
// the new ones deleted.
func (part sidePart) write(ctx context.Context, tx *sql.Tx, writes []sessionWrite, p int) error {
	var check []*sessionWrite
	var rows [][]any
	for i := range writes {
		switch w := &writes[i]; {
		case w.clear[p]:
			check = append(check, w)
		default:
			rows = append(rows, w.parts[p]...)
		}
	}
	stored, err := part.stored(ctx, tx, check)
	if err != nil {
		return err
	}
	var b []byte
	for _, w := range check {
		for _, row := range w.parts[p] {
			b = appendValues(b[:0], row[:part.key])
			k := string(b)
			if old, ok := stored[k]; ok {
				delete(stored, k)
				if old.vals == string(appendValues(b[:0], row[part.key:])) {
					continue
				}
			}
			rows = append(rows, row)
		}
	}
	// What is left of stored vanished.
	gone := make([][]any, 0, len(stored))
	for _, k := range slices.Sorted(maps.Keys(stored)) {
		gone = append(gone, stored[k].key)
	}
	if _, err := part.drop.exec(ctx, tx, len(gone), func(i int, dst []any) []any {
		return append(dst, gone[i]...)
	}); err != nil {
		return err
	}
	_, err = part.upsert.exec(ctx, tx, len(rows), func(i int, dst []any) []any {
		return append(dst, rows[i]...)
	})
	return err
}

// storedRow is a stored row of a side part: its primary key, and its other
// values encoded (appendValues).
type storedRow struct {
	key  []any
	vals string
}

// stored reads the stored rows of the sessions of writes, by their encoded
// primary keys.
func (part sidePart) stored(ctx context.Context, tx *sql.Tx, writes []*sessionWrite) (map[string]storedRow, error) {
	out := map[string]storedRow{}
	vals := make([]any, len(part.cols))
	ptrs := make([]any, len(part.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var b []byte
	for from := 0; from < len(writes); from += maxRows {
		chunk := writes[from:min(from+maxRows, len(writes))]
		args := make([]any, 0, 2*len(chunk))
		for _, w := range chunk {
			args = append(args, w.s.Tenant, w.s.ID)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+strings.Join(part.cols, ", ")+` FROM `+part.table+
			` WHERE (tenant, session_id) IN (VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)), ", ")+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			b = appendValues(b[:0], vals[:part.key])
			k := string(b)
			out[k] = storedRow{key: slices.Clone(vals[:part.key]), vals: string(appendValues(b[:0], vals[part.key:]))}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// writeMarks writes the session_marks of sessions that have none.
func writeMarks(ctx context.Context, tx *sql.Tx, sessions []*session.Session) error {
	var rows [][]any
	for _, s := range sessions {
		rows = markRows(s, rows)
	}
	if _, err := sideParts[len(sideParts)-1].upsert.exec(ctx, tx, len(rows), func(i int, dst []any) []any {
		return append(dst, rows[i]...)
	}); err != nil {
		return fmt.Errorf("write session marks: %w", err)
	}
	return nil
}

// execEach runs one prepared statement n times with args(i).
func execEach(ctx context.Context, tx *sql.Tx, query string, n int, args func(i int) []any) error {
	if n == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer stmt.Close()
	for i := 0; i < n; i++ {
		if _, err := stmt.ExecContext(ctx, args(i)...); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}
