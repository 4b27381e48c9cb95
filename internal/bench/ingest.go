package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/versions"
)

// ingestTimeout bounds one ingest scenario: far more than any plausible run,
// so that a stuck consumer group ends the scenario instead of the bench.
const ingestTimeout = 15 * time.Minute

// Targets of the write path (docs/performance.md).
const (
	targetIngestSQLite  = 50_000
	targetIngestElastic = 150_000
)

// ingestScenarios makes one day of simulated traffic and splits it into
// phases (splitPhases). The consumer alone reads all of it in this process
// (the ceiling); each store's scenario runs the phases through ingester
// processes of their own, against a broker of its own in this process and,
// for Elasticsearch, a stand-in in a third process.
func (r *run) ingestScenarios(ctx context.Context) error {
	day := 24 * time.Hour
	t := trafficFor(r.cfg.Seed, r.cfg.Events, time.Now().Add(-day).Truncate(time.Second), day, benchTenants)
	phases := splitPhases(t, r.cfg.LateShare)
	var sizes []string
	for _, p := range phases {
		sizes = append(sizes, fmt.Sprintf("%s %d", p.name, len(p.events)))
	}
	r.progress("traffic: %d simulated events (%d conversations), in phases: %s; %d events of the first three phases sent late in the last",
		t.events, t.opts.Sessions, strings.Join(sizes, ", "), phases[len(phases)-1].late)

	var ceiling float64
	if r.cfg.runs(ScenarioConsumer) {
		r.progress("consumer alone: kafka-go fetch, no processing")
		res, err := r.consumeAll(ctx, phases, t.events)
		if err != nil {
			r.res.skip(ScenarioConsumer, "failed: "+err.Error())
		} else {
			ceiling = res.rate()
			r.addRate(ScenarioConsumer, res)
		}
	}
	for _, s := range []struct {
		scenario, store, path string
		target                float64
	}{
		{ScenarioIngestSQLite, StoreSQLite, "ingest.Ingester → store.Sink → session.Assembler → sqlite.Store (WAL, synchronous=FULL), as `up` wires them", targetIngestSQLite},
		{ScenarioIngestElastic, StoreElastic, "ingest.Ingester → session.Assembler → elastic.Store → HTTP on loopback to the " + r.standInName(), targetIngestElastic},
	} {
		if !r.cfg.runs(s.scenario) {
			continue
		}
		if r.cfg.Child == nil {
			r.res.skip(s.scenario, "not run: the ingester must run in a process of its own (only `chatreport-bench` starts one)")
			continue
		}
		r.progress("%s: broker → %s, in ingester processes of their own", s.scenario, s.path)
		runs, err := r.ingestPhases(ctx, s.scenario, s.store, phases)
		if err != nil {
			r.res.skip(s.scenario, "failed: "+err.Error())
			continue
		}
		r.addPhases(s.scenario, s.path, runs, atLeast(s.target), ceiling)
	}
	return nil
}

func (r *run) standInName() string {
	return "esfake stand-in (the store tests' model, without mapping checks)"
}

// ingestRun is what one read of the traffic measured in this process. The
// sustained span runs from the first fetched message to the last.
type ingestRun struct {
	events    int
	sustained span
	counted   int // events in the sustained span
	total     time.Duration
}

func (i ingestRun) rate() float64 {
	if i.counted == 0 || i.sustained.wall <= 0 {
		if i.total <= 0 {
			return 0
		}
		return float64(i.events) / i.total.Seconds()
	}
	return float64(i.counted) / i.sustained.wall.Seconds()
}

func (r *run) addRate(scenario string, res ingestRun) {
	r.res.add(Figure{Scenario: scenario, Name: "sustained rate", Unit: "events/s", Value: res.rate(),
		Note: fmt.Sprintf("kafka-go consumer-group reader configured as the ingester's, FetchMessage only, in the bench process; %d events, %d after the first in %.2f s",
			res.events, res.counted, res.sustained.wall.Seconds())})
	if res.counted > 0 {
		r.res.add(Figure{Scenario: scenario, Name: "CPU time per 1,000 events", Unit: "ms",
			Value: ms(res.sustained.cpu) * 1000 / float64(res.counted),
			Note:  "the bench process: the embedded broker's work is included"})
		r.res.add(Figure{Scenario: scenario, Name: "cores used", Unit: "cores",
			Value: res.sustained.cpu.Seconds() / res.sustained.wall.Seconds()})
	}
}

// consumeAll produces every phase to a broker of its own and reads it back
// with a kafka-go group reader configured like the ingester's, doing
// nothing with it.
func (r *run) consumeAll(ctx context.Context, phases []phaseTraffic, events int) (ingestRun, error) {
	ctx, cancel := context.WithTimeout(ctx, ingestTimeout)
	defer cancel()
	b, err := r.startBroker(ctx)
	if err != nil {
		return ingestRun{}, err
	}
	defer b.Close()
	for _, p := range phases {
		if err := produceEvents(ctx, b.Addr(), r.cfg.Def.Topics.Events, p.events); err != nil {
			return ingestRun{}, err
		}
	}
	def := r.cfg.Def
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:          []string{b.Addr()},
		GroupID:          "bench-consumer",
		GroupTopics:      def.Topics.Events,
		GroupBalancers:   []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		StartOffset:      kafka.FirstOffset,
		MinBytes:         1,
		MaxBytes:         16 << 20,
		MaxWait:          ingest.ReaderMaxWait(250 * time.Millisecond), // as the ingester's readers
		QueueCapacity:    2000,
		ReadBatchTimeout: 1250 * time.Millisecond,
	})
	defer reader.Close()
	stop := r.profile(ScenarioConsumer)
	defer stop()
	start := time.Now()
	var first usage
	for n := 0; n < events; n++ {
		if _, err := reader.FetchMessage(ctx); err != nil {
			return ingestRun{}, fmt.Errorf("fetch message %d of %d: %w", n+1, events, err)
		}
		if n == 0 {
			first = snapshot()
		}
	}
	last := snapshot()
	return ingestRun{events: events, sustained: first.until(last), counted: events - 1, total: last.at.Sub(start)}, nil
}

// phaseRun is one phase of a store's scenario: what the ingester process
// measured, and what the other processes spent meanwhile.
type phaseRun struct {
	traffic *phaseTraffic
	res     PhaseResult
	// bench is the bench process (the broker serving the fetches) from
	// the phase's release to its report.
	bench span
	// standIn is the stand-in's CPU time over the same span (Elasticsearch).
	standIn    time.Duration
	standInRSS int64
}

// processes are the phases each ingester process runs: the first alone,
// then a restart, then the others.
func processes(n int) [][]int {
	rest := make([]int, 0, n-1)
	for i := 1; i < n; i++ {
		rest = append(rest, i)
	}
	return [][]int{{0}, rest}
}

// ingestPhases runs the phases through ingester processes writing store,
// on a broker of their own; each phase's events are produced before the
// phase is released, so the ingester is measured alone.
func (r *run) ingestPhases(ctx context.Context, scenario, store string, phases []phaseTraffic) ([]phaseRun, error) {
	ctx, cancel := context.WithTimeout(ctx, ingestTimeout)
	defer cancel()
	b, err := r.startBroker(ctx)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	base := ChildConfig{Role: RoleIngest, Brokers: []string{b.Addr()}, Group: "bench-" + scenario, Store: store, Pipeline: r.cfg.Def,
		Workers: r.cfg.IngestWorkers, InFlight: r.cfg.IngestInFlight, Batch: r.cfg.IngestBatch}
	var si *childProc
	switch store {
	case StoreSQLite:
		dir, err := os.MkdirTemp(r.dataDir, scenario+"-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		base.Dir = dir
	case StoreElastic:
		sc := ChildConfig{Role: RoleStandIn, RefreshInterval: r.cfg.RefreshInterval, Latency: r.cfg.ElasticLatency}
		if r.cfg.ProfileDir != "" {
			sc.Profile = filepath.Join(r.cfg.ProfileDir, scenario+"-standin.cpu.pprof")
			r.res.Profiles[scenario+"-standin"] = sc.Profile
		}
		si, err = r.startChild(ctx, sc)
		if err != nil {
			return nil, err
		}
		defer si.abort() // on failures; closed below otherwise
		var hello struct{ URL string }
		if err := si.read(&hello); err != nil {
			return nil, fmt.Errorf("stand-in: %w", err)
		}
		base.Elastic = hello.URL
	}
	standIn := func() (StandInStats, error) {
		var st StandInStats
		if si == nil {
			return st, nil
		}
		if err := si.send("stats"); err != nil {
			return st, err
		}
		return st, si.read(&st)
	}
	var runs []phaseRun
	for _, proc := range processes(len(phases)) {
		cc := base
		for _, k := range proc {
			ph := ChildPhase{Name: phases[k].name, Events: len(phases[k].events)}
			if r.cfg.ProfileDir != "" {
				ph.Profile = filepath.Join(r.cfg.ProfileDir, scenario+"-"+ph.Name+".cpu.pprof")
			}
			cc.Phases = append(cc.Phases, ph)
		}
		child, err := r.startChild(ctx, cc)
		if err != nil {
			return nil, err
		}
		for i, k := range proc {
			p := &phases[k]
			if err := produceEvents(ctx, b.Addr(), r.cfg.Def.Topics.Events, p.events); err != nil {
				child.abort()
				return nil, err
			}
			r.progress("%s: phase %s, %d events", scenario, p.name, len(p.events))
			s0, err := standIn()
			if err != nil {
				child.abort()
				return nil, fmt.Errorf("stand-in: %w", err)
			}
			u0 := snapshot()
			if err := child.send("go"); err != nil {
				child.abort()
				return nil, err
			}
			var res PhaseResult
			if err := child.read(&res); err != nil {
				child.abort()
				return nil, fmt.Errorf("ingester process, phase %s: %w", p.name, err)
			}
			u1 := snapshot()
			s1, err := standIn()
			if err != nil {
				child.abort()
				return nil, fmt.Errorf("stand-in: %w", err)
			}
			if res.Events != len(p.events) {
				child.abort()
				return nil, fmt.Errorf("phase %s: the ingester stored %d events of %d", p.name, res.Events, len(p.events))
			}
			if prof := cc.Phases[i].Profile; prof != "" {
				r.res.Profiles[scenario+"-"+p.name] = prof
			}
			runs = append(runs, phaseRun{traffic: p, res: res, bench: u0.until(u1),
				standIn: time.Duration((s1.CPUSeconds - s0.CPUSeconds) * float64(time.Second)), standInRSS: s1.RSS})
		}
		if err := child.close(); err != nil {
			return nil, fmt.Errorf("ingester process: %w", err)
		}
	}
	if si != nil {
		// A clean end, so that it writes its profile.
		if err := si.close(); err != nil {
			return nil, fmt.Errorf("stand-in: %w", err)
		}
	}
	return runs, nil
}

// phaseNotes say what each phase is.
var phaseNotes = map[string]string{
	PhaseFresh:  "first ingester process, every key new to the store: reading a key back finds nothing",
	PhaseCold:   "second ingester process, just started: every key has stored state it does not hold in memory, and is read back by id",
	PhaseSteady: "the second process goes on: every key was written by it and is in its memory",
	PhaseLate:   "the second process goes on, with events of the earlier phases sent late among the new ones",
}

// addPhases reports each phase of a store's scenario.
func (r *run) addPhases(scenario, path string, runs []phaseRun, target *Target, ceiling float64) {
	for _, pr := range runs {
		res := pr.res
		ph := res.Phase
		add := func(f Figure) {
			f.Scenario, f.Phase = scenario, ph
			r.res.add(f)
		}
		rate := 0.0
		if res.Seconds > 0 {
			rate = float64(res.Events) / res.Seconds
		}
		note := fmt.Sprintf("%s; %s; %d events in %d batches in %.2f s", phaseNotes[ph], path, res.Events, res.Batches, res.Seconds)
		if pr.traffic.late > 0 {
			note += fmt.Sprintf("; %d of them (%.1f %%) late", pr.traffic.late, 100*float64(pr.traffic.late)/float64(res.Events))
		}
		if res.Retries > 0 {
			note += fmt.Sprintf("; %d store retries", res.Retries)
		}
		add(Figure{Name: "sustained rate", Unit: "events/s", Value: rate, Target: target, Note: note})
		if res.Events == 0 || res.Seconds <= 0 {
			continue
		}
		per1000 := func(d float64) float64 { return d * 1e6 / float64(res.Events) }
		add(Figure{Name: "CPU time per 1,000 events", Unit: "ms", Value: per1000(res.CPUSeconds),
			Note: "the ingester process alone (getrusage): consumer, decoding, assembler, store, HTTP client"})
		add(Figure{Name: "cores used", Unit: "cores", Value: res.CPUSeconds / res.Seconds, Note: "ingester CPU time / wall time"})
		add(Figure{Name: "heap allocations per event", Unit: "allocs", Value: float64(res.Allocs) / float64(res.Events)})
		add(Figure{Name: "mean batch", Unit: "events", Value: float64(res.Events) / float64(res.Batches)})
		add(Figure{Name: "ingester peak RSS (VmHWM)", Unit: "MiB", Value: float64(res.Memory.HWM) / mib,
			Note: "the ingester process's peak resident memory from its start to the phase's end: batches in flight, the key states it holds, the store's buffers"})
		if res.Written > 0 {
			add(Figure{Name: "bytes written to storage per event", Unit: "B", Value: float64(res.Written) / float64(res.Events),
				Note: "write_bytes of the ingester's /proc/self/io: database and WAL pages dirtied"})
		}
		if len(res.Requests) > 0 {
			total := 0
			var parts []string
			for _, ep := range slices.Sorted(maps.Keys(res.Requests)) {
				total += res.Requests[ep].Requests
				parts = append(parts, fmt.Sprintf("%s %.2f", ep, float64(res.Requests[ep].Requests)/float64(res.Batches)))
			}
			add(Figure{Name: "HTTP requests per batch", Unit: "requests", Value: float64(total) / float64(res.Batches),
				Note: strings.Join(parts, ", ")})
			for _, ep := range slices.Sorted(maps.Keys(res.Requests)) {
				add(Figure{Name: ep + " requests per batch", Unit: "requests", Value: float64(res.Requests[ep].Requests) / float64(res.Batches)})
			}
			bulk, mget := res.Requests["_bulk"], res.Requests["_mget"]
			add(Figure{Name: "bulk body bytes per event", Unit: "B", Value: float64(bulk.RequestBytes) / float64(res.Events)})
			add(Figure{Name: "bytes read back per event", Unit: "B", Value: float64(mget.ResponseBytes) / float64(res.Events),
				Note: "_mget answers: key, session and event documents read back by id"})
		}
		if pr.standIn > 0 {
			add(Figure{Name: "stand-in CPU time per 1,000 events", Unit: "ms", Value: pr.standIn.Seconds() * 1e6 / float64(res.Events),
				Note: fmt.Sprintf("the %s, a process of its own, from the phase's release to its report (not in the ingester's figures); %.2f cores; RSS %.0f MiB",
					r.standInName(), pr.standIn.Seconds()/pr.bench.wall.Seconds(), float64(pr.standInRSS)/mib)})
		}
		add(Figure{Name: "broker CPU time per 1,000 events", Unit: "ms", Value: pr.bench.cpu.Seconds() * 1e6 / float64(res.Events),
			Note: fmt.Sprintf("the bench process (embedded broker serving the fetches) over the phase; %.2f cores", pr.bench.cpu.Seconds()/pr.bench.wall.Seconds())})
		if ceiling > 0 {
			add(Figure{Name: "fraction of the consumer ceiling", Unit: "%", Value: 100 * rate / ceiling})
		}
	}
}

// openVersions mirrors the embedded store of `chatreport up`: one database
// file per version in dir, each with its packer and merger (the
// ingester's).
func openVersions(dir string) *versions.Set[*sqlite.Store] {
	return versions.NewSet(versions.OpenFile(dir), func(ctx context.Context, v string) (*sqlite.Store, error) {
		return sqlite.Open(ctx, filepath.Join(dir, "chatreport-"+v+".db"), sqlite.WithPacker(), sqlite.WithMerger())
	})
}

// childProc is a helper process: commands on its standard input, JSON
// lines on its standard output.
type childProc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr bytes.Buffer
	waited bool
	err    error
}

func (r *run) startChild(ctx context.Context, cc ChildConfig) (*childProc, error) {
	args, err := ChildArgs(cc)
	if err != nil {
		return nil, err
	}
	c := &childProc{cmd: r.cfg.Child(ctx, args)}
	c.cmd.Stderr = &c.stderr
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.out = bufio.NewScanner(stdout)
	c.out.Buffer(make([]byte, 0, 64<<10), 16<<20)
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s process: %w", cc.Role, err)
	}
	return c, nil
}

func (c *childProc) send(cmd string) error {
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		return fmt.Errorf("helper process: %w: %s", err, c.wait())
	}
	return nil
}

// read decodes the next line the process writes into v.
func (c *childProc) read(v any) error {
	if !c.out.Scan() {
		err := c.out.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("helper process ended: %w: %s", err, c.wait())
	}
	if err := json.Unmarshal(c.out.Bytes(), v); err != nil {
		return fmt.Errorf("helper process answered %q: %w", tail(c.out.Text(), 500), err)
	}
	return nil
}

// wait waits for the process to end and says how it ended.
func (c *childProc) wait() string {
	if !c.waited {
		c.waited = true
		c.in.Close()
		c.err = c.cmd.Wait()
	}
	if c.err == nil {
		return "exit 0"
	}
	return c.err.Error() + ": " + tail(c.stderr.String(), 2000)
}

// abort kills the process (on a failure of the bench's side) and waits
// for it.
func (c *childProc) abort() {
	if !c.waited && c.cmd.Process != nil {
		_ = c.cmd.Process.Kill()
	}
	c.wait()
}

// close ends the process's input and waits for it.
func (c *childProc) close() error {
	if msg := c.wait(); c.err != nil {
		return errors.New(msg)
	}
	return nil
}
