// Package benchcmd is the command line of chatreport-bench: the scenarios
// of package bench on this machine, as a table and JSON
// (docs/performance.md). It is a program of its own so that the production
// binary links none of the bench's stand-ins and test servers.
package benchcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/chatreport/chatreport/internal/bench"
	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/pipeline"
)

// Execute runs chatreport-bench with args.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := command(stdout, stderr)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	return cmd.ExecuteContext(ctx)
}

func command(stdout, stderr io.Writer) *cobra.Command {
	cfg := bench.Config{}
	var out, configPath string
	cmd := &cobra.Command{
		Use:   "chatreport-bench",
		Short: "Measure ingest, queries, export and memory on this machine with simulated traffic",
		Long: "Runs the real write and read paths on simulated traffic — embedded broker → ingester → SQLite or a stand-in\n" +
			"Elasticsearch on loopback, the ingester in a process of its own, through a fresh store, a restart (every key read\n" +
			"back), steady state and late events; the consumer alone; report queries, full text and export through the HTTP\n" +
			"API; the ingester's memory — and prints each figure next to its target. Seeded databases are kept in\n" +
			"--data-dir and reused; CPU profiles go to --profile-dir. See docs/performance.md.",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := config.Load(configPath)
			if err != nil {
				return err
			}
			if err := c.Validate(); err != nil {
				return fmt.Errorf("invalid configuration: %w", err)
			}
			def, err := pipeline.Load(c.Pipeline)
			if err != nil {
				return err
			}
			// The components log every consumer group join and stop at
			// info; a bench wants their warnings only.
			cfg.Log = logger(stderr)
			defer cfg.Log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
			cfg.Def = def
			cfg.Progress = stderr
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find this program to start the ingester process: %w", err)
			}
			cfg.Child = func(ctx context.Context, args []string) *exec.Cmd {
				return exec.CommandContext(ctx, exe, append([]string{"child"}, args...)...)
			}
			if cfg.DataDir == "" {
				return fmt.Errorf("--data-dir: must not be empty")
			}
			res, err := bench.Run(cmd.Context(), cfg)
			if res != nil {
				if werr := res.WriteTable(stdout); werr != nil && err == nil {
					err = werr
				}
				if jerr := writeResults(stdout, out, res); jerr != nil && err == nil {
					err = jerr
				}
			}
			return err
		},
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Events, "events", 200_000, "simulated events the consumer and both ingest scenarios read, over four phases (whole conversations: about this many)")
	f.IntVar(&cfg.Sessions, "sessions", 20_000, "conversations seeded into the report database of the query and export scenarios (the targets are stated for 200000)")
	f.IntVar(&cfg.ExportSessions, "export-sessions", 100_000, "sessions the export streams, at most what the report database holds")
	f.IntVar(&cfg.OpenSessions, "open-sessions", 100_000, "simultaneous open conversations the ingester of the memory scenario consumes")
	f.IntVar(&cfg.QueryRuns, "query-runs", 40, "timed requests per query kind")
	f.StringSliceVar(&cfg.QueryKinds, "query-kinds", nil, `run only the query and full-text kinds whose names contain one of these (e.g. "starts_with,q with tag")`)
	f.DurationVar(&cfg.ElasticLatency, "es-latency", 0, "delay of every answer of the Elasticsearch stand-in, to model a cluster across a network")
	f.IntVar(&cfg.IngestWorkers, "ingest-workers", 0, "ingest.workers of both ingest scenarios (0: each store's default, 1 for SQLite and one per core for Elasticsearch)")
	f.IntVar(&cfg.IngestBatch, "ingest-batch", 0, "ingest.batch_size of both ingest scenarios (0: each store's default, 4000 for SQLite and for Elasticsearch)")
	f.IntVar(&cfg.IngestInFlight, "ingest-in-flight", 0, "ingest.batches_in_flight of both ingest scenarios (0: each store's default, 2 for SQLite and 8 for Elasticsearch)")
	f.DurationVar(&cfg.RefreshInterval, "es-refresh-interval", time.Second, "the stand-in's index.refresh_interval (what a search sees lags writes by up to this; negative: never)")
	f.Float64Var(&cfg.LateShare, "late-share", 0.05, "share of the events of the first three ingest phases sent late, in the last")
	f.Int64Var(&cfg.Seed, "seed", 1, "seed of the simulated traffic")
	f.StringVar(&cfg.DataDir, "data-dir", filepath.Join(cache, "chatreport-bench"), "where seeded report databases are kept and reused between runs")
	f.StringVar(&cfg.ProfileDir, "profile-dir", "bench-profiles", `where CPU profiles of each scenario go ("" for none)`)
	f.StringSliceVar(&cfg.Only, "only", nil, fmt.Sprintf("run only these scenarios %v", bench.Scenarios))
	f.StringVar(&out, "out", "", `write the results as JSON to this file ("-": standard output after the table)`)
	f.StringVar(&configPath, "config", "", "YAML configuration file of chatreport (its pipeline and ingest settings; defaults apply to what it leaves out)")
	cmd.AddCommand(childCommand(stdout, stderr))
	return cmd
}

// logger writes warnings and errors as JSON lines.
func logger(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), zapcore.WarnLevel))
}

func writeResults(stdout io.Writer, out string, res *bench.Results) error {
	if out == "" {
		return nil
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if out == "-" {
		_, err = stdout.Write(data)
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	fmt.Fprintf(stdout, "  results: %s\n", out)
	return nil
}

// childCommand is a helper process of the bench (an ingester, the
// Elasticsearch stand-in), started by the bench itself.
func childCommand(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:    "child CONFIG",
		Short:  "A helper process of chatreport-bench (started by it)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return bench.RunChild(cmd.Context(), args[0], cmd.InOrStdin(), stdout, logger(stderr))
		},
	}
}
