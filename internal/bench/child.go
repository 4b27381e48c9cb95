package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store"
	"github.com/chatreport/chatreport/internal/store/elastic"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
)

// The bench's helper processes. The figures of an ingest scenario are the
// ingester's alone, so the ingester runs in a process of its own, and so
// does the Elasticsearch stand-in: each process's CPU time (getrusage) is
// then its own, and the stand-in's and the broker's (the bench process)
// are reported beside the ingester's rather than inside them.
const (
	// RoleIngest consumes from the broker into a store, phase by phase.
	RoleIngest = "ingest"
	// RoleStandIn serves a stand-in Elasticsearch on loopback.
	RoleStandIn = "es-standin"
)

// Stores an ingest child writes.
const (
	StoreSQLite  = "sqlite"
	StoreElastic = "elastic"
)

// ChildConfig is what a helper process runs.
type ChildConfig struct {
	Role string `json:"role"`

	// Of RoleIngest.
	Brokers []string `json:"brokers,omitempty"`
	Group   string   `json:"group,omitempty"`
	Store   string   `json:"store,omitempty"`
	Dir     string   `json:"dir,omitempty"`         // the SQLite store's folder
	Elastic string   `json:"elastic_url,omitempty"` // the Elasticsearch store's cluster
	// Workers is ingest.Config.Workers; 0 is what the commands use for
	// the store (1 for SQLite, one per core for Elasticsearch).
	Workers int `json:"workers,omitempty"`
	// InFlight is ingest.Config.InFlight; 0 is the store's default
	// (config.Ingest.InFlightOf).
	InFlight int `json:"in_flight,omitempty"`
	// Batch is ingest.Config.BatchSize; 0 is what the commands use for
	// the store (config.Ingest.BatchSizeOf).
	Batch    int                  `json:"batch,omitempty"`
	Phases   []ChildPhase         `json:"phases,omitempty"`
	Pipeline *pipeline.Definition `json:"pipeline,omitempty"`
	// HeapProfile is written after the last phase.
	HeapProfile string `json:"heap_profile,omitempty"`

	// Of RoleStandIn: esfake without mapping checks.
	RefreshInterval time.Duration `json:"refresh_interval,omitempty"`
	Latency         time.Duration `json:"latency,omitempty"`
	// Profile receives a CPU profile of the whole stand-in process.
	Profile string `json:"profile,omitempty"`
}

// ChildPhase is a part of the traffic an ingest child consumes and
// measures on its own: exactly Events events, produced by the bench after
// the child reported the previous phase, and released by a "go" line on
// the child's standard input.
type ChildPhase struct {
	Name   string `json:"name"`
	Events int    `json:"events"`
	// Profile receives a CPU profile of the phase, when set.
	Profile string `json:"profile,omitempty"`
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

// RunChild is a helper process of the bench: arg is ChildArgs' argument.
// It reads commands from in, one per line, and answers on out, one JSON
// object per line.
//
// An ingest child consumes the phases in order: on "go" it ingests the
// next phase's events and writes a PhaseResult when they are all stored;
// after the last it exits. A stand-in child writes {"url": ...}, then
// answers "stats" with a StandInStats, until in ends.
func RunChild(ctx context.Context, arg string, in io.Reader, out io.Writer, log *zap.Logger) error {
	var c ChildConfig
	dec := json.NewDecoder(strings.NewReader(arg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("bench child: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	switch c.Role {
	case RoleIngest:
		return runIngestChild(ctx, c, in, out, log)
	case RoleStandIn:
		return runStandInChild(ctx, c, in, out)
	}
	return fmt.Errorf("bench child: unknown role %q", c.Role)
}

// standInGC is the stand-in process's collector: it collects at five times
// its live heap (a few hundred MiB after the default run), within 2 GiB.
var standInGC = ingest.GCSettings{Percent: 400, Limit: 2 << 30}

// StandInStats is what a stand-in process reports of itself.
type StandInStats struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	RSS        int64   `json:"rss_bytes"`
}

func runStandInChild(ctx context.Context, c ChildConfig, in io.Reader, out io.Writer) error {
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
	// The stand-in holds every document written (its live heap grows with
	// the run) and allocates each request's items: at Go's default GOGC
	// the collector took a fifth of its CPU, on the cores the ingester
	// measured beside it uses. Memory is what a cluster has more of.
	ingest.SetGCDefaults(standInGC)
	// The store tests' model, without the mapping checks that would make
	// it spend more CPU than the ingester it serves (docs/performance.md).
	opts := []esfake.Option{esfake.WithoutMappingChecks(), esfake.WithLatency(c.Latency)}
	if c.RefreshInterval != 0 {
		opts = append(opts, esfake.WithRefreshInterval(c.RefreshInterval))
	}
	f := esfake.Start(opts...)
	defer f.Close()
	url := f.URL()
	enc := json.NewEncoder(out)
	if err := enc.Encode(map[string]string{"url": url}); err != nil {
		return err
	}
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if lines.Text() != "stats" {
			return fmt.Errorf("bench child: unknown command %q", lines.Text())
		}
		var st StandInStats
		st.CPUSeconds = cpuTime().Seconds()
		st.RSS = ReadMemoryStatus().RSS
		if err := enc.Encode(st); err != nil {
			return err
		}
	}
	return lines.Err()
}

// PhaseResult is what an ingest child measured of one phase. The
// sustained span runs from the moment the phase's first batch reached the
// store (its release) to the commit of its last batch, and every event is
// counted. (It once ran from the first batch's commit, leaving that batch's
// events out; with batches stored at once the second batch may be mostly
// stored by then, which would flatter the rate.)
type PhaseResult struct {
	Phase      string  `json:"phase"`
	Events     int     `json:"events"`
	Batches    int     `json:"batches"`
	Retries    int     `json:"retries"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Allocs     uint64  `json:"allocs"`
	AllocBytes uint64  `json:"alloc_bytes"`
	Written    int64   `json:"written_bytes"`
	// Requests are the HTTP requests of the phase's batches, by endpoint
	// (Elasticsearch only).
	Requests  map[string]EndpointCount `json:"requests,omitempty"`
	LastEvent time.Time                `json:"last_event"`
	Memory    MemoryStatus             `json:"memory"`
	GoTotal   uint64                   `json:"go_total_bytes"`
	HeapInUse uint64                   `json:"heap_in_use_bytes"`
}

func runIngestChild(ctx context.Context, c ChildConfig, in io.Reader, out io.Writer, log *zap.Logger) error {
	if c.Pipeline == nil || len(c.Phases) == 0 {
		return errors.New("bench child: pipeline and phases are required")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sink ingest.Sink
	var counter *countingTransport
	// The store's defaults, as the chatreport command takes them.
	ing := config.Ingest{Workers: c.Workers, BatchesInFlight: c.InFlight, BatchSize: c.Batch}
	kind := config.StoreElasticsearch
	if c.Store == StoreSQLite {
		kind = config.StoreSQLite
	}
	switch c.Store {
	case StoreSQLite:
		if c.Dir == "" {
			return errors.New("bench child: the SQLite store needs a folder")
		}
		// The settings of `chatreport ingest` on SQLite.
		ingest.SetGCDefaults(ingest.SQLiteGC.WithBatches(ing.InFlightOf(kind), config.SQLiteInFlight))
		set := openVersions(c.Dir)
		defer set.Close()
		sink = store.NewSink(set, c.Pipeline)
	case StoreElastic:
		// The settings of `chatreport ingest` on Elasticsearch, so that
		// the figures are its: the store's default cache, and the batches
		// in flight the ingester below is given (internal/cli, roles.go).
		ingest.SetGCDefaults(ingest.ElasticGC.WithCache(elastic.DefaultCacheBytes, ing.InFlightOf(kind)))
		base := http.DefaultTransport.(*http.Transport).Clone()
		defer base.CloseIdleConnections()
		counter = newCountingTransport(base)
		st, err := elastic.New(elastic.Config{Addresses: []string{c.Elastic}, Transport: counter},
			log.Named("elastic").WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
		if err != nil {
			return err
		}
		defer st.Close()
		if err := st.Init(ctx); err != nil {
			return fmt.Errorf("bench child: index init: %w", err)
		}
		sink = session.NewAssembler(c.Pipeline, st)
	default:
		return fmt.Errorf("bench child: unknown store %q", c.Store)
	}
	commands := make(chan string)
	go func() {
		defer close(commands)
		lines := bufio.NewScanner(in)
		for lines.Scan() {
			select {
			case commands <- lines.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	p := &phaser{phases: c.Phases, commands: commands, enc: json.NewEncoder(out), counter: counter,
		done: make(chan struct{}), log: log}
	in2, err := ingest.New(ingest.Config{
		Brokers: c.Brokers, Topics: c.Pipeline.Topics.Events, Group: c.Group,
		DeadLetter: c.Pipeline.Topics.DeadLetter, Observer: p, Workers: ing.WorkersOf(kind),
		InFlight: ing.InFlightOf(kind), BatchSize: ing.BatchSizeOf(kind),
	}, &gatedSink{sink: sink, p: p}, log)
	if err != nil {
		return err
	}
	runDone := make(chan error, 1)
	go func() { runDone <- in2.Run(ctx) }()
	select {
	case <-p.done:
		cancel()
		if err := <-runDone; err != nil {
			return err
		}
	case err := <-runDone:
		if err == nil {
			err = errors.New("ingester stopped early")
		}
		return errors.Join(err, p.failure())
	}
	if err := p.failure(); err != nil {
		return err
	}
	if st := in2.Stats(); st.DeadLettered > 0 {
		return fmt.Errorf("%d simulated events were dead-lettered", st.DeadLettered)
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
	return nil
}

// gatedSink holds the first batch of each phase until the phase is
// released, and notes the latest event stored.
type gatedSink struct {
	sink ingest.Sink
	p    *phaser
}

func (g *gatedSink) Ingest(ctx context.Context, events []event.Event) error {
	if err := g.p.awaitRelease(ctx); err != nil {
		return err
	}
	if err := g.sink.Ingest(ctx, events); err != nil {
		return err
	}
	g.p.stored(events)
	return nil
}

// phaser runs the phases of an ingest child: it releases each on a "go"
// command, observes its batches and reports it when all its events are
// committed.
type phaser struct {
	phases   []ChildPhase
	commands <-chan string
	enc      *json.Encoder
	counter  *countingTransport
	log      *zap.Logger
	done     chan struct{}
	doneOnce sync.Once
	gate     sync.Mutex // one caller at a time waits for a release

	mu       sync.Mutex
	cur      int
	released bool
	entered  usage // when the phase's first batch reached the store
	requests map[string]EndpointCount
	profile  *os.File
	res      PhaseResult
	last     time.Time
	err      error
}

var _ ingest.Observer = (*phaser)(nil)

func (p *phaser) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *phaser) fail(err error) {
	if p.err == nil {
		p.err = err
		p.finish()
	}
}

func (p *phaser) finish() { p.doneOnce.Do(func() { close(p.done) }) }

// awaitRelease returns once the current phase is released.
func (p *phaser) awaitRelease(ctx context.Context) error {
	// The ingester stores the partition numbers of a batch at once: the
	// first caller waits for the "go", the others for the first.
	p.gate.Lock()
	defer p.gate.Unlock()
	p.mu.Lock()
	if p.err != nil || p.cur >= len(p.phases) {
		p.mu.Unlock()
		return errors.New("bench child: no phase left")
	}
	if p.released {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	select {
	case cmd, ok := <-p.commands:
		if !ok || cmd != "go" {
			p.mu.Lock()
			p.fail(fmt.Errorf("bench child: expected go, got %q (input open: %t)", cmd, ok))
			p.mu.Unlock()
			return errors.New("bench child: not released")
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ph := p.phases[p.cur]
	p.released = true
	p.res = PhaseResult{Phase: ph.Name}
	p.last = time.Time{}
	if p.counter != nil {
		p.requests = p.counter.counts()
	}
	if ph.Profile != "" {
		f, err := os.Create(ph.Profile)
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			} else {
				p.profile = f
			}
		}
		if err != nil {
			p.log.Warn("cpu profile not written", zap.Error(err))
		}
	}
	p.entered = snapshot()
	return nil
}

func (p *phaser) stored(events []event.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range events {
		if events[i].OccurredAt.After(p.res.LastEvent) {
			p.res.LastEvent = events[i].OccurredAt
		}
	}
}

func (p *phaser) ObserveRetry(string) {
	p.mu.Lock()
	p.res.Retries++
	p.mu.Unlock()
}

func (p *phaser) ObserveBatch(s ingest.BatchStats) {
	n := 0
	for _, t := range s.Topics {
		n += t.Consumed
	}
	now := snapshot()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	if !p.released || p.cur >= len(p.phases) {
		p.fail(errors.New("bench child: a batch outside any phase"))
		return
	}
	ph := p.phases[p.cur]
	r := &p.res
	r.Batches++
	r.Events += n
	if r.Events < ph.Events {
		return
	}
	if r.Events > ph.Events {
		p.fail(fmt.Errorf("bench child: phase %s got %d events, %d expected", ph.Name, r.Events, ph.Events))
		return
	}
	if p.profile != nil {
		pprof.StopCPUProfile()
		p.profile.Close()
		p.profile = nil
	}
	sp := p.entered.until(now)
	r.Seconds, r.CPUSeconds = sp.wall.Seconds(), sp.cpu.Seconds()
	r.Allocs, r.AllocBytes, r.Written = sp.allocs, sp.bytes, sp.written
	if p.counter != nil {
		r.Requests = diffCounts(p.counter.counts(), p.requests)
	}
	ms := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(ms)
	r.Memory, r.GoTotal, r.HeapInUse = ReadMemoryStatus(), ms[0].Value.Uint64(), ms[1].Value.Uint64()
	if err := p.enc.Encode(r); err != nil {
		p.fail(err)
		return
	}
	p.cur++
	p.released = false
	p.entered = usage{}
	if p.cur == len(p.phases) {
		p.finish()
	}
}

// EndpointCount is what the ingester sent to one endpoint and read back.
type EndpointCount struct {
	Requests      int   `json:"requests"`
	RequestBytes  int64 `json:"request_bytes"`
	ResponseBytes int64 `json:"response_bytes"`
}

// countingTransport counts the requests of the Elasticsearch client by
// endpoint (the last path segment that starts with "_": _bulk, _mget,
// _doc...), with the bytes of their bodies and answers.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	by   map[string]*EndpointCount
}

func newCountingTransport(next http.RoundTripper) *countingTransport {
	return &countingTransport{next: next, by: map[string]*EndpointCount{}}
}

func endpointOf(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(segs) - 1; i >= 0; i-- {
		if strings.HasPrefix(segs[i], "_") {
			return segs[i]
		}
	}
	return "other"
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ep := endpointOf(req.URL.Path)
	t.mu.Lock()
	c := t.by[ep]
	if c == nil {
		c = &EndpointCount{}
		t.by[ep] = c
	}
	c.Requests++
	if req.ContentLength > 0 {
		c.RequestBytes += req.ContentLength
	}
	t.mu.Unlock()
	if req.Body != nil && req.ContentLength <= 0 {
		req.Body = &countingBody{r: req.Body, t: t, add: func(n int) { c.RequestBytes += int64(n) }}
	}
	res, err := t.next.RoundTrip(req)
	if res != nil && res.Body != nil {
		res.Body = &countingBody{r: res.Body, t: t, add: func(n int) { c.ResponseBytes += int64(n) }}
	}
	return res, err
}

func (t *countingTransport) counts() map[string]EndpointCount {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]EndpointCount, len(t.by))
	for ep, c := range t.by {
		out[ep] = *c
	}
	return out
}

func diffCounts(now, before map[string]EndpointCount) map[string]EndpointCount {
	out := map[string]EndpointCount{}
	for ep, c := range now {
		b := before[ep]
		d := EndpointCount{Requests: c.Requests - b.Requests, RequestBytes: c.RequestBytes - b.RequestBytes,
			ResponseBytes: c.ResponseBytes - b.ResponseBytes}
		if d.Requests > 0 {
			out[ep] = d
		}
	}
	return out
}

// countingBody counts the bytes read through it.
type countingBody struct {
	r   io.ReadCloser
	t   *countingTransport
	add func(int)
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.t.mu.Lock()
		b.add(n)
		b.t.mu.Unlock()
	}
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }
