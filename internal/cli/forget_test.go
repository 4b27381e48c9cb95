package cli

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestForgetVacuum: forget --vacuum on a SQLite store erases the contact
// and rebuilds the version's file: once the command ended, neither the file
// nor a WAL holds a byte of the contact's word, phone or name, and the
// other contact's are still there.
func TestForgetVacuum(t *testing.T) {
	ctx := context.Background()
	s, path, cfg := erasableVersion(ctx, t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	forgotten, kept := storetest.Erasable[0], storetest.Erasable[1]
	out := runCLI(t, "forget", "--vacuum", "--tenant", "acme", "--contact", forgotten.B.Contact, "--config", cfg)
	if !strings.Contains(out, "version v1: removed 1 sessions and 12 events") {
		t.Fatalf("forget:\n%s", out)
	}
	var all []byte
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if in := storetest.Found(b, forgotten.Marks); len(in) > 0 {
			t.Errorf("%s holds the forgotten contact's %q", filepath.Base(f), in)
		}
		all = append(all, b...)
	}
	if in := storetest.Found(all, kept.Marks); len(in) != len(kept.Marks) {
		t.Errorf("of the other contact's marks only %q are in the files", in)
	}
}

// TestForgetWALKept: a read transaction open on a version file keeps forget
// from truncating its WAL; forget prints what it removed and that the WAL
// was not truncated, and exits with an error, rather than report the
// erasure as complete.
func TestForgetWALKept(t *testing.T) {
	ctx := context.Background()
	s, path, cfg := erasableVersion(ctx, t)
	defer s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reader, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback()
	var n int
	if err := reader.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = Execute(ctx, []string{"forget", "--tenant", "acme", "--contact", storetest.Erasable[0].B.Contact, "--config", cfg}, &out, &errOut)
	if !errors.Is(err, sqlite.ErrWALKept) {
		t.Fatalf("forget with a reader: %v, want ErrWALKept\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "version v1: removed 1 sessions and 12 events, but the WAL could not be truncated") {
		t.Errorf("forget with a reader printed:\n%s", out.String())
	}
}

// erasableVersion is a SQLite version v1 holding storetest.ErasableEvents,
// open, its file, and a configuration file that names its folder.
func erasableVersion(ctx context.Context, t *testing.T) (*sqlite.Store, string, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "chatreport-v1.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	a := session.NewAssembler(pipeline.MustDefault(), s)
	for _, batch := range storetest.ErasableEvents() {
		if err := a.Ingest(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("store: {sqlite: {dir: %q}}\nlog: {level: warn}\n", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, path, cfg
}
