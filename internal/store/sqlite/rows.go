package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strings"
	"sync"
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
// prepared once per transaction; with a stmtCache in the context (the
// writer's, stmtCache), once for the store's life, and a last statement of
// fewer rows is split into shapes of powers of two that it keeps too. args
// appends row i's values. It returns the rows changed.
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

// cachedRows is the fewest rows a statement kept by a stmtCache has: a
// shorter one is prepared for its transaction only (its text is short).
const cachedRows = 16

func (m multiRow) exec(ctx context.Context, tx *sql.Tx, n int, args func(i int, dst []any) []any) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	per := m.rowsPerStatement()
	cache := stmtsOf(ctx)
	var own *sql.Stmt // the full statement, prepared for tx alone without a cache
	defer func() {
		if own != nil {
			own.Close()
		}
	}()
	var changed int64
	buf := make([]any, 0, min(n, per)*m.cols)
	for from := 0; from < n; {
		rows := min(per, n-from)
		keep := cache != nil && !m.whole && rows >= cachedRows
		if keep && rows < per {
			// Of a shape a cache keeps: the largest power of two.
			rows = 1 << (bits.Len(uint(rows)) - 1)
		}
		buf = buf[:0]
		for i := from; i < from+rows; i++ {
			buf = args(i, buf)
		}
		from += rows
		var res sql.Result
		var err error
		switch {
		case keep:
			var st *sql.Stmt
			if st, err = cache.in(ctx, tx, m.text(rows)); err != nil {
				return 0, err
			}
			res, err = st.ExecContext(ctx, buf...)
		case rows == per:
			if own == nil {
				if own, err = tx.PrepareContext(ctx, m.text(per)); err != nil {
					return 0, fmt.Errorf("prepare: %w", err)
				}
			}
			res, err = own.ExecContext(ctx, buf...)
		default:
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

// stmtCache keeps the write path's multi-row statements prepared from one
// transaction to the next: preparing them (SQLite parsing and compiling
// statements of up to a few thousand values) was 2-5 % of the ingester's
// CPU (docs/performance.md). Its statements are of the database
// (sql.DB.PrepareContext), which a transaction uses on its connection with
// sql.Tx.StmtContext, preparing them there the first time only; a
// statement of a sql.Conn would be prepared again in every transaction. It
// reaches multiRow.exec through the context (withStmts), which the write
// path's functions pass down with their transaction.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// in returns the statement query prepared, for use in tx.
func (c *stmtCache) in(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.m[query]
	if st == nil {
		var err error
		if st, err = c.db.PrepareContext(ctx, query); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		c.m[query] = st
	}
	return tx.StmtContext(ctx, st), nil
}

// close closes the statements kept.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

type stmtsKey struct{}

// withStmts is ctx carrying c to multiRow.exec.
func withStmts(ctx context.Context, c *stmtCache) context.Context {
	return context.WithValue(ctx, stmtsKey{}, c)
}

// stmtsOf is the stmtCache ctx carries, or nil.
func stmtsOf(ctx context.Context) *stmtCache {
	c, _ := ctx.Value(stmtsKey{}).(*stmtCache)
	return c
}
