package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/chatreport/chatreport/internal/jsonenc"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

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

// translate returns the conditions for the sessions f matches that come
// after c (all when c is nil) in the report order.
func translate(f *report.Filter, c *report.Cursor) *where {
	w := &where{tenant: f.Tenant}
	w.add("s.tenant = ?", f.Tenant)
	lower, upper := ceilMilli(f.From), ceilMilli(f.To)
	if c != nil {
		// The cursor's time is the interval's upper bound, so SQLite
		// starts its scan of sessions_by_start_filters (or of a driver's
		// index range) at the cursor. With the bound only inside an OR
		// (or a row value) it scans from the newest session of the
		// interval on every page, which makes a deep export quadratic.
		upper = min(upper, c.StartedAt.UnixMilli()+1)
	}
	w.add("s.started_at >= ? AND s.started_at < ?", lower, upper)
	w.base = len(w.conds)
	if f.SessionID != "" {
		w.add("s.session_id = ?", strings.ToLower(f.SessionID))
	}
	side := sideTables{tenant: f.Tenant, lower: lower, upper: upper, after: c}
	var channels []string
	if len(f.Channels) > 0 {
		channels = dedupe(f.Channels)
		side.carry.sql += " AND x.channel IN (" + placeholders(len(channels)) + ")"
		side.carry.args = append(side.carry.args, anys(channels)...)
	}
	if f.HandedOff != nil {
		side.carry.sql += " AND x.handed_off = ?"
		side.carry.args = append(side.carry.args, *f.HandedOff)
		if len(channels) == 1 {
			side.keyed = frag{" AND x.channel = ? AND x.handed_off = ?", []any{channels[0], *f.HandedOff}}
		}
	}
	if f.Protocol != "" {
		side.value(w, "session_protocols", "protocol", f.Protocol)
	}
	if len(f.Tags) > 0 {
		tags := dedupe(f.Tags)
		if f.TagMode == report.TagsAll || len(tags) == 1 {
			for _, t := range tags {
				side.value(w, "session_tags", "tag", t)
			}
		} else {
			side.anyTag(w, tags)
		}
	}
	for _, c := range f.Info {
		side.info(w, c)
	}
	// Every ordered driver tests channel and handoff itself (side.carry).
	if len(channels) > 0 {
		w.add("s.channel IN ("+placeholders(len(channels))+")", anys(channels)...).carried = true
	}
	if f.Contact != "" {
		contactCondition(w, side, f.Contact)
	}
	if f.HandedOff != nil {
		w.add("s.handed_off = ?", *f.HandedOff).carried = true
	}
	if len(f.Agents) > 0 {
		agents := dedupe(f.Agents)
		markCondition(w, "x.kind = 'agent' AND x.value IN ("+placeholders(len(agents))+")", anys(agents)...)
	}
	if len(f.Queues) > 0 {
		queues := dedupe(f.Queues)
		markCondition(w, "x.kind = 'queue' AND x.value IN ("+placeholders(len(queues))+")", anys(queues)...)
	}
	if len(f.Outcomes) > 0 {
		outcomeCondition(w, dedupe(f.Outcomes), f.At().UnixMilli())
	}
	if f.Query != "" {
		queryCondition(w, f.Tenant, f.Query, lower, upper)
	}
	if c != nil {
		// Last, so that the conditions before it are those of the same
		// filter without a cursor (see where.follow). Every ordered
		// driver starts at the cursor (sideTables.ordered).
		k := w.add("(s.started_at < ? OR s.session_id < ?)", c.StartedAt.UnixMilli(), c.SessionID)
		k.side, k.carried = true, true
	}
	return w
}

// sideTables builds the conditions on session_tags, session_protocols and
// session_info of one tenant and interval [lower, upper), after a cursor
// (nil: from the newest), with carry: the filter's tests of the channel and
// handed_off the side tables carry (schema.sql), and keyed: the same tests
// as a part of an index key, when the filter asks for one channel and a
// handoff.
type sideTables struct {
	tenant       string
	lower, upper int64
	after        *report.Cursor
	carry        frag
	keyed        frag
}

// ordered is a driver reading an index range of from (a table as x) whose
// key starts with (tenant, key columns, started_at): its sessions in the
// interval in report order after the cursor, tested by more (on x's other
// columns) and by the filter's channel and handoff. It is estimated by a
// sample of its newest entries (rangeSample), each read whatever the tests
// say, so that the sample costs at most sampleSize entries however few
// pass; the frag is the range tested by more alone. keyedFrom, when not
// empty, is an index of the same table keyed (tenant, key columns, channel,
// handed_off, started_at, ...): with t.keyed the range is read there, and
// the channel and handoff are its key instead of tests of each entry.
func (t sideTables) ordered(from, keyedFrom, keyCond string, args []any, more string, moreArgs ...any) (driver, frag) {
	carry := t.carry
	if keyedFrom != "" && t.keyed.sql != "" {
		from, keyCond, args, carry = keyedFrom, keyCond+t.keyed.sql, append(slices.Clip(args), t.keyed.args...), frag{}
	}
	where := " FROM " + from + " WHERE x.tenant = ? AND " + keyCond + " AND x.started_at >= ? AND x.started_at < ?"
	a := append(append([]any{t.tenant}, args...), t.lower, t.upper)
	if t.after != nil {
		where += " AND (x.started_at < ? OR x.session_id < ?)"
		a = append(a, t.after.StartedAt.UnixMilli(), t.after.SessionID)
	}
	q := "SELECT x.started_at, x.session_id" + where + more
	tested := append(slices.Clip(a), moreArgs...)
	// Newest first: the key's next column is started_at, so the range is
	// read backwards without a sort.
	sample := &rangeSample{lower: t.lower, frag: frag{"SELECT count(*), min(t), max(t), coalesce(sum(ok), 0) FROM (SELECT x.started_at AS t, (1" + more + carry.sql + ") AS ok" +
		where + " ORDER BY x.started_at DESC LIMIT ?)", append(append(slices.Clip(moreArgs), carry.args...), a...)}}
	return driver{frag: frag{q + carry.sql, append(slices.Clip(tested), carry.args...)}, ordered: true, carries: true, sample: sample}, frag{q, tested}
}

// The side tables' conditions test a session by looking its (started_at,
// session_id) up in the value's index range rather than by its primary key:
// sessions are tested in report order, so consecutive look-ups read
// neighbouring index pages instead of one random page each (session ids are
// random). A condition tested for each session of a scan works the same way:
// building the set of every session holding a common tag, as IN (subquery)
// does, costs more than the whole page.

// local is the condition "x (of from) holds a row for this session of s".
// It reads only s's started_at and session_id (the tenant is an argument),
// so it tests a driver's rows as well as sessions (cond.side).
const local = " AND x.started_at = s.started_at AND x.session_id = s.session_id"

// add adds the side-table condition sql, on tenant t then args.
func (t sideTables) add(w *where, sql string, args ...any) *cond {
	c := w.add(sql, append([]any{t.tenant}, args...)...)
	c.side = true
	return c
}

// value requires the session to hold value in column of table (a tag, a
// protocol).
func (t sideTables) value(w *where, table, column string, value string) {
	c := t.add(w, "EXISTS (SELECT 1 FROM "+table+" x INDEXED BY "+table+"_by_value WHERE x.tenant = ? AND x."+column+" = ?"+local+")", value)
	keyed := ""
	if table == "session_tags" {
		keyed = "session_tags x INDEXED BY session_tags_by_value_filters"
	}
	d, _ := t.ordered(table+" x INDEXED BY "+table+"_by_value", keyed, "x."+column+" = ?", []any{value}, "")
	c.drivers = []driver{d}
}

// anyTag requires the session to hold one of tags (two or more): a session
// holding several is one session.
func (t sideTables) anyTag(w *where, tags []string) {
	in := "x.tag IN (" + placeholders(len(tags)) + ")"
	c := t.add(w, "EXISTS (SELECT 1 FROM session_tags x INDEXED BY session_tags_by_value WHERE x.tenant = ? AND "+in+local+")", anys(tags)...)
	c.drivers = []driver{{frag: frag{"SELECT x.session_id FROM session_tags x INDEXED BY session_tags_by_value WHERE x.tenant = ? AND " + in +
		" AND x.started_at >= ? AND x.started_at < ?", append(append([]any{t.tenant}, anys(tags)...), t.lower, t.upper)}}}
}

// info: values are compared in value_lower, lowered by Go (Unicode) when
// written, because SQLite's lower() only folds ASCII. A negative operator
// also matches sessions without the key: it is tested per session and
// drives nothing.
func (t sideTables) info(w *where, c report.Condition) {
	v := strings.ToLower(c.Value)
	var test string // on x.value_lower
	var args []any
	switch c.Op {
	case report.OpEquals, report.OpNotEquals:
		test, args = " AND x.value_lower = ?", []any{v}
	case report.OpContains, report.OpNotContain:
		test, args = " AND instr(x.value_lower, ?) > 0", []any{v}
	case report.OpStartsWith:
		// A range of session_info_by_value: every string starting with
		// v sorts from v to v followed by the greatest code point.
		test, args = " AND x.value_lower >= ? AND x.value_lower < ? AND instr(x.value_lower, ?) = 1", []any{v, v + string(utf8.MaxRune), v}
	}
	has := "EXISTS (SELECT 1 FROM session_info x INDEXED BY session_info_by_key WHERE x.tenant = ? AND x.key = ?" + local + test + ")"
	hasArgs := append([]any{c.Key}, args...)
	switch c.Op {
	case report.OpNotEquals:
		_, t.add(w, "NOT "+has, hasArgs...).except = t.ordered("session_info x INDEXED BY session_info_by_value", "", "x.key = ? AND x.value_lower = ?", []any{c.Key, v}, "")
		return
	case report.OpNotContain, report.OpNotExists:
		_, t.add(w, "NOT "+has, hasArgs...).except = t.ordered("session_info x INDEXED BY session_info_by_key", "", "x.key = ?", []any{c.Key}, test, args...)
		return
	}
	k := t.add(w, has, hasArgs...)
	const keyedInfo = "session_info x INDEXED BY session_info_by_key_filters"
	switch c.Op {
	case report.OpEquals:
		d, _ := t.ordered("session_info x INDEXED BY session_info_by_value", "", "x.key = ? AND x.value_lower = ?", []any{c.Key, v}, "")
		k.drivers = []driver{d}
	case report.OpStartsWith:
		// Few values start with v: read them by value (a range of
		// session_info_by_value, which carries what the key's range
		// does), then sort them, without a look-up of each session's row;
		// many: read the key's sessions in report order and test each
		// (its sample tells how many entries it reads, and what share
		// passes). The prefix's range is counted, not sampled: it is
		// read whole and sorted, so it may drive only up to the bound.
		byValue, byValueSize := t.ordered("session_info x INDEXED BY session_info_by_value", "", "x.key = ?", []any{c.Key}, test, args...)
		byValue.sorted, byValue.sample = true, nil
		d, _ := t.ordered("session_info x INDEXED BY session_info_by_key", keyedInfo, "x.key = ?", []any{c.Key}, test, args...)
		k.drivers, k.sizes = []driver{byValue, d}, []frag{byValueSize}
	default: // exists, contains
		d, _ := t.ordered("session_info x INDEXED BY session_info_by_key", keyedInfo, "x.key = ?", []any{c.Key}, test, args...)
		k.drivers = []driver{d}
	}
}

// contactCondition matches the contact's id, a part of its folded name, or
// its phone (either number ending with the other). Its driver is the union
// of small ranges of sessions_by_contact, sessions_by_phone and
// sessions_by_name, the names being those of contact_names (the tenant's
// distinct folded names, far fewer than its sessions) that contain the part.
func contactCondition(w *where, t sideTables, contact string) {
	folded := report.Fold(contact)
	conds := []string{"s.contact_id = ?", "instr(s.contact_name_folded, ?) > 0"}
	args := []any{contact, folded}
	const in = " AND started_at >= ? AND started_at < ?"
	names := "SELECT name FROM contact_names WHERE tenant = ? AND instr(name, ?) > 0"
	arms := []string{
		"SELECT started_at, session_id FROM sessions INDEXED BY sessions_by_contact WHERE tenant = ? AND contact_id = ?" + in,
		"SELECT started_at, session_id FROM sessions INDEXED BY sessions_by_name WHERE tenant = ? AND contact_name_folded IN (" + names + ")" + in,
	}
	armArgs := []any{t.tenant, contact, t.lower, t.upper, t.tenant, t.tenant, folded, t.lower, t.upper}
	if d, ok := report.PhoneQuery(contact); ok {
		// Either number may lack the country code (and area code): one
		// matches when it ends with the other, of at least MinPhoneDigits.
		// Reversed, the stored number starts with the typed one (a range:
		// ':' follows '9'), or is one of the typed number's beginnings.
		rev := report.ReversedPhoneDigits(d)
		conds = append(conds, `(s.contact_phone_rev >= ? AND s.contact_phone_rev < ?)`)
		args = append(args, rev, rev+":")
		arms = append(arms, "SELECT started_at, session_id FROM sessions INDEXED BY sessions_by_phone WHERE tenant = ? AND contact_phone_rev >= ? AND contact_phone_rev < ?"+in)
		armArgs = append(armArgs, t.tenant, rev, rev+":", t.lower, t.upper)
		if n := len(rev) - report.MinPhoneDigits; n > 0 {
			conds = append(conds, "s.contact_phone_rev IN ("+placeholders(n)+")")
			arms = append(arms, "SELECT started_at, session_id FROM sessions INDEXED BY sessions_by_phone WHERE tenant = ? AND contact_phone_rev IN ("+placeholders(n)+")"+in)
			armArgs = append(armArgs, t.tenant)
			for i := report.MinPhoneDigits; i < len(rev); i++ {
				args = append(args, rev[:i])
				armArgs = append(armArgs, rev[:i])
			}
			armArgs = append(armArgs, t.lower, t.upper)
		}
	}
	c := w.add("("+strings.Join(conds, " OR ")+")", args...)
	// The arms' union (each session once) is an ordered driver, sorted
	// when read: a session is then met through sessions_by_start_filters,
	// whose entries hold what the other filters test, instead of its wide
	// row (a common first name selects a few thousand sessions). A union
	// too large to sort is not chosen (drive).
	c.drivers = []driver{{frag: frag{strings.Join(arms, " UNION "), armArgs}, ordered: true, sorted: true}}
}

// queryCondition matches sessions with a message that has every word of q,
// through the FTS5 index message_words, whose rowids are in report order
// (schema.sql); a single word of one token through session_words, which
// gives the same sessions with about one entry per session instead of one
// per message. A session is tested by the rowids of its start's bucket:
// one seek per word. The driver reads the interval's matches newest first
// and stops when it has enough (wordWalk).
func queryCondition(w *where, tenant, q string, lower, upper int64) {
	words := report.Words(q)
	if len(words) == 0 {
		return
	}
	match, table := matchExpression(words), "message_words"
	if len(words) == 1 && oneToken(words[0]) {
		table = "session_words"
	}
	c := w.add(`EXISTS (SELECT 1 FROM `+table+` CROSS JOIN message_sessions m ON m.mn = ~`+table+`.rowid
		WHERE `+table+` MATCH ? AND `+table+`.rowid BETWEEN ~(`+bucketSQL+` * 1048576 + 1048575) AND ~(`+bucketSQL+` * 1048576)
		AND m.tenant = s.tenant AND m.session_id = s.session_id)`, match)
	lo, hi := wordRange(lower, upper)
	c.walk = &wordWalk{tenant: tenant, table: table, match: match, lo: lo, hi: hi, lower: lower, upper: upper}
	c.drivers = []driver{{ordered: true}} // made by the walk when sized
}

// matchExpression is an FTS5 query requiring every word. Each word is a
// quoted string, so no input is FTS5 syntax; a word the tokenizer splits
// ("segunda-via", "123.456") becomes a phrase of adjacent tokens. FTS5 ends
// a string at a NUL, so a NUL becomes a space: both separate tokens.
func matchExpression(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		w = strings.ReplaceAll(w, "\x00", " ")
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

// readTx begins a read-only transaction: its statements see one snapshot.
// (Read-only transactions begin DEFERRED, so they take no write lock.)
func (s *Store) readTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin read: %w", err)
	}
	return tx, nil
}

// Search returns one page of the sessions f matches, newest first, and how
// many match, exactly up to the page's bound.
func (s *Store) Search(ctx context.Context, f report.Filter, page report.Page) (report.Result, error) {
	if err := errors.Join(f.Validate(), page.Validate()); err != nil {
		return report.Result{}, err
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return report.Result{}, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	bound := page.Bound(&f)
	var res report.Result
	pw := translate(&f, page.After)
	if err := pw.drive(ctx, tx, bound, s.planner); err != nil {
		return res, err
	}
	res.Items, err = sessions(ctx, tx, pw, page.Limit+1)
	if err != nil {
		return res, err
	}
	full := len(res.Items) > page.Limit
	if full {
		res.Items = res.Items[:page.Limit]
		last := res.Items[len(res.Items)-1]
		res.Next = &report.Cursor{StartedAt: last.StartedAt, SessionID: last.ID}
	}
	if page.After == nil && !full {
		// The first page holds every match: no need to count them.
		res.BoundTotal(len(res.Items), bound)
		return res, nil
	}
	w := pw
	if page.After != nil {
		// The count is of the filter without the cursor, with the
		// driver the page chose; a first page is already that filter.
		w = translate(&f, nil)
		w.follow(pw)
		if err := w.readyWalk(ctx, tx, bound); err != nil {
			return res, err
		}
	}
	if w.driverOnly() {
		// One driver is the whole filter and choosing it counted it:
		// a range its sample read whole, a sorted union, a full-text
		// walk (never an estimate).
		res.BoundTotal(w.size, bound)
		return res, nil
	}
	q, args := w.query("1", false, " LIMIT ?", bound+1)
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM ("+q+")", args...).Scan(&n); err != nil {
		return res, fmt.Errorf("count sessions: %w", err)
	}
	res.BoundTotal(n, bound)
	return res, nil
}

// sessions reads up to limit sessions matching w (planned), newest first.
func sessions(ctx context.Context, tx *sql.Tx, w *where, limit int) ([]session.Session, error) {
	// The page's sessions are chosen on the indexes alone, then their
	// documents read: selecting doc in the search itself makes SQLite read
	// the (wide) row of every session it tests, not only of those it keeps.
	q, args := w.query("s.started_at AS started_at, s.session_id AS session_id", true, " LIMIT ?", limit)
	q = "SELECT d.doc FROM (" + q + ") AS p CROSS JOIN sessions d ON d.tenant = ? AND d.session_id = p.session_id" +
		" ORDER BY p.started_at DESC, p.session_id DESC"
	rows, err := tx.QueryContext(ctx, q, append(args, w.tenant)...)
	if err != nil {
		return nil, fmt.Errorf("search sessions: %w", err)
	}
	defer rows.Close()
	out := []session.Session{}
	var (
		r   docReader
		doc sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("scan session: %w", err)
		}
		var ss session.Session
		if err := r.decode(doc, &ss); err != nil {
			return nil, err
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search sessions: %w", err)
	}
	return out, nil
}

// chunk is up to report.ExportChunk sessions with their events as stored,
// read in one snapshot: a session and its events agree even while an update
// moves events between sessions. The events' bodies are copied into one
// buffer that the chunk keeps for its next use.
type chunk struct {
	list   []report.StoredDetail
	spans  []eventSpan
	bytes  []byte   // the sessions' bodies, each session's joined by eventSep
	events [][]byte // the bodies, session after session: list[i].Events are parts of it
}

// eventSpan is where the bodies of a chunk's session are in chunk.bytes,
// and how many SQLite counted.
type eventSpan struct {
	session, from, to, count int
}

// read reads up to limit sessions matching w, newest first, each with its
// events in event order, in one read transaction.
func (s *Store) read(ctx context.Context, w *where, limit int, c *chunk) error {
	tx, err := s.readTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	if err := c.choose(ctx, tx, w, limit, s.planner); err != nil {
		return err
	}
	return c.readEvents(ctx, tx, w.tenant)
}

// choose reads the sessions of c: up to limit matching w, newest first.
func (c *chunk) choose(ctx context.Context, tx *sql.Tx, w *where, limit int, p planner) error {
	c.list = c.list[:0]
	if err := w.drive(ctx, tx, report.DefaultTotalBound, p); err != nil {
		return err
	}
	list, err := sessions(ctx, tx, w, limit)
	if err != nil {
		return err
	}
	for i := range list {
		c.list = append(c.list, report.StoredDetail{Session: list[i]})
	}
	return nil
}

// readEvents reads the events of every session of c in one statement: a
// statement per session cost more in its round trip than in its rows. A
// session's events are those of its key from its start to its last activity
// that belong to it (others of the key in that span are of sessions with
// their own ids); each is one range of events_by_key_time. The sessions are
// bound as one JSON array of [key, start, last activity, id], read with
// json_each (https://sqlite.org/json1.html#jeach; its key is the index in
// the array), which CROSS JOIN makes the outer loop
// (https://sqlite.org/optoverview.html#crossjoin). One fixed statement
// costs less to prepare than a VALUES list of the chunk's parameters.
// MATERIALIZED (https://sqlite.org/lang_with.html#materialization_hints)
// extracts each session's values once, not again for every event.
//
// Each session is one row: its events' count and bodies joined by eventSep
// by group_concat, over a subquery whose ORDER BY gives the events'
// order. A row per event cost more in the driver than in SQLite (each
// column fetched, typed and copied through database/sql:
// docs/performance.md). group_concat's own ORDER BY would sort every
// session's bodies; without it the order is documented as arbitrary
// (https://sqlite.org/lang_aggfunc.html#group_concat), but SQLite keeps a
// subquery's ORDER BY for an aggregate over it on purpose, for group_concat:
// it never flattens such a subquery into the aggregate query
// (https://sqlite.org/optoverview.html#flattening, restriction 16, ticket
// 2942, whose regression test is "SELECT group_concat(x) FROM (SELECT ...
// ORDER BY 1)"). That ORDER BY is events_by_key_time's order, so SQLite
// reads the range without sorting it (TestEventsStatementPlan), and
// TestExportMatchesSession and TestDetailEventsMatchPerSessionReads compare
// the order with statements that sort the events themselves. The count
// proves the split: a body holding eventSep (which no valid JSON does)
// fails the read instead of being taken for two events. The bodies are not
// decoded: an export's encoder reads them.
//
// A session's row is one string, which SQLite refuses past its string
// limit (SQLITE_MAX_LENGTH, 1 GB by default and in modernc's build, or what
// sqlite3_limit set: https://sqlite.org/limits.html#max_length) with
// SQLITE_TOOBIG, failing the whole statement: a session of that many
// events (a bot looping on one contact for months) could then be neither
// opened nor exported. Then the chunk's events are read again a row per
// event (readEventRows).
func (c *chunk) readEvents(ctx context.Context, tx *sql.Tx, tenant string) error {
	c.spans, c.bytes = c.spans[:0], c.bytes[:0]
	if err := c.readEventsOf(ctx, tx, tenant, nil); err != nil {
		return err
	}
	return c.split()
}

// readEventsOf reads the events of the sessions of c at the indexes of (of
// every session when nil) and adds their spans to c's; the export reads
// those of its packed sessions with their documents (export.go). A session
// too large for one string makes it read the events of every session of c
// a row per event, packed or not, in place of the spans c held.
func (c *chunk) readEventsOf(ctx context.Context, tx *sql.Tx, tenant string, of []int) error {
	if len(c.list) == 0 || of != nil && len(of) == 0 {
		return nil
	}
	err := c.readJoined(ctx, tx, c.boundSpans(of), tenant, of)
	if tooBig(err) {
		c.spans, c.bytes = c.spans[:0], c.bytes[:0]
		err = c.readEventRows(ctx, tx, c.boundSpans(nil), tenant)
	}
	return err
}

// boundSpans is the JSON array of c's sessions the events statements bind:
// [key, start, last activity, id] of each, or of those at the indexes of.
func (c *chunk) boundSpans(of []int) string {
	spans := []byte{'['}
	n := len(c.list)
	if of != nil {
		n = len(of)
	}
	for k := range n {
		i := k
		if of != nil {
			i = of[k]
		}
		ss := &c.list[i].Session
		if k > 0 {
			spans = append(spans, ',')
		}
		spans = jsonenc.AppendString(append(spans, '['), ss.Key, false)
		spans = strconv.AppendInt(append(spans, ','), ss.StartedAt.UnixMilli(), 10)
		spans = strconv.AppendInt(append(spans, ','), ss.LastActivityAt.UnixMilli(), 10)
		spans = append(jsonenc.AppendString(append(spans, ','), ss.ID, false), ']')
	}
	return string(append(spans, ']'))
}

// readJoined reads the events of the sessions of spans (see readEvents) a
// row per session, the sessions of c at the indexes of (every session when
// nil).
func (c *chunk) readJoined(ctx context.Context, tx *sql.Tx, spans, tenant string, of []int) error {
	rows, err := tx.QueryContext(ctx, eventsStatement, spans, tenant)
	if err != nil {
		return fmt.Errorf("read session events: %w", err)
	}
	defer rows.Close()
	var (
		i      intColumn
		joined = joinedEvents{c: c}
	)
	for rows.Next() {
		if err := rows.Scan(&i, &joined); err != nil {
			return fmt.Errorf("scan events: %w", err)
		}
		k, n := int(i), len(c.list)
		if of != nil {
			n = len(of)
		}
		if k < 0 || k >= n {
			return fmt.Errorf("read session events: row of session %d of %d", k, n)
		}
		if of != nil {
			k = of[k]
		}
		c.spans[len(c.spans)-1].session = k
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read session events: %w", err)
	}
	return nil
}

// tooBig reports whether err is SQLite's SQLITE_TOOBIG: a string or blob
// over the connection's length limit.
func tooBig(err error) bool {
	var se *sqlitedriver.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_TOOBIG
}

// readEventRows reads the events of the sessions of spans (see readEvents)
// a row per event, in the same order, into the chunk's spans and bytes as
// readJoined would: no string holds more than one event's body. A row per
// event costs more in the driver, so it is only the way out of a session
// too large for one string.
func (c *chunk) readEventRows(ctx context.Context, tx *sql.Tx, spans, tenant string) error {
	rows, err := tx.QueryContext(ctx, eventRowsStatement, spans, tenant)
	if err != nil {
		return fmt.Errorf("read session events: %w", err)
	}
	defer rows.Close()
	var (
		i    intColumn
		body sql.RawBytes
	)
	// Every session has its span, empty for one without events.
	open := func(upTo int) {
		for len(c.spans) <= upTo {
			c.spans = append(c.spans, eventSpan{session: len(c.spans), from: len(c.bytes), to: len(c.bytes)})
		}
	}
	for rows.Next() {
		if err := rows.Scan(&i, &body); err != nil {
			return fmt.Errorf("scan events: %w", err)
		}
		k := int(i)
		if k < len(c.spans)-1 || k >= len(c.list) {
			return fmt.Errorf("read session events: row of session %d of %d, after %d", k, len(c.list), len(c.spans)-1)
		}
		open(k)
		sp := &c.spans[k]
		if sp.count > 0 {
			c.bytes = append(c.bytes, eventSep)
		}
		c.bytes = append(c.bytes, body...)
		sp.count++
		sp.to = len(c.bytes)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read session events: %w", err)
	}
	open(len(c.list) - 1)
	return nil
}

// intColumn scans an INTEGER column without database/sql's reflection
// (which converting an int64 into an int64 takes otherwise).
type intColumn int64

func (c *intColumn) Scan(src any) error {
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("not an integer: %T", src)
	}
	*c = intColumn(v)
	return nil
}

// eventsStatement reads the events of a chunk's sessions (readEvents), a
// row per session.
const eventsStatement = `WITH c(i, session_key, first, last, session_id) AS MATERIALIZED
		(SELECT key, value->>0, value->>1, value->>2, value->>3 FROM json_each(?1))
		SELECT c.i, (SELECT count(*) || char(30) || group_concat(body, char(30)) FROM
			(SELECT e.body FROM events e WHERE e.tenant = ?2 AND e.session_key = c.session_key
			AND e.occurred_at BETWEEN c.first AND c.last AND e.session_id = c.session_id
			ORDER BY e.occurred_at, e.event_id))
		FROM c`

// eventRowsStatement reads the events of a chunk's sessions a row per
// event (readEventRows): eventsStatement's ranges, in the chunk's order and
// then events_by_key_time's.
const eventRowsStatement = `WITH c(i, session_key, first, last, session_id) AS MATERIALIZED
		(SELECT key, value->>0, value->>1, value->>2, value->>3 FROM json_each(?1))
		SELECT c.i, e.body FROM c CROSS JOIN events e ON e.tenant = ?2 AND e.session_key = c.session_key
			AND e.occurred_at BETWEEN c.first AND c.last AND e.session_id = c.session_id
		ORDER BY c.i, e.occurred_at, e.event_id`

// eventSep is what readEvents joins a session's bodies with: the ASCII
// record separator, a control character that JSON allows neither between
// tokens nor unescaped in a string (RFC 8259, sections 2 and 7).
const eventSep = 0x1e

// joinedEvents scans readEvents' second column into its chunk's bytes: the
// count, eventSep and the bodies joined by eventSep, or NULL for a session
// without events. It adds a span to the chunk for every row.
type joinedEvents struct{ c *chunk }

func (j *joinedEvents) Scan(src any) error {
	sp := eventSpan{from: len(j.c.bytes)}
	var err error
	switch v := src.(type) {
	case nil:
	case string:
		j.c.bytes, sp.count, err = appendJoined(j.c.bytes, v)
	case []byte: // a pack (pack.go), a BLOB: not copied into a string first
		j.c.bytes, sp.count, err = appendJoined(j.c.bytes, v)
	default:
		return fmt.Errorf("events of a session: %T", src)
	}
	if err != nil {
		return err
	}
	sp.to = len(j.c.bytes)
	j.c.spans = append(j.c.spans, sp)
	return nil
}

// appendJoined appends the bodies of joined (a count, eventSep and the
// bodies joined by eventSep, or empty for no events) to dst, and returns
// the count.
func appendJoined[T string | []byte](dst []byte, joined T) ([]byte, int, error) {
	if len(joined) == 0 {
		return dst, 0, nil
	}
	count, i := 0, 0
	for ; i < len(joined) && joined[i] >= '0' && joined[i] <= '9' && count < 1<<40; i++ {
		count = count*10 + int(joined[i]-'0')
	}
	if i == 0 || i == len(joined) || joined[i] != eventSep || count < 1 {
		return dst, 0, fmt.Errorf("events of a session: no count before the bodies")
	}
	return append(dst, joined[i+1:]...), count, nil
}

// split gives each session of c its events, in the order read, and checks
// that every session was read once and has as many bodies as SQLite
// counted. The sessions' rows come in the bound array's order (json_each's,
// the outer loop); they are sorted if SQLite ever returned them otherwise.
func (c *chunk) split() error {
	if len(c.spans) != len(c.list) {
		return fmt.Errorf("read session events: %d rows for %d sessions", len(c.spans), len(c.list))
	}
	bySession := func(a, b eventSpan) int { return cmp.Compare(a.session, b.session) }
	if !slices.IsSortedFunc(c.spans, bySession) {
		slices.SortFunc(c.spans, bySession)
	}
	c.events = c.events[:0]
	for k, sp := range c.spans {
		if sp.session != k {
			return fmt.Errorf("read session events: session %d read, %d expected", sp.session, k)
		}
		start := len(c.events)
		if sp.count > 0 {
			rest := c.bytes[sp.from:sp.to:sp.to]
			for {
				end := bytes.IndexByte(rest, eventSep)
				if end < 0 {
					c.events = append(c.events, rest)
					break
				}
				c.events = append(c.events, rest[:end:end])
				rest = rest[end+1:]
			}
		}
		if got := len(c.events) - start; got != sp.count {
			return fmt.Errorf("read session events: session %d has %d events, %d bodies read", k, sp.count, got)
		}
	}
	start := 0
	for k := range c.list {
		end := start + c.spans[k].count
		c.list[k].Events = c.events[start:end:end]
		start = end
	}
	return nil
}

// Session returns a session of tenant with its events in order.
func (s *Store) Session(ctx context.Context, tenant, id string) (report.Detail, error) {
	w := &where{tenant: tenant}
	w.add("s.tenant = ? AND s.session_id = ?", tenant, strings.ToLower(id))
	var c chunk
	if err := s.read(ctx, w, 1, &c); err != nil {
		return report.Detail{}, err
	}
	if len(c.list) == 0 {
		return report.Detail{}, report.ErrNotFound
	}
	return c.list[0].Decode()
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

// markCondition requires the session to hold a session_marks row (x)
// meeting cond, looked up by the session's primary key. The marks drive
// nothing: a rare agent or queue is tested on each session of the interval
// (docs/performance.md).
func markCondition(w *where, cond string, args ...any) {
	w.add("EXISTS (SELECT 1 FROM session_marks x WHERE x.tenant = s.tenant AND x.session_id = s.session_id AND ("+cond+"))", args...)
}

// outcomeCondition requires an attendance whose outcome at now (ms) is one
// of outcomes: one that ended with it, or one still open then whose window
// has ended and that takes it at the end; open is an attendance still open
// whose window has not ended (session.OutcomeMarks).
func outcomeCondition(w *where, outcomes []string, now int64) {
	ph := placeholders(len(outcomes))
	cond := "(x.kind = 'outcome' AND x.value IN (" + ph + ")) OR (x.kind = 'at_end' AND x.value IN (" + ph + ") AND x.until_ms <= ?)"
	args := append(append(anys(outcomes), anys(outcomes)...), now)
	if slices.Contains(outcomes, session.OutcomeOpen) {
		cond += " OR (x.kind = 'at_end' AND x.until_ms > ?)"
		args = append(args, now)
	}
	markCondition(w, cond, args...)
}
