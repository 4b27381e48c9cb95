// Package sqlite is the embedded store: sessions and events in one SQLite
// database file (WAL mode), for running chatreport on one machine.
package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
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
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(OFF)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create sqlite schema in %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate sqlite schema in %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// schemaVersion is the PRAGMA user_version of a database whose derived
// tables are complete.
const schemaVersion = 2

// migrate fills what the schema of an older database lacked: version 1 added
// the full-text index, which the trigger only fills for new events.
func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v >= schemaVersion {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if v < 1 {
		for _, q := range []string{`
			INSERT INTO message_rows (tenant, event_id)
			SELECT tenant, event_id FROM events
			WHERE type = 'message' AND coalesce(json_extract(CAST(body AS TEXT), '$.text'), '') <> ''
			ON CONFLICT (tenant, event_id) DO NOTHING`, `
			INSERT INTO message_words (rowid, text)
			SELECT r.id, json_extract(CAST(e.body AS TEXT), '$.text')
			FROM message_rows r JOIN events e ON e.tenant = r.tenant AND e.event_id = r.event_id`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("index message words: %w", err)
			}
		}
	}
	if v < 2 {
		// Version 2 keeps times in milliseconds instead of nanoseconds,
		// which wrapped outside the years 1678 to 2262.
		for _, q := range []string{
			`UPDATE events SET occurred_at = occurred_at / 1000000`,
			`UPDATE sessions SET started_at = started_at / 1000000`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("times to milliseconds: %w", err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
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
	ch, err := fn(ctx, reader{tx})
	if err != nil {
		return err
	}
	if err := apply(ctx, tx, &ch); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

type reader struct{ tx *sql.Tx }

func (r reader) Known(ctx context.Context, refs []event.Ref) (map[event.Ref]bool, error) {
	known := map[event.Ref]bool{}
	stmt, err := r.tx.PrepareContext(ctx, `SELECT 1 FROM events WHERE tenant = ? AND event_id = ?`)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	defer stmt.Close()
	var one int
	for _, ref := range refs {
		switch err := stmt.QueryRowContext(ctx, ref.Tenant, ref.EventID).Scan(&one); {
		case err == nil:
			known[ref] = true
		case errors.Is(err, sql.ErrNoRows):
		default:
			return nil, fmt.Errorf("look up event: %w", err)
		}
	}
	return known, nil
}

func (r reader) KeyEvents(ctx context.Context, tenant, key string, since time.Time) ([]session.Stored, error) {
	rows, err := r.tx.QueryContext(ctx, `
		SELECT session_id, body FROM events
		WHERE tenant = ?1 AND session_key = ?2 AND occurred_at >= coalesce(
			(SELECT max(started_at) FROM sessions WHERE tenant = ?1 AND session_key = ?2 AND started_at <= ?3),
			-9223372036854775808)
		ORDER BY occurred_at, event_id`, tenant, key, since.UnixMilli())
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
		out = append(out, st)
	}
	return out, rows.Err()
}

func apply(ctx context.Context, tx *sql.Tx, ch *session.Changes) error {
	if len(ch.Deleted) > 0 {
		for _, q := range []string{
			`DELETE FROM sessions WHERE tenant = ? AND session_id = ?`,
			`DELETE FROM session_tags WHERE tenant = ? AND session_id = ?`,
			`DELETE FROM session_info WHERE tenant = ? AND session_id = ?`,
			`DELETE FROM session_protocols WHERE tenant = ? AND session_id = ?`,
		} {
			if err := execEach(ctx, tx, q, len(ch.Deleted), func(i int) []any {
				return []any{ch.Deleted[i].Tenant, ch.Deleted[i].ID}
			}); err != nil {
				return err
			}
		}
	}
	if err := execEach(ctx, tx, `
		INSERT INTO events (tenant, event_id, session_key, session_id, occurred_at, type, body)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, event_id) DO UPDATE SET session_id = excluded.session_id`,
		len(ch.Events), func(i int) []any {
			e := &ch.Events[i]
			body, _ := json.Marshal(&e.Event) // plain data: always marshals
			return []any{e.Tenant, e.EventID, session.KeyOf(&e.Event), e.SessionID, e.OccurredAt.UnixMilli(), string(e.Type), body}
		}); err != nil {
		return err
	}
	return writeSessions(ctx, tx, ch.Sessions)
}

func writeSessions(ctx context.Context, tx *sql.Tx, sessions []session.Session) error {
	if len(sessions) == 0 {
		return nil
	}
	for _, q := range []string{
		`DELETE FROM session_tags WHERE tenant = ? AND session_id = ?`,
		`DELETE FROM session_info WHERE tenant = ? AND session_id = ?`,
		`DELETE FROM session_protocols WHERE tenant = ? AND session_id = ?`,
	} {
		if err := execEach(ctx, tx, q, len(sessions), func(i int) []any {
			return []any{sessions[i].Tenant, sessions[i].ID}
		}); err != nil {
			return err
		}
	}
	if err := execEach(ctx, tx, `
		INSERT INTO sessions (tenant, session_id, session_key, started_at, channel, contact_id,
			contact_phone_digits, contact_name_lower, handed_off, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, session_id) DO UPDATE SET
			session_key = excluded.session_key, started_at = excluded.started_at,
			channel = excluded.channel, contact_id = excluded.contact_id,
			contact_phone_digits = excluded.contact_phone_digits,
			contact_name_lower = excluded.contact_name_lower,
			handed_off = excluded.handed_off, doc = excluded.doc`,
		len(sessions), func(i int) []any {
			s := &sessions[i]
			doc, _ := json.Marshal(s) // plain data: always marshals
			return []any{s.Tenant, s.ID, s.Key, s.StartedAt.UnixMilli(), s.Channel, s.Contact.ID,
				report.PhoneDigits(s.Contact.Phone), strings.ToLower(s.Contact.Name), s.HandedOff, doc}
		}); err != nil {
		return err
	}
	type row struct{ tenant, id, a, b string }
	var tags, protocols, info []row
	for i := range sessions {
		s := &sessions[i]
		for _, t := range s.Tags {
			tags = append(tags, row{s.Tenant, s.ID, t, ""})
		}
		for _, p := range s.Protocols {
			protocols = append(protocols, row{s.Tenant, s.ID, p, ""})
		}
		for k, v := range s.Info {
			info = append(info, row{s.Tenant, s.ID, k, v})
		}
	}
	if err := execEach(ctx, tx, `INSERT INTO session_tags (tenant, session_id, tag) VALUES (?, ?, ?)`,
		len(tags), func(i int) []any { return []any{tags[i].tenant, tags[i].id, tags[i].a} }); err != nil {
		return err
	}
	if err := execEach(ctx, tx, `INSERT INTO session_protocols (tenant, session_id, protocol) VALUES (?, ?, ?)`,
		len(protocols), func(i int) []any { return []any{protocols[i].tenant, protocols[i].id, protocols[i].a} }); err != nil {
		return err
	}
	return execEach(ctx, tx, `INSERT INTO session_info (tenant, session_id, key, value, value_lower) VALUES (?, ?, ?, ?, ?)`,
		len(info), func(i int) []any {
			return []any{info[i].tenant, info[i].id, info[i].a, info[i].b, strings.ToLower(info[i].b)}
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
