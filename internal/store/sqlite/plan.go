package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// A search is planned in two steps: translate turns the filter into
// conditions, each with the forms it can take, and drive picks the one that
// reads the fewest sessions, or none (the sessions of the interval are then
// scanned in report order, sessions_by_start_filters).
//
// The side tables (session_tags, session_protocols, session_info) carry each
// session's started_at, and are indexed by value then report order, so that
// one value's sessions in an interval are an index range already in the
// report's order: a page reads its first sessions and stops, and a count
// reads at most its bound, whatever the number of matches. They also carry
// the session's channel and handed_off, so a range tests those filters
// itself; ranges of like sizes are intersected in one merge (merged), and a
// range whose other conditions are all side-table tests is read without the
// sessions table. A scan's information negations are merged too, as ranges
// its sessions are taken from (subtract), and a full-text condition that
// does not drive may read its words in step with the range that does
// (stepWords).

// where is a planned search: conditions on the sessions table s, and the
// driver whose sessions are read instead of the interval's.
type where struct {
	tenant string
	conds  []*cond
	// driver is the chosen driver (see drive); nil: scan the interval.
	// With more than one choice it is the intersection of their ordered
	// ranges, without its ORDER BY (see merged).
	driver *driver
	// owners are the conditions the driver serves: they are implied by
	// it and not tested again.
	owners []*cond
	// choice locates driver's parts: for each, the index of its
	// condition in conds and its index in that condition's drivers.
	choice [][2]int
	// size is how many entries the driver's range holds (before the
	// tests of channel and handoff it carries), counted up to a limit
	// past the bound (see drive); for an intersection, its smallest
	// part's.
	size int
	// base is how many leading conditions every driver implies (tenant
	// and interval).
	base int
}

// driverOnly reports whether w's driver is one ordered range, sized as it
// is read, and every condition is implied by it: its size is then the
// count.
func (w *where) driverOnly() bool {
	if w.driver == nil || !w.driver.ordered || w.driver.loose || w.size < 0 || len(w.choice) != 1 || len(w.rest()) != 0 {
		return false
	}
	// A walk counts the sessions that pass every condition; a range is
	// sized without the tests it carries.
	return w.owners[0].walk != nil || !slices.ContainsFunc(w.conds, func(c *cond) bool { return c.carried })
}

// follow makes w use the driver other chose: the same filter, planned
// once for the page and once for the count (they differ only by the
// cursor, which does not change which driver reads least).
func (w *where) follow(other *where) {
	w.driver, w.owners, w.choice = nil, nil, nil
	if other.driver != nil && other.driver.compound && len(other.choice) == 0 {
		w.subtract()
		return
	}
	var parts []*driver
	for _, ch := range other.choice {
		c := w.conds[ch[0]]
		w.owners = append(w.owners, c)
		w.choice = append(w.choice, ch)
		parts = append(parts, &c.drivers[ch[1]])
	}
	w.driver = merged(parts)
	w.size = -1 // not sized for w (readyWalk sizes a walk)
	if len(other.choice) != 1 {
		return
	}
	// A walk in step with a partner: the same partner, of w's conditions.
	ww, ow := w.conds[other.choice[0][0]].walk, other.conds[other.choice[0][0]].walk
	if ww == nil || ow.partner == nil {
		return
	}
	parts, ww.owners, ww.choice = nil, nil, ow.choice
	for _, ch := range ow.choice {
		c := w.conds[ch[0]]
		ww.owners = append(ww.owners, c)
		parts = append(parts, &c.drivers[ch[1]])
	}
	ww.partner = merged(parts)
	w.owners = append(w.owners, ww.owners...)
}

// frag is a piece of SQL and its arguments.
type frag struct {
	sql  string
	args []any
}

// cond is one condition of a filter: sql tests a session of s, drivers read
// the sessions it selects.
type cond struct {
	frag
	drivers []driver
	// sizes: what is counted to size each driver, when not the driver
	// itself (see sideTables.ordered).
	sizes []frag
	// side: sql reads of s only started_at and session_id (it looks the
	// session up in a side table), so it tests a driver's rows without
	// the session's row.
	side bool
	// carried: every ordered driver tests it itself (the side tables
	// carry the session's channel and handed_off, and each range starts
	// at the cursor).
	carried bool
	// walk, for the full-text condition, reads its sessions in Go when
	// its one driver is sized, and makes the driver (fulltext.go).
	walk *wordWalk
	// except, for a negation, is the ordered range of the sessions it
	// excludes: a scan of the interval is merged with it (subtract).
	except frag
}

// driver is a subquery yielding the sessions one condition selects: with
// ordered, their started_at and session_id in report order, once each (an
// index range of one value); otherwise session ids in any order, possibly
// repeated (a session holding two of the tags asked for).
type driver struct {
	frag
	ordered bool
	// carries: an ordered range of a side table (or their intersection),
	// which tests the carried conditions itself; a full-text walk's
	// sessions are ordered but carry nothing.
	carries bool
	// sorted: ordered only once sorted whole (the contact filter's union
	// of index ranges, an information value's prefix range), so it
	// drives only up to the total's bound: it cannot be read from its
	// newest end and stopped.
	sorted bool
	// loose: sized by the entries it reads rather than by the sessions
	// that pass its tests, so its size is not its count.
	loose bool
	// compound: a compound SELECT of ranges in report order that implies
	// every condition (merged, subtract): read with its own ORDER BY.
	compound bool
}

// merged is the driver reading parts: the one, or the intersection of
// several ordered ones. SQLite runs a compound SELECT with an ORDER BY as a
// merge of its arms, each read in that order ("multiSelectOrderBy" in
// select.c; EXPLAIN QUERY PLAN says MERGE (INTERSECT)), so ranges in report
// order intersect in one pass each, with no look-up per session, and a LIMIT
// on the compound stops the merge.
func merged(parts []*driver) *driver {
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return parts[0]
	}
	var sqls []string
	var args []any
	for _, p := range parts {
		sqls = append(sqls, p.sql)
		args = append(args, p.args...)
	}
	return &driver{frag: frag{strings.Join(sqls, " INTERSECT "), args}, ordered: true, carries: true, compound: true}
}

func (w *where) add(sql string, args ...any) *cond {
	c := &cond{frag: frag{sql, args}}
	w.conds = append(w.conds, c)
	return c
}

// rest is the conditions the driver does not imply, but the tenant and the
// interval (every driver implies them; a scan does not).
func (w *where) rest() []*cond {
	var out []*cond
	for _, c := range w.conds[w.base:] {
		if w.driver != nil && (slices.Contains(w.owners, c) || c.carried && w.driver.carries) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// sideOnly reports whether every condition left to test reads no column of
// the session's row: an ordered driver's rows are then tested as they are.
func (w *where) sideOnly() bool {
	for _, c := range w.rest() {
		if !c.side {
			return false
		}
	}
	return true
}

func (w *where) render() (string, []any) {
	conds := w.rest()
	if w.driver == nil || !w.driver.ordered || !w.sideOnly() {
		// The tenant and the interval, first, for the scan's range or
		// the session's look-up.
		conds = append(slices.Clip(w.conds[:w.base]), conds...)
	}
	parts := []string{"1"}
	var args []any
	for _, c := range conds {
		parts = append(parts, c.sql)
		args = append(args, c.args...)
	}
	return strings.Join(parts, " AND "), args
}

// source is the FROM clause and its arguments, which come before the
// condition's, and the ORDER BY of the report's order on it. An ordered
// driver whose rows need no session's column to be tested is read as s
// itself (its range is in report order); otherwise CROSS JOIN makes SQLite
// read the driver first, and an ordered driver meets the sessions through
// sessions_by_start_filters (its key is what the driver yields), so a count
// reads no session row; an unordered one is made DISTINCT, since a session
// may match it in more than one way, and sorted.
func (w *where) source() (from string, args []any, order string) {
	const report = " ORDER BY s.started_at DESC, s.session_id DESC"
	switch {
	case w.driver == nil:
		return "sessions s WHERE ", nil, report
	case w.driver.ordered && w.sideOnly():
		return "(" + w.driver.sql + ") AS s WHERE ", w.driver.args, report
	case w.driver.ordered:
		return "(" + w.driver.sql + ") AS m CROSS JOIN sessions s INDEXED BY sessions_by_start_filters" +
				" WHERE s.started_at = m.started_at AND s.session_id = m.session_id AND ", w.driver.args,
			" ORDER BY m.started_at DESC, m.session_id DESC"
	default:
		return "(SELECT DISTINCT session_id FROM (" + w.driver.sql + ")) AS m CROSS JOIN sessions s" +
			" WHERE s.session_id = m.session_id AND ", w.driver.args, report
	}
}

// query is the statement SELECT selectList FROM <source> WHERE <conditions>
// [ORDER BY the report's order] rest, with its arguments and then more. A
// compound driver (an intersection, a scan less the negations' ranges)
// implies every condition: its own ORDER BY and rest (a LIMIT) make the
// merge stop, and the outer ORDER BY sorts only what it kept.
func (w *where) query(selectList string, ordered bool, rest string, more ...any) (string, []any) {
	if w.driver != nil && w.driver.compound {
		q := "SELECT " + selectList + " FROM (" + w.driver.sql + " ORDER BY 1 DESC, 2 DESC" + rest + ") AS s"
		if ordered {
			q += " ORDER BY s.started_at DESC, s.session_id DESC"
		}
		return q, append(slices.Clip(w.driver.args), more...)
	}
	from, args, order := w.source()
	conds, cargs := w.render()
	args = append(append(slices.Clip(args), cargs...), more...)
	if !ordered {
		order = ""
	}
	return "SELECT " + selectList + " FROM " + from + conds + order + rest, args
}

// Plans the tests choose (see drive).
const (
	planAuto      = iota
	planScan      // never drive
	planUnordered // prefer unordered drivers
	planOneRange  // never intersect ranges nor let a walk drive where a range can: test the others per session
	planInStep    // never let a walk drive where a range can: read its words in step with the range
)

// plan is the plan drive chooses; a variable so that tests run every plan.
var plan = planAuto

// sizeLimit is how far an ordered driver is counted to compare it with
// others: past the bound, so that of two drivers that both reach it the
// smaller reads less when the other conditions keep few of its sessions.
const sizeLimit = 20_000

// driveLimit is how many session ids an unordered driver may select to be
// read from: below it, looking each up and sorting beats scanning the
// interval in report order.
const driveLimit = 2000

// mergeRatio is how many times the smallest ordered range another may be
// to be intersected with it rather than tested per session: reading an
// index entry in a merge costs about a tenth of looking a session up in
// another range (docs/performance.md).
const mergeRatio = 8

// drive picks the driver that reads the fewest sessions. An ordered driver
// never reads more than the scan of the interval would (its sessions are a
// part of the interval, in the same order), so the smallest one drives; an
// unordered one only when it selects fewer than driveLimit sessions (and
// fewer than the best ordered one), since its sessions are sorted before
// the first is returned. Each size is counted up to a limit, so choosing
// costs little: an ordered driver's count reads at most bound+1 entries of
// one index range. When every other condition has an ordered range too, of
// at most mergeRatio times the smallest, the ranges are intersected (see
// merged).
func (w *where) drive(ctx context.Context, tx *sql.Tx, bound int) error {
	if err := w.choose(ctx, tx, bound); err != nil {
		return err
	}
	return w.stepWords(ctx, tx, bound)
}

// stepShare is the least share of a walk's sessions that must pass the
// other conditions for the walk to be read in step with the driving range
// rather than its words tested on each session of that range by an FTS5
// query (~15 µs each): below it, the messages read for nothing (~0.4 µs
// each, two or three a session for a common word) cost more. Measured on
// the 200,000-session database, a common word with a tag and a channel: in
// step 60–120 ms of CPU where the tag's sessions are 1 in 3 to 1 in 20 of
// the month, per-session queries 200–250 ms; the other way round below ~1
// in 16 (tags of 3,000–5,000 sessions: 40–100 ms against 85–245 ms).
const stepShare = 0.04

// stepWords lets a full-text condition that does not drive read its words
// in step with the ordered range that does (inStep), when its sample showed
// enough of its sessions pass the other conditions; the plans that neither
// drive nor merge (planScan, planOneRange) test the words of each session
// instead, planUnordered and planInStep always read in step.
func (w *where) stepWords(ctx context.Context, tx *sql.Tx, bound int) error {
	if w.driver == nil || !w.driver.carries || plan == planScan || plan == planOneRange {
		return nil
	}
	ci := slices.IndexFunc(w.conds, func(c *cond) bool { return c.walk != nil })
	if ci < 0 || slices.Contains(w.owners, w.conds[ci]) {
		return nil
	}
	c := w.conds[ci]
	if ww := c.walk; plan == planAuto && (ww.sampled == 0 || float64(ww.passed) < stepShare*float64(ww.sampled)) {
		return nil
	}
	c.walk.partner, c.walk.owners, c.walk.choice = w.driver, w.owners, w.choice
	n, err := c.walk.size(ctx, tx, w, c, &c.drivers[0], bound, max(bound+1, sizeLimit))
	if err != nil {
		return err
	}
	w.driver, w.owners, w.choice, w.size = &c.drivers[0], append([]*cond{c}, w.owners...), [][2]int{{ci, 0}}, n
	return nil
}

// choose picks the driver (see drive).
func (w *where) choose(ctx context.Context, tx *sql.Tx, bound int) error {
	w.driver, w.owners, w.choice = nil, nil, nil
	if plan == planScan {
		return nil
	}
	best := -1
	// smallest is, per condition, its smallest ordered driver, its size
	// and how far it was counted (a size of at least that is a lower
	// bound).
	type sized struct{ i, n, counted int }
	smallest := map[int]sized{}
	for ci, c := range w.conds {
		for i := range c.drivers {
			d := &c.drivers[i]
			limit := max(bound+1, sizeLimit)
			switch {
			case d.sorted:
				// Sorted and met through the covering index: up
				// to the total's bound.
				limit = bound + 1
			case !d.ordered:
				limit = driveLimit
			}
			if best >= 0 && plan != planUnordered && (!d.ordered || d.sorted || d.loose || c.walk != nil) {
				// Only a smaller one drives: counting further
				// would not change the choice. (A plain range is
				// counted on: its size also decides intersections.)
				limit = min(limit, best)
			}
			var n int
			if c.walk != nil {
				if best >= 0 && (plan == planOneRange || plan == planInStep) {
					continue
				}
				var err error
				if n, err = c.walk.size(ctx, tx, w, c, d, bound, limit); err != nil {
					return err
				}
				if n < 0 {
					continue
				}
			} else {
				var err error
				if n, err = size(ctx, tx, c.size(i), limit); err != nil {
					return err
				}
			}
			if d.ordered && c.walk == nil {
				if s, ok := smallest[ci]; !ok || n < s.n {
					smallest[ci] = sized{i, n, limit}
				}
			}
			if (!d.ordered || d.sorted) && n >= limit {
				continue
			}
			better := best < 0 || n < best
			if plan == planUnordered && w.driver != nil && w.driver.ordered != d.ordered {
				better = !d.ordered
			}
			if better {
				best, w.driver, w.owners = n, d, []*cond{c}
				w.choice, w.size = [][2]int{{ci, i}}, n
			}
		}
	}
	if w.driver == nil && plan != planOneRange {
		w.subtract()
		return nil
	}
	if w.driver == nil || !w.driver.carries || plan == planUnordered || plan == planOneRange {
		return nil
	}
	// Intersect when each condition left has an ordered range not too
	// large beside the driver's, counted further where its first count
	// stopped short of telling.
	parts := []*driver{w.driver}
	owners, choice := w.owners, w.choice
	for _, c := range w.rest() {
		ci := slices.Index(w.conds, c)
		s, ok := smallest[ci]
		if !ok {
			return nil
		}
		d := &c.drivers[s.i]
		full := max(bound+1, sizeLimit) // where sizes stopped
		limit := mergeRatio * max(w.size, 1)
		switch {
		case w.size >= full:
			// Both ranges are large: the merge stops at the bound if
			// many sessions are in both.
		case s.n > limit:
			return nil
		case s.n >= s.counted && limit > s.n:
			n, err := size(ctx, tx, c.size(s.i), limit+1)
			if err != nil {
				return err
			}
			if n > limit {
				return nil
			}
		}
		parts, owners = append(parts, d), append(owners, c)
		choice = append(choice, [2]int{ci, s.i})
	}
	if len(parts) > 1 {
		w.driver, w.owners, w.choice = merged(parts), owners, choice
	}
	return nil
}

// subtract makes a scan of the interval with negations (information
// not_equals, not_contains, not_exists) the scan's sessions EXCEPT each
// negation's range of the sessions it excludes. All are in report order, so
// SQLite merges them (a compound SELECT with an ORDER BY, as in merged;
// EXPLAIN QUERY PLAN: MERGE (EXCEPT)) and the LIMIT stops the merge: one
// index entry read per session instead of a look-up in the key's range.
// Without a negation it leaves the scan as it is.
func (w *where) subtract() {
	var keep, except []string
	var keepArgs, exceptArgs []any
	for _, c := range w.conds {
		if c.except.sql == "" {
			keep = append(keep, c.sql)
			keepArgs = append(keepArgs, c.args...)
			continue
		}
		except = append(except, c.except.sql)
		exceptArgs = append(exceptArgs, c.except.args...)
	}
	if len(except) == 0 {
		return
	}
	q := "SELECT s.started_at, s.session_id FROM sessions s INDEXED BY sessions_by_start_filters WHERE " + strings.Join(keep, " AND ") +
		" EXCEPT " + strings.Join(except, " EXCEPT ")
	w.driver = &driver{frag: frag{q, append(keepArgs, exceptArgs...)}, ordered: true, compound: true}
	w.owners = slices.Clone(w.conds[w.base:])
}

// size is what sizes c's i-th driver.
func (c *cond) size(i int) frag {
	if i < len(c.sizes) {
		return c.sizes[i]
	}
	return c.drivers[i].frag
}

// size counts the rows of d up to limit.
func size(ctx context.Context, tx *sql.Tx, d frag, limit int) (int, error) {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM ("+d.sql+" LIMIT ?)", append(slices.Clip(d.args), limit)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("size a condition: %w", err)
	}
	return n, nil
}
