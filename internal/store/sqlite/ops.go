package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// replayStateTable holds the progress of a replay into this database.
const replayStateTable = `CREATE TABLE IF NOT EXISTS replay_state (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	state BLOB NOT NULL
)`

// LoadReplayState returns the saved progress of a replay into this database,
// or nil when none was saved.
func (s *Store) LoadReplayState(ctx context.Context) ([]byte, error) {
	if _, err := s.db.ExecContext(ctx, replayStateTable); err != nil {
		return nil, fmt.Errorf("create replay state: %w", err)
	}
	var state []byte
	err := s.db.QueryRowContext(ctx, `SELECT state FROM replay_state WHERE id = 1`).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read replay state: %w", err)
	}
	return state, nil
}

// SaveReplayState saves the progress of a replay into this database.
func (s *Store) SaveReplayState(ctx context.Context, state []byte) error {
	return s.exclusive(ctx, func() error {
		if _, err := s.db.ExecContext(ctx, replayStateTable); err != nil {
			return fmt.Errorf("create replay state: %w", err)
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO replay_state (id, state) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state`, state); err != nil {
			return fmt.Errorf("save replay state: %w", err)
		}
		return nil
	})
}

// Counts is how much a store holds.
type Counts struct {
	Sessions int64 `json:"sessions"`
	Events   int64 `json:"events"`
}

// Counts counts the sessions and events of every tenant.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	if err := s.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM events)`).
		Scan(&c.Sessions, &c.Events); err != nil {
		return c, fmt.Errorf("count: %w", err)
	}
	return c, nil
}

// SessionDocs calls fn with every session's stored document (tenant, id,
// JSON), in (tenant, id) order, for comparing two versions document for
// document.
func (s *Store) SessionDocs(ctx context.Context, fn func(tenant, id string, doc []byte) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT tenant, session_id, doc FROM sessions ORDER BY tenant, session_id`)
	if err != nil {
		return fmt.Errorf("read sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tenant, id string
		var doc []byte
		if err := rows.Scan(&tenant, &id, &doc); err != nil {
			return fmt.Errorf("read sessions: %w", err)
		}
		if err := fn(tenant, id, doc); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Forgotten is what Forget removed.
type Forgotten struct {
	Sessions int64 `json:"sessions"`
	Events   int64 `json:"events"`
}

// Forget erases a contact of a tenant: every session of the contact and every
// event of those sessions, and any other event the contact sent.
func (s *Store) Forget(ctx context.Context, tenant, contactID string) (Forgotten, error) {
	var f Forgotten
	err := s.exclusive(ctx, func() error {
		var err error
		f, err = s.forget(ctx, tenant, contactID)
		return err
	})
	return f, err
}

// forget is Forget, on a connection of the pool.
func (s *Store) forget(ctx context.Context, tenant, contactID string) (Forgotten, error) {
	var f Forgotten
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return f, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// The contact's sessions: derived ones by contact id, explicit ones by
	// any event of the contact in them.
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS forget_sessions (session_id TEXT PRIMARY KEY)`); err != nil {
		return f, fmt.Errorf("forget: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM forget_sessions`); err != nil {
		return f, fmt.Errorf("forget: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO forget_sessions
		SELECT session_id FROM sessions WHERE tenant = ?1 AND contact_id = ?2
		UNION SELECT session_id FROM events WHERE tenant = ?1 AND json_extract(CAST(body AS TEXT), '$.contact.id') = ?2`,
		tenant, contactID); err != nil {
		return f, fmt.Errorf("forget: find sessions: %w", err)
	}
	const doomed = `SELECT id FROM events WHERE tenant = ?1 AND
		(session_id IN (SELECT session_id FROM forget_sessions) OR json_extract(CAST(body AS TEXT), '$.contact.id') = ?2)`
	// The words of the contact's messages leave the full-text index too.
	if err := unindex(ctx, tx, `SELECT mn FROM message_sessions WHERE event IN (`+doomed+`)`, tenant, contactID); err != nil {
		return f, fmt.Errorf("forget: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id IN (`+doomed+`)`, tenant, contactID)
	if err != nil {
		return f, fmt.Errorf("forget: delete events: %w", err)
	}
	f.Events, _ = res.RowsAffected()
	// A folded name leaves contact_names when no other session of the tenant
	// has it (names are personal data; the table is scanned by name parts).
	if _, err := tx.ExecContext(ctx, `DELETE FROM contact_names WHERE tenant = ?1
		AND name IN (SELECT contact_name_folded FROM sessions
			WHERE tenant = ?1 AND session_id IN (SELECT session_id FROM forget_sessions))
		AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.tenant = ?1 AND s.contact_name_folded = contact_names.name
			AND s.session_id NOT IN (SELECT session_id FROM forget_sessions))`, tenant); err != nil {
		return f, fmt.Errorf("forget: delete contact names: %w", err)
	}
	for _, table := range []string{"session_tags", "session_info", "session_protocols", "session_marks", "session_buckets", "sessions"} {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tenant = ? AND session_id IN (SELECT session_id FROM forget_sessions)`, tenant)
		if err != nil {
			return f, fmt.Errorf("forget: delete from %s: %w", table, err)
		}
		if table == "sessions" {
			f.Sessions, _ = res.RowsAffected()
		}
	}
	if err := tx.Commit(); err != nil {
		return f, fmt.Errorf("forget: commit: %w", err)
	}
	return f, nil
}
