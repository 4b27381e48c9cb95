package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/simulate"
)

func newSimulateCommand(g *globals) *cobra.Command {
	var (
		brokers  []string
		rate     float64
		sessions int
		seed     int64
		tenants  []string
		days     int
	)
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Produce realistic chat traffic (bot flows, handoffs, agents) to any Kafka",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, def, log, done, err := g.start(nil)
			if err != nil || done {
				return err
			}
			defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
			if len(brokers) == 0 {
				brokers = cfg.Kafka.Brokers
			}
			if seed == 0 {
				seed = time.Now().UnixNano()
			}
			if days < 0 {
				return fmt.Errorf("--days %d: must be 0 or more", days)
			}
			spread := time.Duration(days) * 24 * time.Hour
			n, err := simulate.Run(cmd.Context(), simulate.Config{
				Brokers: brokers,
				Topics:  def.Topics.Events,
				Rate:    rate,
				Options: simulate.Options{
					Seed: seed, Tenants: tenants, Sessions: sessions,
					Start: time.Now().Add(-spread), Spread: spread,
				},
			}, log.Named("simulate"))
			if err == nil || n > 0 {
				// Not over a refused flag: nothing was tried.
				fmt.Fprintf(g.stdout, "produced %d events\n", n)
			}
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringSliceVar(&brokers, "brokers", nil, "Kafka bootstrap brokers (default: kafka.brokers of the configuration)")
	cmd.Flags().Float64Var(&rate, "rate", 0, "conversations per second (0: as fast as possible)")
	cmd.Flags().IntVar(&sessions, "sessions", 1000, "conversations to produce")
	cmd.Flags().Int64Var(&seed, "seed", 0, "random seed (0: from the clock)")
	cmd.Flags().StringSliceVar(&tenants, "tenants", []string{DemoTenant}, "tenants to produce for")
	cmd.Flags().IntVar(&days, "days", 7, "spread conversation start times over this many days up to now")
	return cmd
}

// demo feeds the embedded broker: a week of history at once, the first time
// the demo runs in its data directory, then live conversations, each event at
// its own time, until ctx ends.
type demo struct {
	brokers, topics []string
	dir             string
	seed            bool // produce the history
	history         int  // conversations of history; 0: demoHistorySessions
}

func (d demo) run(ctx context.Context, log *zap.Logger) error {
	const history = 7 * 24 * time.Hour
	now := time.Now()
	seed := now.UnixNano()
	if d.seed {
		sessions := d.history
		if sessions == 0 {
			sessions = demoHistorySessions
		}
		n, err := simulate.Run(ctx, simulate.Config{
			Brokers: d.brokers, Topics: d.topics,
			Options: simulate.Options{Seed: seed, Tenants: []string{DemoTenant}, Sessions: sessions, Start: now.Add(-history), Spread: history},
		}, log)
		if err != nil {
			return demoErr(err)
		}
		if err := markDemoSeeded(d.dir, now); err != nil {
			return err
		}
		log.Info("demo history produced", zap.Int("events", n))
	}
	// Live traffic: a conversation starts every few seconds and each event
	// goes out when its time comes.
	const live = 100000
	const every = 3 * time.Second
	_, err := simulate.Run(ctx, simulate.Config{
		Brokers: d.brokers, Topics: d.topics, Live: true,
		Options: simulate.Options{Seed: seed + 1, Tenants: []string{DemoTenant}, Sessions: live, Start: time.Now(), Spread: live * every},
	}, log)
	return demoErr(err)
}

// demoErr ignores the end of the demo at shutdown.
func demoErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("demo traffic: %w", err)
}
