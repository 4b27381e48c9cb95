package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/health"
	"github.com/chatreport/chatreport/internal/metrics"
	"github.com/chatreport/chatreport/internal/pipeline"
)

// DemoTenant is the tenant of the demo traffic.
const DemoTenant = "acme"

// Endpoints is where a running `up` listens.
type Endpoints struct {
	Kafka   string
	HTTP    string
	DemoKey string
	// DemoKeyFile is the file that keeps DemoKey; "" when the key is the
	// demo tenant's of auth.api_keys.
	DemoKeyFile string
	// DemoSeeding: this start produces the demo's history (the first
	// start of the demo in its data directory).
	DemoSeeding bool
}

// Up runs everything on one machine: the embedded broker, the ingester, the
// SQLite store, the API and, with Demo, simulated traffic.
type Up struct {
	Config    config.Config
	Pipeline  *pipeline.Definition
	Demo      bool
	HTTPAddr  string
	KafkaAddr string
	DataDir   string
	// Ready, when set, is called once everything listens.
	Ready func(Endpoints)
	// demoHistory is how many conversations the demo seeds; 0 is
	// demoHistorySessions (tests seed fewer).
	demoHistory int
}

func newUpCommand(g *globals) *cobra.Command {
	u := &Up{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run everything on one machine: embedded Kafka broker, ingester, SQLite store and API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fromFile := cmd.Flags().Changed("config") || g.configPath != ""
			// Without --demo the API needs credentials of the
			// configuration; the demo makes a key when it has none.
			var require func(config.Config) error
			if !u.Demo {
				require = servesAPI
			}
			cfg, def, done, err := g.loadConfig(func(c *config.Config) {
				c.Store.Kind = config.StoreSQLite
				// A flag given wins; else the file's store.sqlite.dir and
				// http.addr (whose defaults are the flags').
				if !fromFile || cmd.Flags().Changed("data-dir") {
					c.Store.SQLite.Dir = u.DataDir
				}
				if !fromFile || cmd.Flags().Changed("http-addr") {
					c.HTTP.Addr = u.HTTPAddr
				}
				c.Kafka.Brokers = []string{u.KafkaAddr}
				if !fromFile {
					c.Log.Format = "console"
				}
			}, require)
			if err != nil || done {
				return err
			}
			u.Config, u.Pipeline = cfg, def
			u.DataDir, u.HTTPAddr = cfg.Store.SQLite.Dir, cfg.HTTP.Addr
			u.Ready = func(e Endpoints) { printEndpoints(g, u, e) }
			return u.Do(cmd.Context(), g)
		},
	}
	cmd.Flags().BoolVar(&u.Demo, "demo", false, "feed realistic simulated traffic and print a demo API key")
	cmd.Flags().StringVar(&u.HTTPAddr, "http-addr", "127.0.0.1:8080", "address of the report API (default: http.addr of the configuration file, when one is given)")
	cmd.Flags().StringVar(&u.KafkaAddr, "kafka-addr", "127.0.0.1:9092", "address of the embedded Kafka broker")
	cmd.Flags().StringVar(&u.DataDir, "data-dir", "data", "folder of the SQLite database (default: store.sqlite.dir of the configuration file, when one is given)")
	return cmd
}

// Do runs until ctx ends.
func (u *Up) Do(ctx context.Context, g *globals) error {
	log, err := newLogger(u.Config.Log, g.stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	cfg, def := u.Config, u.Pipeline
	var demoKey, demoKeyFile string
	var seed bool
	if u.Demo {
		// Before the state is read: the first of two starts seeds.
		release, err := lockDemo(u.DataDir)
		if err != nil {
			return err
		}
		defer release()
		state, err := loadDemoState(u.DataDir)
		if err != nil {
			return err
		}
		seed = state.SeededAt.IsZero()
		demoKey = string(cfg.Auth.APIKeys[DemoTenant])
		if demoKey == "" {
			// Kept in the data directory: a restart keeps open tabs signed in.
			if demoKey, err = keptDemoKey(u.DataDir); err != nil {
				return err
			}
			demoKeyFile = demoStatePath(u.DataDir)
			cfg.Auth.APIKeys = maps.Clone(cfg.Auth.APIKeys)
			if cfg.Auth.APIKeys == nil {
				cfg.Auth.APIKeys = map[string]config.Secret{}
			}
			cfg.Auth.APIKeys[DemoTenant] = config.Secret(demoKey)
		}
	}

	// The command runs the SQLite store; tests run the Elasticsearch one too.
	reg := metrics.New()
	be, err := openBackend("up", cfg, def, reg, log)
	if err != nil {
		return err
	}
	defer be.close()
	if be.init != nil {
		if err := be.init(ctx); err != nil {
			return fmt.Errorf("install Elasticsearch templates: %w", err)
		}
	}
	server, err := newAPI(cfg, be.api, reg, log)
	if err != nil {
		return err
	}
	b, err := broker.Start(ctx, broker.Config{Addr: u.KafkaAddr, Topics: def.Topics.All(), Partitions: def.Topics.Partitions}, log.Named("broker"))
	if err != nil {
		return fmt.Errorf("start embedded broker (--kafka-addr another free address): %w", err)
	}
	defer b.Close()
	in, err := newIngester(cfg, def, []string{b.Addr()}, be.sink, reg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", u.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen for the API (--http-addr another free address): %w", err)
	}

	grp, gctx := errgroup.WithContext(ctx)
	grp.Go(func() error { return in.Run(gctx) })
	checks := health.Checks{"kafka": health.Kafka([]string{b.Addr()}), "store": be.ping}
	grp.Go(func() error { return serveHTTP(gctx, ln, handler(reg, checks, server, cfg.API.TimeZone)) })
	if u.Demo {
		demo := demo{brokers: []string{b.Addr()}, topics: def.Topics.Events, dir: u.DataDir, seed: seed, history: u.demoHistory}
		grp.Go(func() error { return demo.run(gctx, log.Named("demo")) })
	}
	if u.Ready != nil {
		u.Ready(Endpoints{Kafka: b.Addr(), HTTP: ln.Addr().String(), DemoKey: demoKey, DemoKeyFile: demoKeyFile, DemoSeeding: seed})
	}
	log.Info("up", zap.String("kafka", b.Addr()), zap.String("http", ln.Addr().String()))
	return grp.Wait()
}

func printEndpoints(g *globals, u *Up, e Endpoints) {
	w := g.stdout
	fmt.Fprintf(w, "\nchatreport is up\n")
	fmt.Fprintf(w, "  Kafka (embedded broker): %s\n", e.Kafka)
	fmt.Fprintf(w, "  Report screen:           http://%s/\n", e.HTTP)
	fmt.Fprintf(w, "  Report API:              http://%s/api/v1/sessions\n", e.HTTP)
	fmt.Fprintf(w, "  SQLite store:            %s\n", u.Config.Store.SQLite.Dir)
	if e.DemoKey != "" {
		source := "auth.api_keys of the configuration"
		if e.DemoKeyFile != "" {
			source = "kept in " + e.DemoKeyFile
		}
		fmt.Fprintf(w, "  Demo API key (tenant %s): %s (%s)\n", DemoTenant, e.DemoKey, source)
		if e.DemoSeeding {
			fmt.Fprintf(w, "  Demo history:            producing %d conversations of the last 7 days, then live ones\n", demoHistorySessions)
		} else {
			fmt.Fprintf(w, "  Demo history:            already in %s; live conversations only (delete %s to seed again)\n",
				u.DataDir, demoStateFile)
		}
		fmt.Fprintf(w, "\n  curl -H 'Authorization: Bearer %s' http://%s/api/v1/sessions\n", e.DemoKey, e.HTTP)
	}
	fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n\n")
}

func randomKey() string {
	b := make([]byte, 18)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	return "demo-" + strings.ToLower(hex.EncodeToString(b))
}
