package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// maxParams is the most parameters one statement may bind: SQLite's
// SQLITE_MAX_VARIABLE_NUMBER, 32766 by default since 3.32.0
// (https://www.sqlite.org/limits.html, "Maximum Number Of Host Parameters
// In A Single SQL Statement"); the driver's SQLite is newer.
const maxParams = 32766

// maxRows bounds the rows of one multi-row statement: past a few hundred,
// a longer statement saves nothing more per row, and its text and the
// arguments slice only grow.
const maxRows = 256

// multiRow runs a statement of the form head + "(?, …), (?, …)" + tail for
// n rows of cols values, as few statements as the limits allow, each shape
// prepared once per transaction. args appends row i's values. It returns
// the rows changed.
type multiRow struct {
	head, tail string
	cols       int
	// whole: as many rows a statement as the parameters allow, not
	// maxRows (a statement that must take all the rows it can).
	whole bool
}

func (m multiRow) rowsPerStatement() int {
	if m.whole {
		return maxParams / m.cols
	}
	return min(maxRows, maxParams/m.cols)
}

// text is the statement for rows rows.
func (m multiRow) text(rows int) string {
	var b strings.Builder
	one := "(" + strings.Repeat("?, ", m.cols-1) + "?)"
	b.Grow(len(m.head) + len(m.tail) + rows*(len(one)+2))
	b.WriteString(m.head)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	b.WriteString(m.tail)
	return b.String()
}

func (m multiRow) exec(ctx context.Context, tx *sql.Tx, n int, args func(i int, dst []any) []any) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	per := m.rowsPerStatement()
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	var changed int64
	buf := make([]any, 0, min(n, per)*m.cols)
	for from := 0; from < n; from += per {
		rows := min(per, n-from)
		buf = buf[:0]
		for i := from; i < from+rows; i++ {
			buf = args(i, buf)
		}
		var res sql.Result
		var err error
		if rows == per {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, m.text(per)); err != nil {
					return 0, fmt.Errorf("prepare: %w", err)
				}
			}
			res, err = full.ExecContext(ctx, buf...)
		} else {
			res, err = tx.ExecContext(ctx, m.text(rows), buf...)
		}
		if err != nil {
			return 0, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		changed += k
	}
	return changed, nil
}
