package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// conversations are n contacts' messages, one each, spread over n minutes:
// n sessions whose starts (and so their messages' full-text rowids) differ.
func conversations(n int) []event.Event {
	var events []event.Event
	for i := range n {
		b := storetest.B{Contact: fmt.Sprintf("c%04d", i)}
		events = append(events, b.Msg(fmt.Sprintf("m%04d", i), time.Duration(i)*time.Minute, event.RoleCustomer, fmt.Sprintf("olá número %d", i)))
	}
	return events
}

// The store copies the WAL into the database file on its own connection
// (checkpoint.go): after a write, the file grows without another write and
// before the WAL reaches the writer's bound.
func TestCheckpointOffTheWriter(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(ctx, t)
	before := fileSize(t, path)
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, conversations(500)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); fileSize(t, path) <= before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the database file is still %d bytes: the write was not checkpointed", before)
		}
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// One write's messages go into the full-text index as one segment: FTS5
// flushes what it holds whenever a rowid is lower than the one before it
// (fulltext.go, addWords), so messages of sessions of many starts, written
// in any other order, would each leave a segment of their own; and at the
// end of each statement, so they are inserted in one.
func TestWordsOneSegmentPerWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	// Without its merger (WithMerger), which would merge what the write
	// left: this test counts what the write itself makes.
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// 2,000 messages: more than one multi-row statement of maxRows rows.
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, conversations(2000)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// message_words_data holds the index's structure and averages (rows 1
	// and 10) and each segment's pages, whose rowids carry the segment's id
	// above bit 37 (FTS5_SEGMENT_ROWID in fts5Int.h).
	for _, table := range []string{"message_words", "session_words"} {
		var segments int
		if err := db.QueryRowContext(ctx, `SELECT count(DISTINCT id >> 37) FROM `+table+`_data WHERE id >= 1 << 37`).Scan(&segments); err != nil {
			t.Fatal(err)
		}
		if segments != 1 {
			t.Errorf("%s has %d segments after one write of 2,000 messages, want one", table, segments)
		}
	}
}
