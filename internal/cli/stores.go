package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chatreport/chatreport/internal/api"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/versions"
)

// sqliteVersions is the embedded store: one database file per version.
type sqliteVersions = versions.Set[*sqlite.Store]

// openSQLiteVersions opens the versions in dir, creating it.
func openSQLiteVersions(dir string) (*sqliteVersions, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	return versions.NewSet(versions.OpenFile(dir), func(ctx context.Context, v string) (*sqlite.Store, error) {
		return sqlite.Open(ctx, sqliteVersionPath(dir, v))
	}), nil
}

func sqliteVersionPath(dir, version string) string {
	return filepath.Join(dir, "chatreport-"+version+".db")
}

// currentStore serves the API from whichever version is current now: a swap
// takes effect at the next request.
type currentStore struct{ set *sqliteVersions }

var _ api.Store = currentStore{}

func (c currentStore) Search(ctx context.Context, f report.Filter, p report.Page) (report.Result, error) {
	st, err := c.set.Current(ctx)
	if err != nil {
		return report.Result{}, err
	}
	return st.Search(ctx, f, p)
}

func (c currentStore) Session(ctx context.Context, tenant, id string) (report.Detail, error) {
	st, err := c.set.Current(ctx)
	if err != nil {
		return report.Detail{}, err
	}
	return st.Session(ctx, tenant, id)
}

func (c currentStore) Export(ctx context.Context, f report.Filter, fn func(report.Detail) error) error {
	st, err := c.set.Current(ctx)
	if err != nil {
		return err
	}
	return st.Export(ctx, f, fn)
}

func (c currentStore) Facets(ctx context.Context, tenant string, from, to time.Time) (report.Facets, error) {
	st, err := c.set.Current(ctx)
	if err != nil {
		return report.Facets{}, err
	}
	return st.Facets(ctx, tenant, from, to)
}

// Ping reports whether the current version answers.
func (c currentStore) Ping(ctx context.Context) error {
	st, err := c.set.Current(ctx)
	if err != nil {
		return err
	}
	return st.Ping(ctx)
}
