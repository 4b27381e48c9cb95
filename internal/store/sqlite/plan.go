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
// costs least to read, or none (the sessions of the interval are then
// scanned in report order, sessions_by_start_filters).
//
// The side tables (session_tags, session_protocols, session_info) carry each
// session's started_at, and are indexed by value then report order, so that
// one value's sessions in an interval are an index range already in the
// report's order: a page reads its first sessions and stops, and a count
// reads at most its bound, whatever the number of matches. They also carry
// the session's channel and handed_off, so a range tests those filters
// itself; a filter asking for one channel and a handoff reads a tag's or an
// information key's range in an index keyed by both before started_at
// (sideTables.keyed), so that its entries are the ones that pass. Each
// range is estimated from a sample of its newest entries; the ranges are
// intersected in one merge (merged) when reading them all costs
// less than reading the cheapest and testing the other conditions on each of
// its sessions, and a range whose other conditions are all side-table tests
// is read without the sessions table. A scan's information negations are
// merged too, as ranges its sessions are taken from (subtract), and a
// full-text condition that does not drive may read its words in step with
// the range that does (stepWords).

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
	// size is how many sessions the driver yields, when choosing it
	// counted them exactly (a range read whole by its sample, a sorted
	// driver, a full-text walk); otherwise -1. With driverOnly it is the
	// total. An estimate never goes here.
	size int
	// base is how many leading conditions every driver implies (tenant
	// and interval).
	base int
	// plan is how drive chooses (the automatic plan but in tests).
	plan planner
}

// driverOnly reports whether w's driver is one ordered range that implies
// every condition and whose count is known (size): choosing it counted it.
func (w *where) driverOnly() bool {
	return w.driver != nil && w.driver.ordered && w.size >= 0 && len(w.choice) == 1 && len(w.rest()) == 0
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
	ww.partner, ww.chunk = merged(parts), ow.chunk
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
	// sizes: what is counted to size each driver that is neither a
	// range (sampled instead) nor a walk, when not the driver itself.
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
	// sample, for a range of one value of a side table, reads its
	// newest entries to estimate its size (see estimate).
	sample *rangeSample
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

// render is the conditions query tests on s and their arguments. Where s
// is the sessions table (src.sessions), the tenant and the interval come
// first, for the scan's range or the session's look-up; an ordered
// driver's rows read alone (s is the driver) imply them.
func (w *where) render(src source) (string, []any) {
	conds := w.rest()
	if src.sessions {
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

// source is how query reads s, the one place that decides it from the
// driver: render, query and the export's choice of the rowid
// (sessionRows) all follow it, so that a new kind of driver cannot make
// them disagree.
type source struct {
	kind sourceKind
	// from is the FROM clause through its WHERE; from a compound
	// driver, its compound SELECT alone.
	from string
	// args are from's, which come before the conditions'.
	args []any
	// order is the ORDER BY of the report's order on from.
	order string
	// sessions: s is the sessions table (scanned, or joined to the
	// driver), whose rowid a statement can select; otherwise s is the
	// driver's rows alone.
	sessions bool
}

// sourceKind names each way query reads s (tests assert which one a
// filter takes).
type sourceKind int

const (
	fromScan sourceKind = iota // no driver: the interval's sessions
	// fromCompound: the driver is a compound SELECT of ranges in report
	// order that implies every condition (an intersection, a scan less
	// the negations' ranges): query reads it with its own ORDER BY and
	// LIMIT, which make the merge stop, and tests nothing.
	fromCompound
	fromDriverRows    // an ordered driver's rows as s
	fromOrderedJoin   // an ordered driver joined to the sessions
	fromUnorderedJoin // an unordered driver, distinct, joined to the sessions
)

func (k sourceKind) String() string {
	return [...]string{"scan", "compound driver", "driver's rows", "ordered join", "unordered join"}[k]
}

// source chooses how query reads s. With no driver the interval is
// scanned. An ordered driver whose rows need no session's column to be
// tested is read as s itself (its range is in report order); otherwise
// CROSS JOIN makes SQLite read the driver first, and an ordered driver meets
// the sessions through sessions_by_start_filters (its key is what the driver
// yields), so a count reads no session row; an unordered one is made
// DISTINCT, since a session may match it in more than one way, and sorted.
func (w *where) source() source {
	const report = " ORDER BY s.started_at DESC, s.session_id DESC"
	switch {
	case w.driver == nil:
		return source{kind: fromScan, from: "sessions s WHERE ", order: report, sessions: true}
	case w.driver.compound:
		return source{kind: fromCompound, from: w.driver.sql, args: w.driver.args, order: report}
	case w.driver.ordered && w.sideOnly():
		return source{kind: fromDriverRows, from: "(" + w.driver.sql + ") AS s WHERE ", args: w.driver.args, order: report}
	case w.driver.ordered:
		return source{kind: fromOrderedJoin, from: "(" + w.driver.sql + ") AS m CROSS JOIN sessions s INDEXED BY sessions_by_start_filters" +
			" WHERE s.started_at = m.started_at AND s.session_id = m.session_id AND ", args: w.driver.args,
			order: " ORDER BY m.started_at DESC, m.session_id DESC", sessions: true}
	default:
		return source{kind: fromUnorderedJoin, from: "(SELECT DISTINCT session_id FROM (" + w.driver.sql + ")) AS m CROSS JOIN sessions s" +
			" WHERE s.session_id = m.session_id AND ", args: w.driver.args, order: report, sessions: true}
	}
}

// sessionRows reports whether the s of query is the sessions table, whose
// rowid query can select, and not a driver's rows alone.
func (w *where) sessionRows() bool {
	return w.source().sessions
}

// query is the statement SELECT selectList FROM <source> WHERE <conditions>
// [ORDER BY the report's order] rest, with its arguments and then more. A
// compound source is read with its own ORDER BY and rest (a LIMIT), and
// the outer ORDER BY sorts only what it kept.
func (w *where) query(selectList string, ordered bool, rest string, more ...any) (string, []any) {
	src := w.source()
	if !ordered {
		src.order = ""
	}
	if src.kind == fromCompound {
		q := "SELECT " + selectList + " FROM (" + src.from + " ORDER BY 1 DESC, 2 DESC" + rest + ") AS s" + src.order
		return q, append(slices.Clip(src.args), more...)
	}
	conds, cargs := w.render(src)
	args := append(append(slices.Clip(src.args), cargs...), more...)
	return "SELECT " + selectList + " FROM " + src.from + conds + src.order + rest, args
}

// Plans the tests choose (see drive).
const (
	planAuto      = iota
	planScan      // never drive
	planUnordered // prefer unordered drivers
	planOneRange  // never intersect ranges nor let a walk drive where a range can: test the others per session
	planInStep    // never let a walk drive where a range can: read its words in step with the range
)

// planner is how drive chooses: the zero value is the automatic plan with
// samples of sampleSize entries. Only tests set it (Store.planner), to run
// every plan and to make samples small.
type planner struct {
	mode   int
	sample int     // entries of a range's sample; 0: sampleSize
	chunk  float64 // matches of a span of the read in step; 0: wordChunk
	walk   int     // sessions of a full-text walk's sample; 0: walkSample
	reads  int     // most rowids a statement of the read in step reads; 0: wordReads
	budget int     // least rowids a read in step reads before it may give up; 0: stepBudgetRowids, none with planInStep
}

func (p planner) walkSample() int {
	if p.walk > 0 {
		return p.walk
	}
	return walkSample
}

// stepBudget is the walk's budget (wordWalk.budget): none when the plan
// always reads in step, unless a test sets one.
func (p planner) stepBudget() int {
	switch {
	case p.budget > 0:
		return p.budget
	case p.mode == planInStep:
		return 0
	}
	return stepBudgetRowids
}

func (p planner) wordReads() int {
	if p.reads > 0 {
		return p.reads
	}
	return wordReads
}

func (p planner) wordChunk() float64 {
	if p.chunk > 0 {
		return p.chunk
	}
	return wordChunk
}

func (p planner) sampleSize() int {
	if p.sample > 0 {
		return p.sample
	}
	return sampleSize
}

// sizeLimit is how far a full-text walk or a sorted driver is read to
// compare it with the ranges: past the bound.
const sizeLimit = 20_000

// walkEntries is what a session that a full-text walk reads past its sample
// costs, in entries of an ordered range: its message's session looked up in
// message_sessions (1-5 µs), then the other conditions tested on it by a
// look-up each (1.7-2.6 µs), against ~0.1-0.2 µs for a range's entry and
// ~0.3 µs for each word entry the read in step passes over. Without it, a
// common word whose sample showed that a tag's range would hold enough of
// its sessions after ~10,000 of them drove by reading those 10,000, at
// ~70 ms of CPU per request, where the range read in step with the words
// took a tenth of it (docs/performance.md, "Full text on SQLite: a smaller
// bound for full-text totals").
const walkEntries = 8

// driveLimit is how many session ids an unordered driver may select to be
// read from: below it, looking each up and sorting beats scanning the
// interval in report order.
const driveLimit = 2000

// sampleSize is how many of a range's newest entries its sample reads
// (estimate): enough to tell shares of a few per cent.
const sampleSize = 500

// probeCost is what testing one session of the driving range against
// another condition's range costs (a seek in that range's index), in index
// entries read in a range or a merge: on the 200,000-session database a
// look-up took 1.7–2.6 µs (the more, the sparser the driver's sessions in
// the other range) and an entry 0.09–0.22 µs; the CPU of the bench's
// combined and all-of-two-tags requests was the same within 3 % from 10 to
// 24 (docs/performance.md).
const probeCost = 16

// drive picks how the sessions are read: the driver, or the intersection
// of several, that costs least. An ordered range never reads more than the
// scan of the interval would (its sessions are a part of the interval, in
// the same order), so one drives whenever a condition has one; which one,
// and whether the other conditions' ranges are merged with it or tested
// per session, the ranges' samples decide (choose). An unordered driver
// drives only when it selects fewer than driveLimit sessions and fewer than
// the best range holds, since its sessions are sorted before the first is
// returned; a sorted one likewise, up to the total's bound.
func (w *where) drive(ctx context.Context, tx *sql.Tx, bound int, p planner) error {
	w.plan = p
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
// sessionStepShare is the same for a word read from session_words: about
// one entry per session (~0.3 µs) against a query per session (~16 µs).
const (
	stepShare        = 0.04
	sessionStepShare = 0.01
)

// stepWords lets a full-text condition that does not drive read its words
// in step with the ordered range that does (inStep), when its sample showed
// enough of its sessions pass the other conditions; the plans that neither
// drive nor merge (planScan, planOneRange) test the words of each session
// instead, planUnordered and planInStep always read in step.
func (w *where) stepWords(ctx context.Context, tx *sql.Tx, bound int) error {
	if w.driver == nil || !w.driver.carries || w.plan.mode == planScan || w.plan.mode == planOneRange {
		return nil
	}
	ci := slices.IndexFunc(w.conds, func(c *cond) bool { return c.walk != nil })
	if ci < 0 || slices.Contains(w.owners, w.conds[ci]) {
		return nil
	}
	c := w.conds[ci]
	share := stepShare
	if c.walk.table == "session_words" {
		share = sessionStepShare
	}
	if ww := c.walk; w.plan.mode == planAuto && (ww.sampled == 0 || float64(ww.passed) < share*float64(ww.sampled)) {
		return nil
	}
	c.walk.partner, c.walk.owners, c.walk.choice = w.driver, w.owners, w.choice
	c.walk.chunk, c.walk.reads, c.walk.budget = w.plan.wordChunk(), w.plan.wordReads(), w.plan.stepBudget()
	alone := c.drivers[0]
	n, err := c.walk.size(ctx, tx, w, c, &c.drivers[0], bound, max(bound+1, sizeLimit), 1)
	if err != nil {
		return err
	}
	if n < 0 {
		// Too dear in step: the range drives, and the words are tested
		// on each of its sessions.
		c.walk.partner, c.walk.owners, c.walk.choice, c.drivers[0] = nil, nil, nil, alone
		return nil
	}
	w.driver, w.owners, w.choice, w.size = &c.drivers[0], append([]*cond{c}, w.owners...), [][2]int{{ci, 0}}, n
	return nil
}

// choose picks the driver (see drive).
func (w *where) choose(ctx context.Context, tx *sql.Tx, bound int) error {
	w.driver, w.owners, w.choice, w.size = nil, nil, nil, -1
	if w.plan.mode == planScan {
		return nil
	}
	if ci, i, ok := w.onlyRange(); ok {
		// Nothing to choose between, and the count is the same one
		// statement as a size would be (up to the bound only).
		w.pick(ci, i, -1)
		return nil
	}
	ranges, err := w.sampleRanges(ctx, tx)
	if err != nil {
		return err
	}
	// The range that costs least when it drives alone, the others tested
	// per session; best is how many entries it holds.
	best, bestCost := -1, 0.0
	var chosen estimate
	for _, r := range ranges {
		if cost := r.est.alone(w.hasOthers(r.ci)); best < 0 || cost < bestCost {
			best, bestCost, chosen = r.est.entries, cost, r.est
			w.pick(r.ci, r.i, r.est.count())
		}
	}
	for ci, c := range w.conds {
		for i := range c.drivers {
			d := &c.drivers[i]
			if d.sample != nil {
				continue
			}
			limit := max(bound+1, sizeLimit)
			switch {
			case d.sorted:
				// Sorted and met through the covering index: up
				// to the total's bound.
				limit = bound + 1
			case !d.ordered:
				limit = driveLimit
			}
			if best >= 0 && w.plan.mode != planUnordered {
				// Only a smaller one drives: counting further
				// would not change the choice.
				limit = min(limit, best)
			}
			var n int
			if c.walk != nil {
				if best >= 0 && (w.plan.mode == planOneRange || w.plan.mode == planInStep) {
					continue
				}
				// Read on past its sample, a walk's session costs
				// more than a range's entry read in step with the
				// words (stepWords), when the best range can be.
				dear := 1
				if best >= 0 && w.driver.carries && w.plan.mode == planAuto {
					dear = walkEntries
				}
				var err error
				if n, err = c.walk.size(ctx, tx, w, c, d, bound, limit, dear); err != nil {
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
			if (!d.ordered || d.sorted) && n >= limit {
				continue
			}
			better := best < 0 || n < best
			if w.plan.mode == planUnordered && w.driver != nil && w.driver.ordered != d.ordered {
				better = !d.ordered
			}
			if !better {
				continue
			}
			best, chosen = n, estimate{entries: n, passes: n}
			// A count: a walk's; a sorted driver's when none of the
			// tests it carries is asked (it is counted without them);
			// not an unordered driver's (a session may be in it twice).
			count := -1
			if c.walk != nil || d.sorted && !slices.ContainsFunc(w.conds, func(c *cond) bool { return c.carried }) {
				count = n
			}
			w.pick(ci, i, count)
		}
	}
	if w.driver == nil && w.plan.mode != planOneRange {
		w.subtract()
		return nil
	}
	if w.driver == nil || !w.driver.carries || w.plan.mode == planUnordered || w.plan.mode == planOneRange {
		return nil
	}
	w.intersect(ranges, chosen)
	return nil
}

// pick makes c's i-th driver (c the ci-th condition) drive alone, with
// count the sessions it yields when known exactly, or -1.
func (w *where) pick(ci, i, count int) {
	c := w.conds[ci]
	w.driver, w.owners, w.choice, w.size = &c.drivers[i], []*cond{c}, [][2]int{{ci, i}}, count
}

// intersect makes w's driver, of estimate e, the merge of its range and a
// range of every condition it leaves to test, when each has one and
// reading them all costs less than reading the driver and testing its
// sessions.
func (w *where) intersect(ranges []sampled, e estimate) {
	parts := []*driver{w.driver}
	owners, choice := w.owners, w.choice
	cost := float64(e.entries + e.passes)
	for _, c := range w.rest() {
		ci := slices.Index(w.conds, c)
		var part *sampled
		for j, r := range ranges {
			if r.ci == ci && (part == nil || r.est.entries < part.est.entries) {
				part = &ranges[j]
			}
		}
		if part == nil {
			return
		}
		cost += float64(part.est.entries + part.est.passes)
		parts, owners = append(parts, &c.drivers[part.i]), append(owners, c)
		choice = append(choice, [2]int{ci, part.i})
	}
	if len(parts) > 1 && cost < e.alone(true) {
		w.driver, w.owners, w.choice, w.size = merged(parts), owners, choice, -1
	}
}

// onlyRange reports whether the one driver of w's conditions is a range,
// and which.
func (w *where) onlyRange() (ci, i int, ok bool) {
	n := 0
	for cj, c := range w.conds {
		for j := range c.drivers {
			n++
			ci, i = cj, j
		}
	}
	return ci, i, n == 1 && w.conds[ci].drivers[i].sample != nil
}

// hasOthers reports whether a range of the ci-th condition driving leaves
// other conditions to test on each of its sessions (a range tests the
// carried ones itself).
func (w *where) hasOthers(ci int) bool {
	for j, c := range w.conds[w.base:] {
		if j+w.base != ci && !c.carried {
			return true
		}
	}
	return false
}

// sampled is the estimate of the i-th driver, a range, of the ci-th
// condition.
type sampled struct {
	ci, i int
	est   estimate
}

// sampleRanges estimates every range of w's conditions.
func (w *where) sampleRanges(ctx context.Context, tx *sql.Tx) ([]sampled, error) {
	var out []sampled
	for ci, c := range w.conds {
		for i := range c.drivers {
			if s := c.drivers[i].sample; s != nil {
				e, err := s.estimate(ctx, tx, w.plan.sampleSize())
				if err != nil {
					return nil, err
				}
				out = append(out, sampled{ci, i, e})
			}
		}
	}
	return out, nil
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

// size is what sizes c's i-th driver (not a range: see estimate).
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

// rangeSample reads the newest entries of a range of one value
// (sideTables.ordered): a statement yielding how many entries it read, the
// oldest and newest started_at among them, and how many pass the range's
// tests (the carried channel and handoff, an information test).
type rangeSample struct {
	frag
	lower int64 // the interval's start (ms)
}

// estimate is what a range's sample tells of it: how many entries it holds
// and how many of them pass its tests. When the sample read it whole they
// are counts (exact); otherwise the sample's density of entries over its
// span of time is extended to the rest of the interval, which only chooses
// how to read and never becomes a total. (The newest sessions are also the
// ones a page and a bounded count read first.)
type estimate struct {
	entries, passes int
	exact           bool
}

func (s *rangeSample) estimate(ctx context.Context, tx *sql.Tx, limit int) (estimate, error) {
	var n, passes int
	var oldest, newest sql.NullInt64
	if err := tx.QueryRowContext(ctx, s.sql, append(slices.Clip(s.args), limit)...).Scan(&n, &oldest, &newest, &passes); err != nil {
		return estimate{}, fmt.Errorf("sample a range: %w", err)
	}
	if n < limit {
		return estimate{entries: n, passes: passes, exact: true}, nil
	}
	span := max(newest.Int64-oldest.Int64, 1)
	entries := int(min(int64(n)*max(newest.Int64-s.lower, span)/span, 1<<40))
	return estimate{entries: entries, passes: int(int64(entries) * int64(passes) / int64(n))}, nil
}

// count is the range's count of the sessions that pass its tests, or -1.
func (e estimate) count() int {
	if !e.exact {
		return -1
	}
	return e.passes
}

// alone is what the range costs driving alone, in index entries read: each
// entry, and for each that passes the range's tests its place in the read
// and, when others is true, a look-up in another condition.
func (e estimate) alone(others bool) float64 {
	c := float64(e.entries + e.passes)
	if others {
		c += probeCost * float64(e.passes)
	}
	return c
}
