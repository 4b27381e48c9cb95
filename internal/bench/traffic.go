package bench

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
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

// Phases of the ingest scenarios, in the order they run. The first runs in
// one ingester process, the others in a second one, started after the
// first ended: a restart.
const (
	// PhaseFresh: keys new to the store (reading them back finds nothing).
	PhaseFresh = "fresh"
	// PhaseCold: the first traffic after the restart; every key has
	// stored state that the new process does not hold in memory.
	PhaseCold = "cold"
	// PhaseSteady: every key was written by this process and is in its
	// memory.
	PhaseSteady = "steady"
	// PhaseLate: like steady, with events of the earlier phases held back
	// and sent late among the new ones.
	PhaseLate = "late"
)

// phaseNames are the phases in order; the first alone runs in the first
// ingester process.
var phaseNames = []string{PhaseFresh, PhaseCold, PhaseSteady, PhaseLate}

// phaseTraffic is the events of one phase, in the order they are sent.
type phaseTraffic struct {
	name   string
	events []event.Event
	late   int // events of earlier phases among them
}

// splitPhases splits t's events into the phases: every session key's
// events (in time order) into four consecutive parts, one per phase, so
// that a key of a later phase was written in the earlier ones; each phase
// is sent in time order, as a platform sends its events. Then lateShare of
// the events of the first three phases (never the first of a key in a
// phase) are held back and sent at random places of the last phase.
func splitPhases(t traffic, lateShare float64) []phaseTraffic {
	g := simulate.NewGenerator(t.opts)
	byKey := map[string][]event.Event{}
	var keys []string
	for {
		evs, ok := g.Next()
		if !ok {
			break
		}
		for _, e := range evs {
			k := e.Tenant + "\x00" + session.KeyOf(&e)
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], e)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(t.opts.Seed), 0x1a7e))
	n := len(phaseNames)
	out := make([]phaseTraffic, n)
	for i, name := range phaseNames {
		out[i].name = name
	}
	var late []event.Event
	for _, k := range keys {
		evs := byKey[k]
		slices.SortFunc(evs, func(a, b event.Event) int { return event.Compare(&a, &b) })
		for p := range n {
			// Parts of ceil(i·len/n), none empty; a key with fewer events
			// than phases has one in each of the first ones. So a key
			// of a phase is in every phase before it.
			lo, hi := (p*len(evs)+n-1)/n, ((p+1)*len(evs)+n-1)/n
			if len(evs) < n {
				lo, hi = min(p, len(evs)), min(p+1, len(evs))
			}
			for i := lo; i < hi; i++ {
				// Never the first event of a part: the key stays in
				// its phase.
				if p < n-1 && i > lo && rng.Float64() < lateShare {
					late = append(late, evs[i])
					continue
				}
				out[p].events = append(out[p].events, evs[i])
			}
		}
	}
	for i := range out {
		slices.SortFunc(out[i].events, func(a, b event.Event) int { return event.Compare(&a, &b) })
	}
	// Each late event goes before a random event of the last phase (or
	// at its end).
	last := &out[n-1]
	rng.Shuffle(len(late), func(i, j int) { late[i], late[j] = late[j], late[i] })
	at := make([]int, len(late))
	for i := range at {
		at[i] = rng.IntN(len(last.events) + 1)
	}
	slices.Sort(at)
	merged := make([]event.Event, 0, len(last.events)+len(late))
	j := 0
	for i := 0; i <= len(last.events); i++ {
		for ; j < len(at) && at[j] == i; j++ {
			merged = append(merged, late[j])
		}
		if i < len(last.events) {
			merged = append(merged, last.events[i])
		}
	}
	last.events, last.late = merged, len(late)
	return out
}
