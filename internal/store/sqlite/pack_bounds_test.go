package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// ingestSettled writes n sessions of tenant acme, contact ci's 25i hours
// after storetest.Base with a message of text(i): all but the last are
// settled (the next starts after their window). It returns their ids in
// order.
func ingestSettled(t *testing.T, s *Store, n int, text func(i int) string) []string {
	t.Helper()
	var batch []event.Event
	var ids []string
	for i := range n {
		b := storetest.B{Contact: fmt.Sprint("c", i)}
		batch = append(batch, b.Msg(fmt.Sprint("m", i), time.Duration(i)*25*time.Hour, event.RoleCustomer, text(i)))
		ids = append(ids, session.DeriveID(&batch[len(batch)-1]))
	}
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	return ids
}

// countRows is the count(*) of query.
func countRows(t *testing.T, s *Store, query string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(t.Context(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestOpenWithoutPacker: a store opened without WithPacker packs nothing,
// neither after Open nor after an update, and WaitPacked says so at once;
// the same database opened with it is packed.
func TestOpenWithoutPacker(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nopacker.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ingestSettled(t, s, 4, func(int) string { return "oi" })
	time.Sleep(300 * time.Millisecond) // a packer's first sweep takes milliseconds here
	if n := countRows(t, s, `SELECT count(*) FROM event_packs`); n != 0 || s.Packs() {
		t.Fatalf("without WithPacker: %d packs, Packs() %v; want 0, false", n, s.Packs())
	}
	if err := s.WaitPacked(ctx); !errors.Is(err, ErrNoPacker) {
		t.Fatalf("WaitPacked without a packer: %v, want ErrNoPacker", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path, WithPacker())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.WaitPacked(wctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, `SELECT count(*) FROM event_packs`); n != 3 || !s.Packs() {
		t.Fatalf("with WithPacker: %d packs, Packs() %v; want 3 (the settled sessions), true", n, s.Packs())
	}
}

// TestPackSliceBytes: a slice packs sessions up to packSliceBytes of
// bodies, and at least one however large; the next slice goes on from the
// first it left, from the rowids (packNext) as from pack_todo
// (packQueued).
func TestPackSliceBytes(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	// Session 2 is larger than two of the others together.
	ingestSettled(t, s, 7, func(i int) string { return strings.Repeat("x", []int{300, 300, 900, 300, 300, 300, 300}[i]) })
	sizes := map[int64]int64{}
	rows, err := s.db.QueryContext(ctx, `SELECT s.rowid, (SELECT sum(length(e.body)) FROM events e
		WHERE e.tenant = s.tenant AND e.session_id = s.session_id) FROM sessions s ORDER BY s.rowid`)
	if err != nil {
		t.Fatal(err)
	}
	var rowids []int64
	for rows.Next() {
		var r, n int64
		if err := rows.Scan(&r, &n); err != nil {
			t.Fatal(err)
		}
		rowids = append(rowids, r)
		sizes[r] = n
	}
	rows.Close()
	if len(rowids) != 7 || sizes[rowids[2]] <= sizes[rowids[0]]+sizes[rowids[1]] {
		t.Fatalf("sessions %v of sizes %v: the test needs 7, the third the largest", rowids, sizes)
	}
	defer func(old int64) { packSliceBytes = old }(packSliceBytes)
	packSliceBytes = sizes[rowids[0]] + sizes[rowids[1]]

	// From the rowids: two sessions fit, then the large one alone, then
	// the next three fit in two slices (two, then one with the unsettled
	// last).
	m := &packMarks{}
	for i, want := range []struct {
		packed int
		next   int64
		more   bool
	}{{2, rowids[2], true}, {3, rowids[3], true}, {5, rowids[5], true}, {6, rowids[6] + 1, false}} {
		more, err := sliceOnce(t, s.packNext, m)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(packedIDs(t, s, "acme")); got != want.packed || m.next != want.next || more != want.more {
			t.Fatalf("slice %d: %d packed, next %d, more %v; want %d, %d, %v", i, got, m.next, more, want.packed, want.next, want.more)
		}
	}

	// From pack_todo: an update of every session deletes the packs and
	// queues the rowids.
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET doc = doc`); err != nil {
		t.Fatal(err)
	}
	if n := queuedRows(t, s); n != 6 {
		t.Fatalf("%d queued, want 6", n)
	}
	more, err := sliceOnce(t, s.packQueued, m)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(packedIDs(t, s, "acme")); got != 2 || queuedRows(t, s) != 4 || !more {
		t.Fatalf("a slice of pack_todo: %d packed, %d queued, more %v; want 2, 4, true", got, queuedRows(t, s), more)
	}
	sweepWith(t, s, m)
	if got := len(packedIDs(t, s, "acme")); got != 6 || queuedRows(t, s) != 0 {
		t.Fatalf("after the sweep: %d packed, %d queued; want 6, 0", got, queuedRows(t, s))
	}
}

// orphanPacks counts the packs whose rowid and owner name no session.
const orphanPacks = `SELECT count(*) FROM event_packs p WHERE NOT EXISTS (SELECT 1 FROM sessions s
	WHERE s.rowid = p.session AND s.tenant = p.tenant AND s.session_id = p.session_id)`

// renumber runs qs on a connection of its own with the trigger on
// sessions' updates dropped, as a VACUUM or a restore renumbers rowids
// without a trigger seeing it, and puts the trigger back.
func renumber(t *testing.T, s *Store, qs ...string) {
	t.Helper()
	ctx := t.Context()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, q := range append([]string{`DROP TRIGGER sessions_unpack_update`}, qs...) {
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
}

// TestPackDropsOrphans: once rowids were renumbered behind the triggers'
// back, a running packer's next sweep deletes the packs whose rowid names
// no session or another one, and packs the sessions again; a session
// forgotten after the renumbering leaves no pack with its bodies.
func TestPackDropsOrphans(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	ids := ingestSettled(t, s, 12, func(i int) string { return fmt.Sprintf("mensagem %d", i) })
	m := &packMarks{} // the marks of a running packer, across the steps
	sweepWith(t, s, m)
	if n := len(packedIDs(t, s, "acme")); n != 11 {
		t.Fatalf("%d packed, want 11", n)
	}

	// Rowids reversed: each pack's rowid names another session.
	renumber(t, s, `UPDATE sessions SET rowid = -rowid`,
		`UPDATE sessions SET rowid = rowid - (SELECT max(rowid) + min(rowid) FROM sessions)`)
	if n := countRows(t, s, orphanPacks); n < 10 {
		t.Fatalf("%d packs name another session after the renumbering; the test renumbers too little", n)
	}
	sweepWith(t, s, m)
	if n, owned := countRows(t, s, orphanPacks), len(packedIDs(t, s, "acme")); n != 0 || owned != 11 {
		t.Fatalf("after the sweep: %d orphan packs, %d sessions packed; want 0, 11", n, owned)
	}

	// Rowids moved past every pack's, then a session forgotten: its
	// trigger deletes the pack at its new rowid, where there is none.
	renumber(t, s, `UPDATE sessions SET rowid = rowid + 1000`)
	forgotten := ids[3]
	if _, err := s.Forget(ctx, "acme", "c3"); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, `SELECT count(*) FROM event_packs WHERE session_id = '`+forgotten+`'`); n != 1 {
		t.Fatalf("%d packs of the forgotten session before the sweep; the test needs its orphan", n)
	}
	sweepWith(t, s, m)
	if n := countRows(t, s, `SELECT count(*) FROM event_packs WHERE session_id = '`+forgotten+`'`); n != 0 {
		t.Fatalf("%d packs of the forgotten session after the sweep, want 0", n)
	}
	owned := packedIDs(t, s, "acme")
	if n := countRows(t, s, orphanPacks); n != 0 || len(owned) != 10 || slices.Contains(owned, forgotten) {
		t.Fatalf("after the sweep: %d orphan packs, %d sessions packed; want 0, 10", n, len(owned))
	}
}
