package cli

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/health"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/metrics"
	"github.com/chatreport/chatreport/internal/pipeline"
)

func newIngestCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ingest",
		Short: "Consume the event topics of a Kafka cluster into the configured store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withBackend(cmd.Name(), nil, func(cfg config.Config, def *pipeline.Definition, log *zap.Logger, be *backend, reg *metrics.Registry) error {
				if be.init != nil {
					// Templates and the first indices must exist before the
					// first write; installing them again changes nothing.
					if err := be.init(cmd.Context()); err != nil {
						return fmt.Errorf("install Elasticsearch templates: %w", err)
					}
				}
				in, err := newIngester(cfg, def, cfg.Kafka.Brokers, be.sink, reg, log)
				if err != nil {
					return err
				}
				gc := ingest.SQLiteGC.WithBatches(cfg.Ingest.InFlightOf(cfg.Store.Kind), config.SQLiteInFlight)
				if cfg.Store.Kind == config.StoreElasticsearch {
					gc = ingest.ElasticGC.WithCache(int64(cfg.Store.Elasticsearch.CacheMiB)<<20, cfg.Ingest.InFlightOf(cfg.Store.Kind))
				}
				gcPercent, memLimit := ingest.SetGCDefaults(gc)
				log.Info("garbage collector", zap.Int("gc_percent", gcPercent), zap.Int64("memory_limit_bytes", memLimit))
				ln, err := net.Listen("tcp", cfg.HTTP.Addr)
				if err != nil {
					return fmt.Errorf("listen for metrics and health: %w", err)
				}
				log.Info("ingesting", zap.Strings("topics", def.Topics.Events), zap.String("group", def.ConsumerGroup),
					zap.String("http", ln.Addr().String()), refsField(cfg.Log.Refs()))
				checks := health.Checks{"kafka": health.Kafka(cfg.Kafka.Brokers), "store": be.ping}
				grp, gctx := errgroup.WithContext(cmd.Context())
				grp.Go(func() error { return in.Run(gctx) })
				grp.Go(func() error { return serveHTTP(gctx, ln, handler(reg, checks, nil, "")) })
				return grp.Wait()
			})
		},
	}
}

func newServeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve the report API from the configured store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withBackend(cmd.Name(), servesAPI, func(cfg config.Config, def *pipeline.Definition, log *zap.Logger, be *backend, reg *metrics.Registry) error {
				server, err := newAPI(cfg, be.api, reg, log)
				if err != nil {
					return err
				}
				ln, err := net.Listen("tcp", cfg.HTTP.Addr)
				if err != nil {
					return fmt.Errorf("listen for the API: %w", err)
				}
				log.Info("serving", zap.String("http", ln.Addr().String()), refsField(cfg.Log.Refs()))
				checks := health.Checks{"store": be.ping}
				return serveHTTP(cmd.Context(), ln, handler(reg, checks, server, cfg.API.TimeZone))
			})
		},
	}
}

// withBackend runs fn with the configuration (which must meet require, when
// set), the logger, the store open for command and the metrics it reports
// to: the prologue of the long-running roles.
func (g *globals) withBackend(command string, require func(config.Config) error, fn func(config.Config, *pipeline.Definition, *zap.Logger, *backend, *metrics.Registry) error) error {
	cfg, def, log, done, err := g.start(require)
	if err != nil || done {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	reg := metrics.New()
	be, err := openBackend(command, cfg, def, reg, log)
	if err != nil {
		return err
	}
	defer be.close()
	return fn(cfg, def, log, be, reg)
}
