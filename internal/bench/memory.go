package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/pipeline"
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
		r.res.skip(ScenarioMemory, "not run: the ingester must run in a process of its own (only `chatreport bench` starts one)")
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
	cc := ChildConfig{Brokers: []string{b.Addr()}, Group: "bench-memory", Dir: dir, Expect: len(events), Pipeline: r.cfg.Def}
	if r.cfg.ProfileDir != "" {
		cc.Profile = filepath.Join(r.cfg.ProfileDir, ScenarioMemory+".cpu.pprof")
		cc.HeapProfile = filepath.Join(r.cfg.ProfileDir, ScenarioMemory+".heap.pprof")
	}
	r.progress("memory: an ingester of its own process consumes them into SQLite")
	out, err := r.runChild(ctx, cc)
	if err != nil {
		return err
	}
	if cc.Profile != "" {
		r.res.Profiles[ScenarioMemory] = cc.Profile
		r.res.Profiles[ScenarioMemory+"-heap"] = cc.HeapProfile
	}
	sessions, open, err := countOpen(ctx, dir, out.LastEvent)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("chatreport bench ingest-child: ingest.Ingester → versions.Sink → SQLite in its own process; %d events, %d sessions of which %d open when the last event was stored; RSS includes SQLite's page cache",
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
			Value: float64(out.Counted) / out.Seconds,
			Note: fmt.Sprintf("every batch touches ~2,000 contacts with one new event each; %.0f ms CPU per 1,000 events (ingester process only); %d batches",
				out.CPUSeconds*1e6/float64(max(out.Counted, 1)), out.Batches)})
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

func (r *run) runChild(ctx context.Context, cc ChildConfig) (ChildResult, error) {
	ctx, cancel := context.WithTimeout(ctx, childLimit)
	defer cancel()
	args, err := ChildArgs(cc)
	if err != nil {
		return ChildResult{}, err
	}
	cmd := r.cfg.Child(ctx, args)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return ChildResult{}, fmt.Errorf("ingester process: %w: %s", err, tail(stderr.String(), 2000))
	}
	var out ChildResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return out, fmt.Errorf("ingester process answered %q: %w", tail(stdout.String(), 500), err)
	}
	return out, nil
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

// ChildConfig is what the memory scenario's ingester process runs.
type ChildConfig struct {
	Brokers     []string             `json:"brokers"`
	Group       string               `json:"group"`
	Dir         string               `json:"dir"`
	Expect      int                  `json:"expect"`
	Profile     string               `json:"profile,omitempty"`
	HeapProfile string               `json:"heap_profile,omitempty"`
	Pipeline    *pipeline.Definition `json:"pipeline"`
}

// ChildArgs are the arguments that make RunChild run c (after the
// command that calls RunChild).
func ChildArgs(c ChildConfig) ([]string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return []string{string(b)}, nil
}

// ChildResult is what the ingester process reports on its standard output.
type ChildResult struct {
	Events     int          `json:"events"`
	Counted    int          `json:"counted"`
	Batches    int          `json:"batches"`
	Seconds    float64      `json:"seconds"`
	CPUSeconds float64      `json:"cpu_seconds"`
	LastEvent  time.Time    `json:"last_event"`
	Memory     MemoryStatus `json:"memory"`
	GoTotal    uint64       `json:"go_total_bytes"`
	HeapInUse  uint64       `json:"heap_in_use_bytes"`
}

// RunChild is the memory scenario's ingester process: arg is ChildArgs'
// argument. It consumes until Expect events are stored, then writes a
// ChildResult as JSON to out.
func RunChild(ctx context.Context, arg string, out io.Writer, log *zap.Logger) error {
	var c ChildConfig
	dec := json.NewDecoder(strings.NewReader(arg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("bench child: %w", err)
	}
	if c.Pipeline == nil || c.Expect < 1 || c.Dir == "" {
		return errors.New("bench child: pipeline, expect and dir are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if c.Profile != "" {
		f, err := os.Create(c.Profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	set := openVersions(c.Dir)
	defer set.Close()
	clock := newBatchClock(c.Expect)
	lastEvent := &lastEventSink{sink: versions.NewSink(set, c.Pipeline)}
	in, err := ingest.New(ingest.Config{
		Brokers: c.Brokers, Topics: c.Pipeline.Topics.Events, Group: c.Group,
		DeadLetter: c.Pipeline.Topics.DeadLetter, Observer: clock,
		Workers: 1, // as `up` stores into SQLite: the batch in one call
	}, lastEvent, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	select {
	case <-clock.done:
		cancel()
		if err := <-done; err != nil {
			return err
		}
	case err := <-done:
		if err == nil {
			err = errors.New("ingester stopped early")
		}
		return err
	}
	if c.HeapProfile != "" {
		f, err := os.Create(c.HeapProfile)
		if err != nil {
			return err
		}
		err = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
		if err != nil {
			return err
		}
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	clock.mu.Lock()
	sp := clock.first.until(clock.last)
	res := ChildResult{
		Events: clock.total, Counted: clock.total - clock.firstN, Batches: clock.batches,
		Seconds: sp.wall.Seconds(), CPUSeconds: sp.cpu.Seconds(), LastEvent: lastEvent.last,
		Memory: ReadMemoryStatus(), GoTotal: s[0].Value.Uint64(), HeapInUse: s[1].Value.Uint64(),
	}
	clock.mu.Unlock()
	return json.NewEncoder(out).Encode(res)
}

// lastEventSink notes the latest event time it stored.
type lastEventSink struct {
	sink ingest.Sink
	last time.Time
}

func (l *lastEventSink) Ingest(ctx context.Context, events []event.Event) error {
	if err := l.sink.Ingest(ctx, events); err != nil {
		return err
	}
	for i := range events {
		if events[i].OccurredAt.After(l.last) {
			l.last = events[i].OccurredAt
		}
	}
	return nil
}
