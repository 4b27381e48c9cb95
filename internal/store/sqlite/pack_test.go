package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// packAll runs a sweep over every session, as the first sweep after Open
// does.
func packAll(t *testing.T, s *Store) {
	t.Helper()
	sweepWith(t, s, &packMarks{})
}

// sliceOnce runs one slice with m, again while another slice (of the
// store's packer or merger, when it runs one) holds the writer.
func sliceOnce(t testing.TB, slice func(context.Context, *packMarks) (bool, error), m *packMarks) (more bool, err error) {
	t.Helper()
	for {
		more, err = slice(t.Context(), m)
		if !errors.Is(err, errWriterBusy) {
			return more, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sweepWith runs a sweep's slices with m, as the packer does with its
// marks.
func sweepWith(t testing.TB, s *Store, m *packMarks) {
	t.Helper()
	for _, slice := range s.sweepSlices() {
		for {
			more, err := sliceOnce(t, slice, m)
			if err != nil {
				t.Fatal(err)
			}
			if !more {
				break
			}
		}
	}
}

// packEvery packs every session of s, settled or not, as a sweep packs
// settled ones, and returns how many it packed.
func packEvery(t *testing.T, s *Store) int {
	t.Helper()
	ctx := t.Context()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	rows, err := tx.QueryContext(ctx, `SELECT rowid, tenant, session_id, doc FROM sessions ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	byTenant := packChunksOf(t, rows)
	n := 0
	for tenant, c := range byTenant {
		k, err := writePacks(ctx, tx, tenant, c)
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return n
}

// packedIDs are the ids of the sessions of tenant that have a pack.
func packedIDs(t *testing.T, s *Store, tenant string) []string {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), `SELECT s.session_id FROM event_packs p JOIN sessions s ON s.rowid = p.session
		WHERE s.tenant = ? ORDER BY 1`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// exportAll exports f with recorder and returns every session, in order.
func exportAll(t *testing.T, s *Store, f report.Filter) []report.StoredDetail {
	t.Helper()
	var (
		got sync.Map
		ids []string
	)
	err := s.Export(t.Context(), f, func() report.Encoder { return recorder{&got} }, func(chunk []byte, _ []int) error {
		for _, id := range bytes.Fields(chunk) {
			ids = append(ids, string(id))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]report.StoredDetail, 0, len(ids))
	for _, id := range ids {
		v, _ := got.Load(id)
		out = append(out, v.(report.StoredDetail)) // the recorder keeps copies

	}
	return out
}

// sameExport fails unless a and b are the same sessions with the same
// documents and event bodies, in the same order.
func sameExport(t *testing.T, what string, a, b []report.StoredDetail) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d sessions, want %d", what, len(a), len(b))
	}
	for i := range a {
		if !reflect.DeepEqual(a[i].Session, b[i].Session) || !slices.EqualFunc(a[i].Events, b[i].Events, bytes.Equal) {
			t.Fatalf("%s: session %d (%s) differs: %d events, want %d", what, i, a[i].Session.ID, len(a[i].Events), len(b[i].Events))
		}
	}
}

// TestPackSettledOnly: a slice packs the sessions whose window ended before
// both the clock and the newest start of a session of their tenant, and no
// other; each pack is what eventsStatement reads of its session.
func TestPackSettledOnly(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a := session.NewAssembler(pipeline.MustDefault(), s)
	var batch []event.Event
	// Contact i's session starts 25i hours after Base: its window
	// (whatsapp's, 24 hours from its first event) ends before the next
	// starts.
	for i := range 5 {
		b := storetest.B{Contact: fmt.Sprint("c", i)}
		at := time.Duration(i) * 25 * time.Hour
		batch = append(batch, b.Msg(fmt.Sprint("m", i), at, event.RoleCustomer, "oi"), b.Tag(fmt.Sprint("t", i), at+time.Second, "x"))
	}
	// Another tenant's only session: no newer start of its tenant.
	g := storetest.B{Tenant: "globex", Contact: "g"}
	batch = append(batch, g.Msg("g1", 10*time.Hour, event.RoleCustomer, "oi"))
	// A session whose window has not ended by the clock: events of now;
	// its start settles acme's others.
	live := storetest.B{Contact: "live"}.Msg("l1", 0, event.RoleCustomer, "oi")
	live.OccurredAt = time.Now().UTC().Add(-time.Minute)
	batch = append(batch, live)
	if err := a.Ingest(ctx, batch); err != nil {
		t.Fatal(err)
	}
	packAll(t, s)
	var want []string
	for i := range 5 {
		want = append(want, session.DeriveID(&batch[2*i]))
	}
	slices.Sort(want)
	if got := packedIDs(t, s, "acme"); !slices.Equal(got, want) {
		t.Fatalf("packed %v, want %v", got, want)
	}
	if got := packedIDs(t, s, "globex"); len(got) != 0 {
		t.Fatalf("globex's only session packed: %v", got)
	}
	// Each pack is eventsStatement's row of its session.
	rows, err := s.db.QueryContext(ctx, `SELECT s.doc, p.events FROM event_packs p JOIN sessions s ON s.rowid = p.session`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var doc, pack []byte
		if err := rows.Scan(&doc, &pack); err != nil {
			t.Fatal(err)
		}
		var c chunk
		c.list = append(c.list, report.StoredDetail{})
		if err := (&docReader{}).decode(doc, &c.list[0].Session); err != nil {
			t.Fatal(err)
		}
		var joined string
		if err := s.db.QueryRowContext(ctx, eventsStatement, c.boundSpans(nil), "acme").Scan(new(int), &joined); err != nil {
			t.Fatal(err)
		}
		if string(pack) != joined {
			t.Fatalf("session %s: pack %q, events %q", c.list[0].Session.ID, pack, joined)
		}
	}
	// A second sweep packs nothing more and commits nothing.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var before, after int64
	if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	packAll(t, s)
	if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if got := packedIDs(t, s, "acme"); !slices.Equal(got, want) || after != before {
		t.Fatalf("swept again: packed %v, data_version %d -> %d", got, before, after)
	}
}

// TestPackedExportMatches: every filter's export, with the settled sessions
// packed, is the export without packs; a late event to a packed session
// deletes its pack in the update's transaction and is in the next export;
// Forget deletes the packs of the sessions it deletes or takes events from.
func TestPackedExportMatches(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a := session.NewAssembler(pipeline.MustDefault(), s)
	var batch []event.Event
	for i := range 3*report.ExportChunk + 11 {
		b := storetest.B{Contact: fmt.Sprint("c", i%97), Name: fmt.Sprint("Cliente ", i%97)}
		at := time.Duration(i) * time.Hour
		batch = append(batch, b.Msg(fmt.Sprint("m", i), at, event.RoleCustomer, fmt.Sprintf("mensagem %d", i)),
			b.Tag(fmt.Sprint("t", i), at+time.Second, []string{"x", "y"}[i%2]),
			b.Msg(fmt.Sprint("n", i), at+2*time.Second, event.RoleBot, "ok"))
	}
	if err := a.Ingest(ctx, batch); err != nil {
		t.Fatal(err)
	}
	all := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(report.MaxInterval - 2*time.Hour)}
	filters := []report.Filter{all, all, all}
	filters[1].Tags = []string{"x"}  // documents by id
	filters[2].Contact = "cliente 1" // a driver's rows
	var unpacked [][]report.StoredDetail
	for _, f := range filters {
		unpacked = append(unpacked, exportAll(t, s, f))
	}
	packAll(t, s)
	// All but the sessions of the last day are settled.
	if n := len(packedIDs(t, s, "acme")); n < 3*report.ExportChunk-30 {
		t.Fatalf("%d sessions packed", n)
	}
	for i, f := range filters {
		sameExport(t, fmt.Sprintf("filter %d packed", i), exportAll(t, s, f), unpacked[i])
	}
	// The export reads the packs: a pack whose bodies differ from the
	// events (written here behind the triggers' back) is what it exports.
	var rowid int64
	id := session.DeriveID(&batch[0]) // the first session, tagged x
	if err := s.db.QueryRowContext(ctx, `SELECT p.session FROM event_packs p JOIN sessions s ON s.rowid = p.session
		WHERE s.session_id = ?`, id).Scan(&rowid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE event_packs SET events = '1' || char(30) || '{"marked":1}' WHERE session = ?`, rowid); err != nil {
		t.Fatal(err)
	}
	// Documents by rowid (no filter) and by id (a tag's rows): the first
	// session has the tag.
	for _, f := range filters[:2] {
		found := false
		for _, d := range exportAll(t, s, f) {
			if d.Session.ID == id {
				found = len(d.Events) == 1 && string(d.Events[0]) == `{"marked":1}`
			}
		}
		if !found {
			t.Fatalf("the export of %+v did not read the session's pack", f)
		}
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM event_packs WHERE session = ?`, rowid); err != nil {
		t.Fatal(err)
	}
	packAll(t, s)

	// A late event to the first session (packed): its pack goes with the
	// update, and the export has the event.
	b := storetest.B{Contact: "c0", Name: "Cliente 0"}
	first := b.Msg("m0", 0, event.RoleCustomer, "")
	firstID := session.DeriveID(&first)
	if !slices.Contains(packedIDs(t, s, "acme"), firstID) {
		t.Fatal("the first session is not packed")
	}
	if err := a.Ingest(ctx, []event.Event{b.Msg("late", 3*time.Second, event.RoleCustomer, "atrasada")}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(packedIDs(t, s, "acme"), firstID) {
		t.Fatal("the first session is still packed after a late event")
	}
	after := exportAll(t, s, all)
	found := false
	for _, d := range after {
		if d.Session.ID != firstID {
			continue
		}
		found = true
		if len(d.Events) != 4 || !bytes.Contains(d.Events[3], []byte("atrasada")) {
			t.Fatalf("the late event is not exported: %d events", len(d.Events))
		}
	}
	if !found {
		t.Fatal("the first session is not exported after the late event")
	}
	packAll(t, s)
	sameExport(t, "packed again after the late event", exportAll(t, s, all), after)

	// Forget: the contact's sessions and their packs go.
	if _, err := s.Forget(ctx, "acme", "c1"); err != nil {
		t.Fatal(err)
	}
	var orphans int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM event_packs WHERE session NOT IN (SELECT rowid FROM sessions)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Fatalf("%d packs of forgotten sessions", orphans)
	}
	forgotten := exportAll(t, s, all)
	if _, err := s.db.ExecContext(ctx, `DELETE FROM event_packs`); err != nil {
		t.Fatal(err)
	}
	sameExport(t, "after Forget, packed and not", forgotten, exportAll(t, s, all))
}

// TestPackTriggers: each change to a session's row or events deletes its
// pack, and nothing else's.
func TestPackTriggers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change string
	}{
		{"the document", `UPDATE sessions SET doc = doc WHERE session_id = ?1`},
		{"another column", `UPDATE sessions SET handed_off = handed_off WHERE session_id = ?1`},
		{"the row deleted", `DELETE FROM sessions WHERE session_id = ?1`},
		{"an event moved out", `UPDATE events SET session_id = 'elsewhere' WHERE session_id = ?1`},
		{"an event moved in", `UPDATE events SET session_id = ?1 WHERE event_id = 'z'`},
		{"an event deleted", `DELETE FROM events WHERE session_id = ?1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t)
			var batch []event.Event
			for i := range 4 {
				b := storetest.B{Contact: fmt.Sprint("c", i)}
				batch = append(batch, b.Msg(fmt.Sprint("m", i), time.Duration(i)*25*time.Hour, event.RoleCustomer, "oi"))
			}
			batch = append(batch, storetest.B{Contact: "z"}.Msg("z", 9*25*time.Hour, event.RoleCustomer, "oi"))
			if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, batch); err != nil {
				t.Fatal(err)
			}
			packAll(t, s)
			packed := packedIDs(t, s, "acme")
			id := session.DeriveID(&batch[0])
			if !slices.Contains(packed, id) || len(packed) != 4 {
				t.Fatalf("packed %v before the change", packed)
			}
			if _, err := s.db.ExecContext(ctx, tc.change, id); err != nil {
				t.Fatal(err)
			}
			want := slices.DeleteFunc(slices.Clone(packed), func(p string) bool { return p == id })
			if got := packedIDs(t, s, "acme"); !slices.Equal(got, want) {
				t.Fatalf("packed after the change %v, want %v", got, want)
			}
		})
	}
}

// TestMigratePacks: a database of version 12 migrates to an empty
// event_packs with its triggers, and the packer's first sweep after Open
// packs its settled sessions.
func TestMigratePacks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v12.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var batch []event.Event
	for i := range 3 {
		b := storetest.B{Contact: fmt.Sprint("c", i)}
		batch = append(batch, b.Msg(fmt.Sprint("m", i), time.Duration(i)*25*time.Hour, event.RoleCustomer, "oi"))
	}
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, batch); err != nil {
		t.Fatal(err)
	}
	all := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(4 * 24 * time.Hour)}
	want := exportAll(t, s, all)
	s.Close()

	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DROP TRIGGER sessions_unpack_update`, `DROP TRIGGER sessions_unpack_delete`,
		`DROP TRIGGER events_unpack_move`, `DROP TRIGGER events_unpack_delete`, `DROP TABLE event_packs`, `DROP TABLE pack_todo`, `PRAGMA user_version = 12`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	if err := migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	var version, packs, queued, triggers int
	db.QueryRow(`PRAGMA user_version`).Scan(&version)
	db.QueryRow(`SELECT count(*) FROM event_packs`).Scan(&packs)
	if err := db.QueryRow(`SELECT count(*) FROM pack_todo`).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name IN ('sessions', 'events')
		AND sql LIKE '%pack_todo%'`).Scan(&triggers)
	if version != schemaVersion || packs != 0 || queued != 0 || triggers != 4 {
		t.Fatalf("version %d, %d packs, %d queued, %d triggers queuing; want %d, 0, 0, 4", version, packs, queued, triggers, schemaVersion)
	}

	s, err = Open(ctx, path, WithPacker())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WaitPacked(ctx); err != nil {
		t.Fatal(err)
	}
	if got := packedIDs(t, s, "acme"); len(got) != 2 {
		t.Fatalf("packed %v after the first sweep; want the two settled sessions", got)
	}
	sameExport(t, "migrated and packed", exportAll(t, s, all), want)
}

// queuedRows is how many sessions pack_todo holds.
func queuedRows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(t.Context(), `SELECT count(*) FROM pack_todo`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rowidOf is the rowid of tenant's session id.
func rowidOf(t *testing.T, s *Store, tenant, id string) int64 {
	t.Helper()
	var r int64
	if err := s.db.QueryRowContext(t.Context(), `SELECT rowid FROM sessions WHERE tenant = ? AND session_id = ?`, tenant, id).Scan(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPackSweepFromMark: after a sweep, the next reads only the sessions
// above its mark, those pack_todo holds and those it found unsettled that
// may have settled since (their window ended before the clock and their
// tenant's newest start); a
// late event to a packed session below the mark gets its pack back; a
// session unsettled at one sweep is packed at a later one; an update of an
// unpacked session queues nothing.
func TestPackSweepFromMark(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a := session.NewAssembler(pipeline.MustDefault(), s)
	ingest := func(evs ...event.Event) {
		t.Helper()
		if err := a.Ingest(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	var batch []event.Event
	for i := range 10 {
		b := storetest.B{Contact: fmt.Sprint("c", i)}
		batch = append(batch, b.Msg(fmt.Sprint("m", i), time.Duration(i)*25*time.Hour, event.RoleCustomer, "oi"))
	}
	// globex's only session: not settled while its tenant starts no other.
	g := storetest.B{Tenant: "globex", Contact: "g"}
	batch = append(batch, g.Msg("g1", 10*time.Hour, event.RoleCustomer, "oi"))
	// acme's live session: not settled by the clock; it settles the others.
	live := storetest.B{Contact: "live"}.Msg("l1", 0, event.RoleCustomer, "oi")
	live.OccurredAt = time.Now().UTC().Add(-time.Minute)
	batch = append(batch, live)
	ingest(batch...)

	m := &packMarks{}
	sweepWith(t, s, m)
	if n := len(packedIDs(t, s, "acme")); n != 10 || m.visited != 12 || len(m.waiting) != 2 {
		t.Fatalf("first sweep: %d packed, %d rowids visited, %d waiting; want 10, 12, 2", n, m.visited, len(m.waiting))
	}

	// Everything packed that can be, and neither waiting session can have
	// settled (the clock, globex's newest start): nothing is read.
	m.visited = 0
	sweepWith(t, s, m)
	if m.visited != 0 {
		t.Fatalf("a sweep with nothing new visited %d rowids, want 0", m.visited)
	}

	// New settled sessions are above the mark.
	ingest(storetest.B{Contact: "d0"}.Msg("d0", 300*time.Hour, event.RoleCustomer, "oi"),
		storetest.B{Contact: "d1"}.Msg("d1", 326*time.Hour, event.RoleCustomer, "oi"))
	m.visited = 0
	sweepWith(t, s, m)
	if n := len(packedIDs(t, s, "acme")); n != 12 || m.visited != 2 {
		t.Fatalf("new sessions: %d packed, %d rowids visited; want 12, 2", n, m.visited)
	}

	// An update of an unpacked session (the live one) queues nothing.
	more := storetest.B{Contact: "live"}.Msg("l2", 0, event.RoleCustomer, "de novo")
	more.OccurredAt = live.OccurredAt.Add(time.Second)
	ingest(more)
	var sessions int
	s.db.QueryRowContext(ctx, `SELECT count(*) FROM sessions`).Scan(&sessions)
	if sessions != 14 {
		t.Fatalf("%d sessions; the event did not join the live session", sessions)
	}
	if q := queuedRows(t, s); q != 0 {
		t.Fatalf("an update of an unpacked session queued %d", q)
	}

	// A late event to the first session, packed, below the mark: its pack
	// goes, pack_todo has it, and the next sweep packs it again.
	first := session.DeriveID(&batch[0])
	ingest(storetest.B{Contact: "c0"}.Msg("late", 3*time.Second, event.RoleCustomer, "atrasada"))
	if slices.Contains(packedIDs(t, s, "acme"), first) || queuedRows(t, s) != 1 {
		t.Fatalf("after a late event: packed %v, %d queued", packedIDs(t, s, "acme"), queuedRows(t, s))
	}
	m.visited = 0
	sweepWith(t, s, m)
	if !slices.Contains(packedIDs(t, s, "acme"), first) || queuedRows(t, s) != 0 || m.visited != 1 {
		t.Fatalf("after the sweep: packed %v, %d queued, %d rowids visited; want the first packed, 0, 1",
			packedIDs(t, s, "acme"), queuedRows(t, s), m.visited)
	}

	// globex starts another session: its first, waiting, settles and is
	// packed; the new one waits.
	ingest(g.Msg("g2", 400*time.Hour, event.RoleCustomer, "oi"))
	m.visited = 0
	sweepWith(t, s, m)
	if m.visited != 2 {
		t.Fatalf("%d rowids visited, want globex's two sessions", m.visited)
	}
	if got := packedIDs(t, s, "globex"); len(got) != 1 || got[0] != session.DeriveID(&batch[10]) {
		t.Fatalf("globex packed %v, want its first session", got)
	}
	if len(m.waiting) != 2 {
		t.Fatalf("%d waiting, want acme's live session and globex's newest", len(m.waiting))
	}
}

// TestPackReusedRowid: deleting the session with the largest rowid lets
// SQLite give that rowid, below the mark, to the next session; the sweep
// packs it whether it ran between the deletion and the insert or not, and
// whether the deleted session had a pack or not (one over the string
// limit, its pack deleted here by hand).
func TestPackReusedRowid(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ between, unpacked bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("sweep between %v, unpacked %v", tc.between, tc.unpacked), func(t *testing.T) {
			s := openTemp(t)
			a := session.NewAssembler(pipeline.MustDefault(), s)
			live := storetest.B{Contact: "live"}.Msg("l1", 0, event.RoleCustomer, "oi")
			live.OccurredAt = time.Now().UTC().Add(-time.Minute)
			last := storetest.B{Contact: "gone"}.Msg("x", 50*time.Hour, event.RoleCustomer, "oi")
			if err := a.Ingest(ctx, []event.Event{live, storetest.B{Contact: "c"}.Msg("c", 0, event.RoleCustomer, "oi")}); err != nil {
				t.Fatal(err)
			}
			if err := a.Ingest(ctx, []event.Event{last}); err != nil {
				t.Fatal(err)
			}
			m := &packMarks{}
			sweepWith(t, s, m)
			reused := rowidOf(t, s, "acme", session.DeriveID(&last))
			if n := len(packedIDs(t, s, "acme")); n != 2 || m.next != reused+1 {
				t.Fatalf("%d packed, mark %d; want 2, %d", n, m.next, reused+1)
			}
			if tc.unpacked {
				if _, err := s.db.ExecContext(ctx, `DELETE FROM event_packs WHERE session = ?`, reused); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Forget(ctx, "acme", "gone"); err != nil {
				t.Fatal(err)
			}
			if tc.between {
				sweepWith(t, s, m)
			}
			next := storetest.B{Contact: "new"}.Msg("n", 75*time.Hour, event.RoleCustomer, "oi")
			if err := a.Ingest(ctx, []event.Event{next}); err != nil {
				t.Fatal(err)
			}
			if got := rowidOf(t, s, "acme", session.DeriveID(&next)); got != reused {
				t.Fatalf("the new session has rowid %d, not the deleted one's %d", got, reused)
			}
			sweepWith(t, s, m)
			if !slices.Contains(packedIDs(t, s, "acme"), session.DeriveID(&next)) {
				t.Fatalf("the session of a reused rowid is not packed: %v", packedIDs(t, s, "acme"))
			}
		})
	}
}

// TestPackQueuedAndPacked: a session queued by a trigger and packed again
// before the queue was read (by the rowids above the mark) is queued once
// when a later write deletes its pack: the write (the sessions' upsert,
// whose conflict policy a trigger's INSERT OR IGNORE would take) does not
// fail on the queue's key.
func TestPackQueuedAndPacked(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a := session.NewAssembler(pipeline.MustDefault(), s)
	b := storetest.B{Contact: "c"}
	live := storetest.B{Contact: "live"}.Msg("l1", 0, event.RoleCustomer, "oi")
	live.OccurredAt = time.Now().UTC().Add(-time.Minute)
	if err := a.Ingest(ctx, []event.Event{b.Msg("m", 0, event.RoleCustomer, "oi"), live}); err != nil {
		t.Fatal(err)
	}
	packAll(t, s)
	for i := range 2 {
		// A new contact name: the session's row changes, which the upsert
		// of sessions writes.
		late := storetest.B{Contact: "c", Name: fmt.Sprint("Nome ", i)}.Msg(fmt.Sprint("late", i), time.Duration(i+1)*time.Second, event.RoleCustomer, "atrasada")
		if err := a.Ingest(ctx, []event.Event{late}); err != nil {
			t.Fatalf("late event %d: %v", i, err)
		}
		if q := queuedRows(t, s); q != 1 {
			t.Fatalf("late event %d: %d queued, want 1", i, q)
		}
		// The rowids from the mark on (0: all), not the queue.
		m := &packMarks{}
		for more := true; more; {
			var err error
			if more, err = sliceOnce(t, s.packNext, m); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(packedIDs(t, s, "acme")); n != 1 {
			t.Fatalf("late event %d: %d packed, want 1", i, n)
		}
	}
}

// TestPackRenumberedRowids: a dump and restore (or a VACUUM) may give the
// sessions new rowids behind the triggers' back (eventPacks); a pack whose
// rowid now names another session, of its tenant or another, is not
// exported, and the next sweep packs the session again.
func TestPackRenumberedRowids(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a := session.NewAssembler(pipeline.MustDefault(), s)
	var batch []event.Event
	for i := range 60 {
		tenant := []string{"acme", "globex"}[i%2]
		b := storetest.B{Tenant: tenant, Contact: fmt.Sprint("c", i)}
		at := time.Duration(i) * 25 * time.Hour
		batch = append(batch, b.Msg(fmt.Sprint("m", i), at, event.RoleCustomer, fmt.Sprintf("mensagem %d", i)),
			b.Tag(fmt.Sprint("t", i), at+time.Second, []string{"x", "y"}[i/2%2]))
	}
	if err := a.Ingest(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var filters []report.Filter
	for _, tenant := range []string{"acme", "globex"} {
		all := report.Filter{Tenant: tenant, From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(report.MaxInterval - 2*time.Hour)}
		tagged := all
		tagged.Tags = []string{"x"} // documents by id
		filters = append(filters, all, tagged)
	}
	var want [][]report.StoredDetail
	for _, f := range filters {
		want = append(want, exportAll(t, s, f))
	}
	packAll(t, s)
	packed := len(packedIDs(t, s, "acme")) + len(packedIDs(t, s, "globex"))
	if packed < 50 {
		t.Fatalf("%d sessions packed", packed)
	}
	// Reverse the rowids, as a restore of rows in another order would;
	// no trigger sees it.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, q := range []string{`DROP TRIGGER sessions_unpack_update`,
		`UPDATE sessions SET rowid = -rowid`,
		`UPDATE sessions SET rowid = rowid - (SELECT max(rowid) + min(rowid) FROM sessions)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := eventPacks(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var moved int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM event_packs p JOIN sessions d ON d.rowid = p.session
		WHERE d.tenant <> p.tenant`).Scan(&moved); err != nil {
		t.Fatal(err)
	}
	if moved == 0 {
		t.Fatal("no pack's rowid names a session of another tenant: the test renumbers nothing")
	}
	for i, f := range filters {
		sameExport(t, fmt.Sprintf("filter %d renumbered", i), exportAll(t, s, f), want[i])
	}
	packAll(t, s)
	var owned int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM event_packs p JOIN sessions d
		ON d.rowid = p.session AND d.tenant = p.tenant AND d.session_id = p.session_id`).Scan(&owned); err != nil {
		t.Fatal(err)
	}
	if owned != packed {
		t.Fatalf("%d packs match their sessions after the sweep, want %d", owned, packed)
	}
	for i, f := range filters {
		sameExport(t, fmt.Sprintf("filter %d packed again", i), exportAll(t, s, f), want[i])
	}
}

// TestWaitPackedAfterStop: WaitPacked returns once the packer has stopped
// (Close) before its first sweep ended, rather than waiting for its
// context.
func TestWaitPackedAfterStop(t *testing.T) {
	s := openTemp(t)
	s.writer <- struct{}{} // the first sweep's slices find the writer busy
	s.pack = startPacker(s)
	time.Sleep(10 * time.Millisecond)
	s.pack.stop()
	s.unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.WaitPacked(ctx); !errors.Is(err, errNotSwept) {
		t.Fatalf("WaitPacked after stop: %v, want errNotSwept", err)
	}
}

// TestPackSkipsFailingSlice: a slice that fails (a document that does not
// decode) does not stop the sweep: the sessions of later rowids are packed,
// and WaitPacked reports the failure.
func TestPackSkipsFailingSlice(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fail.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	a := session.NewAssembler(pipeline.MustDefault(), s)
	var batch []event.Event
	for i := range 3 { // 0 and 1 settle: 2 starts after their windows
		b := storetest.B{Contact: fmt.Sprint("c", i)}
		at := time.Duration(i) * 25 * time.Hour
		batch = append(batch, b.Msg(fmt.Sprint("m", i), at, event.RoleCustomer, "oi"))
	}
	if err := a.Ingest(ctx, batch); err != nil {
		t.Fatal(err)
	}
	bad, good := session.DeriveID(&batch[0]), session.DeriveID(&batch[1])
	for _, q := range []string{
		`UPDATE sessions SET rowid = rowid + 10 * ` + fmt.Sprint(packRowids) + ` WHERE session_id = ?2`,
		`UPDATE sessions SET doc = x'00' WHERE session_id = ?1`,
	} {
		if _, err := s.db.ExecContext(ctx, q, bad, good); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path, WithPacker())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var failed *sweepError
	if err := s.WaitPacked(ctx); !errors.As(err, &failed) || failed.failed != 1 {
		t.Fatalf("WaitPacked: %v, want one failed slice", err)
	}
	if got := packedIDs(t, s, "acme"); !slices.Equal(got, []string{good}) {
		t.Fatalf("packed %v, want only %s (past the failing slice)", got, good)
	}
}

// TestPackSkipsLargeSessions: a settled session whose events sum to more
// than packMaxBytes gets no pack (and is exported whole from its events);
// a smaller one beside it does.
func TestPackSkipsLargeSessions(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a := session.NewAssembler(pipeline.MustDefault(), s)
	var batch []event.Event
	for i := range 3 { // 0 and 1 settle: 2 starts after their windows
		b := storetest.B{Contact: fmt.Sprint("c", i)}
		at := time.Duration(i) * 25 * time.Hour
		text := "oi"
		if i == 0 {
			text = strings.Repeat("longa ", 400)
		}
		batch = append(batch, b.Msg(fmt.Sprint("m", i), at, event.RoleCustomer, text))
	}
	if err := a.Ingest(ctx, batch); err != nil {
		t.Fatal(err)
	}
	all := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(report.MaxInterval - 2*time.Hour)}
	want := exportAll(t, s, all)
	defer func(old int64) { packMaxBytes = old }(packMaxBytes)
	packMaxBytes = 1000
	packAll(t, s)
	if got, small := packedIDs(t, s, "acme"), session.DeriveID(&batch[1]); !slices.Equal(got, []string{small}) {
		t.Fatalf("packed %v, want only %s (the large session skipped)", got, small)
	}
	sameExport(t, "large session unpacked", exportAll(t, s, all), want)
}

// packChunksOf reads rows of (rowid, tenant, session_id, doc) of sessions
// into a chunk per tenant, as a sweep's slice gathers them for writePacks,
// and closes rows.
func packChunksOf(t *testing.T, rows *sql.Rows) map[string]*packChunk {
	t.Helper()
	defer rows.Close()
	byTenant := map[string]*packChunk{}
	for rows.Next() {
		var (
			rowid      int64
			tenant, id string
			doc        []byte
		)
		if err := rows.Scan(&rowid, &tenant, &id, &doc); err != nil {
			t.Fatal(err)
		}
		c := byTenant[tenant]
		if c == nil {
			c = &packChunk{}
			byTenant[tenant] = c
		}
		c.list = append(c.list, report.StoredDetail{})
		if err := (&docReader{}).decode(doc, &c.list[len(c.list)-1].Session); err != nil {
			t.Fatal(err)
		}
		c.rowids = append(c.rowids, rowid)
		c.ids = append(c.ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return byTenant
}
