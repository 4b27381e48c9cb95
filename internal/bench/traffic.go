package bench

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/simulate"
)

// Tenants of the simulated traffic.
var benchTenants = []string{"acme", "banco-sol"}

// eventsPerConversation is about what the simulator averages, to size a run
// from an event count before counting exactly.
const eventsPerConversation = 24.6

// traffic is the shape of one simulated data set.
type traffic struct {
	opts simulate.Options
	// events and messages count what the generator yields for opts.
	events, messages int
}

// trafficFor returns options whose conversations hold about events events,
// counted exactly: the generator is deterministic and fast.
func trafficFor(seed int64, events int, start time.Time, spread time.Duration, tenants []string) traffic {
	conversations := max(int(float64(events)/eventsPerConversation+0.5), 1)
	t := traffic{opts: simulate.Options{Seed: seed, Tenants: tenants, Sessions: conversations, Start: start, Spread: spread}}
	t.count()
	return t
}

func (t *traffic) count() {
	g := simulate.NewGenerator(t.opts)
	t.events, t.messages = 0, 0
	for {
		evs, ok := g.Next()
		if !ok {
			return
		}
		t.events += len(evs)
		for i := range evs {
			if evs[i].Type == event.TypeMessage {
				t.messages++
			}
		}
	}
}

// startBroker starts an embedded broker with the pipeline's topics on a free
// loopback port.
func (r *run) startBroker(ctx context.Context) (*broker.Broker, error) {
	def := r.cfg.Def
	return broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0", Topics: def.Topics.All(), Partitions: def.Topics.Partitions},
		r.cfg.Log.Named("broker"))
}

// produce sends t's events to the broker as the platform would (the
// simulator's producer: keyed by contact, murmur2), and checks the count.
func (r *run) produce(ctx context.Context, b *broker.Broker, t traffic) (time.Duration, error) {
	start := time.Now()
	n, err := simulate.Run(ctx, simulate.Config{
		Brokers: []string{b.Addr()},
		Topics:  r.cfg.Def.Topics.Events,
		Options: t.opts,
	}, r.cfg.Log.Named("simulate").WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
	if err != nil {
		return 0, fmt.Errorf("produce simulated traffic: %w", err)
	}
	if n != t.events {
		return 0, fmt.Errorf("produced %d events, the generator made %d", n, t.events)
	}
	return time.Since(start), nil
}
