package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/api"
	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/health"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/metrics"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/elastic"
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

// assemblingSink is what the ingester writes: it assembles sessions and
// reports its work for metrics.
type assemblingSink interface {
	ingest.Sink
	metrics.AssemblerWatch
}

// backend is the configured store as the roles use it.
type backend struct {
	sink  assemblingSink
	api   api.Store
	ping  health.Check
	close func() error
	// elastic is set for the Elasticsearch store.
	elastic *elastic.Store
}

// openBackend opens the configured store: SQLite versions in a folder, or an
// Elasticsearch cluster.
func openBackend(cfg config.Config, def *pipeline.Definition, log *zap.Logger) (*backend, error) {
	switch cfg.Store.Kind {
	case config.StoreSQLite:
		set, err := openSQLiteVersions(cfg.Store.SQLite.Dir)
		if err != nil {
			return nil, err
		}
		cur := currentStore{set}
		return &backend{sink: versions.NewSink(set, def), api: cur, ping: cur.Ping, close: set.Close}, nil
	case config.StoreElasticsearch:
		st, err := openElastic(cfg.Store.Elasticsearch, log)
		if err != nil {
			return nil, err
		}
		return &backend{sink: session.NewAssembler(def, st), api: st, ping: st.Ping, close: st.Close, elastic: st}, nil
	}
	return nil, fmt.Errorf("store.kind %q is not supported", cfg.Store.Kind)
}

func openElastic(c config.Elasticsearch, log *zap.Logger) (*elastic.Store, error) {
	ec := elastic.Config{Addresses: c.URLs, Username: c.Username, Password: c.Password, APIKey: c.APIKey, IndexPrefix: c.IndexPrefix}
	if c.CACertFile != "" {
		pem, err := os.ReadFile(c.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("store.elasticsearch.ca_cert_file: %w", err)
		}
		ec.CACert = pem
	}
	return elastic.New(ec, log.Named("elasticsearch"))
}
