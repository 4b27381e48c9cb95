package cli

import (
	"context"
	"errors"
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
	// init, set for the Elasticsearch store, installs the templates and
	// first indices of the version the ingester writes: the current one (a
	// version becomes current only after its replay installed them).
	init func(context.Context) error
}

// openBackend opens the configured store: SQLite versions in a folder, or
// Elasticsearch versions in a cluster, whose write path reports to reg.
func openBackend(cfg config.Config, def *pipeline.Definition, reg *metrics.Registry, log *zap.Logger) (*backend, error) {
	switch cfg.Store.Kind {
	case config.StoreSQLite:
		set, err := openSQLiteVersions(cfg.Store.SQLite.Dir)
		if err != nil {
			return nil, err
		}
		cur := currentStore{set}
		return &backend{sink: versions.NewSink(set, def), api: cur, ping: cur.Ping, close: set.Close}, nil
	case config.StoreElasticsearch:
		ev, err := openElasticVersions(cfg.Store.Elasticsearch, reg, log)
		if err != nil {
			return nil, err
		}
		// The API reads the read aliases, which designate the current
		// version's indices whatever store it asks.
		init := func(ctx context.Context) error { return ev.initVersions(ctx, false) }
		return &backend{sink: versions.NewSink(ev.set, def), api: ev.base, ping: ev.base.Ping, close: ev.Close, init: init}, nil
	}
	return nil, fmt.Errorf("store.kind %q is not supported", cfg.Store.Kind)
}

// elasticVersions are the data versions of an Elasticsearch cluster: a
// store per version, and the registry in the cluster.
type elasticVersions struct {
	set *versions.Set[*elastic.Store]
	// base is a store of the initial version: it holds the registry, and
	// its queries, like any version's, go through the read aliases.
	base *elastic.Store
}

// openElasticVersions opens the versions of the cluster; obs, when set,
// receives the measurements of every version's write path.
func openElasticVersions(c config.Elasticsearch, obs elastic.Observer, log *zap.Logger) (*elasticVersions, error) {
	base, err := openElastic(c, versions.Initial, nil, nil, log)
	if err != nil {
		return nil, err
	}
	reg := base.Registry()
	set := versions.NewSet(reg, func(_ context.Context, v string) (*elastic.Store, error) {
		return openElastic(c, v, versions.Fence(reg, v), obs, log)
	})
	return &elasticVersions{set: set, base: base}, nil
}

func (ev *elasticVersions) Close() error { return errors.Join(ev.set.Close(), ev.base.Close()) }

// initVersions installs the templates and first indices of the current
// version, which the live ingester writes, and with building those of the
// versions being built, which their replays write (idempotent).
func (ev *elasticVersions) initVersions(ctx context.Context, building bool) error {
	state, err := ev.set.Registry().State(ctx)
	if err != nil {
		return err
	}
	todo := []string{state.Current}
	if building {
		todo = state.Writable()
	}
	for _, v := range todo {
		st, err := ev.set.Get(ctx, v)
		if err != nil {
			return err
		}
		if err := st.Init(ctx); err != nil {
			return fmt.Errorf("version %s: %w", v, err)
		}
	}
	return nil
}

// openElastic opens the store of a version; fence, when set, is checked
// before every write (elastic.Config.Fence), obs is its Observer.
func openElastic(c config.Elasticsearch, version string, fence func(context.Context) error, obs elastic.Observer, log *zap.Logger) (*elastic.Store, error) {
	ec := elastic.Config{Addresses: c.URLs, Username: c.Username, Password: c.Password, APIKey: c.APIKey,
		IndexPrefix: c.IndexPrefix, Version: version, RegistryTTL: c.RegistryTTL, CacheSize: c.CacheSize,
		ClaimLease: c.ClaimLease, Fence: fence, Observer: obs}
	if c.CACertFile != "" {
		pem, err := os.ReadFile(c.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("store.elasticsearch.ca_cert_file: %w", err)
		}
		ec.CACert = pem
	}
	return elastic.New(ec, log.Named("elasticsearch"))
}

// storeVersions are a store's versions as the index and forget commands use
// them, whatever the kind of store.
type storeVersions interface {
	Registry() versions.Registry
	// Versions lists every version the store holds, current or not.
	Versions(ctx context.Context) ([]string, error)
	Counts(ctx context.Context, version string) (versionCounts, error)
	// SessionDocs calls fn with every session document of version.
	SessionDocs(ctx context.Context, version string, fn func(tenant, id string, doc []byte) error) error
	// Forget erases a contact from version and says what it removed.
	Forget(ctx context.Context, version, tenant, contact string) (versionCounts, error)
	Close() error
}

// versionCounts are numbers of sessions and events.
type versionCounts struct {
	Sessions, Events int64
}

var (
	_ storeVersions = sqliteStoreVersions{}
	_ storeVersions = (*elasticVersions)(nil)
)

// openVersions opens the configured store's versions; nil when the command
// only printed its configuration.
func (g *globals) openVersions() (storeVersions, error) {
	cfg, _, done, err := g.loadConfig(nil)
	if err != nil || done {
		return nil, err
	}
	if cfg.Store.Kind == config.StoreElasticsearch {
		log, err := newLogger(cfg.Log, g.stderr)
		if err != nil {
			return nil, err
		}
		return openElasticVersions(cfg.Store.Elasticsearch, nil, log)
	}
	set, err := openSQLiteVersions(cfg.Store.SQLite.Dir)
	if err != nil {
		return nil, err
	}
	return sqliteStoreVersions{set: set, dir: cfg.Store.SQLite.Dir}, nil
}

// sqliteStoreVersions are the version files of a data folder.
type sqliteStoreVersions struct {
	set *sqliteVersions
	dir string
}

func (sv sqliteStoreVersions) Registry() versions.Registry { return sv.set.Registry() }
func (sv sqliteStoreVersions) Close() error                { return sv.set.Close() }

func (sv sqliteStoreVersions) Versions(context.Context) ([]string, error) {
	return versionFiles(sv.dir)
}

func (sv sqliteStoreVersions) Counts(ctx context.Context, version string) (versionCounts, error) {
	st, err := sv.set.Get(ctx, version)
	if err != nil {
		return versionCounts{}, err
	}
	c, err := st.Counts(ctx)
	return versionCounts(c), err
}

func (sv sqliteStoreVersions) SessionDocs(ctx context.Context, version string, fn func(tenant, id string, doc []byte) error) error {
	st, err := sv.set.Get(ctx, version)
	if err != nil {
		return err
	}
	return st.SessionDocs(ctx, fn)
}

func (sv sqliteStoreVersions) Forget(ctx context.Context, version, tenant, contact string) (versionCounts, error) {
	st, err := sv.set.Get(ctx, version)
	if err != nil {
		return versionCounts{}, err
	}
	f, err := st.Forget(ctx, tenant, contact)
	return versionCounts(f), err
}

func (ev *elasticVersions) Registry() versions.Registry { return ev.set.Registry() }

// Versions lists the versions with indices in the cluster, and those of the
// registry.
func (ev *elasticVersions) Versions(ctx context.Context) ([]string, error) {
	return ev.base.Registry().Versions(ctx)
}

func (ev *elasticVersions) Counts(ctx context.Context, version string) (versionCounts, error) {
	st, err := ev.set.Get(ctx, version)
	if err != nil {
		return versionCounts{}, err
	}
	c, err := st.Counts(ctx)
	return versionCounts(c), err
}

func (ev *elasticVersions) SessionDocs(ctx context.Context, version string, fn func(tenant, id string, doc []byte) error) error {
	st, err := ev.set.Get(ctx, version)
	if err != nil {
		return err
	}
	return st.SessionDocs(ctx, fn)
}

func (ev *elasticVersions) Forget(ctx context.Context, version, tenant, contact string) (versionCounts, error) {
	st, err := ev.set.Get(ctx, version)
	if err != nil {
		return versionCounts{}, err
	}
	f, err := st.Forget(ctx, tenant, contact)
	return versionCounts{Sessions: f.Sessions, Events: f.Events}, err
}
