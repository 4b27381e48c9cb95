package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/versions"
)

// SQLite is the embedded store: one database file per version in a folder,
// beside the registry of versions.
type SQLite struct {
	*versions.Set[*sqlite.Store]
	dir string
}

var _ Versions = (*SQLite)(nil)

// OpenSQLite opens the versions in dir, creating it; each version's
// database opens on first use, with opts (sqlite.WithPacker and
// sqlite.WithMerger in the process that ingests).
func OpenSQLite(dir string, opts ...sqlite.Option) (*SQLite, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	set := versions.NewSet(versions.OpenFile(dir), func(ctx context.Context, v string) (*sqlite.Store, error) {
		return sqlite.Open(ctx, filepath.Join(dir, "chatreport-"+v+".db"), opts...)
	})
	return &SQLite{Set: set, dir: dir}, nil
}

// Dir is the folder of the database files.
func (s *SQLite) Dir() string { return s.dir }

// Versions lists the versions that have a database file.
func (s *SQLite) Versions(context.Context) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(s.dir, "chatreport-*.db"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "chatreport-"), ".db")
		if versions.Valid(v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Counts counts the sessions and events of version.
func (s *SQLite) Counts(ctx context.Context, version string) (versions.Counts, error) {
	return onVersion(ctx, s.Set, version, func(st *sqlite.Store) (versions.Counts, error) {
		c, err := st.Counts(ctx)
		return versions.Counts(c), err
	})
}

// SessionDocs calls fn with every session document of version.
func (s *SQLite) SessionDocs(ctx context.Context, version string, fn func(tenant, id string, doc []byte) error) error {
	_, err := onVersion(ctx, s.Set, version, func(st *sqlite.Store) (struct{}, error) { return struct{}{}, st.SessionDocs(ctx, fn) })
	return err
}

// Forget erases a contact from version.
func (s *SQLite) Forget(ctx context.Context, version, tenant, contact string) (versions.Counts, error) {
	return onVersion(ctx, s.Set, version, func(st *sqlite.Store) (versions.Counts, error) {
		f, err := st.Forget(ctx, tenant, contact)
		return versions.Counts(f), err
	})
}

// Vacuum rebuilds version's database file (sqlite.Store.Vacuum).
func (s *SQLite) Vacuum(ctx context.Context, version string) error {
	_, err := onVersion(ctx, s.Set, version, func(st *sqlite.Store) (struct{}, error) { return struct{}{}, st.Vacuum(ctx) })
	return err
}

// Current serves reads from whichever version is current now: a swap takes
// effect at the next request.
type Current struct{ Set *versions.Set[*sqlite.Store] }

// Search lists the current version's sessions that match f.
func (c Current) Search(ctx context.Context, f report.Filter, p report.Page) (report.Result, error) {
	return onCurrent(ctx, c.Set, func(st *sqlite.Store) (report.Result, error) { return st.Search(ctx, f, p) })
}

// Session returns a whole session of the current version.
func (c Current) Session(ctx context.Context, tenant, id string) (report.Detail, error) {
	return onCurrent(ctx, c.Set, func(st *sqlite.Store) (report.Detail, error) { return st.Session(ctx, tenant, id) })
}

// Export exports every session of the current version that matches f.
func (c Current) Export(ctx context.Context, f report.Filter, newEncoder func() report.Encoder, emit report.Emit) error {
	_, err := onCurrent(ctx, c.Set, func(st *sqlite.Store) (struct{}, error) {
		return struct{}{}, st.Export(ctx, f, newEncoder, emit)
	})
	return err
}

// Facets returns the current version's filter values within [from, to).
func (c Current) Facets(ctx context.Context, tenant string, from, to time.Time) (report.Facets, error) {
	return onCurrent(ctx, c.Set, func(st *sqlite.Store) (report.Facets, error) { return st.Facets(ctx, tenant, from, to) })
}

// Ping reports whether the current version answers.
func (c Current) Ping(ctx context.Context) error {
	_, err := onCurrent(ctx, c.Set, func(st *sqlite.Store) (struct{}, error) { return struct{}{}, st.Ping(ctx) })
	return err
}
