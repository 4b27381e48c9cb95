// Package store opens the configured store, SQLite (store/sqlite) or
// Elasticsearch (store/elastic), as a set of versions (package versions): the
// report of the current version for the API, the sink that assembles
// ingested events into the current version, and what the index, replay and
// forget commands do with every version.
package store

import (
	"context"
	"io"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/versions"
)

// Versions are a store's versions as the index, replay and forget commands
// use them, whatever the kind of store.
type Versions interface {
	Registry() versions.Registry
	// Versions lists every version the store holds, current or not.
	Versions(ctx context.Context) ([]string, error)
	versions.Documents
	// Forget erases a contact from version and says what it removed.
	Forget(ctx context.Context, version, tenant, contact string) (versions.Counts, error)
	Close() error
}

// OpenVersions opens the versions of the configured store; refs names
// documents and events in their errors and log lines.
func OpenVersions(c config.Store, refs idref.Key, log *zap.Logger) (Versions, error) {
	if c.Kind == config.StoreElasticsearch {
		return OpenElastic(c.Elasticsearch, refs, nil, log)
	}
	return OpenSQLite(c.SQLite.Dir, sqlite.WithRefKey(refs))
}

// onVersion calls fn with the store of version.
func onVersion[S io.Closer, T any](ctx context.Context, set *versions.Set[S], version string, fn func(S) (T, error)) (T, error) {
	st, err := set.Get(ctx, version)
	if err != nil {
		var zero T
		return zero, err
	}
	return fn(st)
}

// onCurrent calls fn with the store of the current version.
func onCurrent[S io.Closer, T any](ctx context.Context, set *versions.Set[S], fn func(S) (T, error)) (T, error) {
	st, err := set.Current(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return fn(st)
}
