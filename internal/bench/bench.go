// Package bench measures chatreport on the machine it runs on: the write path
// (embedded broker → ingester → assembler → SQLite or Elasticsearch), the
// consumer alone, report queries and exports through the HTTP API, and the
// ingester's memory. Every scenario runs the real code paths on traffic from
// the simulator, and compares its figures with the targets of
// docs/performance.md. `chatreport-bench` runs it; nothing here runs under
// `go test ./...` except a smoke test with tiny sizes.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/pipeline"
)

// Scenario names, in the order Run runs them.
const (
	ScenarioConsumer      = "consumer"
	ScenarioIngestSQLite  = "ingest-sqlite"
	ScenarioIngestElastic = "ingest-elastic"
	ScenarioQuery         = "query"
	ScenarioFullText      = "fulltext"
	ScenarioExport        = "export"
	ScenarioMemory        = "memory"
)

// Scenarios lists every scenario, in the order Run runs them.
var Scenarios = []string{
	ScenarioConsumer, ScenarioIngestSQLite, ScenarioIngestElastic,
	ScenarioQuery, ScenarioFullText, ScenarioExport, ScenarioMemory,
}

// Config sizes the scenarios. Zero fields get the defaults of Defaults.
type Config struct {
	// Events is about how many simulated events the ingest scenarios and
	// the consumer read (whole conversations: the exact count is reported).
	Events int
	// Sessions is how many conversations are seeded into the database of
	// the query and export scenarios.
	Sessions int
	// ExportSessions is how many sessions the export scenario streams; at
	// most what the query database holds in 31 days.
	ExportSessions int
	// OpenSessions is how many conversations, all still open when the
	// stream ends, the memory scenario's ingester consumes.
	OpenSessions int
	// QueryRuns is how many timed requests each query kind gets.
	QueryRuns int
	// QueryKinds, when set, limits the query and full-text scenarios to
	// the kinds whose names contain one of these.
	QueryKinds []string
	// ElasticLatency delays every answer of the Elasticsearch stand-in, to
	// model a cluster across a network; 0 answers at once.
	ElasticLatency time.Duration
	// IngestWorkers is the ingest scenarios' ingest.Config.Workers; 0 is
	// what the commands use for each store (1 for SQLite, one per core for
	// Elasticsearch).
	IngestWorkers int
	// IngestInFlight is the ingest scenarios' ingest.Config.InFlight; 0 is
	// what the commands use for each store (config.Ingest.InFlightOf).
	IngestInFlight int
	// IngestBatch is the ingest scenarios' ingest.Config.BatchSize; 0 is
	// what the commands use for each store (config.Ingest.BatchSizeOf).
	IngestBatch int
	// RefreshInterval is the stand-in's index.refresh_interval: what a
	// search sees lags the writes by up to this; 0 is Elasticsearch's 1 s.
	RefreshInterval time.Duration
	// LateShare is the share of the events of the first three ingest
	// phases held back and sent late in the last; 0 is 5 %.
	LateShare float64
	// Seed makes the traffic; the same seed gives the same events.
	Seed int64
	// DataDir keeps seeded databases between runs; "" uses a temporary
	// folder removed at the end.
	DataDir string
	// ProfileDir receives a CPU profile per scenario; "" profiles nothing.
	ProfileDir string
	// Only runs these scenarios (names of Scenarios); all when empty.
	Only []string
	// Def is the pipeline definition; the embedded default when nil.
	Def *pipeline.Definition
	// Log receives the components' logs; nothing when nil.
	Log *zap.Logger
	// Progress receives a line as each step starts; nothing when nil.
	Progress io.Writer
	// Child starts this program as a helper process of the bench (an
	// ingester, the Elasticsearch stand-in), with args for RunChild (see
	// ChildArgs), its standard input and output left for the bench. The
	// ingest and memory scenarios are not run when nil.
	Child func(ctx context.Context, args []string) *exec.Cmd
}

// Defaults fills zero fields: sizes that let every scenario run in a few
// minutes on two cores, with the seeded database cached in DataDir.
func (c *Config) Defaults() {
	if c.Events == 0 {
		c.Events = 300_000
	}
	if c.Sessions == 0 {
		c.Sessions = 100_000
	}
	if c.ExportSessions == 0 {
		c.ExportSessions = 100_000
	}
	if c.OpenSessions == 0 {
		c.OpenSessions = 100_000
	}
	if c.QueryRuns == 0 {
		c.QueryRuns = 40
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.LateShare == 0 {
		c.LateShare = 0.05
	}
	if c.Def == nil {
		c.Def = pipeline.MustDefault()
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports every problem of the configuration.
func (c *Config) Validate() error {
	var errs []error
	for _, s := range []struct {
		name string
		n    int
	}{{"events", c.Events}, {"sessions", c.Sessions}, {"export sessions", c.ExportSessions},
		{"open sessions", c.OpenSessions}, {"query runs", c.QueryRuns}} {
		if s.n < 1 {
			errs = append(errs, fmt.Errorf("bench: %s must be at least 1", s.name))
		}
	}
	if c.ElasticLatency < 0 {
		errs = append(errs, errors.New("bench: elastic latency must not be negative"))
	}
	if c.IngestWorkers < 0 {
		errs = append(errs, errors.New("bench: ingest workers must not be negative"))
	}
	if c.IngestBatch < 0 {
		errs = append(errs, errors.New("bench: the ingest batch size must not be negative"))
	}
	if c.IngestInFlight < 0 {
		errs = append(errs, errors.New("bench: ingest batches in flight must not be negative"))
	}
	if c.LateShare < 0 || c.LateShare >= 1 {
		errs = append(errs, errors.New("bench: the late share must be at least 0 and below 1"))
	}
	for _, s := range c.Only {
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, fmt.Errorf("bench: unknown scenario %q (one of %v)", s, Scenarios))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) runs(scenario string) bool {
	return len(c.Only) == 0 || slices.Contains(c.Only, scenario)
}

// Target is what a figure should reach.
type Target struct {
	// Op is ">=" or "<=".
	Op    string  `json:"op"`
	Value float64 `json:"value"`
}

func atLeast(v float64) *Target { return &Target{Op: ">=", Value: v} }
func atMost(v float64) *Target  { return &Target{Op: "<=", Value: v} }

// Met reports whether v reaches the target.
func (t *Target) Met(v float64) bool {
	if t.Op == "<=" {
		return v <= t.Value
	}
	return v >= t.Value
}

// Figure is one measured value.
type Figure struct {
	Scenario string `json:"scenario"`
	// Phase is the part of the ingest traffic the figure is of (fresh,
	// cold, steady, late), empty elsewhere.
	Phase  string  `json:"phase,omitempty"`
	Name   string  `json:"figure"`
	Unit   string  `json:"unit"`
	Value  float64 `json:"value"`
	Target *Target `json:"target,omitempty"`
	// Met is set when there is a target.
	Met *bool `json:"met,omitempty"`
	// Margin is Value relative to the target: +0.25 is 25% better than
	// needed, -0.4 is 40% short of it.
	Margin *float64 `json:"margin,omitempty"`
	Note   string   `json:"note,omitempty"`
}

// Skipped is a scenario that did not run, and why.
type Skipped struct {
	Scenario string `json:"scenario"`
	Reason   string `json:"reason"`
}

// Results is what Run measured.
type Results struct {
	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_seconds"`
	Machine  Machine   `json:"machine"`
	Config   struct {
		Events         int     `json:"events"`
		Sessions       int     `json:"sessions"`
		ExportSessions int     `json:"export_sessions"`
		OpenSessions   int     `json:"open_sessions"`
		QueryRuns      int     `json:"query_runs"`
		ElasticLatency string  `json:"elastic_latency"`
		Refresh        string  `json:"elastic_refresh_interval"`
		LateShare      float64 `json:"late_share"`
		Seed           int64   `json:"seed"`
		ProfileDir     string  `json:"profile_dir,omitempty"`
	} `json:"config"`
	Figures []Figure  `json:"figures"`
	NotRun  []Skipped `json:"not_run"`
	// Profiles are the CPU profiles written, by scenario.
	Profiles map[string]string `json:"profiles,omitempty"`
}

func (r *Results) add(f Figure) {
	if f.Target != nil {
		met := f.Target.Met(f.Value)
		f.Met = &met
		if f.Target.Value != 0 {
			var m float64
			if f.Target.Op == "<=" {
				m = (f.Target.Value - f.Value) / f.Target.Value
			} else {
				m = (f.Value - f.Target.Value) / f.Target.Value
			}
			if !math.IsInf(m, 0) && !math.IsNaN(m) {
				f.Margin = &m
			}
		}
	}
	r.Figures = append(r.Figures, f)
}

func (r *Results) skip(scenario, reason string) {
	r.NotRun = append(r.NotRun, Skipped{Scenario: scenario, Reason: reason})
}

// Value returns the value of a figure (of the first phase that has it),
// and whether it was measured.
func (r *Results) Value(scenario, name string) (float64, bool) {
	for _, f := range r.Figures {
		if f.Scenario == scenario && f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// PhaseValue returns the value of a figure of one phase, and whether it
// was measured.
func (r *Results) PhaseValue(scenario, phase, name string) (float64, bool) {
	for _, f := range r.Figures {
		if f.Scenario == scenario && f.Phase == phase && f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// run is one Run: the configuration and what it measured so far.
type run struct {
	cfg     Config
	res     *Results
	dataDir string
}

func (r *run) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "bench: "+format+"\n", args...)
}

// Run runs the configured scenarios one after the other and returns what
// they measured. A scenario that fails is reported in NotRun and the others
// still run; Run fails only when ctx ends or nothing can start.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	res := &Results{Started: time.Now().UTC(), Profiles: map[string]string{}}
	res.Machine = readMachine()
	res.Config.Events, res.Config.Sessions, res.Config.ExportSessions = cfg.Events, cfg.Sessions, cfg.ExportSessions
	res.Config.OpenSessions, res.Config.QueryRuns, res.Config.Seed = cfg.OpenSessions, cfg.QueryRuns, cfg.Seed
	res.Config.ProfileDir, res.Config.ElasticLatency = cfg.ProfileDir, cfg.ElasticLatency.String()
	res.Config.LateShare = cfg.LateShare
	res.Config.Refresh = "1s"
	if cfg.RefreshInterval != 0 {
		res.Config.Refresh = cfg.RefreshInterval.String()
	}
	r := &run{cfg: cfg, res: res}

	dataDir := cfg.DataDir
	if dataDir == "" {
		tmp, err := os.MkdirTemp("", "chatreport-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: data folder: %w", err)
	}
	r.dataDir = dataDir
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return nil, fmt.Errorf("bench: profile folder: %w", err)
		}
	}

	steps := []struct {
		scenarios []string
		fn        func(context.Context) error
	}{
		{[]string{ScenarioConsumer, ScenarioIngestSQLite, ScenarioIngestElastic}, r.ingestScenarios},
		{[]string{ScenarioQuery, ScenarioFullText, ScenarioExport}, r.readScenarios},
		{[]string{ScenarioMemory}, r.memoryScenario},
	}
	for _, st := range steps {
		if !slices.ContainsFunc(st.scenarios, cfg.runs) {
			continue
		}
		if err := st.fn(ctx); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			for _, s := range st.scenarios {
				if cfg.runs(s) && !r.measured(s) && !r.skipped(s) {
					res.skip(s, "failed: "+err.Error())
				}
			}
			cfg.Log.Warn("bench scenario failed", zap.Strings("scenarios", st.scenarios), zap.Error(err))
		}
	}
	res.Machine.LoadAfter = loadAverage()
	res.Duration = time.Since(res.Started).Seconds()
	return res, nil
}

func (r *run) measured(scenario string) bool {
	return slices.ContainsFunc(r.res.Figures, func(f Figure) bool { return f.Scenario == scenario })
}

func (r *run) skipped(scenario string) bool {
	return slices.ContainsFunc(r.res.NotRun, func(s Skipped) bool { return s.Scenario == scenario })
}

// profile starts a CPU profile of the scenario when profiles are on; the
// returned func stops it.
func (r *run) profile(name string) (stop func()) {
	if r.cfg.ProfileDir == "" {
		return func() {}
	}
	path := filepath.Join(r.cfg.ProfileDir, name+".cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		r.cfg.Log.Warn("cpu profile not written", zap.Error(err))
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		r.cfg.Log.Warn("cpu profile not written", zap.Error(err))
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err == nil {
			r.res.Profiles[name] = path
		}
	}
}
