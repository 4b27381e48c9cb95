package cli

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/store/sqlite"
)

// openStore opens the configured store.
func openStore(ctx context.Context, cfg config.Config) (*sqlite.Store, error) {
	switch cfg.Store.Kind {
	case config.StoreSQLite:
		return openSQLite(ctx, cfg.Store.SQLite.Path)
	}
	return nil, fmt.Errorf("store.kind %q is not supported", cfg.Store.Kind)
}

func newIngestCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ingest",
		Short: "Consume the event topics of a Kafka cluster into the configured store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, def, done, err := g.loadConfig(nil)
			if err != nil || done {
				return err
			}
			log, err := newLogger(cfg.Log, g.stderr)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
			store, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			in, err := newIngester(cfg, def, cfg.Kafka.Brokers, store, log)
			if err != nil {
				return err
			}
			log.Info("ingesting", zap.Strings("topics", def.Topics.Events), zap.String("group", def.ConsumerGroup))
			return in.Run(cmd.Context())
		},
	}
}

func newServeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve the report API from the configured store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, done, err := g.loadConfig(nil)
			if err != nil || done {
				return err
			}
			log, err := newLogger(cfg.Log, g.stderr)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
			store, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			server, err := newAPI(cfg, store, log)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.HTTP.Addr)
			if err != nil {
				return fmt.Errorf("listen for the API: %w", err)
			}
			log.Info("serving", zap.String("http", ln.Addr().String()))
			return serveHTTP(cmd.Context(), ln, server)
		},
	}
}
