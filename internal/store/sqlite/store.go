// Package sqlite is the embedded store: sessions and events in one SQLite
// database file (WAL mode), for running chatreport on one machine.
package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

//go:embed schema.sql
var schema string

// Store is a SQLite database of sessions and events. It is safe for
// concurrent use; writes are serialised.
type Store struct {
	db *sql.DB
	mu sync.Mutex // serialises Update: read-compute-write is one transaction
}

var _ session.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(OFF)", "temp_store(MEMORY)", "cache_size(-65536)", "wal_autocheckpoint(16384)",
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
	return &Store{db: db}, nil
}

// reverse reverses a string of ASCII digits.
func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Update runs fn in one write transaction and applies the changes it returns.
func (s *Store) Update(ctx context.Context, fn func(context.Context, session.Reader) (session.Changes, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	r := &reader{tx: tx, stored: map[event.Ref]struct{}{}}
	ch, err := fn(ctx, r)
	if err != nil {
		return err
	}
	if err := apply(ctx, tx, &ch, r.stored); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// reader reads inside the write transaction and remembers which stored
// events it returned: among the changes, those are the ones moved to another
// session, every other event is new.
type reader struct {
	tx     *sql.Tx
	stored map[event.Ref]struct{}
}

// knownChunk is how many event ids one look-up statement asks for.
const knownChunk = 500

func (r *reader) Known(ctx context.Context, refs []event.Ref) (map[event.Ref]bool, error) {
	known := map[event.Ref]bool{}
	byTenant := map[string][]any{}
	for _, ref := range refs {
		byTenant[ref.Tenant] = append(byTenant[ref.Tenant], ref.EventID)
	}
	for tenant, ids := range byTenant {
		for len(ids) > 0 {
			n := min(len(ids), knownChunk)
			if err := r.known(ctx, tenant, ids[:n], known); err != nil {
				return nil, err
			}
			ids = ids[n:]
		}
	}
	return known, nil
}

// known adds which of ids of tenant are stored to known, in one statement
// on events_by_ref.
func (r *reader) known(ctx context.Context, tenant string, ids []any, known map[event.Ref]bool) error {
	rows, err := r.tx.QueryContext(ctx, `SELECT event_id FROM events WHERE tenant = ? AND event_id IN (`+placeholders(len(ids))+`)`,
		append([]any{tenant}, ids...)...)
	if err != nil {
		return fmt.Errorf("look up events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("look up events: %w", err)
		}
		known[event.Ref{Tenant: tenant, EventID: id}] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up events: %w", err)
	}
	return nil
}

func (r *reader) KeyEvents(ctx context.Context, tenant, key string, since time.Time) ([]session.Stored, error) {
	rows, err := r.tx.QueryContext(ctx, `
		SELECT session_id, body FROM events
		WHERE tenant = ?1 AND session_key = ?2 AND occurred_at >= coalesce(
			(SELECT max(started_at) FROM sessions WHERE tenant = ?1 AND session_key = ?2 AND started_at <= ?3),
			-9223372036854775808)
		ORDER BY occurred_at, event_id`, tenant, key, since.UnixMilli()) // events_by_key_time's order
	if err != nil {
		return nil, fmt.Errorf("query key events: %w", err)
	}
	defer rows.Close()
	var out []session.Stored
	for rows.Next() {
		var st session.Stored
		var body []byte
		if err := rows.Scan(&st.SessionID, &body); err != nil {
			return nil, fmt.Errorf("scan key event: %w", err)
		}
		if err := json.Unmarshal(body, &st.Event); err != nil {
			return nil, fmt.Errorf("decode stored event: %w", err)
		}
		r.stored[st.Ref()] = struct{}{}
		out = append(out, st)
	}
	return out, rows.Err()
}

func apply(ctx context.Context, tx *sql.Tx, ch *session.Changes, stored map[event.Ref]struct{}) error {
	if len(ch.Deleted) > 0 {
		for _, q := range []string{
			`DELETE FROM sessions WHERE tenant = ? AND session_id = ?`,
			`DELETE FROM session_tags WHERE tenant = ? AND session_id = ?`,
			`DELETE FROM session_info WHERE tenant = ? AND session_id = ?`,
			`DELETE FROM session_protocols WHERE tenant = ? AND session_id = ?`,
			`DELETE FROM session_marks WHERE tenant = ? AND session_id = ?`,
		} {
			if err := execEach(ctx, tx, q, len(ch.Deleted), func(i int) []any {
				return []any{ch.Deleted[i].Tenant, ch.Deleted[i].ID}
			}); err != nil {
				return err
			}
		}
	}
	words, mv, err := writeEvents(ctx, tx, ch.Events, stored)
	if err != nil {
		return err
	}
	rs, err := startsMoved(ctx, tx, ch.Sessions)
	if err != nil {
		return err
	}
	if err := writeSessions(ctx, tx, ch.Sessions); err != nil {
		return err
	}
	return indexWords(ctx, tx, words, mv, rs, ch.Sessions)
}

// writeEvents inserts new events and moves stored ones to their new session.
// It returns the new messages to index, and the stored messages that moved.
func writeEvents(ctx context.Context, tx *sql.Tx, events []session.Stored, stored map[event.Ref]struct{}) ([]word, []moved, error) {
	if len(events) == 0 {
		return nil, nil, nil
	}
	insert, err := tx.PrepareContext(ctx, `
		INSERT INTO events (tenant, event_id, session_key, session_id, occurred_at, type, body)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, nil, fmt.Errorf("prepare: %w", err)
	}
	defer insert.Close()
	var move *sql.Stmt
	var words []word
	var mv []moved
	for i := range events {
		e := &events[i]
		if _, ok := stored[e.Ref()]; ok {
			if move == nil {
				if move, err = tx.PrepareContext(ctx, `UPDATE events SET session_id = ? WHERE tenant = ? AND event_id = ?`); err != nil {
					return nil, nil, fmt.Errorf("prepare: %w", err)
				}
				defer move.Close()
			}
			if _, err := move.ExecContext(ctx, e.SessionID, e.Tenant, e.EventID); err != nil {
				return nil, nil, fmt.Errorf("move event: %w", err)
			}
			if e.Type == event.TypeMessage && e.Text != "" {
				mv = append(mv, moved{e.Tenant, e.EventID})
			}
			continue
		}
		body, _ := json.Marshal(&e.Event) // plain data: always marshals
		res, err := insert.ExecContext(ctx, e.Tenant, e.EventID, session.KeyOf(&e.Event), e.SessionID, e.OccurredAt.UnixMilli(), string(e.Type), body)
		if err != nil {
			return nil, nil, fmt.Errorf("write event: %w", err)
		}
		if e.Type == event.TypeMessage && e.Text != "" {
			id, err := res.LastInsertId()
			if err != nil {
				return nil, nil, fmt.Errorf("write event: %w", err)
			}
			words = append(words, word{id, e.Tenant, e.SessionID, e.Text})
		}
	}
	return words, mv, nil
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

func writeSessions(ctx context.Context, tx *sql.Tx, sessions []session.Session) error {
	if len(sessions) == 0 {
		return nil
	}
	for _, q := range []string{
		`DELETE FROM session_tags WHERE tenant = ? AND session_id = ?`,
		`DELETE FROM session_info WHERE tenant = ? AND session_id = ?`,
		`DELETE FROM session_protocols WHERE tenant = ? AND session_id = ?`,
		`DELETE FROM session_marks WHERE tenant = ? AND session_id = ?`,
	} {
		if err := execEach(ctx, tx, q, len(sessions), func(i int) []any {
			return []any{sessions[i].Tenant, sessions[i].ID}
		}); err != nil {
			return err
		}
	}
	if err := execEach(ctx, tx, `
		INSERT INTO sessions (tenant, session_id, session_key, started_at, channel, contact_id,
			contact_phone_rev, contact_name_folded, handed_off, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, session_id) DO UPDATE SET
			session_key = excluded.session_key, started_at = excluded.started_at,
			channel = excluded.channel, contact_id = excluded.contact_id,
			contact_phone_rev = excluded.contact_phone_rev,
			contact_name_folded = excluded.contact_name_folded,
			handed_off = excluded.handed_off, doc = excluded.doc`,
		len(sessions), func(i int) []any {
			s := &sessions[i]
			doc, _ := json.Marshal(s) // plain data: always marshals
			return []any{s.Tenant, s.ID, s.Key, s.StartedAt.UnixMilli(), s.Channel, s.Contact.ID,
				reverse(report.PhoneDigits(s.Contact.Phone)), report.Fold(s.Contact.Name), s.HandedOff, doc}
		}); err != nil {
		return err
	}
	type row struct {
		s    *session.Session
		a, b string
	}
	var tags, protocols, info []row
	for i := range sessions {
		s := &sessions[i]
		for _, t := range s.Tags {
			tags = append(tags, row{s, t, ""})
		}
		for _, p := range s.Protocols {
			protocols = append(protocols, row{s, p, ""})
		}
		for k, v := range s.Info {
			info = append(info, row{s, k, v})
		}
	}
	if err := execEach(ctx, tx, `INSERT INTO session_tags (tenant, session_id, tag, started_at) VALUES (?, ?, ?, ?)`,
		len(tags), func(i int) []any {
			return []any{tags[i].s.Tenant, tags[i].s.ID, tags[i].a, tags[i].s.StartedAt.UnixMilli()}
		}); err != nil {
		return err
	}
	if err := execEach(ctx, tx, `INSERT INTO session_protocols (tenant, session_id, protocol, started_at) VALUES (?, ?, ?, ?)`,
		len(protocols), func(i int) []any {
			return []any{protocols[i].s.Tenant, protocols[i].s.ID, protocols[i].a, protocols[i].s.StartedAt.UnixMilli()}
		}); err != nil {
		return err
	}
	if err := execEach(ctx, tx, `INSERT INTO session_info (tenant, session_id, key, value, value_lower, started_at) VALUES (?, ?, ?, ?, ?, ?)`,
		len(info), func(i int) []any {
			r := &info[i]
			return []any{r.s.Tenant, r.s.ID, r.a, r.b, strings.ToLower(r.b), r.s.StartedAt.UnixMilli()}
		}); err != nil {
		return err
	}
	return writeMarks(ctx, tx, sessions)
}

// mark is a row of session_marks.
type mark struct {
	s           *session.Session
	kind, value string
}

// marks are the rows of session_marks of s.
func marks(s *session.Session, out []mark) []mark {
	for _, a := range s.Agents {
		out = append(out, mark{s, "agent", a.ID})
	}
	for _, q := range s.Queues {
		out = append(out, mark{s, "queue", q})
	}
	final, atEnd := s.OutcomeMarks()
	for _, o := range final {
		out = append(out, mark{s, "outcome", o})
	}
	for _, o := range atEnd {
		out = append(out, mark{s, "at_end", o})
	}
	return out
}

func writeMarks(ctx context.Context, tx *sql.Tx, sessions []session.Session) error {
	var ms []mark
	for i := range sessions {
		ms = marks(&sessions[i], ms)
	}
	return execEach(ctx, tx, `INSERT OR IGNORE INTO session_marks (tenant, session_id, kind, value, until_ms) VALUES (?, ?, ?, ?, ?)`,
		len(ms), func(i int) []any {
			m := &ms[i]
			return []any{m.s.Tenant, m.s.ID, m.kind, m.value, m.s.WindowEndsAt.UnixMilli()}
		})
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
