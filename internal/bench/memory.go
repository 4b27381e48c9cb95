package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/simulate"
	"github.com/chatreport/chatreport/internal/versions"
)

// targetIngesterRSS is the most resident memory the ingester may use with
// OpenSessions open sessions.
const targetIngesterRSS = 256 // MiB

// Shape of the memory scenario's traffic: every conversation starts within
// openSpread and only its first openEvents events are sent, in time order,
// so that every session is open and all of them interleave.
const (
	openSpread = 2 * time.Minute
	openEvents = 4
	childLimit = 30 * time.Minute
)

// memoryScenario runs the ingester in a process of its own (so that its
// resident memory is its own, not the broker's), consuming OpenSessions
// conversations that are all still going on: the start of each, interleaved
// in time order as a live platform sends them.
func (r *run) memoryScenario(ctx context.Context) error {
	if r.cfg.Child == nil {
		r.res.skip(ScenarioMemory, "not run: the ingester must run in a process of its own (only `chatreport-bench` starts one)")
		return nil
	}
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	events := openTraffic(r.cfg.Seed, r.cfg.OpenSessions, start)
	b, err := r.startBroker(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	r.progress("memory: producing the first %d events of each of %d simultaneous conversations (%d events, all started within %s), in time order",
		openEvents, r.cfg.OpenSessions, len(events), openSpread)
	if err := produceEvents(ctx, b.Addr(), r.cfg.Def.Topics.Events, events); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(r.dataDir, "memory-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ph := ChildPhase{Name: ScenarioMemory, Events: len(events)}
	cc := ChildConfig{Role: RoleIngest, Brokers: []string{b.Addr()}, Group: "bench-memory", Store: StoreSQLite, Dir: dir,
		Phases: []ChildPhase{ph}, Pipeline: r.cfg.Def}
	if r.cfg.ProfileDir != "" {
		cc.Phases[0].Profile = filepath.Join(r.cfg.ProfileDir, ScenarioMemory+".cpu.pprof")
		cc.HeapProfile = filepath.Join(r.cfg.ProfileDir, ScenarioMemory+".heap.pprof")
	}
	r.progress("memory: an ingester of its own process consumes them into SQLite")
	ctx, cancel := context.WithTimeout(ctx, childLimit)
	defer cancel()
	child, err := r.startChild(ctx, cc)
	if err != nil {
		return err
	}
	var out PhaseResult
	err = child.send("go")
	if err == nil {
		err = child.read(&out)
	}
	if cerr := child.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ingester process: %w", err)
	}
	if cc.HeapProfile != "" {
		r.res.Profiles[ScenarioMemory] = cc.Phases[0].Profile
		r.res.Profiles[ScenarioMemory+"-heap"] = cc.HeapProfile
	}
	sessions, open, err := countOpen(ctx, dir, out.LastEvent)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("chatreport-bench child: ingest.Ingester → store.Sink → SQLite in its own process; %d events, %d sessions of which %d open when the last event was stored; RSS includes SQLite's page cache",
		out.Events, sessions, open)
	r.res.add(Figure{Scenario: ScenarioMemory, Name: "peak RSS of the ingester (VmHWM)", Unit: "MiB", Value: float64(out.Memory.HWM) / mib,
		Target: atMost(targetIngesterRSS), Note: note})
	r.res.add(Figure{Scenario: ScenarioMemory, Name: "RSS at the end (VmRSS)", Unit: "MiB", Value: float64(out.Memory.RSS) / mib})
	r.res.add(Figure{Scenario: ScenarioMemory, Name: "Go runtime memory at the end", Unit: "MiB", Value: float64(out.GoTotal) / mib,
		Note: fmt.Sprintf("heap in use %.1f MiB; the rest of RSS is SQLite (C memory through modernc.org/libc) and binaries", float64(out.HeapInUse)/mib)})
	r.res.add(Figure{Scenario: ScenarioMemory, Name: "open sessions", Unit: "sessions", Value: float64(open),
		Note: "sessions whose window had not ended at the last event: the scenario's premise"})
	if out.Seconds > 0 {
		r.res.add(Figure{Scenario: ScenarioMemory, Name: "ingest rate, interleaved open sessions", Unit: "events/s",
			Value: float64(out.Events) / out.Seconds,
			Note: fmt.Sprintf("every batch touches ~2,000 contacts with one new event each; %.0f ms CPU per 1,000 events (ingester process only); %d batches",
				out.CPUSeconds*1e6/float64(max(out.Events, 1)), out.Batches)})
	}
	return nil
}

// openTraffic is the start of n conversations that all begin within
// openSpread after start: the first openEvents events of each, in time
// order.
func openTraffic(seed int64, n int, start time.Time) []event.Event {
	g := simulate.NewGenerator(simulate.Options{Seed: seed, Tenants: []string{reportTenant}, Sessions: n, Start: start, Spread: openSpread})
	out := make([]event.Event, 0, n*openEvents)
	for {
		evs, ok := g.Next()
		if !ok {
			break
		}
		out = append(out, evs[:min(len(evs), openEvents)]...)
	}
	slices.SortFunc(out, func(a, b event.Event) int { return event.Compare(&a, &b) })
	return out
}

// produceEvents sends events in order as the platform would: to their
// topic, keyed by contact, partitioned by murmur2.
func produceEvents(ctx context.Context, addr string, topics []string, events []event.Event) error {
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{
		Addr: kafka.TCP(addr), Transport: transport, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 256, BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	const chunk = 4096
	msgs := make([]kafka.Message, 0, chunk)
	for i := range events {
		e := &events[i]
		value, err := json.Marshal(e)
		if err != nil {
			return err
		}
		msgs = append(msgs, kafka.Message{Topic: simulate.TopicFor(*e, topics), Key: []byte(e.RecommendedKey()), Value: value})
		if len(msgs) == chunk || i == len(events)-1 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return fmt.Errorf("produce: %w", err)
			}
			msgs = msgs[:0]
		}
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// countOpen counts the sessions in the version database of dir, and those
// whose window ends after last.
func countOpen(ctx context.Context, dir string, last time.Time) (sessions, open int, err error) {
	path := filepath.Join(dir, "chatreport-"+versions.Initial+".db")
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	err = db.QueryRowContext(ctx, `SELECT count(*),
		coalesce(sum(julianday(json_extract(CAST(doc AS TEXT), '$.window_ends_at')) > julianday(?)), 0) FROM sessions`,
		last.UTC().Format(time.RFC3339Nano)).Scan(&sessions, &open)
	return sessions, open, err
}
