package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestEventsOverTheStringLimit: on a connection whose string limit
// (sqlite3_limit, SQLITE_LIMIT_LENGTH) is below one session's events
// joined, the one-row-per-session statement fails with SQLITE_TOOBIG, and
// readEvents reads the chunk's events a row per event instead: every
// session gets its events, in order, as a connection without the limit
// reads them — the large one, one without events between others, and the
// small ones around them.
func TestEventsOverTheStringLimit(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	const limit = 8000
	var events []event.Event
	large := storetest.B{Contact: "5511900000001"}
	for i := range 200 { // ~30 KB of bodies
		events = append(events, large.Msg(fmt.Sprintf("l%03d", i), time.Duration(i)*time.Second, event.RoleCustomer, strings.Repeat("x", 40)))
	}
	for c := range 3 {
		b := storetest.B{Contact: fmt.Sprintf("551190000001%d", c)}
		events = append(events, b.Msg(fmt.Sprintf("s%d-1", c), time.Duration(c)*time.Minute, event.RoleCustomer, "oi"),
			b.Msg(fmt.Sprintf("s%d-2", c), time.Duration(c)*time.Minute+time.Second, event.RoleBot, "olá"))
	}
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(time.Hour)}
	read := func(conn *sql.Conn, each func(*chunk, *sql.Tx) error) *chunk {
		t.Helper()
		tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var c chunk
		if err := c.choose(ctx, tx, translate(&f, nil), 100, planner{}); err != nil {
			t.Fatal(err)
		}
		// A session without events between the others: its row is
		// NULL, or it has no rows.
		c.list = slices.Insert(c.list, 2, report.StoredDetail{Session: c.list[1].Session})
		c.list[2].Session.ID = "00000000-0000-4000-8000-000000000000"
		if err := each(&c, tx); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	plain, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	want := read(plain, func(c *chunk, tx *sql.Tx) error { return c.readEvents(ctx, tx, "acme") })

	limited, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, err := sqlitedriver.Limit(limited, sqlite3.SQLITE_LIMIT_LENGTH, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sqlitedriver.Limit(limited, sqlite3.SQLITE_LIMIT_LENGTH, before)
		limited.Close()
	}()
	read(limited, func(c *chunk, tx *sql.Tx) error {
		if err := c.readJoined(ctx, tx, c.boundSpans(nil), "acme", nil); !tooBig(err) {
			t.Fatalf("one row per session under a limit of %d bytes: %v, want SQLITE_TOOBIG", limit, err)
		}
		return nil
	})
	got := read(limited, func(c *chunk, tx *sql.Tx) error { return c.readEvents(ctx, tx, "acme") })
	if len(got.list) != 5 || len(got.list) != len(want.list) {
		t.Fatalf("%d sessions read under the limit, %d without; want 5", len(got.list), len(want.list))
	}
	sizes := []int{}
	for i := range want.list {
		g, w := got.list[i].Events, want.list[i].Events
		sizes = append(sizes, len(w))
		if !slices.EqualFunc(g, w, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Errorf("session %d: %d events under the limit, %d without, or others", i, len(g), len(w))
		}
	}
	if !slices.Contains(sizes, 200) || !slices.Contains(sizes, 0) {
		t.Fatalf("events per session %v: want the large session and one without events", sizes)
	}
}

// TestPackedChunkOverTheStringLimit: an export chunk whose small sessions
// are packed and whose large one is not (too large for one string under
// the connection's limit) reads every session's events a row per event,
// the packed ones too, as a connection without the limit reads them.
func TestPackedChunkOverTheStringLimit(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	const limit = 8000
	var events []event.Event
	large := storetest.B{Contact: "5511900000001"}
	for i := range 200 { // ~30 KB of bodies
		events = append(events, large.Msg(fmt.Sprintf("l%03d", i), time.Duration(i)*time.Second, event.RoleCustomer, strings.Repeat("x", 40)))
	}
	for c := range 3 {
		b := storetest.B{Contact: fmt.Sprintf("551190000001%d", c)}
		events = append(events, b.Msg(fmt.Sprintf("s%d-1", c), time.Duration(c)*time.Minute, event.RoleCustomer, "oi"),
			b.Msg(fmt.Sprintf("s%d-2", c), time.Duration(c)*time.Minute+time.Second, event.RoleBot, "olá"))
	}
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(time.Hour)}
	export := func(conn *sql.Conn) map[string][][]byte {
		t.Helper()
		var c exportChunk
		tx, err := c.choose(ctx, conn, translate(&f, nil), s.planner)
		if err != nil {
			t.Fatal(err)
		}
		var got sync.Map
		if err := c.readAndEncode(ctx, tx, "acme", recorder{&got}); err != nil {
			t.Fatal(err)
		}
		out := map[string][][]byte{}
		got.Range(func(k, v any) bool {
			out[k.(string)] = v.(report.StoredDetail).Events
			return true
		})
		return out
	}
	plain, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	want := export(plain)
	if n := packEvery(t, s); n != 4 {
		t.Fatalf("%d sessions packed, want 4", n)
	}
	largeID := session.DeriveID(&events[0])
	if _, err := s.db.ExecContext(ctx, `DELETE FROM event_packs WHERE session = (SELECT rowid FROM sessions WHERE session_id = ?)`, largeID); err != nil {
		t.Fatal(err)
	}
	limited, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, err := sqlitedriver.Limit(limited, sqlite3.SQLITE_LIMIT_LENGTH, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sqlitedriver.Limit(limited, sqlite3.SQLITE_LIMIT_LENGTH, before)
		limited.Close()
	}()
	got := export(limited)
	if len(got) != 4 || len(want) != 4 || len(want[largeID]) != 200 {
		t.Fatalf("%d sessions under the limit, %d without; want 4, the large one with 200 events", len(got), len(want))
	}
	for id, w := range want {
		if !slices.EqualFunc(got[id], w, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Errorf("session %s: %d events under the limit, %d without, or others", id, len(got[id]), len(w))
		}
	}
}
