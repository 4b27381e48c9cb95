package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// schemaVersion is the PRAGMA user_version of a database whose derived
// tables are complete and whose layout is schema.sql's.
const schemaVersion = 13

// migrate creates the schema, or brings an older database to it in one
// transaction: version 1 added the full-text index, version 2 turned times
// from nanoseconds into milliseconds, version 3 made events a rowid table
// (keyed into the full-text index directly) and dropped the index by session,
// version 4 keeps contact names folded (report.Fold) instead of lowered,
// version 5 gives the side tables their session's started_at and keeps phone
// digits reversed (the shapes plan.go reads), version 6 adds session_marks
// (agents, queues and outcomes), filled from the stored sessions, version 7
// has the side tables carry their session's channel and handed_off and keeps
// the distinct contact names (contact_names), version 8 keys the full-text
// index by its sessions' starts (rekeyWords), version 9 finds events by a
// hash of their identity (hashRefs), version 10 makes sessions a rowid table
// (rowidSessions), version 11 adds the side tables' indexes keyed by channel
// and handoff (session_tags_by_value_filters, session_info_by_key_filters):
// no row changes, so schema.sql's CREATE INDEX IF NOT EXISTS, run on every
// open, builds them from the stored rows; version 12 adds the words by
// session and the buckets sessions share (fillSessionWords); version 13
// adds event_packs, empty, and the triggers that keep it true (eventPacks):
// the store's packer fills it in the background (pack.go).
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var v, oldEvents int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events'
		AND NOT EXISTS (SELECT 1 FROM pragma_table_info('events') WHERE name = 'id')`).Scan(&oldEvents); err != nil {
		return err
	}
	if oldEvents > 0 {
		// The old table and what hangs off it make way for schema.sql's.
		for _, q := range []string{`DROP TRIGGER IF EXISTS events_index_words`, `DROP INDEX IF EXISTS events_by_key`,
			`DROP INDEX IF EXISTS events_by_session`, `ALTER TABLE events RENAME TO events_old`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("set the old events table aside: %w", err)
			}
		}
	}
	if err := foldNames(ctx, tx); err != nil {
		return fmt.Errorf("fold contact names: %w", err)
	}
	if err := reportShapes(ctx, tx); err != nil {
		return fmt.Errorf("reshape for the report: %w", err)
	}
	if err := carryFilters(ctx, tx); err != nil {
		return fmt.Errorf("carry channel and handoff in the side tables: %w", err)
	}
	if err := hashRefs(ctx, tx); err != nil {
		return fmt.Errorf("hash the events' identities: %w", err)
	}
	if err := rowidSessions(ctx, tx); err != nil {
		return fmt.Errorf("make sessions a rowid table: %w", err)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return err
	}
	if err := eventPacks(ctx, tx); err != nil {
		return fmt.Errorf("add event_packs: %w", err)
	}
	if v >= schemaVersion {
		return tx.Commit()
	}
	if v < 6 {
		if err := fillMarks(ctx, tx); err != nil {
			return fmt.Errorf("fill session_marks: %w", err)
		}
	}
	if v < 7 {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO contact_names (tenant, name)
			SELECT DISTINCT tenant, contact_name_folded FROM sessions`); err != nil {
			return fmt.Errorf("fill contact_names: %w", err)
		}
	}
	if v >= 3 {
		if v < 8 {
			if err := rekeyWords(ctx, tx); err != nil {
				return fmt.Errorf("rekey the full-text index: %w", err)
			}
		}
		if v < 12 {
			if err := fillSessionWords(ctx, tx); err != nil {
				return fmt.Errorf("index the words by session: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
			return err
		}
		return tx.Commit()
	}
	toMillis := "occurred_at"
	if v < 2 {
		// Before version 2 times were nanoseconds, which wrapped outside
		// the years 1678 to 2262.
		toMillis = "occurred_at / 1000000"
		for _, t := range []string{"sessions", "session_tags", "session_protocols", "session_info"} {
			if _, err := tx.ExecContext(ctx, `UPDATE `+t+` SET started_at = started_at / 1000000`); err != nil {
				return fmt.Errorf("times to milliseconds: %w", err)
			}
		}
	}
	steps := []string{`DROP TABLE IF EXISTS message_rows`, `INSERT INTO message_words (message_words) VALUES ('delete-all')`}
	if oldEvents > 0 {
		steps = append(steps, `
			INSERT INTO events (tenant, event_id, session_key, session_id, occurred_at, type, body)
			SELECT tenant, event_id, session_key, session_id, `+toMillis+`, type, body
			FROM events_old ORDER BY occurred_at, event_id`, `DROP TABLE events_old`)
	}
	for _, q := range steps {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate from version %d: %w", v, err)
		}
	}
	if err := fillRefs(ctx, tx); err != nil {
		return fmt.Errorf("migrate from version %d: %w", v, err)
	}
	if err := rekeyWords(ctx, tx); err != nil {
		return fmt.Errorf("migrate from version %d: %w", v, err)
	}
	if err := fillSessionWords(ctx, tx); err != nil {
		return fmt.Errorf("migrate from version %d: %w", v, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// hashRefs gives the events of a database before version 9 their ref
// column (schema.sql), filled before schema.sql indexes it. The unique index
// of (tenant, event_id) it replaces is dropped by schema.sql.
func hashRefs(ctx context.Context, tx *sql.Tx) error {
	var old int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 AND sum(name = 'ref') = 0 FROM pragma_table_info('events')`).Scan(&old); err != nil || old == 0 {
		return err
	}
	if _, err := tx.ExecContext(ctx, `ALTER TABLE events ADD COLUMN ref INTEGER NOT NULL DEFAULT 0`); err != nil {
		return err
	}
	return fillRefs(ctx, tx)
}

// rowidSessions copies the sessions of a database before version 10, a
// WITHOUT ROWID table, into a rowid table of the same columns (schema.sql),
// in the report's order so that a chunk of an export finds its documents
// side by side; dropping the old table drops its indexes, and schema.sql
// makes the new ones. It runs after the older steps, which read the old
// table's columns.
func rowidSessions(ctx context.Context, tx *sql.Tx) error {
	var old int
	// pragma_table_list (SQLite 3.37) says wr = 1 of a WITHOUT ROWID table.
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_list WHERE schema = 'main' AND name = 'sessions' AND wr = 1`).Scan(&old); err != nil || old == 0 {
		return err
	}
	for _, q := range []string{`CREATE TABLE sessions_new (
			tenant TEXT NOT NULL, session_id TEXT NOT NULL, session_key TEXT NOT NULL, started_at INTEGER NOT NULL,
			channel TEXT NOT NULL, contact_id TEXT NOT NULL, contact_phone_rev TEXT NOT NULL,
			contact_name_folded TEXT NOT NULL, handed_off INTEGER NOT NULL, doc BLOB NOT NULL)`,
		`INSERT INTO sessions_new (tenant, session_id, session_key, started_at, channel, contact_id,
			contact_phone_rev, contact_name_folded, handed_off, doc)
		SELECT tenant, session_id, session_key, started_at, channel, contact_id,
			contact_phone_rev, contact_name_folded, handed_off, doc
		FROM sessions ORDER BY tenant, started_at, session_id`,
		`DROP TABLE sessions`, `ALTER TABLE sessions_new RENAME TO sessions`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// fillRefs hashes the identities of the events whose ref is 0, in chunks of
// rows by id.
func fillRefs(ctx context.Context, tx *sql.Tx) error {
	type row struct {
		id              int64
		tenant, eventID string
	}
	const chunk = 10000
	var rows []row
	for after := int64(math.MinInt64); ; after = rows[len(rows)-1].id {
		rows = rows[:0]
		q, err := tx.QueryContext(ctx, `SELECT id, tenant, event_id FROM events WHERE id > ? AND ref = 0 ORDER BY id LIMIT ?`, after, chunk)
		if err != nil {
			return err
		}
		for q.Next() {
			var r row
			if err := q.Scan(&r.id, &r.tenant, &r.eventID); err != nil {
				q.Close()
				return err
			}
			rows = append(rows, r)
		}
		q.Close()
		if err := q.Err(); err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		if err := execEach(ctx, tx, `UPDATE events SET ref = ? WHERE id = ?`, len(rows), func(i int) []any {
			return []any{refOf(rows[i].tenant, rows[i].eventID), rows[i].id}
		}); err != nil {
			return err
		}
	}
}

// foldNames turns the lowered contact names of a database before version 4
// into folded ones (report.Fold), in place, before schema.sql indexes them.
func foldNames(ctx context.Context, tx *sql.Tx) error {
	var old int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'contact_name_lower'`).Scan(&old); err != nil || old == 0 {
		return err
	}
	for _, q := range []string{`DROP INDEX IF EXISTS sessions_by_start_filters`,
		`ALTER TABLE sessions RENAME COLUMN contact_name_lower TO contact_name_folded`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	type row struct{ tenant, id, name string }
	var change []row
	rows, err := tx.QueryContext(ctx, `SELECT tenant, session_id, contact_name_folded FROM sessions`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.tenant, &r.id, &r.name); err != nil {
			rows.Close()
			return err
		}
		if f := report.Fold(r.name); f != r.name {
			r.name = f
			change = append(change, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	return execEach(ctx, tx, `UPDATE sessions SET contact_name_folded = ? WHERE tenant = ? AND session_id = ?`,
		len(change), func(i int) []any { return []any{change[i].name, change[i].tenant, change[i].id} })
}

// reportShapes brings a database before version 5 to its report shapes: the
// side tables rebuilt with started_at, phone digits reversed in place. The
// indexes that read them are dropped here and made by schema.sql.
func reportShapes(ctx context.Context, tx *sql.Tx) error {
	var old int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'contact_phone_digits'`).Scan(&old); err != nil || old == 0 {
		return err
	}
	steps := append([]string{`DROP INDEX IF EXISTS sessions_by_start_filters`,
		`ALTER TABLE sessions RENAME COLUMN contact_phone_digits TO contact_phone_rev`},
		widenSides("started_at INTEGER NOT NULL", "s.started_at")...)
	for _, q := range steps {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	type row struct{ tenant, id, rev string }
	var change []row
	rows, err := tx.QueryContext(ctx, `SELECT tenant, session_id, contact_phone_rev FROM sessions WHERE contact_phone_rev <> ''`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.tenant, &r.id, &r.rev); err != nil {
			rows.Close()
			return err
		}
		r.rev = reverse(r.rev)
		change = append(change, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	return execEach(ctx, tx, `UPDATE sessions SET contact_phone_rev = ? WHERE tenant = ? AND session_id = ?`,
		len(change), func(i int) []any { return []any{change[i].rev, change[i].tenant, change[i].id} })
}

// widenSides are the statements that rebuild the side tables (tags,
// protocols, information) with more columns after their own, defined by
// defs (every column after the table's own, the old ones included) and
// filled with each row's old columns and then sel, read from its session
// (s). SQLite cannot add a column to a primary key in place.
func widenSides(defs, sel string) []string {
	var steps []string
	for _, t := range []struct{ name, cols, key string }{
		{"session_tags", "tag TEXT NOT NULL", "tag"},
		{"session_protocols", "protocol TEXT NOT NULL", "protocol"},
		{"session_info", "key TEXT NOT NULL, value TEXT NOT NULL, value_lower TEXT NOT NULL", "key"},
	} {
		steps = append(steps,
			`CREATE TABLE `+t.name+`_new (tenant TEXT NOT NULL, session_id TEXT NOT NULL, `+t.cols+`,
				`+defs+`, PRIMARY KEY (tenant, session_id, `+t.key+`)) WITHOUT ROWID`,
			`INSERT INTO `+t.name+`_new SELECT x.*, `+sel+` FROM `+t.name+` x
				JOIN sessions s ON s.tenant = x.tenant AND s.session_id = x.session_id`,
			`DROP TABLE `+t.name, `ALTER TABLE `+t.name+`_new RENAME TO `+t.name)
	}
	return steps
}

// carryFilters rebuilds the side tables of a database before version 7 with
// their session's channel and handed_off. The indexes that read them go
// with the old tables and are made by schema.sql.
func carryFilters(ctx context.Context, tx *sql.Tx) error {
	var old int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 AND sum(name = 'channel') = 0 FROM pragma_table_info('session_tags')`).Scan(&old); err != nil || old == 0 {
		return err
	}
	steps := widenSides("started_at INTEGER NOT NULL, channel TEXT NOT NULL, handed_off INTEGER NOT NULL", "s.channel, s.handed_off")
	for _, q := range steps {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// fillMarks writes the session_marks of every stored session, from its
// document, in chunks.
func fillMarks(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT doc FROM sessions`)
	if err != nil {
		return err
	}
	var batch []*session.Session
	flush := func() error {
		err := writeMarks(ctx, tx, batch)
		batch = batch[:0]
		return err
	}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			rows.Close()
			return err
		}
		var s session.Session
		if err := json.Unmarshal(doc, &s); err != nil {
			rows.Close()
			return fmt.Errorf("a stored session: %w", err)
		}
		batch = append(batch, &s)
		if len(batch) == 2000 {
			if err := flush(); err != nil {
				rows.Close()
				return err
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}

// rekeyWords builds the full-text index of version 8 from the stored
// messages: each keyed by its session's start bucket and numbered within it
// (schema.sql), written in rowid order so that FTS5 appends to its doclists.
// A message of no stored session is found by no search, and not indexed.
func rekeyWords(ctx context.Context, tx *sql.Tx) error {
	for _, q := range []string{
		`INSERT INTO message_words (message_words) VALUES ('delete-all')`,
		`DELETE FROM message_sessions`,
		`INSERT INTO message_sessions (mn, event, tenant, session_id)
		SELECT b * 1048576 + row_number() OVER (PARTITION BY b ORDER BY id) - 1, id, tenant, session_id FROM (
			SELECT ` + bucketSQL + ` AS b, e.id, e.tenant, e.session_id FROM events e
			CROSS JOIN sessions s ON s.tenant = e.tenant AND s.session_id = e.session_id
			WHERE e.type = 'message' AND coalesce(json_extract(CAST(e.body AS TEXT), '$.text'), '') <> '')
		ORDER BY 1`,
		`INSERT INTO message_words (rowid, text)
		SELECT ~m.mn, json_extract(CAST(e.body AS TEXT), '$.text') FROM message_sessions m
		CROSS JOIN events e ON e.id = m.event ORDER BY m.mn DESC`,
		// One statement this large leaves a dozen segments, each of which
		// every full-text test of a session seeks: merged into one, the
		// test costs a seek per word (at 200,000 sessions: 26 s).
		`INSERT INTO message_words (message_words) VALUES ('optimize')`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// fillSessionWords builds session_words, session_buckets and shared_buckets
// (version 12) from the indexed messages and the stored sessions. In
// session_words each session has one row, all its messages' texts under the
// rowid of its newest-keyed message (schema.sql). message_sessions is read in key
// order, descending, so a bucket's sessions come together and the rows are
// written in ascending rowid order, a few thousand per statement, then
// merged into one segment as rekeyWords does.
func fillSessionWords(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO session_words (session_words) VALUES ('delete-all')`); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT m.mn, m.tenant, m.session_id, json_extract(CAST(e.body AS TEXT), '$.text')
		FROM message_sessions m CROSS JOIN events e ON e.id = m.event ORDER BY m.mn DESC`)
	if err != nil {
		return err
	}
	defer rows.Close()
	type message struct {
		key                   int64
		tenant, session, text string
	}
	var bucketRows, chunk []message
	cur := int64(-1 << 62)
	flush := func(last bool) error {
		// A bucket's rows make its sessions' rows, in the order of
		// their first (greatest) key.
		if len(bucketRows) > 0 {
			chunk = append(chunk, bucketRows...)
			bucketRows = bucketRows[:0]
		}
		if len(chunk) < 20000 && !last || len(chunk) == 0 {
			return nil
		}
		err := addSessionWords(ctx, tx, len(chunk), func(i int) (int64, string, string, string) {
			m := &chunk[i]
			return m.key, m.tenant, m.session, m.text
		})
		chunk = chunk[:0]
		return err
	}
	for rows.Next() {
		var mn int64
		var tenant, id string
		var text sql.NullString
		if err := rows.Scan(&mn, &tenant, &id, &text); err != nil {
			return err
		}
		if b := mn >> wordBits; b != cur {
			if err := flush(false); err != nil {
				return err
			}
			cur = b
		}
		bucketRows = append(bucketRows, message{mn, tenant, id, text.String})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := flush(true); err != nil {
		return err
	}
	for _, q := range []string{`INSERT INTO session_words (session_words) VALUES ('optimize')`,
		`INSERT OR IGNORE INTO session_buckets (bucket, tenant, session_id)
		SELECT ` + bucketSQL + `, s.tenant, s.session_id FROM sessions s ORDER BY 1, 2, 3`,
		`INSERT OR IGNORE INTO shared_buckets (bucket) SELECT bucket FROM session_buckets GROUP BY bucket HAVING count(*) > 1`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// eventPacks creates event_packs (version 13) and the triggers that delete
// a pack whenever what it copies may have changed, if they do not exist:
// a database of an older version gets the table empty, and the store's
// packer fills it between updates (pack.go). A pack is keyed by its
// session's rowid; rowidSessions, which renumbers the sessions, runs before
// and only on databases older than version 10, which had no packs.
//
// A pack holds what eventsStatement reads of its session: its events'
// count and bodies in event order, joined by eventSep. It is true while its
// session's row and the session's events are unchanged, so:
//   - any update of the session's row (an update writes the row or the
//     document of every session it changes, and a new or moved event
//     always changes its sessions' documents: their event count, or start
//     and last activity) deletes it, as does deleting the row;
//   - an event that moves to another session, or is deleted (Forget
//     deletes events of a contact from sessions it keeps), deletes the
//     packs of the sessions it left and joined.
//
// A trigger runs in the statement's transaction
// (https://sqlite.org/lang_createtrigger.html), so no reader ever sees a
// session's new events beside its old pack.
//
// Each trigger also puts the rowid of a session whose pack it deletes in
// pack_todo, and the deletion of a session its rowid, for the packer's next
// sweep (pack.go): a session without a pack, what most updates change,
// adds nothing. A rowid pack_todo holds already (a session packed again
// by a sweep after a trigger queued it) is not inserted again: the
// triggers test for it rather than INSERT OR IGNORE, because the conflict
// policy of the statement that fires a trigger (the sessions' upsert)
// replaces the one of the trigger's statements
// (https://sqlite.org/lang_createtrigger.html), which made the upsert fail
// on the duplicate.
//
// A pack names its session by rowid and also by its owner (tenant,
// session_id), and every statement that reads a pack joins on all three.
// sessions has no INTEGER PRIMARY KEY, so its rowids are not kept stable:
// "the VACUUM command will change rowids for tables that do not declare an
// INTEGER PRIMARY KEY" (https://sqlite.org/rowidtable.html,
// https://sqlite.org/lang_vacuum.html), and a .dump and restore renumbers
// them, which no trigger sees. A pack whose rowid now names another
// session reads as no pack, and the packer deletes it (packOrphans) and
// packs the session again.
func eventPacks(ctx context.Context, tx *sql.Tx) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS event_packs (session INTEGER PRIMARY KEY, tenant TEXT NOT NULL, session_id TEXT NOT NULL, events BLOB NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS pack_todo (session INTEGER PRIMARY KEY)`,
		`CREATE TRIGGER IF NOT EXISTS sessions_unpack_update AFTER UPDATE ON sessions BEGIN
			INSERT INTO pack_todo (session) SELECT session FROM event_packs WHERE session = old.rowid
				AND NOT EXISTS (SELECT 1 FROM pack_todo WHERE session = old.rowid);
			DELETE FROM event_packs WHERE session = old.rowid; END`,
		`CREATE TRIGGER IF NOT EXISTS sessions_unpack_delete AFTER DELETE ON sessions BEGIN
			INSERT INTO pack_todo (session) SELECT old.rowid
				WHERE NOT EXISTS (SELECT 1 FROM pack_todo WHERE session = old.rowid);
			DELETE FROM event_packs WHERE session = old.rowid; END`,
		`CREATE TRIGGER IF NOT EXISTS events_unpack_move AFTER UPDATE OF session_id ON events BEGIN
			INSERT INTO pack_todo (session) SELECT p.session FROM event_packs p WHERE p.session IN (SELECT rowid
				FROM sessions WHERE tenant = old.tenant AND session_id IN (old.session_id, new.session_id))
				AND NOT EXISTS (SELECT 1 FROM pack_todo q WHERE q.session = p.session);
			DELETE FROM event_packs WHERE session IN (SELECT rowid FROM sessions
				WHERE tenant = old.tenant AND session_id IN (old.session_id, new.session_id)); END`,
		`CREATE TRIGGER IF NOT EXISTS events_unpack_delete AFTER DELETE ON events BEGIN
			INSERT INTO pack_todo (session) SELECT p.session FROM event_packs p WHERE p.session IN (SELECT rowid
				FROM sessions WHERE tenant = old.tenant AND session_id = old.session_id)
				AND NOT EXISTS (SELECT 1 FROM pack_todo q WHERE q.session = p.session);
			DELETE FROM event_packs WHERE session IN (SELECT rowid FROM sessions
				WHERE tenant = old.tenant AND session_id = old.session_id); END`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// reverse reverses a string of ASCII digits: the phone digits a database
// before version 5 kept in order (reportShapes).
func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}
