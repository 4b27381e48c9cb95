package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// where translates a filter into a SQL condition on the sessions table s.
type where struct {
	conds []string
	args  []any
	// drivers are subqueries, each on the index of a selective condition,
	// among whose session ids every match is.
	drivers []subquery
	// driver is the one chosen to read sessions from (see drive); nil
	// while the sessions of the interval are scanned.
	driver *subquery
}

type subquery struct {
	sql  string
	args []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// in requires the session id to be among those sub selects.
func (w *where) in(sub string, args ...any) {
	w.add("s.session_id IN ("+sub+")", args...)
	w.drivers = append(w.drivers, subquery{sub, args})
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// source is the FROM clause and its arguments, which come before the
// condition's: the sessions table, or the driver's session ids joined to it.
// CROSS JOIN makes SQLite read the driver first.
func (w *where) source() (string, []any) {
	if w.driver == nil {
		return "sessions s WHERE ", nil
	}
	// DISTINCT: a driver yields a session once per way it matches (each
	// of several tags asked for), and the join must see it once.
	return "(SELECT DISTINCT session_id FROM (" + w.driver.sql + ")) AS m CROSS JOIN sessions s WHERE s.session_id = m.session_id AND ", w.driver.args
}

// query is the statement select ... FROM <source> WHERE <conditions> rest,
// with its arguments and then more.
func (w *where) query(selectList, rest string, more ...any) (string, []any) {
	from, args := w.source()
	args = append(append(slices.Clip(args), w.args...), more...)
	return "SELECT " + selectList + " FROM " + from + w.String() + rest, args
}

// driveLimit is how many session ids a driver may select to be read from:
// below it, looking each up beats scanning the interval in report order.
// (A variable so that tests run both plans.)
var driveLimit = 2000

// drive picks the driver that selects the fewest sessions, if it selects
// fewer than driveLimit. SQLite's planner prefers the scan of
// sessions_by_start_filters that yields the report's order, which reads every
// session of the interval even when a protocol matches one; each count here
// stops at driveLimit, so choosing costs little either way.
func (w *where) drive(ctx context.Context, tx *sql.Tx) error {
	best := driveLimit
	for i := range w.drivers {
		d := &w.drivers[i]
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM ("+d.sql+" LIMIT ?)", append(slices.Clip(d.args), driveLimit)...).Scan(&n); err != nil {
			return fmt.Errorf("size a condition: %w", err)
		}
		if n < best {
			best, w.driver = n, d
		}
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// translate returns the condition for the sessions f matches that come
// after c (all when c is nil) in the report order.
func translate(f *report.Filter, c *report.Cursor) *where {
	w := &where{}
	w.add("s.tenant = ?", f.Tenant)
	upper := ceilMilli(f.To)
	if c != nil {
		// The cursor's time is the interval's upper bound, so SQLite
		// starts its scan of sessions_by_start_filters at the cursor. With the
		// bound only inside an OR (or a row value) it scans from the
		// newest session of the interval on every page, which makes a
		// deep export quadratic.
		upper = min(upper, c.StartedAt.UnixMilli()+1)
	}
	w.add("s.started_at >= ? AND s.started_at < ?", ceilMilli(f.From), upper)
	if c != nil {
		w.add("(s.started_at < ? OR s.session_id < ?)", c.StartedAt.UnixMilli(), c.SessionID)
	}
	if f.SessionID != "" {
		w.add("s.session_id = ?", strings.ToLower(f.SessionID))
	}
	// Selective conditions are IN (subquery) on their own index, not
	// correlated EXISTS: SQLite can then drive the search from the few
	// matching sessions instead of probing every session of the interval.
	if f.Protocol != "" {
		w.in(`SELECT p.session_id FROM session_protocols p
			WHERE p.tenant = ? AND p.protocol = ?`, f.Tenant, f.Protocol)
	}
	if len(f.Tags) > 0 {
		tags := dedupe(f.Tags)
		q := `SELECT t.session_id FROM session_tags t
			WHERE t.tenant = ? AND t.tag IN (` + placeholders(len(tags)) + `)`
		args := append([]any{f.Tenant}, anys(tags)...)
		if f.TagMode == report.TagsAll && len(tags) > 1 {
			w.in(q+` GROUP BY t.session_id HAVING count(*) = ?`, append(args, len(tags))...)
		} else {
			w.in(q, args...)
		}
	}
	for _, c := range f.Info {
		infoCondition(w, f.Tenant, c)
	}
	if len(f.Channels) > 0 {
		channels := dedupe(f.Channels)
		w.add("s.channel IN ("+placeholders(len(channels))+")", anys(channels)...)
	}
	if f.Contact != "" {
		contactCondition(w, f.Contact)
	}
	if f.HandedOff != nil {
		w.add("s.handed_off = ?", *f.HandedOff)
	}
	if f.Query != "" {
		queryCondition(w, f.Tenant, f.Query)
	}
	return w
}

// infoCondition: values are compared in value_lower, lowered by Go (Unicode)
// when written, because SQLite's lower() only folds ASCII.
func infoCondition(w *where, tenant string, c report.Condition) {
	const has = `EXISTS (SELECT 1 FROM session_info i
		WHERE i.tenant = s.tenant AND i.session_id = s.session_id AND i.key = ?`
	const in = `SELECT i.session_id FROM session_info i WHERE i.tenant = ? AND i.key = ?`
	v := strings.ToLower(c.Value)
	switch c.Op {
	case report.OpEquals:
		w.in(in+" AND i.value_lower = ?", tenant, c.Key, v)
	case report.OpNotEquals:
		w.add("NOT "+has+" AND i.value_lower = ?)", c.Key, v)
	case report.OpContains:
		w.in(in+" AND instr(i.value_lower, ?) > 0", tenant, c.Key, v)
	case report.OpNotContain:
		w.add("NOT "+has+" AND instr(i.value_lower, ?) > 0)", c.Key, v)
	case report.OpStartsWith:
		// A range of session_info_by_key: every string starting with v
		// sorts from v to v followed by the greatest code point.
		w.in(in+" AND i.value_lower >= ? AND i.value_lower < ? AND instr(i.value_lower, ?) = 1",
			tenant, c.Key, v, v+string(utf8.MaxRune), v)
	case report.OpExists:
		w.in(in, tenant, c.Key)
	case report.OpNotExists:
		w.add("NOT "+has+")", c.Key)
	}
}

func contactCondition(w *where, contact string) {
	conds := []string{"s.contact_id = ?", "instr(s.contact_name_folded, ?) > 0"}
	args := []any{contact, report.Fold(contact)}
	if d, ok := report.PhoneQuery(contact); ok {
		// Either number may lack the country code (and area code): one
		// matches when it ends with the other, of at least MinPhoneDigits.
		conds = append(conds, `s.contact_phone_digits LIKE ?`,
			`(length(s.contact_phone_digits) >= ? AND ? LIKE '%' || s.contact_phone_digits)`)
		args = append(args, "%"+d, report.MinPhoneDigits, d)
	}
	w.add("("+strings.Join(conds, " OR ")+")", args...)
}

// queryCondition matches sessions with a message that has every word of q,
// through the FTS5 index message_words (see schema.sql). The subquery does
// not depend on the outer row, so SQLite runs the full-text match once per
// query, not once per session; joining events gives each message's current
// session.
func queryCondition(w *where, tenant, q string) {
	words := report.Words(q)
	if len(words) == 0 {
		return
	}
	w.add(`s.session_id IN (SELECT e.session_id FROM message_words
		JOIN events e ON e.id = message_words.rowid
		WHERE message_words MATCH ? AND e.tenant = ?)`, matchExpression(words), tenant)
}

// matchExpression is an FTS5 query requiring every word. Each word is a
// quoted string, so no input is FTS5 syntax; a word the tokenizer splits
// ("segunda-via", "123.456") becomes a phrase of adjacent tokens.
func matchExpression(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
	}
	return strings.Join(quoted, " AND ")
}

func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

const newestFirst = " ORDER BY s.started_at DESC, s.session_id DESC"

// readTx begins a read-only transaction: its statements see one snapshot.
// (Read-only transactions begin DEFERRED, so they take no write lock.)
func (s *Store) readTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin read: %w", err)
	}
	return tx, nil
}

// Search returns one page of the sessions f matches, newest first.
func (s *Store) Search(ctx context.Context, f report.Filter, page report.Page) (report.Result, error) {
	if err := errors.Join(f.Validate(), page.Validate()); err != nil {
		return report.Result{}, err
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return report.Result{}, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	w := translate(&f, nil)
	if err := w.drive(ctx, tx); err != nil {
		return report.Result{}, err
	}
	var res report.Result
	q, args := w.query("count(*)", "")
	if err := tx.QueryRowContext(ctx, q, args...).Scan(&res.Total); err != nil {
		return res, fmt.Errorf("count sessions: %w", err)
	}
	res.Items, err = sessions(ctx, tx, translate(&f, page.After), page.Limit+1)
	if err != nil {
		return res, err
	}
	if len(res.Items) > page.Limit {
		res.Items = res.Items[:page.Limit]
		last := res.Items[len(res.Items)-1]
		res.Next = &report.Cursor{StartedAt: last.StartedAt, SessionID: last.ID}
	}
	return res, nil
}

// sessions reads up to limit sessions matching w, newest first.
func sessions(ctx context.Context, tx *sql.Tx, w *where, limit int) ([]session.Session, error) {
	if err := w.drive(ctx, tx); err != nil {
		return nil, err
	}
	q, args := w.query("s.doc", newestFirst+" LIMIT ?", limit)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("search sessions: %w", err)
	}
	defer rows.Close()
	out := []session.Session{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("scan session: %w", err)
		}
		var ss session.Session
		if err := json.Unmarshal(doc, &ss); err != nil {
			return nil, fmt.Errorf("decode session: %w", err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search sessions: %w", err)
	}
	return out, nil
}

// details reads up to limit sessions matching w, newest first, each with its
// events in event order, in one snapshot: a session and its events agree even
// while an update moves events between sessions.
func (s *Store) details(ctx context.Context, tenant string, w *where, limit int) ([]report.Detail, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	list, err := sessions(ctx, tx, w, limit)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	// A session's events are those of its key from its start to its last
	// activity that belong to it (others of the key in that span are of
	// sessions with their own ids), in the order of events_by_key_time.
	stmt, err := tx.PrepareContext(ctx, `SELECT body FROM events
		WHERE tenant = ? AND session_key = ? AND occurred_at BETWEEN ? AND ? AND session_id = ?
		ORDER BY occurred_at, event_id`)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	defer stmt.Close()
	out := make([]report.Detail, len(list))
	for i := range list {
		ss := &list[i]
		out[i].Session = *ss
		if out[i].Events, err = sessionEvents(ctx, stmt, ss); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func sessionEvents(ctx context.Context, stmt *sql.Stmt, ss *session.Session) ([]event.Event, error) {
	rows, err := stmt.QueryContext(ctx, ss.Tenant, ss.Key, ss.StartedAt.UnixMilli(), ss.LastActivityAt.UnixMilli(), ss.ID)
	if err != nil {
		return nil, fmt.Errorf("read session events: %w", err)
	}
	defer rows.Close()
	events := make([]event.Event, 0, ss.Events)
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		events = append(events, event.Event{})
		if err := json.Unmarshal(body, &events[len(events)-1]); err != nil {
			return nil, fmt.Errorf("decode event: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read session events: %w", err)
	}
	return events, nil
}

// Session returns a session of tenant with its events in order.
func (s *Store) Session(ctx context.Context, tenant, id string) (report.Detail, error) {
	w := &where{}
	w.add("s.tenant = ? AND s.session_id = ?", tenant, strings.ToLower(id))
	list, err := s.details(ctx, tenant, w, 1)
	if err != nil {
		return report.Detail{}, err
	}
	if len(list) == 0 {
		return report.Detail{}, report.ErrNotFound
	}
	return list[0], nil
}

// Export calls fn with every session f matches, complete with its events, in
// the order of Search. It reads report.ExportChunk sessions at a time, paging
// by keyset like a client following cursors, so memory stays flat and no
// transaction stays open while fn writes to a slow client. A session that an
// update changes during the export appears as one of its chunk's snapshots.
// Export stops at the first error of fn, or when ctx ends.
func (s *Store) Export(ctx context.Context, f report.Filter, fn func(report.Detail) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	var cur *report.Cursor
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk, err := s.details(ctx, f.Tenant, translate(&f, cur), report.ExportChunk)
		if err != nil {
			return err
		}
		for i := range chunk {
			if err := fn(chunk[i]); err != nil {
				return err
			}
		}
		if len(chunk) < report.ExportChunk {
			return nil
		}
		last := &chunk[len(chunk)-1].Session
		cur = &report.Cursor{StartedAt: last.StartedAt, SessionID: last.ID}
	}
}

// Facets counts the tags, information keys and channels of the sessions of
// tenant that started in [from, to).
func (s *Store) Facets(ctx context.Context, tenant string, from, to time.Time) (report.Facets, error) {
	f := report.Filter{Tenant: tenant, From: from, To: to}
	if err := f.Validate(); err != nil {
		return report.Facets{}, err
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return report.Facets{}, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	const inInterval = `s.tenant = ? AND s.started_at >= ? AND s.started_at < ?`
	args := []any{tenant, ceilMilli(from), ceilMilli(to), report.MaxFacetValues}
	var out report.Facets
	for _, q := range []struct {
		into  *[]report.FacetValue
		query string
	}{
		{&out.Tags, `SELECT t.tag, count(*) AS n FROM sessions s
			JOIN session_tags t ON t.tenant = s.tenant AND t.session_id = s.session_id
			WHERE ` + inInterval + ` GROUP BY t.tag`},
		{&out.InfoKeys, `SELECT i.key, count(*) AS n FROM sessions s
			JOIN session_info i ON i.tenant = s.tenant AND i.session_id = s.session_id
			WHERE ` + inInterval + ` GROUP BY i.key`},
		{&out.Channels, `SELECT s.channel, count(*) AS n FROM sessions s
			WHERE ` + inInterval + ` GROUP BY s.channel`},
	} {
		// ORDER BY the value compares bytes (BINARY), the order Facets promises.
		rows, err := tx.QueryContext(ctx, q.query+" ORDER BY n DESC, 1 LIMIT ?", args...)
		if err != nil {
			return out, fmt.Errorf("count facets: %w", err)
		}
		*q.into = []report.FacetValue{}
		for rows.Next() {
			var v report.FacetValue
			if err := rows.Scan(&v.Value, &v.Count); err != nil {
				rows.Close()
				return out, fmt.Errorf("scan facet: %w", err)
			}
			*q.into = append(*q.into, v)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return out, fmt.Errorf("count facets: %w", err)
		}
	}
	return out, nil
}

// ceilMilli is the first whole millisecond at or after t. Stored times are
// whole milliseconds (events are kept to the millisecond), so for a stored
// time s: s >= t exactly when s >= ceilMilli(t), and likewise for <.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}
