package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// The store keeps the state of the keys it wrote in memory (docs/sessions.md,
// "What memory holds"). These tests compare what it writes with what a store
// that reads every key from the database writes: one reopened before every
// batch, whose memory is always empty.

// stateTraffic is a few hundred conversations of two tenants, with
// duplicates, arriving up to three days late, in batches.
func stateTraffic(seed uint64) (tenants []string, want map[session.Ref]sessiontest.Expected, batches [][]event.Event) {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	tenants = []string{"acme", "globex"}
	events := sessiontest.Generate(rng, sessiontest.Options{
		Tenants: tenants, Conversations: 200, MaxEvents: 12, Start: sessiontest.Base, Spread: 5 * 24 * time.Hour,
	})
	want = sessiontest.Reference(sessiontest.Definition(), events)
	arrival := sessiontest.Arrange(rng, sessiontest.Duplicate(rng, events, 0.05), sessiontest.Late)
	for len(arrival) > 0 {
		n := min(len(arrival), 1+rng.IntN(80))
		batches = append(batches, arrival[:n])
		arrival = arrival[n:]
	}
	return tenants, want, batches
}

// storeAt is a store at path that a test can reopen, as a restart would.
type storeAt struct {
	t    *testing.T
	path string
	st   *sqlite.Store
}

func openAt(t *testing.T, path string) *storeAt {
	s := &storeAt{t: t, path: path}
	s.reopen()
	t.Cleanup(func() { s.st.Close() })
	return s
}

func (s *storeAt) reopen() {
	if s.st != nil {
		s.st.Close()
	}
	st, err := sqlite.Open(context.Background(), s.path)
	if err != nil {
		s.t.Fatal(err)
	}
	s.st = st
}

func (s *storeAt) ingest(batch []event.Event) error {
	return session.NewAssembler(sessiontest.Definition(), s.st).Ingest(context.Background(), batch)
}

// dump is every row of the database file at path that the write path writes,
// but for the events' row ids, in one order.
func dump(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	for _, q := range []string{
		`SELECT tenant, event_id, session_key, session_id, occurred_at, type, body FROM events ORDER BY tenant, event_id`,
		`SELECT * FROM sessions ORDER BY tenant, session_id`,
		`SELECT * FROM session_tags ORDER BY tenant, session_id, tag`,
		`SELECT * FROM session_protocols ORDER BY tenant, session_id, protocol`,
		`SELECT * FROM session_info ORDER BY tenant, session_id, key`,
		`SELECT * FROM session_marks ORDER BY tenant, session_id, kind, value`,
		`SELECT rowid FROM message_words WHERE message_words MATCH 'fatura OR boleto OR obrigado' ORDER BY rowid`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		n := 0
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%v|", v)
			}
			b.WriteByte('\n')
			n++
		}
		rows.Close()
		fmt.Fprintf(&b, "-- %d rows of %s\n", n, q)
	}
	return b.String()
}

// sameDump fails t with the first line where got and want differ.
func sameDump(t *testing.T, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			t.Fatalf("%s: line %d differs:\n got  %s\n want %s", what, i+1, g[i], w[i])
		}
	}
	t.Fatalf("%s: %d lines, want %d", what, len(g), len(w))
}

// TestStateRestart: a store that keeps its keys in memory throughout, and
// one restarted (memory empty) every few batches, write what a store with no
// memory writes, row for row, and the sessions of the reference.
func TestStateRestart(t *testing.T) {
	seeds := uint64(3)
	if testing.Short() {
		seeds = 1
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			tenants, want, batches := stateTraffic(seed)
			dir := t.TempDir()
			kept, restarted, none := openAt(t, filepath.Join(dir, "kept.db")), openAt(t, filepath.Join(dir, "restarted.db")), openAt(t, filepath.Join(dir, "none.db"))
			for i, batch := range batches {
				if i%4 == 3 {
					restarted.reopen()
				}
				none.reopen()
				for _, s := range []*storeAt{kept, restarted, none} {
					if err := s.ingest(batch); err != nil {
						t.Fatalf("batch %d: %v", i, err)
					}
				}
			}
			from, to := sessiontest.Base.Add(-24*time.Hour), sessiontest.Base.Add(30*24*time.Hour)
			if err := sessiontest.Check(context.Background(), kept.st, tenants, from, to, want); err != nil {
				t.Fatal(err)
			}
			wantRows := dump(t, none.path)
			sameDump(t, "kept in memory", dump(t, kept.path), wantRows)
			sameDump(t, "restarted", dump(t, restarted.path), wantRows)
		})
	}
}

// TestStateFailedUpdate: an update that fails after reading a key from
// memory rolls back, and memory with it: the next batch of the key reads
// what the database holds, not what the failed update computed.
func TestStateFailedUpdate(t *testing.T) {
	dir := t.TempDir()
	s, ref := openAt(t, filepath.Join(dir, "s.db")), openAt(t, filepath.Join(dir, "ref.db"))
	// Writing an event "boom" fails, as a full disk would: after the
	// assembler computed its changes from memory.
	failBoom(t, s.path)

	b := storetest.B{Contact: "c1"}
	first := []event.Event{b.Msg("m1", 0, event.RoleCustomer, "oi"), b.Tag("t1", time.Minute, "Fatura")}
	failed := []event.Event{b.Msg("m2", 2*time.Minute, event.RoleBot, "olá"), b.Msg("boom", 3*time.Minute, event.RoleCustomer, "x"),
		b.Info("i1", 4*time.Minute, "NAO_TRANSBORDADA", "true")}
	// A late event before the first, and one after: both read the key.
	next := []event.Event{b.Msg("m0", -time.Minute, event.RoleCustomer, "boleto"), b.Msg("m3", 5*time.Minute, event.RoleAgent, "obrigado")}
	if err := s.ingest(first); err != nil {
		t.Fatal(err)
	}
	if err := s.ingest(failed); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("the update with the failing event: %v, want it to fail", err)
	}
	if err := s.ingest(next); err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]event.Event{first, next} {
		if err := ref.ingest(batch); err != nil {
			t.Fatal(err)
		}
	}
	sameDump(t, "after a failed update", dump(t, s.path), dump(t, ref.path))
}

// TestStateTwoWriters: two stores on one database file (two ingester
// processes) writing the same keys in turn each see the other's writes:
// what one holds in memory is dropped when the other wrote.
func TestStateTwoWriters(t *testing.T) {
	tenants, want, batches := stateTraffic(9)
	path := filepath.Join(t.TempDir(), "shared.db")
	one, two := openAt(t, path), openAt(t, path)
	for i, batch := range batches {
		w := one
		if i%3 == 1 {
			w = two
		}
		if err := w.ingest(batch); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	from, to := sessiontest.Base.Add(-24*time.Hour), sessiontest.Base.Add(30*24*time.Hour)
	for _, s := range []*storeAt{one, two} {
		if err := sessiontest.Check(context.Background(), s.st, tenants, from, to, want); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStateEventIDOfAnotherKey: an event id stored under another key of
// the tenant is not among what memory holds of the new event's key; the
// insert finds it and the update runs again with the database answering,
// so that the first event stored wins, as without memory.
func TestStateEventIDOfAnotherKey(t *testing.T) {
	dir := t.TempDir()
	s, ref := openAt(t, filepath.Join(dir, "s.db")), openAt(t, filepath.Join(dir, "ref.db"))
	c1, c2 := storetest.B{Contact: "c1"}, storetest.B{Contact: "c2"}
	batches := [][]event.Event{
		{c1.Msg("x", 0, event.RoleCustomer, "oi"), c2.Msg("y0", 0, event.RoleCustomer, "oi")},
		{c2.Msg("x", time.Minute, event.RoleCustomer, "fatura"), c2.Msg("y1", 2*time.Minute, event.RoleBot, "boleto")},
	}
	for i, batch := range batches {
		if err := s.ingest(batch); err != nil {
			t.Fatal(err)
		}
		ref.reopen()
		if err := ref.ingest(batch); err != nil {
			t.Fatal(err)
		}
		sameDump(t, fmt.Sprint("batch ", i), dump(t, s.path), dump(t, ref.path))
	}
	got, err := s.st.Session(context.Background(), "acme", session.DeriveID(&batches[0][1]))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != 2 {
		t.Errorf("c2's session has %d events, want 2 (y0, y1: x is c1's)", len(got.Events))
	}
}

// TestSideRowsAsDiff: the side tables, written batch by batch as a
// difference (rows upserted, vanished ones pruned), hold what one write of
// all the events at once inserts: a session whose info value changes, that
// is handed off, or whose outcome at the window's end changes keeps no stale
// row (the generated traffic has late events, duplicates and moved sessions).
func TestSideRowsAsDiff(t *testing.T) {
	c := storetest.B{Contact: "c1", Channel: "whatsapp"}
	handcrafted := [][]event.Event{
		{c.Msg("m1", time.Hour, event.RoleCustomer, "oi"), c.Tag("t1", 2*time.Hour, "vip"), c.Info("i1", 3*time.Hour, "plan", "Gold")},
		{c.Info("i2", 4*time.Hour, "plan", "Silver"), c.Tag("t2", 5*time.Hour, "churn")},
		{c.Handoff("h1", 6*time.Hour, event.ActionAssigned, "")},
	}
	_, _, generated := stateTraffic(4)
	for name, batches := range map[string][][]event.Event{"handcrafted": handcrafted, "generated": generated} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			stepwise, whole := openAt(t, filepath.Join(dir, "stepwise.db")), openAt(t, filepath.Join(dir, "whole.db"))
			var all []event.Event
			for i, batch := range batches {
				if err := stepwise.ingest(batch); err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
				all = append(all, batch...)
			}
			if err := whole.ingest(all); err != nil {
				t.Fatal(err)
			}
			sameDump(t, "side tables", sideDump(t, stepwise.path), sideDump(t, whole.path))
		})
	}
}

// sideDump is the part of dump after the events: sessions and their side
// tables.
func sideDump(t *testing.T, path string) string {
	t.Helper()
	_, after, _ := strings.Cut(dump(t, path), " rows of SELECT tenant, event_id")
	_, after, _ = strings.Cut(after, "\n")
	return after
}

// failBoom makes writing an event whose id is "boom" to the database at path
// fail, as a full disk would, from the next transaction on.
func failBoom(t *testing.T, path string) {
	t.Helper()
	// The store's packer takes the write lock in slices: this connection
	// of its own waits for one to end, as the store's connections do.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER boom BEFORE INSERT ON events WHEN new.event_id = 'boom'
		BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
}
