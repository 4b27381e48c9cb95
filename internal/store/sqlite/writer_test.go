package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// The writer's page cache holds the pages a transaction of a batch changes
// (24 MiB of them here, past the 16 MiB it once had) instead of writing
// them to the WAL before the commit and reading them back when they are
// evicted. Past its size it spills, as SQLite does, which the second case
// checks, so that the first cannot pass for want of a spill to see.
func TestWriterHoldsABatchsPages(t *testing.T) {
	const page = 4096
	for _, c := range []struct {
		name  string
		pages int
		spill bool
	}{
		{"24 MiB", 24 << 10 * 1024 / page, false},
		{"more than the cache", writerCacheKiB * 1024 / page * 3 / 2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "spill.db")
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=page_size(4096)&_txlock=immediate")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, `CREATE TABLE t (b BLOB)`); err != nil {
				t.Fatal(err)
			}
			w, err := writerConn(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				t.Fatal(err)
			}
			tx, err := w.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback() //nolint:errcheck // a no-op after Commit
			// A row of 3,500 bytes fills most of a page of its own.
			if _, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
				INSERT INTO t SELECT zeroblob(3500) FROM n`, c.pages); err != nil {
				t.Fatal(err)
			}
			if spilled := walSize(t, path) > 0; spilled != c.spill {
				t.Errorf("%d pages changed: WAL written before the commit = %v, want %v", c.pages, spilled, c.spill)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if walSize(t, path) < int64(c.pages)*page {
				t.Errorf("after the commit the WAL holds %d bytes, less than the %d pages written", walSize(t, path), c.pages)
			}
		})
	}
}

func walSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
