package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestFullTextIndexBackfill: a database made before the full-text index and
// the millisecond times gets its messages indexed and its times converted
// when opened.
func TestFullTextIndexBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	b := storetest.B{Contact: "c1"}
	e := b.Msg("e1", 0, event.RoleCustomer, "NÃO recebi a fatura")
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, []event.Event{e, b.Tag("e2", time.Second, "x")}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Make it an old database: no index, no trigger, times in nanoseconds,
	// version 0.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TRIGGER events_index_words`, `DROP TABLE message_words`, `DROP TABLE message_rows`,
		`UPDATE events SET occurred_at = occurred_at * 1000000`, `UPDATE sessions SET started_at = started_at * 1000000`,
		`PRAGMA user_version = 0`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	db.Close()

	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := report.Filter{Tenant: "acme", From: storetest.Base, To: storetest.Base.Add(time.Hour), Query: "nao fatura"}
	res, err := s.Search(ctx, f, report.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 1 || len(res.Items) != 1 || res.Items[0].ID != session.DeriveID(&e) {
		t.Fatalf("after backfill: %+v", res)
	}
	// Opening again does not index twice: still one session, one match.
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Search(ctx, f, report.Page{Limit: 10}); err != nil || res.Total != 1 {
		t.Fatalf("reopened: %+v %v", res, err)
	}
}
