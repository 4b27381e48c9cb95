package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// The full-text index keys each message by its session's place in the
// report's order (schema.sql): its key is bucket(started_at) << wordBits | n,
// where n is unique within the bucket, and its rowid the key's complement
// (^key), so that the newest sessions come first in rowid order. A word's
// messages of an interval are then one rowid range, read in ascending
// order: FTS5 reads a doclist backwards only after walking to its end.
const (
	wordBits = 20
	wordMask = 1<<wordBits - 1
	// Buckets are milliseconds from 1691 to 2248; a start outside is
	// clamped to the nearest end, so that every rowid fits in an int64.
	// (Order within a clamped bucket is read from the sessions table.)
	minBucket = -(1 << 43)
	maxBucket = 1<<43 - 1
)

// bucket is the rowid bucket of a session that started at ms.
func bucket(ms int64) int64 { return min(max(ms, minBucket), maxBucket) }

// wordRange is the rowid range [lo, hi] of the messages of sessions that
// started in [lower, upper) (ms); empty (lo > hi) when the interval is.
func wordRange(lower, upper int64) (lo, hi int64) {
	if upper <= lower {
		return 1, 0
	}
	return ^(bucket(upper-1)<<wordBits | wordMask), ^(bucket(lower) << wordBits)
}

// bucketSQL is bucket(started_at) in SQL.
const bucketSQL = "max(min(s.started_at, 8796093022207), -8796093022208)"

// word is a message to index: its events row, session and text.
type word struct {
	Event   int64
	Tenant  string
	Session string
	Text    string
}

// moved is a stored message that moved to another session.
type moved struct{ tenant, eventID string }

// restarted is a session whose start moved (an explicit session with a late
// event before its first): its messages' rowids move with it.
type restarted struct{ tenant, id, key string }

// startsMoved returns the sessions of ss already stored with another start
// bucket. It runs before ss are written.
func startsMoved(ctx context.Context, tx *sql.Tx, ss []session.Session) ([]restarted, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	param := make([][3]any, len(ss))
	for i := range ss {
		param[i] = [3]any{ss[i].Tenant, ss[i].ID, bucket(ss[i].StartedAt.UnixMilli())}
	}
	js, _ := json.Marshal(param) // strings and numbers: always marshals
	rows, err := tx.QueryContext(ctx, `SELECT s.tenant, s.session_id, s.session_key FROM json_each(?) j
		CROSS JOIN sessions s ON s.tenant = j.value ->> 0 AND s.session_id = j.value ->> 1
		WHERE `+bucketSQL+` <> j.value ->> 2`, js)
	if err != nil {
		return nil, fmt.Errorf("read session starts: %w", err)
	}
	defer rows.Close()
	var out []restarted
	for rows.Next() {
		var r restarted
		if err := rows.Scan(&r.tenant, &r.id, &r.key); err != nil {
			return nil, fmt.Errorf("read session starts: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// reindexed deletes the index entries of the moved messages and of the
// messages of the restarted sessions, and returns them to be indexed again
// under their session of now. A session_words row holds the words of
// several messages of its session (under one's rowid), so a session that
// loses a message and remains, or whose start moved, is indexed again
// whole: its rows are deleted with its messages (unindex) and written
// again as one. A session that gains a message keeps its rows (the
// message's words come in a new one); one that was deleted lost every
// message, and its rows with them.
func reindexed(ctx context.Context, tx *sql.Tx, mv []moved, rs []restarted) ([]word, error) {
	if len(mv) == 0 && len(rs) == 0 {
		return nil, nil
	}
	whole := make(map[restarted]bool, len(rs)+len(mv))
	for _, r := range rs {
		whole[r] = true
	}
	ids := make([]int64, 0, len(mv))
	for _, m := range mv {
		// The event row has its new session already; message_sessions
		// still has the old one (none when it was not indexed), which
		// the sessions table still has if it remains.
		var id int64
		var key string
		var was sql.NullString
		var remains bool
		if err := tx.QueryRowContext(ctx, `SELECT e.id, e.session_key, m.session_id,
			EXISTS (SELECT 1 FROM sessions s WHERE s.tenant = e.tenant AND s.session_id = m.session_id)
			FROM events e INDEXED BY events_by_ref_hash LEFT JOIN message_sessions m ON m.event = e.id
			WHERE e.ref = ? AND e.tenant = ? AND e.event_id = ?`, refOf(m.tenant, m.eventID), m.tenant, m.eventID).Scan(&id, &key, &was, &remains); err != nil {
			return nil, fmt.Errorf("find a moved message: %w", err)
		}
		ids = append(ids, id)
		if was.Valid && remains {
			whole[restarted{m.tenant, was.String, key}] = true
		}
	}
	for r := range whole {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM events WHERE tenant = ? AND session_key = ? AND session_id = ? AND type = ?`,
			r.tenant, r.key, r.id, string(event.TypeMessage))
		if err != nil {
			return nil, fmt.Errorf("find a session's messages: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("find a session's messages: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("find a session's messages: %w", err)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	param, _ := json.Marshal(ids) // numbers: always marshals
	rows, err := tx.QueryContext(ctx, `SELECT e.id, e.tenant, e.session_id, json_extract(CAST(e.body AS TEXT), '$.text')
		FROM json_each(?) j CROSS JOIN message_sessions m ON m.event = j.value CROSS JOIN events e ON e.id = m.event`, param)
	if err != nil {
		return nil, fmt.Errorf("read moved messages: %w", err)
	}
	var out []word
	for rows.Next() {
		var w word
		if err := rows.Scan(&w.Event, &w.Tenant, &w.Session, &w.Text); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read moved messages: %w", err)
		}
		out = append(out, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read moved messages: %w", err)
	}
	if err := unindex(ctx, tx, `SELECT m.mn FROM json_each(?1) j CROSS JOIN message_sessions m ON m.event = j.value`, param); err != nil {
		return nil, err
	}
	return out, nil
}

// unindex deletes the messages whose keys (a column mn) doomed selects from the
// full-text indexes (rowid ^mn; in session_words only the rows that have a
// doomed message's rowid) and from message_sessions, one statement each.
// The callers doom every message of a session whose rows they delete.
func unindex(ctx context.Context, tx *sql.Tx, doomed string, args ...any) error {
	for _, table := range []string{"message_words", "session_words"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE rowid IN (SELECT ~mn FROM (`+doomed+`))`, args...); err != nil {
			return fmt.Errorf("delete indexed words: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM message_sessions WHERE mn IN (`+doomed+`)`, args...); err != nil {
		return fmt.Errorf("delete indexed words: %w", err)
	}
	return nil
}

// keyWords gives each message its key: its session's start bucket and the
// next free number of that bucket. starts holds the sessions written in
// this transaction; a message of another session (none, today) takes its
// start from the sessions table.
func keyWords(ctx context.Context, tx *sql.Tx, words []word, starts map[[2]string]int64) ([]int64, error) {
	keys := make([]int64, len(words))
	next := map[int64]int64{}
	for i := range words {
		w := &words[i]
		b, ok := starts[[2]string{w.Tenant, w.Session}]
		if !ok {
			var ms int64
			if err := tx.QueryRowContext(ctx, `SELECT started_at FROM sessions WHERE tenant = ? AND session_id = ?`, w.Tenant, w.Session).Scan(&ms); err != nil {
				return nil, fmt.Errorf("find the start of a message's session: %w", err)
			}
			b = bucket(ms)
			starts[[2]string{w.Tenant, w.Session}] = b
		}
		keys[i] = b
		next[b] = 0
	}
	buckets := make([]int64, 0, len(next))
	for b := range next {
		buckets = append(buckets, b)
	}
	param, _ := json.Marshal(buckets) // numbers: always marshals
	rows, err := tx.QueryContext(ctx, `SELECT j.value, coalesce((SELECT max(mn) FROM message_sessions
		WHERE mn >= j.value * 1048576 AND mn <= j.value * 1048576 + 1048575) + 1, j.value * 1048576) FROM json_each(?) j`, param)
	if err != nil {
		return nil, fmt.Errorf("number indexed messages: %w", err)
	}
	for rows.Next() {
		var b, n int64
		if err := rows.Scan(&b, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("number indexed messages: %w", err)
		}
		next[b] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("number indexed messages: %w", err)
	}
	for i, b := range keys {
		n := next[b]
		if n>>wordBits != b {
			return nil, fmt.Errorf("index message words: more than %d messages in sessions that started in one millisecond", wordMask+1)
		}
		keys[i], next[b] = n, n+1
	}
	return keys, nil
}

// noteBuckets records the start bucket of each of ss in session_buckets,
// and adds to shared_buckets each bucket that more than one session (of
// any tenant) has had: outside those, a message's bucket names its session
// for a session of that bucket (inStep), without a look-up in
// message_sessions. A session that left a bucket keeps its row there (it
// at most makes the bucket look shared; a deleted session's rows go in
// apply, a forgotten one's in Forget), and shared_buckets never shrinks, so
// this is one statement to insert what is new and one to find the shared
// buckets among ss's.
func noteBuckets(ctx context.Context, tx *sql.Tx, ss []session.Session) error {
	if len(ss) == 0 {
		return nil
	}
	param := make([][3]any, len(ss))
	for i := range ss {
		param[i] = [3]any{bucket(ss[i].StartedAt.UnixMilli()), ss[i].Tenant, ss[i].ID}
	}
	js, _ := json.Marshal(param) // numbers and strings: always marshals
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO session_buckets (bucket, tenant, session_id)
		SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)`, js); err != nil {
		return fmt.Errorf("note session buckets: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO shared_buckets (bucket)
		SELECT DISTINCT j.value ->> 0 FROM json_each(?) j
		WHERE (SELECT count(*) FROM (SELECT 1 FROM session_buckets b WHERE b.bucket = j.value ->> 0 LIMIT 2)) > 1`, js); err != nil {
		return fmt.Errorf("note shared buckets: %w", err)
	}
	return nil
}

// addWords indexes words under their keys: message_sessions, then
// message_words (rowid ^key) in one statement (see schema.sql), in
// ascending rowid order. FTS5 keeps a transaction's words in memory only
// while rowids ascend: a rowid below the previous one flushes them to disk
// as a new segment (sqlite3Fts5IndexBeginWrite in fts5_index.c), so rows
// in any other order would write one segment per message, and the
// automatic merges would then merge them again and again.
func addWords(ctx context.Context, tx *sql.Tx, words []word, keys []int64) error {
	order := make([]int, len(words))
	for i := range order {
		order[i] = i
	}
	// Keys descending are rowids (^key) ascending.
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(keys[b], keys[a]) })
	if _, err := insertMessageSessions.exec(ctx, tx, len(order), func(i int, dst []any) []any {
		w := &words[order[i]]
		return append(dst, keys[order[i]], w.Event, w.Tenant, w.Session)
	}); err != nil {
		return fmt.Errorf("index message sessions: %w", err)
	}
	// The rows of a multi-row VALUES are inserted in their order, and
	// in one statement (up to 16,383 messages): FTS5 flushes its pending
	// words at the end of each statement (schema.sql).
	if _, err := insertMessageWords.exec(ctx, tx, len(order), func(i int, dst []any) []any {
		return append(dst, ^keys[order[i]], words[order[i]].Text)
	}); err != nil {
		return fmt.Errorf("index message words: %w", err)
	}
	return addSessionWords(ctx, tx, len(order), func(i int) (int64, string, string, string) {
		w := &words[order[i]]
		return keys[order[i]], w.Tenant, w.Session, w.Text
	})
}

// addSessionWords writes one session_words row per session of n messages
// (at gives the i-th's key, tenant, session and text; keys descending): its
// messages' texts, one a line, under the rowid of the first of them (its
// greatest key), in ascending rowid order like message_words.
func addSessionWords(ctx context.Context, tx *sql.Tx, n int, at func(i int) (key int64, tenant, session, text string)) error {
	type part struct {
		key  int64
		text strings.Builder
	}
	of := make(map[[2]string]*part, n)
	var parts []*part
	for i := range n {
		key, tenant, session, text := at(i)
		id := [2]string{tenant, session}
		p := of[id]
		if p == nil {
			p = &part{key: key}
			of[id] = p
			parts = append(parts, p)
		} else {
			p.text.WriteByte('\n')
		}
		p.text.WriteString(text)
	}
	// parts are in the order of their first row: keys descending.
	param := make([][2]any, len(parts))
	for i, p := range parts {
		param[i] = [2]any{p.key, p.text.String()}
	}
	js, err := json.Marshal(param)
	if err != nil {
		return fmt.Errorf("encode session texts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO session_words (rowid, text)
		SELECT ~(value ->> 0), value ->> 1 FROM json_each(?)`, js); err != nil {
		return fmt.Errorf("index session words: %w", err)
	}
	return nil
}

// insertMessageSessions and insertMessageWords index messages (addWords),
// their values bound as parameters: passed as one JSON array instead, each
// value was extracted from it again in SQL (json_each, ->>), which cost
// more than binding it.
var (
	insertMessageSessions = multiRow{head: `INSERT INTO message_sessions (mn, event, tenant, session_id) VALUES `, cols: 4}
	insertMessageWords    = multiRow{head: `INSERT INTO message_words (rowid, text) VALUES `, cols: 2, whole: true}
)

// wordWalk reads the sessions of one tenant with a message matching an FTS5
// expression among the rowids [lo, hi], newest first: the full-text
// condition's driver. It is sized by reading them (see size), and then
// drives as an ordered driver over the sessions it read.
type wordWalk struct {
	// table is the FTS5 table read: message_words, or session_words
	// for one word of one token (queryCondition).
	tenant, table, match string
	lo, hi               int64 // rowids, inclusive
	lower, upper         int64 // started_at, ms
	// partner, when set, is an ordered driver (a side table's range or
	// an intersection) read in step with the words: the walk yields the
	// partner's sessions that have a matching message (inStep). owners
	// are the conditions it implies, choice where they are (see
	// where.follow).
	partner *driver
	owners  []*cond
	choice  [][2]int
	// chunk is about how many matches a span of the read in step holds
	// (wordChunk but in tests), reads the most one statement of it reads
	// (wordReads but in tests).
	chunk float64
	reads int
	// budget is the least number of rowids a read in step may read before
	// it asks whether it costs more than testing the partner's sessions
	// (stepBudget); 0: none (planInStep).
	budget int
	// sampled and passed: of the sessions the walk last read, how many
	// passed the other conditions (0, 0 before it counted any).
	sampled, passed int
}

// candidate is a session a walk found.
type candidate struct {
	StartedAt int64
	ID        string
}

// read appends to out the sessions of the rowids [from, w.hi], in report
// order, until it holds at least need and a bucket ends. It returns where
// to go on from (the least rowid it did not read), or done when it read
// every match.
func (ww *wordWalk) read(ctx context.Context, tx *sql.Tx, from int64, need int, out []candidate) ([]candidate, int64, bool, error) {
	// FTS5 takes the rowid range and the order (xBestIndex): it seeks
	// the word's doclists to the range's start, so rows come newest
	// bucket first and reading stops when enough were read.
	t := ww.table
	rows, err := tx.QueryContext(ctx, `SELECT `+t+`.rowid, m.session_id
		FROM `+t+` CROSS JOIN message_sessions m ON m.mn = ~`+t+`.rowid
		WHERE `+t+` MATCH ? AND `+t+`.rowid >= ? AND `+t+`.rowid <= ? AND m.tenant = ?
		ORDER BY `+t+`.rowid`, ww.match, from, ww.hi, ww.tenant)
	if err != nil {
		return out, 0, false, fmt.Errorf("read matching messages: %w", err)
	}
	defer rows.Close()
	const none = -1 << 62 // no bucket: buckets fit in 44 bits
	cur := int64(none)
	var group []string
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		slices.Sort(group)
		group = slices.Compact(group)
		var err error
		if out, err = ww.inBucket(ctx, tx, cur, group, out); err != nil {
			return err
		}
		group = group[:0]
		return nil
	}
	for rows.Next() {
		var mn int64
		var id string
		if err := rows.Scan(&mn, &id); err != nil {
			return out, 0, false, fmt.Errorf("read matching messages: %w", err)
		}
		if b := ^mn >> wordBits; b != cur {
			if err := flush(); err != nil {
				return out, 0, false, err
			}
			if cur != none && len(out) >= need {
				// cur > b >= minBucket: ^(cur << wordBits) + 1 fits.
				return out, ^(cur << wordBits) + 1, false, nil
			}
			cur = b
		}
		group = append(group, id)
	}
	if err := rows.Err(); err != nil {
		return out, 0, false, fmt.Errorf("read matching messages: %w", err)
	}
	return out, 0, true, flush()
}

// inBucket appends the sessions ids (sorted, distinct) of bucket b to out in
// report order: session id descending, or by their stored start first when
// b is a clamped bucket.
func (ww *wordWalk) inBucket(ctx context.Context, tx *sql.Tx, b int64, ids []string, out []candidate) ([]candidate, error) {
	if b != minBucket && b != maxBucket {
		for i := len(ids) - 1; i >= 0; i-- {
			out = append(out, candidate{b, ids[i]})
		}
		return out, nil
	}
	var group []candidate
	for _, id := range ids {
		c := candidate{ID: id}
		if err := tx.QueryRowContext(ctx, `SELECT started_at FROM sessions WHERE tenant = ? AND session_id = ?`, ww.tenant, id).Scan(&c.StartedAt); err != nil {
			return out, fmt.Errorf("read a session's start: %w", err)
		}
		group = append(group, c)
	}
	slices.SortFunc(group, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(b.StartedAt, a.StartedAt), strings.Compare(b.ID, a.ID))
	})
	for _, c := range group {
		if c.StartedAt >= ww.lower && c.StartedAt < ww.upper {
			out = append(out, c)
		}
	}
	return out, nil
}

// size reads the walk's sessions for w, whose condition c it drives as d,
// and makes d an ordered driver over them. It reads until it has read every
// match, or more than bound sessions (and than a page) that pass w's other
// conditions (then the page and the count are among them), and returns how
// many it read; or -1 when
// more than limit would have to be read (another driver, or the scan,
// reads less), or when its sample says that reading on would take more
// than limit/dear sessions: dear is what one session read on costs in
// entries of the ranges limit counts (1 where limit is not such a range;
// see walkEntries), or, read in step, more rowids than testing the
// partner's sessions costs (errStepTooDear). d is ready only when the size
// is not -1.
func (ww *wordWalk) size(ctx context.Context, tx *sql.Tx, w *where, c *cond, d *driver, bound, limit, dear int) (int, error) {
	// Enough for the count and for any page or export chunk.
	enough := max(bound, report.MaxPageLimit, report.ExportChunk) + 1
	need := min(enough, limit+1)
	if !ww.alone(w, c) {
		// Other conditions: a first sample tells how far to read, or
		// that another driver reads less.
		need = min(need, w.plan.walkSample())
	}
	var step *inStep
	if ww.partner != nil {
		var err error
		if step, err = ww.inStep(ctx, tx); err != nil {
			return 0, err
		}
		defer step.close()
	}
	var out []candidate
	next := ww.lo
	for {
		var done bool
		var err error
		if step != nil {
			if out, done, err = step.read(ctx, tx, need, out); errors.Is(err, errStepTooDear) {
				return -1, nil
			}
		} else {
			out, next, done, err = ww.read(ctx, tx, next, need, out)
		}
		if err != nil {
			return 0, err
		}
		if step == nil && !done && len(out) > limit {
			return -1, nil
		}
		d.ordered, d.carries = true, ww.partner != nil && ww.partner.carries
		if ww.alone(w, c) {
			// Every session read passes: the size is the count, and a
			// page or an export chunk is among the first.
			d.frag = candidates(out[:min(len(out), max(report.MaxPageLimit, report.ExportChunk)+1)])
			return len(out), nil
		}
		d.frag = candidates(out)
		if done {
			return len(out), nil
		}
		n, err := w.countWith(ctx, tx, c, d, enough)
		if err != nil {
			return 0, err
		}
		ww.sampled, ww.passed = len(out), n
		if n >= enough {
			return len(out), nil
		}
		// Read on as far as the share that passed says is needed, at
		// least twice as far; past limit, give up now (the partner
		// bounds what a walk in step reads).
		guess := len(out) * enough / max(n, 1) * 5 / 4
		if step == nil && guess*dear > limit {
			return -1, nil
		}
		need = max(guess, 2*len(out))
	}
}

// walkSample is how many sessions a walk reads first when other conditions
// decide which of them match.
const walkSample = 1000

// alone reports whether the walk of c implies every condition of w: then
// every session it reads passes.
func (ww *wordWalk) alone(w *where, c *cond) bool {
	for _, o := range w.conds[w.base:] {
		if o != c && !slices.Contains(ww.owners, o) && !(o.carried && ww.partner != nil && ww.partner.carries) {
			return false
		}
	}
	return true
}

// countWith counts the sessions of w driven by d (of c), up to limit.
func (w *where) countWith(ctx context.Context, tx *sql.Tx, c *cond, d *driver, limit int) (int, error) {
	driver, owners, choice := w.driver, w.owners, w.choice
	defer func() { w.driver, w.owners, w.choice = driver, owners, choice }()
	w.driver, w.owners, w.choice = d, append([]*cond{c}, c.walk.owners...), nil
	q, args := w.query("1", false, " LIMIT ?", limit)
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM ("+q+")", args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count full-text matches: %w", err)
	}
	return n, nil
}

// readyWalk makes w's driver, chosen by following another plan (where.follow),
// ready when it is a walk: the walk reads for w's own interval. When it would
// read too much, the interval is scanned instead.
func (w *where) readyWalk(ctx context.Context, tx *sql.Tx, bound int) error {
	if w.driver == nil || len(w.choice) != 1 || w.owners[0].walk == nil {
		return nil
	}
	n, err := w.owners[0].walk.size(ctx, tx, w, w.owners[0], w.driver, bound, max(bound+1, sizeLimit), 1)
	if err != nil {
		return err
	}
	if n < 0 {
		w.driver, w.owners, w.choice = nil, nil, nil
	}
	w.size = n
	return nil
}

// inStep reads a walk's partner and its words' messages together, both
// newest first: the partner's sessions in report order, the messages in
// rowid order (by start bucket, newest first). Reading a matching message's
// rowid costs far less than an FTS5 query per session (~60 ns against
// ~15 µs, measured on the 200,000-session database); messages are looked up
// in message_sessions only in the buckets of the partner's sessions, to
// tell which session of the bucket each belongs to.
type inStep struct {
	ww      *wordWalk
	ctx     context.Context
	tx      *sql.Tx
	partner *sql.Rows
	cur     candidate // the partner's next session, if more
	more    bool
	rowid   int64 // the next message's rowid, if any
	any     bool
	// words are the matching rowids read and not yet stepped over
	// (words[pos:]), from where the next chunk begins and its span, and
	// whether the last chunk was read (see nextWord).
	words   []int64
	pos     int
	from    int64
	last    bool
	span    int64   // of the next chunk
	bucket  int64   // the bucket of keys
	keys    []int64 // the messages (keys) of bucket
	pending []pending
	// shared are the buckets of the walk's range that hold (or held)
	// messages of more than one session (shared_buckets): only there are
	// messages looked up.
	shared map[int64]bool
	// rowids and stepped count the rowids read and the partner's
	// sessions stepped over (stepRowids).
	rowids, stepped int
}

// stepRowids is how many matching rowids the read in step may read per
// session of its partner before testing each of those sessions by an FTS5
// query costs less (~15 µs a session, ~0.3 µs a rowid). The words tables
// hold every tenant's words, so a word common in another tenant makes the
// read in step read rowids that are not the partner's at all.
const stepRowids = 50

// stepBudgetRowids is the least a read in step may read before it compares
// (planner.stepBudget): ~20 ms of CPU.
const stepBudgetRowids = 65_536

// errStepTooDear: a read in step read more rowids than its budget allows
// (see stepRowids): the walk gives up, and its words are tested on each
// session of the partner instead.
var errStepTooDear = errors.New("the read in step costs more than testing each session")

// pending is a session of the partner with the messages of its bucket,
// not yet looked up; known when the bucket is no other session's, so that
// its messages are the session's.
type pending struct {
	c     candidate
	keys  []int64
	known bool
}

// stepBatch is how many sessions' messages are looked up in one statement.
const stepBatch = 256

func (ww *wordWalk) inStep(ctx context.Context, tx *sql.Tx) (*inStep, error) {
	st := &inStep{ww: ww, ctx: ctx, tx: tx, from: ww.lo, bucket: -1 << 62, shared: map[int64]bool{minBucket: true, maxBucket: true}}
	rows, err := tx.QueryContext(ctx, `SELECT bucket FROM shared_buckets WHERE bucket >= ? AND bucket <= ?`, ^ww.hi>>wordBits, ^ww.lo>>wordBits)
	if err != nil {
		return nil, fmt.Errorf("read shared buckets: %w", err)
	}
	for rows.Next() {
		var b int64
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read shared buckets: %w", err)
		}
		st.shared[b] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read shared buckets: %w", err)
	}
	// A compound partner's ORDER BY makes SQLite merge its arms; a
	// range's is its index's order.
	if st.partner, err = tx.QueryContext(ctx, ww.partner.sql+" ORDER BY 1 DESC, 2 DESC", ww.partner.args...); err != nil {
		return nil, fmt.Errorf("read a full-text partner: %w", err)
	}
	if err := st.nextSession(); err != nil {
		st.close()
		return nil, err
	}
	if err := st.nextWord(); err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

func (st *inStep) close() { st.partner.Close() }

func (st *inStep) nextSession() error {
	if st.more = st.partner.Next(); st.more {
		st.stepped++
		if err := st.partner.Scan(&st.cur.StartedAt, &st.cur.ID); err != nil {
			return fmt.Errorf("read a full-text partner: %w", err)
		}
		return nil
	}
	if err := st.partner.Err(); err != nil {
		return fmt.Errorf("read a full-text partner: %w", err)
	}
	return nil
}

// wordSpan is the rowid span (an hour of starts) the first statement of
// nextWord reads; each next one's span is sized from the matches per rowid
// of the last to hold about wordChunk matches, between a 64th and 64 times
// wordSpan.
const wordSpan = 3_600_000 << wordBits

const wordChunk = 4096.0 // tests set a smaller one (planner.chunk)

// wordReads is the most rowids one statement of the read in step reads,
// whatever its span holds: a span is sized from the density of the last
// one, and the words tables are every tenant's, so a span after a quiet one
// may hold any number of matches — one string of them all, which SQLite
// refuses past its string limit (SQLITE_MAX_LENGTH, 1 GB) and which would
// be held in memory whole. Four times wordChunk: a span that holds more
// ends where the reading stopped.
const wordReads = 4 * int(wordChunk)

// nextWord steps to the next matching rowid. The rowids are read in chunks,
// each one statement over a span of rowids that gives them as one text
// (group_concat): a row through database/sql costs ~0.3 µs, several times
// what FTS5 takes to step to the next match, and a common word has
// ~100,000 sessions in a month. Each chunk's FTS5 query seeks to where the
// last one ended (a seek per word, ~15 µs).
func (st *inStep) nextWord() error {
	for st.pos == len(st.words) {
		if st.last {
			st.any = false
			return nil
		}
		if err := st.readWords(); err != nil {
			return err
		}
	}
	st.rowid, st.any = st.words[st.pos], true
	st.pos++
	return nil
}

// readWords reads the next span of matching rowids into st.words, at most
// wordReads of them.
func (st *inStep) readWords() error {
	if st.span == 0 {
		st.span = wordSpan
	}
	hi := st.ww.hi
	if st.span <= st.ww.hi-st.from {
		hi = st.from + st.span - 1
	}
	reads := st.ww.reads
	if reads <= 0 {
		reads = wordReads
	}
	var list sql.NullString
	t := st.ww.table
	if err := st.tx.QueryRowContext(st.ctx, `SELECT group_concat(rowid) FROM (SELECT rowid FROM `+t+` WHERE `+t+` MATCH ? AND rowid >= ? AND rowid <= ? ORDER BY rowid LIMIT ?)`,
		st.ww.match, st.from, hi, reads).Scan(&list); err != nil {
		return fmt.Errorf("read matching messages: %w", err)
	}
	st.words, st.pos = st.words[:0], 0
	defer func() { st.rowids += len(st.words) }()
	for f := range strings.SplitSeq(list.String, ",") {
		if f == "" {
			continue
		}
		r, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return fmt.Errorf("read matching messages: %w", err)
		}
		st.words = append(st.words, r)
	}
	// group_concat keeps FTS5's order (ascending rowids) in practice,
	// which SQLite does not promise: sorted when it did not.
	if !slices.IsSorted(st.words) {
		slices.Sort(st.words)
	}
	if len(st.words) >= reads {
		// The span holds more: the next one begins after the last
		// rowid read.
		hi = st.words[len(st.words)-1]
	}
	// The next span holds about wordChunk matches at the density of the
	// rowids read, from an hour of starts up to 64 times the first span.
	chunk := st.ww.chunk
	if chunk <= 0 {
		chunk = wordChunk
	}
	next := float64(hi-st.from+1) / float64(max(len(st.words), 1)) * chunk // in float64: no overflow
	st.span = int64(min(max(next, wordSpan/64), 64*wordSpan))
	st.last = hi == st.ww.hi
	st.from = hi + 1
	return nil
}

// read appends to out the partner's sessions with a matching message, in
// report order, until it holds at least need; done when it read them all.
func (st *inStep) read(ctx context.Context, tx *sql.Tx, need int, out []candidate) ([]candidate, bool, error) {
	for len(out) < need {
		if b := st.ww.budget; b > 0 && st.rowids > max(b, stepRowids*st.stepped) {
			return out, false, errStepTooDear
		}
		if !st.more || !st.any && bucket(st.cur.StartedAt) != st.bucket {
			// No partner's session left, or no message for those left.
			out, err := st.lookUp(ctx, tx, out)
			return out, true, err
		}
		b := bucket(st.cur.StartedAt)
		if b != st.bucket {
			// The messages of newer buckets have no session of the
			// partner: skip them, and gather those of b.
			st.bucket, st.keys = b, st.keys[:0:0]
			for st.any {
				key := ^st.rowid
				if kb := key >> wordBits; kb < b {
					break
				} else if kb == b {
					st.keys = append(st.keys, key)
				}
				if err := st.nextWord(); err != nil {
					return out, false, err
				}
			}
		}
		if len(st.keys) > 0 {
			st.pending = append(st.pending, pending{st.cur, st.keys, !st.shared[b]})
		}
		if err := st.nextSession(); err != nil {
			return out, false, err
		}
		if len(st.pending) >= stepBatch {
			var err error
			if out, err = st.lookUp(ctx, tx, out); err != nil {
				return out, false, err
			}
		}
	}
	return out, false, nil
}

// lookUp appends the pending sessions that one of their bucket's messages
// belongs to, in order. A bucket is a millisecond, which seldom holds more
// than one session's start: each session's first message is looked up,
// and the others only when that one is another session's.
func (st *inStep) lookUp(ctx context.Context, tx *sql.Tx, out []candidate) ([]candidate, error) {
	if len(st.pending) == 0 {
		return out, nil
	}
	of := make(map[int64]string)
	var keys []int64
	for _, p := range st.pending {
		if !p.known {
			keys = append(keys, p.keys[0])
		}
	}
	if err := st.sessionsOf(ctx, tx, keys, of); err != nil {
		return out, err
	}
	keys = keys[:0]
	for _, p := range st.pending {
		if !p.known && of[p.keys[0]] != p.c.ID {
			keys = append(keys, p.keys[1:]...)
		}
	}
	if err := st.sessionsOf(ctx, tx, keys, of); err != nil {
		return out, err
	}
	for _, p := range st.pending {
		if p.known || slices.ContainsFunc(p.keys, func(k int64) bool { return of[k] == p.c.ID }) {
			out = append(out, p.c)
		}
	}
	st.pending = st.pending[:0]
	return out, nil
}

// sessionsOf adds to of the session of each message of keys, in one
// statement.
func (st *inStep) sessionsOf(ctx context.Context, tx *sql.Tx, keys []int64, of map[int64]string) error {
	keys = slices.DeleteFunc(keys, func(k int64) bool { _, ok := of[k]; return ok })
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	param, _ := json.Marshal(keys) // numbers: always marshals
	rows, err := tx.QueryContext(ctx, `SELECT m.mn, m.session_id FROM json_each(?) j CROSS JOIN message_sessions m ON m.mn = j.value WHERE m.tenant = ?`,
		param, st.ww.tenant)
	if err != nil {
		return fmt.Errorf("look up matching messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key int64
		var id string
		if err := rows.Scan(&key, &id); err != nil {
			return fmt.Errorf("look up matching messages: %w", err)
		}
		of[key] = id
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up matching messages: %w", err)
	}
	return nil
}

// candidates is a driver over sessions read by a walk, their [started_at,
// id] pairs given as one JSON array.
func candidates(cs []candidate) frag {
	b := make([]byte, 0, 64*len(cs))
	b = append(b, '[')
	for i, c := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, c.StartedAt, 10)
		b = append(b, ',')
		id, _ := json.Marshal(c.ID) // a string: always marshals
		b = append(b, id...)
		b = append(b, ']')
	}
	return frag{"SELECT value ->> 0 AS started_at, value ->> 1 AS session_id FROM json_each(?)", []any{string(append(b, ']'))}}
}
