package cli

import (
	"context"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/api"
	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/health"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/metrics"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/store"
	"github.com/chatreport/chatreport/internal/store/sqlite"
)

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

// ingestingCommands are the commands whose SQLite store runs the packer
// and the full-text merger (sqlite.WithPacker, sqlite.WithMerger): those
// that ingest. Their passes on open and their slices cost CPU and take the
// write lock; in serve they would compete with the ingester for it. Every
// other command (serve, replay, index, forget) opens the store without
// them (docs/operations.md, "Who packs and merges").
var ingestingCommands = []string{"ingest", "up"}

// openBackend opens the configured store for command: SQLite versions in a
// folder, or Elasticsearch versions in a cluster, whose write path reports
// to reg.
func openBackend(command string, cfg config.Config, def *pipeline.Definition, reg *metrics.Registry, log *zap.Logger) (*backend, error) {
	switch cfg.Store.Kind {
	case config.StoreSQLite:
		opts := []sqlite.Option{sqlite.WithRefKey(cfg.Log.Refs())}
		if slices.Contains(ingestingCommands, command) {
			opts = append(opts, sqlite.WithPacker(), sqlite.WithMerger())
		}
		vs, err := store.OpenSQLite(cfg.Store.SQLite.Dir, opts...)
		if err != nil {
			return nil, err
		}
		cur := store.Current{Set: vs.Set}
		return &backend{sink: store.NewSink(vs.Set, def), api: cur, ping: cur.Ping, close: vs.Close}, nil
	case config.StoreElasticsearch:
		ev, err := store.OpenElastic(cfg.Store.Elasticsearch, cfg.Log.Refs(), reg, log)
		if err != nil {
			return nil, err
		}
		// The API reads the read aliases, which designate the current
		// version's indices whatever store it asks.
		init := func(ctx context.Context) error { return ev.Init(ctx, false) }
		return &backend{sink: store.NewSink(ev.Set, def), api: ev.Base, ping: ev.Base.Ping, close: ev.Close, init: init}, nil
	}
	return nil, fmt.Errorf("store.kind %q is not supported", cfg.Store.Kind)
}

// openVersions opens the configured store's versions; nil when the command
// only printed its configuration.
func (g *globals) openVersions() (store.Versions, error) {
	cfg, _, done, err := g.loadConfig(nil, nil)
	if err != nil || done {
		return nil, err
	}
	log, err := newLogger(cfg.Log, g.stderr)
	if err != nil {
		return nil, err
	}
	return store.OpenVersions(cfg.Store, cfg.Log.Refs(), log)
}
