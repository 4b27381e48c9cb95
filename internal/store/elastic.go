package store

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/store/elastic"
	"github.com/chatreport/chatreport/internal/versions"
)

// Elastic are the versions of an Elasticsearch cluster: a store per
// version, and the registry in the cluster.
type Elastic struct {
	*versions.Set[*elastic.Store]
	// Base is a store of the initial version: it holds the registry, and
	// its queries, like any version's, go through the read aliases, which
	// designate the current version's indices.
	Base *elastic.Store
}

var _ Versions = (*Elastic)(nil)

// OpenElastic opens the versions of the cluster; refs names documents in
// their errors and log lines (log.ref_key), obs, when set, receives the
// measurements of every version's write path.
func OpenElastic(c config.Elasticsearch, refs idref.Key, obs elastic.Observer, log *zap.Logger) (*Elastic, error) {
	base, err := openElastic(c, versions.Initial, refs, nil, nil, log)
	if err != nil {
		return nil, err
	}
	reg := base.Registry()
	set := versions.NewSet(reg, func(_ context.Context, v string) (*elastic.Store, error) {
		return openElastic(c, v, refs, versions.Fence(reg, v), obs, log)
	})
	return &Elastic{Set: set, Base: base}, nil
}

// Close closes every version's store.
func (e *Elastic) Close() error { return errors.Join(e.Set.Close(), e.Base.Close()) }

// Init installs the templates and first indices of the current version,
// which the live ingester writes, and with building those of the versions
// being built, which their replays write (idempotent).
func (e *Elastic) Init(ctx context.Context, building bool) error {
	state, err := e.Registry().State(ctx)
	if err != nil {
		return err
	}
	todo := []string{state.Current}
	if building {
		todo = state.Writable()
	}
	for _, v := range todo {
		st, err := e.Get(ctx, v)
		if err != nil {
			return err
		}
		if err := st.Init(ctx); err != nil {
			return fmt.Errorf("version %s: %w", v, err)
		}
	}
	return nil
}

// openElastic opens the store of a version; refs is its
// elastic.Config.RefKey, fence, when set, is checked before every write
// (elastic.Config.Fence), obs is its Observer.
func openElastic(c config.Elasticsearch, version string, refs idref.Key, fence func(context.Context) error, obs elastic.Observer, log *zap.Logger) (*elastic.Store, error) {
	ec := elastic.Config{Addresses: c.URLs, Username: c.Username, Password: string(c.Password), APIKey: string(c.APIKey),
		IndexPrefix: c.IndexPrefix, Version: version, RegistryTTL: c.RegistryTTL, CacheBytes: c.CacheMiB << 20,
		ClaimLease: c.ClaimLease, ExportKeepAlive: c.ExportKeepAlive, SessionTextMaxBytes: c.SessionTextMaxBytes, Fence: fence, Observer: obs, RefKey: refs}
	if c.CACertFile != "" {
		pem, err := os.ReadFile(c.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("store.elasticsearch.ca_cert_file: %w", err)
		}
		ec.CACert = pem
	}
	return elastic.New(ec, log.Named("elasticsearch"))
}

// Versions lists the versions with indices in the cluster, and those of the
// registry.
func (e *Elastic) Versions(ctx context.Context) ([]string, error) {
	return e.Base.Registry().Versions(ctx)
}

// Counts counts the sessions and events of version.
func (e *Elastic) Counts(ctx context.Context, version string) (versions.Counts, error) {
	return onVersion(ctx, e.Set, version, func(st *elastic.Store) (versions.Counts, error) {
		c, err := st.Counts(ctx)
		return versions.Counts(c), err
	})
}

// SessionDocs calls fn with every session document of version.
func (e *Elastic) SessionDocs(ctx context.Context, version string, fn func(tenant, id string, doc []byte) error) error {
	_, err := onVersion(ctx, e.Set, version, func(st *elastic.Store) (struct{}, error) { return struct{}{}, st.SessionDocs(ctx, fn) })
	return err
}

// Forget erases a contact from version.
func (e *Elastic) Forget(ctx context.Context, version, tenant, contact string) (versions.Counts, error) {
	return onVersion(ctx, e.Set, version, func(st *elastic.Store) (versions.Counts, error) {
		f, err := st.Forget(ctx, tenant, contact)
		return versions.Counts{Sessions: f.Sessions, Events: f.Events}, err
	})
}

// CheckElasticPrivileges asks the cluster of c whether its user holds the
// privileges of role (elastic.Store.CheckPrivileges).
func CheckElasticPrivileges(ctx context.Context, c config.Elasticsearch, role elastic.Role, log *zap.Logger) error {
	// The check names no document: the process's key will do.
	s, err := openElastic(c, versions.Initial, idref.Key{}, nil, nil, log)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.CheckPrivileges(ctx, role)
}
