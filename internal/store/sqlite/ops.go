package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
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
// event of those sessions, and any other event the contact sent, so that
// nothing of them stays readable in the database file or its WAL
// (docs/operations.md, "Erasure (LGPD)"): the rows are deleted with
// secure_delete on, then both full-text indexes are merged to one segment
// (FTS5 keeps a deleted row's words in its segments until a merge rewrites
// them), zeroing what that frees, and the WAL is checkpointed and
// truncated. When readers (of this process or another) kept the WAL from
// being truncated, Forget returns what it removed and ErrWALKept.
func (s *Store) Forget(ctx context.Context, tenant, contactID string) (Forgotten, error) {
	var f Forgotten
	err := s.exclusive(ctx, func() error {
		var err error
		f, err = s.forget(ctx, tenant, contactID)
		return err
	})
	if err != nil {
		return f, err
	}
	// In slices, as the merger's: an ingester writing the file meanwhile
	// waits for one slice at most; within a budget, or a busy ingester
	// would keep it merging its new segments for good.
	budget, err := s.mergeBudget(ctx)
	if err != nil {
		return f, fmt.Errorf("forget: %w", err)
	}
	if s.forgetSlices != nil {
		for table := range budget {
			budget[table] = min(budget[table], *s.forgetSlices)
		}
	}
	stopped, err := s.mergeInSlices(ctx, nil, 0, nil, true, budget)
	if err != nil {
		return f, fmt.Errorf("forget: merge the full-text indexes: %w", err)
	}
	for _, table := range stopped {
		if err := s.optimize(ctx, table); err != nil {
			return f, fmt.Errorf("forget: merge the full-text indexes: %w", err)
		}
	}
	return f, s.truncateWAL(ctx)
}

// ErrWALKept: Forget (or Vacuum) removed the contact, but readers kept the
// WAL from being truncated, and perhaps from being copied whole into the
// database file: the WAL may still hold images of pages from before the
// erasure (until writes overwrite them), and the file the pages a reader's
// snapshot still needed. Run Forget again once the readers ended.
var ErrWALKept = errors.New("the WAL could not be truncated: a read transaction (an export or a search, of this or another process) held it, or a writer held the database, so the database file and its WAL may still hold the erased rows' old pages; run forget again")

// walTruncateTries is how many times truncateWAL tries, waiting for readers
// walTruncateWait each time.
const (
	walTruncateTries = 3
	walTruncateWait  = 2 * time.Second
)

// truncateWAL copies every page of the WAL into the database file and
// truncates the WAL to zero bytes: "TRUNCATE ... blocks (calls the
// busy-handler callback) until all readers are reading from the database
// file only" and then truncates it; while a read transaction holds a
// snapshot of the WAL it cannot, and reports busy once the busy handler
// gave up (https://www.sqlite.org/pragma.html#pragma_wal_checkpoint), so
// it waits walTruncateWait (Store.walWait), tries walTruncateTries times,
// and then returns ErrWALKept.
func (s *Store) truncateWAL(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("truncate the WAL: %w", err)
	}
	defer conn.Close()
	kept := true
	err = withPragma(ctx, conn, "busy_timeout", strconv.FormatInt(s.walWait.Milliseconds(), 10), func() error {
		for range walTruncateTries {
			var busy, pages, copied int64
			if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &pages, &copied); err != nil {
				return err
			}
			if busy == 0 {
				kept = false
				return nil
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("truncate the WAL: %w", err)
	case kept:
		return ErrWALKept
	}
	return nil
}

// pragmaConn is a connection, or a transaction on one, that pragmas set.
type pragmaConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// withPragma runs fn with PRAGMA name = value on q's connection, and then
// sets it back as it was (an integer, as busy_timeout, secure_delete and
// temp_store are), even when ctx ended, so that the pool's other users of
// the connection do not inherit it.
func withPragma(ctx context.Context, q pragmaConn, name, value string, fn func() error) error {
	var was int64
	if err := q.QueryRowContext(ctx, `PRAGMA `+name).Scan(&was); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if _, err := q.ExecContext(ctx, `PRAGMA `+name+` = `+value); err != nil {
		return fmt.Errorf("%s = %s: %w", name, value, err)
	}
	err := fn()
	if _, rerr := q.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA %s = %d`, name, was)); rerr != nil && err == nil {
		err = fmt.Errorf("%s back to %d: %w", name, was, rerr)
	}
	return err
}

// secureDeletes runs fn with PRAGMA secure_delete on in q's connection
// ("SQLite overwrites deleted content with zeros":
// https://www.sqlite.org/pragma.html#pragma_secure_delete; ON zeroes freed
// pages too, FAST only cells), and then sets it back as it was, so that
// other writes on the connection do not pay for it.
func secureDeletes(ctx context.Context, q pragmaConn, fn func() error) error {
	return withPragma(ctx, q, "secure_delete", "ON", fn)
}

// Vacuum rebuilds the database file (VACUUM:
// https://www.sqlite.org/lang_vacuum.html), so that no page keeps bytes of
// rows deleted before: what Forget cannot zero (the unused space of pages
// that a split, a rewrite of a row or a merge of the full-text index left
// before the erasure, and pages freed before it). It rewrites every page:
// it holds the write lock for all that time (an ingester's writes wait for
// its end, and fail after their busy timeout), the temporary copy goes to a
// file (temp_store FILE on its connection, not the memory the store's
// temporary tables use) and the WAL grows to the size of the database
// before it is checkpointed and truncated (truncateWAL: ErrWALKept when
// readers kept it).
func (s *Store) Vacuum(ctx context.Context) error {
	err := s.exclusive(ctx, func() error {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("vacuum: %w", err)
		}
		defer conn.Close()
		err = withPragma(ctx, conn, "temp_store", "FILE", func() error {
			_, err := conn.ExecContext(ctx, `VACUUM`)
			return err
		})
		if err != nil {
			return fmt.Errorf("vacuum: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.truncateWAL(ctx)
}

// forget is Forget's deletion, on a connection of the pool, with
// secure_delete on.
func (s *Store) forget(ctx context.Context, tenant, contactID string) (Forgotten, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return Forgotten{}, fmt.Errorf("forget: %w", err)
	}
	defer conn.Close()
	var f Forgotten
	err = secureDeletes(ctx, conn, func() error {
		var err error
		f, err = forgetRows(ctx, conn, tenant, contactID)
		return err
	})
	return f, err
}

// forgetRows deletes the contact's rows in one transaction on conn.
func forgetRows(ctx context.Context, conn *sql.Conn, tenant, contactID string) (Forgotten, error) {
	var f Forgotten
	tx, err := conn.BeginTx(ctx, nil)
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
