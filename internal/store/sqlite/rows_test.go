package sqlite

import (
	"fmt"
	"slices"
	"testing"
)

// TestMultiRowKeepsStatements: with the writer's statement cache in the
// context, multiRow.exec writes every row, as full statements and a last
// one split into shapes of powers of two (16 rows and more) that the cache
// keeps from one transaction to the next; fewer rows go in a statement of
// their own.
func TestMultiRowKeepsStatements(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	ins := multiRow{head: `INSERT INTO t (a, b) VALUES `, cols: 2}
	cache := newStmtCache(s.db)
	t.Cleanup(cache.close)
	tests := []struct {
		n    int
		kept []int // rows of the statements kept after the write
	}{
		{n: 300, kept: []int{32, 256}},          // 256, 32, and 12 alone
		{n: 560, kept: []int{16, 32, 256}},      // 256, 256, 32, 16
		{n: 5, kept: []int{16, 32, 256}},        // 5 alone
		{n: 176, kept: []int{16, 32, 128, 256}}, // 128, 32, 16
	}
	next := 0
	for _, tc := range tests {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		first := next
		changed, err := ins.exec(withStmts(ctx, cache), tx, tc.n, func(i int, dst []any) []any {
			return append(dst, first+i, fmt.Sprint("row ", first+i))
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		next += tc.n
		if changed != int64(tc.n) {
			t.Errorf("%d rows: %d changed", tc.n, changed)
		}
		var kept []int
		for rows := 1; rows <= ins.rowsPerStatement(); rows++ {
			if cache.m[ins.text(rows)] != nil {
				kept = append(kept, rows)
			}
		}
		if !slices.Equal(kept, tc.kept) {
			t.Errorf("after %d rows the cache keeps statements of %v rows, want %v", tc.n, kept, tc.kept)
		}
	}
	var n, sum int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*), sum(a) FROM t`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != next || sum != next*(next-1)/2 {
		t.Errorf("%d rows of sum %d, want %d of %d", n, sum, next, next*(next-1)/2)
	}
}
