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
// reads at most its bound, whatever the number of matches.

// where is a planned search: conditions on the sessions table s, and the
// driver whose sessions are read instead of the interval's.
type where struct {
	tenant string
	conds  []*cond
	// driver is the chosen driver (see drive); nil: scan the interval.
	driver *driver
	// owner is the condition the driver serves: it is implied by the
	// join and not tested again.
	owner *cond
	// choice locates driver: the indexes of owner in conds and of driver
	// in owner's drivers.
	choice [2]int
	// size is how many sessions the driver yields, counted up to a limit
	// past the bound (see drive).
	size int
	// base is how many leading conditions every driver implies (tenant
	// and interval).
	base int
}

// driverOnly reports whether w's driver is ordered and every condition
// but the driver's is implied by it: its size is then the count.
func (w *where) driverOnly() bool {
	return w.driver != nil && w.driver.ordered && len(w.conds) == w.base+1
}

// follow makes w use the driver other chose: the same filter, planned
// once for the page and once for the count (they differ only by the
// cursor, which does not change which driver reads least).
func (w *where) follow(other *where) {
	w.driver, w.owner = nil, nil
	if other.driver != nil {
		w.owner = w.conds[other.choice[0]]
		w.driver = &w.owner.drivers[other.choice[1]]
	}
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
	// walk, for the full-text condition, reads its sessions in Go when
	// its one driver is sized, and makes the driver (fulltext.go).
	walk *wordWalk
}

// driver is a subquery yielding the sessions one condition selects: with
// ordered, their started_at and session_id in report order, once each (an
// index range of one value); otherwise session ids in any order, possibly
// repeated (a session holding two of the tags asked for).
type driver struct {
	frag
	ordered bool
}

func (w *where) add(sql string, args ...any) *cond {
	c := &cond{frag: frag{sql, args}}
	w.conds = append(w.conds, c)
	return c
}

func (w *where) render() (string, []any) {
	var parts []string
	var args []any
	for _, c := range w.conds {
		if c == w.owner {
			continue
		}
		parts = append(parts, c.sql)
		args = append(args, c.args...)
	}
	return strings.Join(parts, " AND "), args
}

// source is the FROM clause and its arguments, which come before the
// condition's, and the ORDER BY of the report's order on it. CROSS JOIN
// makes SQLite read the driver first. An ordered driver meets the sessions
// through sessions_by_start_filters (its key is what the driver yields), so
// a count reads no session row; an unordered one is made DISTINCT, since a
// session may match it in more than one way, and sorted.
func (w *where) source() (from string, args []any, order string) {
	switch {
	case w.driver == nil:
		return "sessions s WHERE ", nil, " ORDER BY s.started_at DESC, s.session_id DESC"
	case w.driver.ordered:
		return "(" + w.driver.sql + ") AS m CROSS JOIN sessions s INDEXED BY sessions_by_start_filters" +
				" WHERE s.started_at = m.started_at AND s.session_id = m.session_id AND ", w.driver.args,
			" ORDER BY m.started_at DESC, m.session_id DESC"
	default:
		return "(SELECT DISTINCT session_id FROM (" + w.driver.sql + ")) AS m CROSS JOIN sessions s" +
			" WHERE s.session_id = m.session_id AND ", w.driver.args, " ORDER BY s.started_at DESC, s.session_id DESC"
	}
}

// query is the statement SELECT selectList FROM <source> WHERE <conditions>
// [ORDER BY the report's order] rest, with its arguments and then more.
func (w *where) query(selectList string, ordered bool, rest string, more ...any) (string, []any) {
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

// drive picks the driver that reads the fewest sessions. An ordered driver
// never reads more than the scan of the interval would (its sessions are a
// part of the interval, in the same order), so the smallest one drives; an
// unordered one only when it selects fewer than driveLimit sessions (and
// fewer than the best ordered one), since its sessions are sorted before
// the first is returned. Each size is counted up to a limit, so choosing
// costs little: an ordered driver's count reads at most bound+1 entries of
// one index range.
func (w *where) drive(ctx context.Context, tx *sql.Tx, bound int) error {
	w.driver, w.owner = nil, nil
	if plan == planScan {
		return nil
	}
	best := -1
	for ci, c := range w.conds {
		for i := range c.drivers {
			d := &c.drivers[i]
			limit := max(bound+1, sizeLimit)
			if !d.ordered {
				limit = driveLimit
			}
			var n int
			if c.walk != nil {
				if best >= 0 {
					limit = min(limit, best)
				}
				var err error
				if n, err = c.walk.size(ctx, tx, w, c, d, bound, limit); err != nil {
					return err
				}
				if n < 0 {
					continue
				}
			} else if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM ("+d.sql+" LIMIT ?)", append(slices.Clip(d.args), limit)...).Scan(&n); err != nil {
				return fmt.Errorf("size a condition: %w", err)
			}
			if !d.ordered && n >= driveLimit {
				continue
			}
			better := best < 0 || n < best
			if plan == planUnordered && w.driver != nil && w.driver.ordered != d.ordered {
				better = !d.ordered
			}
			if better {
				best, w.driver, w.owner = n, d, c
				w.choice, w.size = [2]int{ci, i}, n
			}
		}
	}
	return nil
}
