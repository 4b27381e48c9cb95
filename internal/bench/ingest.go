package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/elastic"
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

// ingestScenarios produces one day of simulated traffic to an embedded
// broker, then reads all of it three times, each with its own consumer
// group: the consumer alone (the ceiling), the ingester into SQLite, and
// the ingester into a loopback Elasticsearch.
func (r *run) ingestScenarios(ctx context.Context) error {
	b, err := r.startBroker(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	day := 24 * time.Hour
	t := trafficFor(r.cfg.Seed, r.cfg.Events, time.Now().Add(-day).Truncate(time.Second), day, benchTenants)
	r.progress("producing %d simulated events (%d conversations) to the embedded broker", t.events, t.opts.Sessions)
	took, err := r.produce(ctx, b, t)
	if err != nil {
		return err
	}
	r.progress("produced in %s", took.Round(time.Millisecond))

	var ceiling float64
	if r.cfg.runs(ScenarioConsumer) {
		r.progress("consumer alone: kafka-go fetch, no processing")
		res, err := r.consume(ctx, b.Addr(), t.events)
		if err != nil {
			r.res.skip(ScenarioConsumer, "failed: "+err.Error())
		} else {
			ceiling = res.rate()
			r.addRate(ScenarioConsumer, res, nil, "kafka-go consumer-group reader configured as the ingester's, FetchMessage only")
		}
	}
	if r.cfg.runs(ScenarioIngestSQLite) {
		r.progress("ingest into SQLite: broker → ingester → assembler → SQLite")
		res, err := r.ingestSQLite(ctx, b.Addr(), t.events)
		if err != nil {
			r.res.skip(ScenarioIngestSQLite, "failed: "+err.Error())
		} else {
			r.addRate(ScenarioIngestSQLite, res, atLeast(targetIngestSQLite),
				"embedded broker → ingest.Ingester → versions.Sink → session.Assembler → sqlite.Store (WAL, synchronous=FULL), as `up` wires them")
			r.addCeiling(ScenarioIngestSQLite, res, ceiling)
		}
	}
	if r.cfg.runs(ScenarioIngestElastic) {
		r.progress("ingest into Elasticsearch: broker → ingester → assembler → elastic.Store → loopback _bulk")
		res, fake, err := r.ingestElastic(ctx, b.Addr(), t.events)
		if err != nil {
			r.res.skip(ScenarioIngestElastic, "failed: "+err.Error())
		} else {
			r.addRate(ScenarioIngestElastic, res, atLeast(targetIngestElastic),
				fmt.Sprintf("embedded broker → ingest.Ingester → session.Assembler → elastic.Store → httptest server answering like an empty Elasticsearch (every write accepted, every read empty) after %s", r.cfg.ElasticLatency))
			r.addCeiling(ScenarioIngestElastic, res, ceiling)
			fake.report(r.res, res)
		}
	}
	return nil
}

// ingestRun is what one read of the traffic measured. The sustained span
// runs from the first committed batch (or fetched message) to the last, so
// that the consumer group's join is left out; total includes it.
type ingestRun struct {
	events    int
	batches   int
	retries   int
	sustained span
	counted   int // events in the sustained span
	total     time.Duration
}

// rate is the sustained rate; with a single batch there is no span
// between batches, and the rate includes the group join.
func (i ingestRun) rate() float64 {
	if i.counted == 0 || i.sustained.wall <= 0 {
		if i.total <= 0 {
			return 0
		}
		return float64(i.events) / i.total.Seconds()
	}
	return float64(i.counted) / i.sustained.wall.Seconds()
}

func (r *run) addRate(scenario string, res ingestRun, target *Target, note string) {
	r.res.add(Figure{Scenario: scenario, Name: "sustained rate", Unit: "events/s", Value: res.rate(), Target: target,
		Note: fmt.Sprintf("%s; %d events, %d after the first batch in %.2f s", note, res.events, res.counted, res.sustained.wall.Seconds())})
	r.res.add(Figure{Scenario: scenario, Name: "rate including group join", Unit: "events/s",
		Value: float64(res.events) / res.total.Seconds()})
	if res.counted > 0 {
		r.res.add(Figure{Scenario: scenario, Name: "CPU time per 1,000 events", Unit: "ms",
			Value: ms(res.sustained.cpu) * 1000 / float64(res.counted),
			Note:  "whole process: the embedded broker's work is included"})
		r.res.add(Figure{Scenario: scenario, Name: "heap allocations per event", Unit: "allocs",
			Value: float64(res.sustained.allocs) / float64(res.counted), Note: "whole process, broker included"})
		r.res.add(Figure{Scenario: scenario, Name: "bytes allocated per event", Unit: "B",
			Value: float64(res.sustained.bytes) / float64(res.counted), Note: "whole process, broker included"})
		r.res.add(Figure{Scenario: scenario, Name: "CPU utilisation", Unit: "cores",
			Value: res.sustained.cpu.Seconds() / res.sustained.wall.Seconds()})
		if res.sustained.written > 0 {
			r.res.add(Figure{Scenario: scenario, Name: "bytes written to storage per event", Unit: "B",
				Value: float64(res.sustained.written) / float64(res.counted),
				Note:  "write_bytes of /proc/self/io: database and WAL pages dirtied, a machine-independent measure of write amplification"})
		}
	}
	if res.batches > 0 {
		r.res.add(Figure{Scenario: scenario, Name: "mean batch", Unit: "events",
			Value: float64(res.events) / float64(res.batches), Note: fmt.Sprintf("%d batches, %d store retries", res.batches, res.retries)})
	}
}

func (r *run) addCeiling(scenario string, res ingestRun, ceiling float64) {
	if ceiling <= 0 {
		return
	}
	r.res.add(Figure{Scenario: scenario, Name: "fraction of the consumer ceiling", Unit: "%", Value: 100 * res.rate() / ceiling})
}

// consume reads the traffic with a kafka-go group reader configured like
// the ingester's, and does nothing with it.
func (r *run) consume(ctx context.Context, addr string, events int) (ingestRun, error) {
	ctx, cancel := context.WithTimeout(ctx, ingestTimeout)
	defer cancel()
	def := r.cfg.Def
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:          []string{addr},
		GroupID:          "bench-consumer",
		GroupTopics:      def.Topics.Events,
		GroupBalancers:   []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		StartOffset:      kafka.FirstOffset,
		MinBytes:         1,
		MaxBytes:         16 << 20,
		MaxWait:          250 * time.Millisecond,
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

// batchClock observes the ingester's committed batches: it snapshots the
// process at the first and at the one that completes the traffic.
type batchClock struct {
	target int

	mu      sync.Mutex
	total   int
	batches int
	retries int
	firstN  int
	first   usage
	last    usage
	done    chan struct{}
}

var _ ingest.Observer = (*batchClock)(nil)

func newBatchClock(target int) *batchClock {
	return &batchClock{target: target, done: make(chan struct{})}
}

func (c *batchClock) ObserveBatch(s ingest.BatchStats) {
	n := 0
	for _, t := range s.Topics {
		n += t.Consumed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	if c.total == 0 {
		c.first = snapshot()
		c.firstN = n
	}
	before := c.total
	c.total += n
	if before < c.target && c.total >= c.target {
		c.last = snapshot()
		close(c.done)
	}
}

func (c *batchClock) ObserveRetry(string) {
	c.mu.Lock()
	c.retries++
	c.mu.Unlock()
}

// ingestWith runs an ingester with sink and workers (ingest.Config.Workers)
// until it committed events, and measures it.
func (r *run) ingestWith(ctx context.Context, scenario, addr string, sink ingest.Sink, workers, events int) (ingestRun, error) {
	ctx, cancel := context.WithTimeout(ctx, ingestTimeout)
	defer cancel()
	def := r.cfg.Def
	clock := newBatchClock(events)
	in, err := ingest.New(ingest.Config{
		Brokers:    []string{addr},
		Topics:     def.Topics.Events,
		Group:      "bench-" + scenario,
		DeadLetter: def.Topics.DeadLetter,
		Observer:   clock,
		Workers:    workers,
	}, sink, r.cfg.Log.Named(scenario))
	if err != nil {
		return ingestRun{}, err
	}
	stop := r.profile(scenario)
	defer stop()
	start := time.Now()
	runCtx, stopIngester := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(runCtx) }()
	select {
	case <-clock.done:
	case err := <-done:
		stopIngester()
		if err == nil {
			err = errors.New("ingester stopped early")
		}
		return ingestRun{}, err
	case <-ctx.Done():
		stopIngester()
		<-done
		return ingestRun{}, fmt.Errorf("ingested %d of %d events before the time limit", in.Stats().Consumed, events)
	}
	stopIngester()
	if err := <-done; err != nil {
		return ingestRun{}, err
	}
	clock.mu.Lock()
	defer clock.mu.Unlock()
	st := in.Stats()
	if st.DeadLettered > 0 {
		return ingestRun{}, fmt.Errorf("%d simulated events were dead-lettered", st.DeadLettered)
	}
	return ingestRun{
		events: clock.total, batches: clock.batches, retries: clock.retries,
		sustained: clock.first.until(clock.last), counted: clock.total - clock.firstN,
		total: clock.last.at.Sub(start),
	}, nil
}

// ingestSQLite wires the sink as `up` does: versions of the store in a
// folder, the current one written through an assembler.
func (r *run) ingestSQLite(ctx context.Context, addr string, events int) (ingestRun, error) {
	dir, err := os.MkdirTemp(r.dataDir, "ingest-sqlite-")
	if err != nil {
		return ingestRun{}, err
	}
	defer os.RemoveAll(dir)
	set := openVersions(dir)
	defer set.Close()
	// One worker unless told otherwise, as `up` stores into SQLite
	// (internal/cli, ingestWorkers).
	workers := cmp.Or(r.cfg.IngestWorkers, 1)
	return r.ingestWith(ctx, ScenarioIngestSQLite, addr, versions.NewSink(set, r.cfg.Def), workers, events)
}

// openVersions mirrors the embedded store of `chatreport up`: one database
// file per version in dir.
func openVersions(dir string) *versions.Set[*sqlite.Store] {
	return versions.NewSet(versions.OpenFile(dir), func(ctx context.Context, v string) (*sqlite.Store, error) {
		return sqlite.Open(ctx, filepath.Join(dir, "chatreport-"+v+".db"))
	})
}

// ingestElastic writes through the Elasticsearch store to a loopback server
// that accepts every write and finds nothing on every read.
func (r *run) ingestElastic(ctx context.Context, addr string, events int) (ingestRun, *fakeElastic, error) {
	fake := newFakeElastic(r.cfg.ElasticLatency)
	defer fake.Close()
	st, err := elastic.New(elastic.Config{Addresses: []string{fake.URL()}}, r.cfg.Log.Named("elastic").WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
	if err != nil {
		return ingestRun{}, nil, err
	}
	defer st.Close()
	// One worker per core unless told otherwise, as `ingest` stores into
	// Elasticsearch.
	res, err := r.ingestWith(ctx, ScenarioIngestElastic, addr, session.NewAssembler(r.cfg.Def, st), r.cfg.IngestWorkers, events)
	return res, fake, err
}
