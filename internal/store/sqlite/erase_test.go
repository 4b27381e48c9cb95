package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// readFile is the file's bytes, none when it does not exist.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

// freeSpace is what a SQLite database file holds that no row does, but a
// deleted row may have: every page of the free list and every freeblock of
// the b-tree pages (https://www.sqlite.org/fileformat.html: a deleted cell
// becomes a freeblock, an emptied page goes to the free list). It leaves
// out the gap between a page's cell pointers and its cells, where a split
// or a rewrite of the page leaves older bytes (Vacuum's).
func freeSpace(t *testing.T, file []byte) []byte {
	t.Helper()
	if len(file) < 100 {
		return nil
	}
	size := int(binary.BigEndian.Uint16(file[16:]))
	if size == 1 {
		size = 1 << 16
	}
	page := func(n uint32) []byte {
		off := int(n-1) * size
		if n == 0 || off+size > len(file) {
			t.Fatalf("page %d is past the file", n)
		}
		return file[off : off+size]
	}
	var out []byte
	free := map[uint32]bool{}
	for trunk := binary.BigEndian.Uint32(file[32:]); trunk != 0; {
		p := page(trunk)
		free[trunk] = true
		out = append(out, p...)
		for i := range binary.BigEndian.Uint32(p[4:]) {
			leaf := binary.BigEndian.Uint32(p[8+4*i:])
			free[leaf] = true
			out = append(out, page(leaf)...)
		}
		trunk = binary.BigEndian.Uint32(p)
	}
	for n := uint32(1); int(n)*size <= len(file); n++ {
		p, hdr := page(n), 0
		if n == 1 {
			hdr = 100
		}
		if free[n] || !slices.Contains([]byte{2, 5, 10, 13}, p[hdr]) {
			continue // a free page, or an overflow page (all of it a row's)
		}
		for fb := int(binary.BigEndian.Uint16(p[hdr+1:])); fb != 0; fb = int(binary.BigEndian.Uint16(p[fb:])) {
			out = append(out, p[fb:fb+int(binary.BigEndian.Uint16(p[fb+2:]))]...)
		}
	}
	return out
}

// indexed lists which of marks the blocks of the full-text indexes' pages
// hold (their segments' leaves and terms), read with SQL.
func indexed(t *testing.T, db *sql.DB, marks []string) []string {
	t.Helper()
	var in []string
	for _, m := range marks {
		var n int
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM message_words_data WHERE instr(lower(block), ?1))
			+ (SELECT count(*) FROM session_words_data WHERE instr(lower(block), ?1))
			+ (SELECT count(*) FROM message_words_idx WHERE instr(lower(term), ?1))
			+ (SELECT count(*) FROM session_words_idx WHERE instr(lower(term), ?1))`, m).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			in = append(in, m)
		}
	}
	return in
}

// TestForgetLeavesNoBytes: after Forget, no bytes of the forgotten
// contact's words, phone or name are in the WAL (checkpointed and
// truncated), in the full-text indexes (merged: FTS5 keeps a deleted row's
// words until then) or in the free space of the database file (deleted
// with secure_delete); after Vacuum, nowhere in the files, open or closed.
// The other contact's are still there, so each search can see what it
// looks for.
func TestForgetLeavesNoBytes(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(ctx, t)
	ingestErasable(ctx, t, s)
	forgotten, kept := storetest.Erasable[0], storetest.Erasable[1]
	db := openDB(t, path)
	if in := indexed(t, db, forgotten.Marks[:1]); len(in) == 0 {
		t.Fatal("the forgotten contact's word is not in the full-text index before Forget: the test cannot tell")
	}
	f, err := s.Forget(ctx, "acme", forgotten.B.Contact)
	if err != nil {
		t.Fatal(err)
	}
	if f.Sessions != 1 || f.Events != 12 {
		t.Fatalf("forgot %+v, want 1 session and 12 events", f)
	}
	if in := storetest.Found(readFile(t, path+"-wal"), forgotten.Marks); len(in) > 0 {
		t.Errorf("the WAL holds the forgotten contact's %q", in)
	}
	if in := indexed(t, db, forgotten.Marks[:1]); len(in) > 0 {
		t.Errorf("the full-text indexes hold the forgotten contact's %q", in)
	}
	if in := indexed(t, db, kept.Marks[:1]); len(in) == 0 {
		t.Errorf("the other contact's word is not in the full-text indexes: the search cannot see it")
	}
	// The connections are back to deleting without zeroing: ingest does
	// not pay for it.
	on, err := s.SecureDeletes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(on, func(v int) bool { return v != 0 }) || len(on) < 2 {
		t.Errorf("secure_delete of the writer and the idle connections after Forget: %v, want all 0", on)
	}
	free := freeSpace(t, readFile(t, path))
	if in := storetest.Found(free, forgotten.Marks); len(in) > 0 {
		t.Errorf("the free space of the database holds the forgotten contact's %q", in)
	}
	check := func(when string) {
		t.Helper()
		var all []byte
		for _, f := range []string{path, path + "-wal"} {
			b := readFile(t, f)
			if in := storetest.Found(b, forgotten.Marks); len(in) > 0 {
				t.Errorf("%s: %s holds the forgotten contact's %q", when, filepath.Base(f), in)
			}
			all = append(all, b...)
		}
		if in := storetest.Found(all, kept.Marks); len(in) != len(kept.Marks) {
			t.Errorf("%s: of the other contact's marks only %q are in the files: the search cannot see what it looks for", when, in)
		}
	}
	if err := s.Vacuum(ctx); err != nil {
		t.Fatal(err)
	}
	check("vacuumed")
	db.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
}

// TestForgetWALKeptByReader: a read transaction open during Forget keeps the
// WAL from being truncated; Forget says so (ErrWALKept) with what it
// removed, and a Forget after the reader ended truncates it.
func TestForgetWALKeptByReader(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(ctx, t)
	s.SetWALWait(100 * time.Millisecond)
	ingestErasable(ctx, t, s)
	forgotten := storetest.Erasable[0]
	reader, err := openDB(t, path).BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	f, err := s.Forget(ctx, "acme", forgotten.B.Contact)
	if !errors.Is(err, sqlite.ErrWALKept) || f.Sessions != 1 || f.Events != 12 {
		t.Fatalf("Forget with a reader: %+v, %v; want 1 session, 12 events and ErrWALKept", f, err)
	}
	if len(storetest.Found(readFile(t, path+"-wal"), forgotten.Marks)) == 0 {
		t.Fatal("the WAL holds none of the contact's marks while the reader held it: the test cannot tell")
	}
	reader.Rollback()
	if f, err := s.Forget(ctx, "acme", forgotten.B.Contact); err != nil || f.Sessions != 0 {
		t.Fatalf("Forget again: %+v, %v", f, err)
	}
	if in := storetest.Found(readFile(t, path+"-wal"), forgotten.Marks); len(in) > 0 {
		t.Errorf("the WAL holds the forgotten contact's %q after the second Forget", in)
	}
}

// TestForgetEndsWhileIngesting: Forget's merge of the full-text indexes
// ends while another store (an ingester's) keeps writing the same file,
// each of its writes adding a segment that an unbounded merge would go on
// merging for as long as it writes; the forgotten contact's word is gone
// from the indexes all the same, and the connections delete without
// zeroing again.
func TestForgetEndsWhileIngesting(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(ctx, t)
	a := ingestErasable(ctx, t, s)
	// Enough other text that the indexes span many blocks.
	for i := range 160 {
		var batch []event.Event
		for j := range 50 {
			c := storetest.B{Contact: fmt.Sprintf("55119%04d%04d", i, j)}
			batch = append(batch, c.Msg(fmt.Sprint("bulk", i, "-", j), time.Duration(i)*time.Minute, event.RoleCustomer,
				fmt.Sprintf("texto numero %d de outro cliente %d com palavras variadas w%dx%d y%dz%d q%dv%d", i, j, i, j, j, i, i*j, i+j)))
		}
		if err := a.Ingest(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	other, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	stop := make(chan struct{})
	ingested := make(chan error, 1)
	go func() {
		b := session.NewAssembler(pipeline.MustDefault(), other)
		for i := 0; ; i++ {
			select {
			case <-stop:
				ingested <- nil
				return
			case <-time.After(2 * time.Millisecond):
			}
			c := storetest.B{Contact: fmt.Sprintf("55219%08d", i)}
			if err := b.Ingest(ctx, []event.Event{c.Msg(fmt.Sprint("live", i), time.Hour, event.RoleCustomer, fmt.Sprint("ao vivo ", i))}); err != nil {
				ingested <- err
				return
			}
		}
	}()
	forgotten := storetest.Erasable[0]
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	began := time.Now()
	_, err = s.Forget(fctx, "acme", forgotten.B.Contact)
	close(stop)
	if err := <-ingested; err != nil {
		t.Fatalf("the other store's ingest: %v", err)
	}
	if err != nil && !errors.Is(err, sqlite.ErrWALKept) {
		t.Fatalf("Forget while another store writes: %v (after %v)", err, time.Since(began))
	}
	if in := indexed(t, openDB(t, path), forgotten.Marks[:1]); len(in) > 0 {
		t.Errorf("the full-text indexes hold the forgotten contact's %q", in)
	}
	on, err := s.SecureDeletes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(on, func(v int) bool { return v != 0 }) {
		t.Errorf("secure_delete after Forget: %v, want all 0", on)
	}
}

// ingestErasable stores storetest.ErasableEvents in s and returns the
// assembler that did.
func ingestErasable(ctx context.Context, t *testing.T, s *sqlite.Store) *session.Assembler {
	t.Helper()
	a := session.NewAssembler(pipeline.MustDefault(), s)
	for _, batch := range storetest.ErasableEvents() {
		if err := a.Ingest(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// TestForgetOptimizesWhatTheBudgetLeft: a table whose merge in slices its
// budget stopped (none allowed here) is merged whole, so the forgotten
// contact's word leaves the full-text indexes all the same.
func TestForgetOptimizesWhatTheBudgetLeft(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(ctx, t)
	ingestErasable(ctx, t, s)
	s.SetForgetSlices(0)
	forgotten, kept := storetest.Erasable[0], storetest.Erasable[1]
	if _, err := s.Forget(ctx, "acme", forgotten.B.Contact); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path)
	if in := indexed(t, db, forgotten.Marks[:1]); len(in) > 0 {
		t.Errorf("the full-text indexes hold the forgotten contact's %q", in)
	}
	if in := indexed(t, db, kept.Marks[:1]); len(in) == 0 {
		t.Error("the other contact's word is not in the full-text indexes: the search cannot see it")
	}
}
