// Package ingest consumes chat events from Kafka with a kafka-go consumer group,
// sends events that break the contract to the dead-letter topic, hands valid
// ones to a sink in batches — split by partition number among concurrent
// calls, and consecutive batches stored at once — and commits offsets in
// order, only after the sink (and the dead-letter topic) accepted everything
// up to them.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/retry"
)

// Sink stores validated events. It must be idempotent: after a restart the
// consumer delivers again what it had not committed, and a batch whose
// storing failed in part is stored again whole.
//
// Ingest is called concurrently: up to Config.Workers calls a batch, each
// with the events of different partition numbers, and the calls of up to
// Config.InFlight consecutive batches at once. Producers key events by
// session key with the murmur2 partitioner, so the calls of one batch carry
// disjoint session keys; but the calls of consecutive batches carry the
// same partition numbers and so often the same keys, in either order (a
// later batch's call may store a key's events before an earlier one's), and
// the contract accepts an event whatever its key. So a sink must stay
// correct under concurrent writers of one key, and its result must not
// depend on the order in which a key's events arrive (as it must anyway with
// several ingesters, or a replay and the live ingester, writing one store).
type Sink interface {
	Ingest(ctx context.Context, events []event.Event) error
}

// Rejecter is an error a Sink returns when it stored every event of a batch
// except some that the store refuses for good (for example, a document
// Elasticsearch cannot map). Those go to the dead-letter topic with the reason
// the store gave; the batch then counts as stored.
type Rejecter interface {
	error
	Rejected() map[event.Ref]string
}

// Observer receives what each stored batch did, once its dead letters are
// written and its commit was attempted, failed or not (a batch whose commit
// failed and that is delivered again is observed again), and every failed write
// as it happens (a store outage shows while the batch is still retrying).
type Observer interface {
	ObserveBatch(BatchStats)
	ObserveRetry(what string)
}

// BatchStats is what one stored batch did.
type BatchStats struct {
	// Topics counts messages per source topic.
	Topics map[string]TopicStats
	// Lag is, per partition in the batch, how many messages the partition
	// holds after the batch's last one.
	Lag []PartitionLag
	// StoreLatency is how long the successful store call took.
	StoreLatency time.Duration
}

// TopicStats counts the messages of one topic in a batch.
type TopicStats struct {
	Consumed, Stored, DeadLettered int
	// Of the dead-lettered: stubs written in place of records the
	// dead-letter topic refused whole, and letters not written at all
	// (see writeDeadLetters).
	Truncated, Lost int
}

// PartitionLag is a partition's lag after a batch.
type PartitionLag struct {
	Topic     string
	Partition int
	Lag       int64
}

type nopObserver struct{}

func (nopObserver) ObserveBatch(BatchStats) {}
func (nopObserver) ObserveRetry(string)     {}

// Dead-letter headers: why an event was rejected and where it came from.
const (
	HeaderReason          = "chatreport-reason"
	HeaderSourceTopic     = "chatreport-source-topic"
	HeaderSourcePartition = "chatreport-source-partition"
	HeaderSourceOffset    = "chatreport-source-offset"
)

// Config configures an Ingester.
type Config struct {
	Brokers    []string
	Topics     []string
	Group      string
	DeadLetter string
	// BatchSize is the most messages of a batch: stored (in up to Workers
	// Sink calls) and committed together; required. The commands pass
	// ingest.batch_size or the store's default (config.Ingest.BatchSizeOf),
	// the one place that default is kept.
	BatchSize int
	// BatchWait is how long a batch waits to fill once it has a message.
	BatchWait time.Duration
	// MaxWait bounds how long a fetch waits for new data at the broker.
	MaxWait time.Duration
	// ShutdownGrace is how long a stopping ingester may take to store and
	// commit the batch it holds.
	ShutdownGrace time.Duration
	// FetchGiveUp is how long fetches may fail without a pause (no
	// message, no quiet spell, between them) before Run gives up (see
	// Fetch); 0: DefaultFetchGiveUp.
	FetchGiveUp time.Duration
	// Workers bounds the concurrent Sink calls that store a batch, each
	// with whole partition numbers, and the groups decoded at once;
	// runtime.GOMAXPROCS(0) when zero. With 1 the batch is stored in one
	// call. A call costs the same whatever its size (a transaction synced to
	// disk, a round of requests), so a batch is never split into more calls
	// than this; and a sink with a single writer (SQLite) gains nothing from
	// concurrent calls.
	Workers int
	// InFlight bounds the consecutive batches being stored at once
	// (DefaultInFlight when zero): a batch's store starts while earlier
	// ones are still storing, and their offsets are committed one batch at
	// a time in batch order, each only once every earlier batch was stored
	// (see finish). With 1 a batch is stored only after the one before it
	// was committed.
	InFlight int
	// Observer, when set, sees every committed batch.
	Observer Observer
}

// ReaderMaxWait is the kafka-go ReaderConfig.MaxWait under which a fetch
// waits up to wait at the broker and its answer has a second to arrive after
// that. kafka-go (v0.4.51: reader.read, Conn.ReadBatchWith,
// adjustDeadlineForRTT) sets the connection's read deadline MaxWait after
// the fetch is sent and asks the broker to wait MaxWait less an allowance for
// the round trip: one second when MaxWait is a second or more, a quarter of
// MaxWait when it is less. A MaxWait of 250 ms left an answer 62 ms: on a
// loaded host a fetch that found nothing timed out ("i/o timeout", logged as
// an unknown error) and its connection was dialled again. The broker's wait
// is what bounds how quickly a reader notices a closed context or a
// rebalance, so it stays short; only the allowance grows.
func ReaderMaxWait(wait time.Duration) time.Duration { return wait + time.Second }

// DefaultInFlight is Config.InFlight when zero: two batches overlap, so one
// batch's commit and dead letters, and the part of it that finished early,
// overlap the next batch's store. Consecutive batches carry mostly the same
// keys, and SQLite's single writer takes the batches in turn: more in flight
// would only wait (docs/performance.md, "Overlapping batches"). The
// chatreport command takes the store's default (config.Ingest.InFlightOf),
// which is more on Elasticsearch.
const DefaultInFlight = 2

// Defaults fills zero fields with defaults.
func (c *Config) Defaults() {
	if c.BatchWait == 0 {
		c.BatchWait = 100 * time.Millisecond
	}
	if c.MaxWait == 0 {
		c.MaxWait = 250 * time.Millisecond
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 15 * time.Second
	}
	if c.FetchGiveUp == 0 {
		c.FetchGiveUp = DefaultFetchGiveUp
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.InFlight == 0 {
		c.InFlight = DefaultInFlight
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
}

// Validate reports every problem of the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("ingest: no Kafka brokers"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("ingest: no topics"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("ingest: no consumer group"))
	}
	if c.DeadLetter == "" {
		errs = append(errs, errors.New("ingest: no dead-letter topic"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, errors.New("ingest: batch size must be at least 1 (ingest.batch_size, or the store's default: config.Ingest.BatchSizeOf)"))
	}
	if c.Workers < 1 {
		errs = append(errs, errors.New("ingest: workers must be at least 1"))
	}
	if c.InFlight < 1 {
		errs = append(errs, errors.New("ingest: batches in flight must be at least 1"))
	}
	return errors.Join(errs...)
}

// Ingester is one member of the consumer group.
type Ingester struct {
	cfg    Config
	sink   Sink
	log    *zap.Logger
	reader *kafka.Reader
	dlq    *kafka.Writer

	consumed, stored, deadLettered, batches atomic.Int64
	truncated, lost                         atomic.Int64
}

// Stats counts what an ingester did; read it with Ingester.Stats.
type Stats struct {
	Consumed     int64
	Stored       int64
	DeadLettered int64
	Batches      int64
	// Of the dead-lettered, those written as a stub and those lost (see
	// TopicStats).
	Truncated, Lost int64
}

// maxDeadLetterBatch bounds the uncompressed bytes of one dead-letter write
// to a partition; a single record over it becomes a stub.
const maxDeadLetterBatch = 64 << 20

// New returns an Ingester; Run starts consuming.
func New(cfg Config, sink Sink, log *zap.Logger) (*Ingester, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     cfg.Brokers,
		GroupID:     cfg.Group,
		GroupTopics: cfg.Topics,
		// Range assignment gives one member the same partition number of
		// every topic, so a contact's co-partitioned events meet in one
		// ingester.
		GroupBalancers: []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		StartOffset:    kafka.FirstOffset,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        ReaderMaxWait(cfg.MaxWait),
		// Commits are synchronous and explicit: CommitMessages returns
		// once the broker has the offsets.
		CommitInterval:        0,
		QueueCapacity:         cfg.BatchSize,
		ReadBatchTimeout:      cfg.MaxWait + time.Second,
		WatchPartitionChanges: true,
		ErrorLogger:           kafka.LoggerFunc(func(msg string, args ...any) { log.Sugar().Warnf("kafka: "+msg, args...) }),
	})
	// Its own transport, closed when Run returns: a shared one would keep
	// connection goroutines alive after the ingester stopped.
	dlq := &kafka.Writer{
		Transport:    &kafka.Transport{},
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        cfg.DeadLetter,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		// One attempt a write: writeDeadLetters retries, with a backoff
		// that shutdown cuts short, and counts and logs each failure.
		// kafka-go's own retries (ten by default, v0.4.51
		// partitionWriter.writeBatch) pause with time.Sleep, which
		// nothing interrupts, and Close waits for them: a failing
		// dead-letter topic made shutdown run seconds past its grace.
		MaxAttempts: 1,
		// The broker's size limit applies to the compressed batch, and
		// producers may compress: a record that was accepted compressed
		// must be written compressed. The writer's own bound is on the
		// uncompressed size, so it is far above any fetched record; what
		// the broker still refuses becomes a stub (writeDeadLetters).
		Compression: kafka.Zstd,
		BatchBytes:  maxDeadLetterBatch,
	}
	return &Ingester{cfg: cfg, sink: sink, log: log, reader: reader, dlq: dlq}, nil
}

// Stats returns what the ingester did so far.
func (in *Ingester) Stats() Stats {
	return Stats{
		Consumed:     in.consumed.Load(),
		Stored:       in.stored.Load(),
		DeadLettered: in.deadLettered.Load(),
		Batches:      in.batches.Load(),
		Truncated:    in.truncated.Load(),
		Lost:         in.lost.Load(),
	}
}

// Run consumes until ctx is cancelled, then stores and commits the batches
// in hand, within Config.ShutdownGrace, and returns nil. It returns an error
// only when the consumer cannot go on (see Fetch): fetches failed for
// Config.FetchGiveUp, or at once on an error no retry cures; the batches in
// hand are then stored and committed within the grace first.
func (in *Ingester) Run(ctx context.Context) error {
	defer in.dlq.Transport.(*kafka.Transport).CloseIdleConnections()
	defer in.dlq.Close()
	defer in.reader.Close()

	// A fetch that gives up ends the run as shutdown does: the batches in
	// hand get the shutdown grace (a store that is down as well would
	// otherwise be retried for ever, and Run would not return).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetched := make(chan kafka.Message, in.cfg.BatchSize)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(fetched)
		for {
			m, err := Fetch(ctx, in.reader, in.cfg.FetchGiveUp, in.log)
			if err != nil {
				if ctx.Err() == nil {
					fetchErr <- err
					cancel()
				}
				return
			}
			select {
			case fetched <- m:
			case <-ctx.Done():
				return
			}
		}
	}()

	// The next batch is collected and decoded while the ones in flight are
	// stored.
	ready := make(chan prepared)
	go func() {
		defer close(ready)
		for {
			batch, open := collect(fetched, in.cfg.BatchSize, in.cfg.BatchWait)
			if len(batch) > 0 {
				ready <- in.prepare(batch)
			}
			if !open {
				return
			}
		}
	}()

	in.overlap(ctx, ready)
	select {
	case err := <-fetchErr:
		return fmt.Errorf("fetch from kafka: %w", err)
	default:
		st := in.Stats()
		in.log.Info("ingester stopped", zap.Int64("consumed", st.Consumed),
			zap.Int64("stored", st.Stored), zap.Int64("dead_lettered", st.DeadLettered))
		return nil
	}
}

// DefaultFetchGiveUp is Config.FetchGiveUp's default, and how long a
// replay's partition may fail to be read (Fetch).
const DefaultFetchGiveUp = 5 * time.Minute

// Fetch returns r's next message. kafka-go goes on by itself after most
// errors and reports them through FetchMessage as it meets them (v0.4.51,
// reader.go: a partition's fetch answered with an error such as
// KAFKA_STORAGE_ERROR, a leader not reached after some attempts, the group
// not joined after some attempts), so such an error is logged and the
// message asked for again. Fetch gives up once fetches have failed for
// giveUp without a pause (never when giveUp is 0): then Kafka is gone for
// good. A failed FetchMessage that had waited longer than half of giveUp
// (healthy fetches of a quiet topic, then an error) starts the count
// again: two errors an idle night apart are not an outage. It returns at
// once, without retrying, on an error no retry cures: chatreport may not
// read the topic or join the group (authorization, authentication), or r
// is a partition reader that was closed (fetchFatal; a closed group reader
// is fetched from again until giveUp: its io.EOF may also be a join that
// met a closed connection). Its error is ctx's once ctx ended.
func Fetch(ctx context.Context, r *kafka.Reader, giveUp time.Duration, log *zap.Logger) (kafka.Message, error) {
	// The first call is not timed: it starts a count of failing time
	// whatever it waited (the path of every message).
	m, err := r.FetchMessage(ctx)
	if err == nil {
		return m, nil
	}
	backoff := retry.Backoff{Base: 100 * time.Millisecond, Max: 10 * time.Second}
	var failingSince time.Time
	for attempt := 1; ; attempt++ {
		switch {
		case ctx.Err() != nil:
			return m, ctx.Err()
		case fetchFatal(r, err):
			return m, err
		}
		if attempt == 1 {
			failingSince = time.Now()
		} else if failing := time.Since(failingSince); giveUp > 0 && failing >= giveUp {
			return m, fmt.Errorf("fetches failed for %s: %w", failing.Round(time.Second), err)
		}
		log.Warn("fetch failed; fetching again", zap.Int("attempt", attempt), zap.Error(err))
		if retry.Sleep(ctx, backoff.Delay(attempt)) != nil {
			return m, ctx.Err()
		}
		called := time.Now()
		if m, err = r.FetchMessage(ctx); err == nil {
			return m, nil
		}
		if giveUp > 0 && time.Since(called) > giveUp/2 {
			attempt = 0 // waited out a quiet spell: the count starts again
		}
	}
}

// fetchFatal tells an error of r's FetchMessage that fetching again
// cannot cure: the cluster refusing chatreport (kafka-go retries those for
// ever by itself, reader.go), or a partition reader closed. A partition
// reader reports the end of a stream as io.ErrUnexpectedEOF, so its io.EOF
// means closed (reader.go, FetchMessage); a group reader's io.EOF may also
// be a join that met a closed connection (a broker restarting, segmentio/
// kafka-go#1222), which the reader recovers from.
func fetchFatal(r *kafka.Reader, err error) bool {
	if errors.Is(err, io.EOF) {
		return r.Config().GroupID == ""
	}
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke {
	case kafka.TopicAuthorizationFailed, kafka.GroupAuthorizationFailed, kafka.ClusterAuthorizationFailed,
		kafka.BrokerAuthorizationFailed, kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism,
		kafka.IllegalSASLState:
		return true
	}
	return false
}

// workContext lives on ctx's values but, once ctx is done, only for the
// shutdown grace.
func (in *Ingester) workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(in.cfg.ShutdownGrace, cancel)
		context.AfterFunc(work, func() { t.Stop() })
	})
	return work, func() { stop(); cancel() }
}

// collect blocks for a first message, then gathers up to max messages for at
// most wait. open is false once the fetcher has stopped.
func collect(in <-chan kafka.Message, max int, wait time.Duration) (batch []kafka.Message, open bool) {
	m, ok := <-in
	if !ok {
		return nil, false
	}
	batch = append(make([]kafka.Message, 0, max), m)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(batch) < max {
		select {
		case m, ok := <-in:
			if !ok {
				return batch, false
			}
			batch = append(batch, m)
		case <-timer.C:
			return batch, true
		}
	}
	return batch, true
}

// complete finishes a stored batch: it dead-letters what breaks the contract
// or what the store refused, commits the batch's offsets once both are done,
// and counts the batch. Batches are completed one at a time in batch order
// (finish).
func (in *Ingester) complete(ctx context.Context, f *flight) error {
	batch, groups := f.p.batch, f.p.groups
	stats := BatchStats{Topics: map[string]TopicStats{}, StoreLatency: f.took}
	count := func(topic string, consumed, stored, dead int) {
		t := stats.Topics[topic]
		t.Consumed += consumed
		t.Stored += stored
		t.DeadLettered += dead
		stats.Topics[topic] = t
	}
	for i := range batch {
		count(batch[i].Topic, 1, 0, 0)
	}
	var dead []letterAt
	for _, g := range groups {
		dead = append(dead, g.invalid...)
		for j := range g.events {
			m := &batch[g.source[j]]
			if reason, ok := g.rejected[g.events[j].Ref()]; ok {
				dead = append(dead, newLetter(g.source[j], m, "rejected by the store: "+reason))
			} else {
				count(m.Topic, 0, 1, 0)
			}
		}
	}
	if err := in.deadLetterAll(ctx, batch, dead, &stats); err != nil {
		return err
	}
	// The batch is stored and its dead letters written, so it counts
	// whether or not its commit succeeds: a failed commit is covered by
	// the next batch's, or the batch is delivered again (and counted
	// again, as after a crash).
	commitErr := in.reader.CommitMessages(ctx, batch...)
	stats.Lag = lags(batch)
	for _, t := range stats.Topics {
		in.consumed.Add(int64(t.Consumed))
		in.stored.Add(int64(t.Stored))
		in.deadLettered.Add(int64(t.DeadLettered))
		in.truncated.Add(int64(t.Truncated))
		in.lost.Add(int64(t.Lost))
	}
	in.batches.Add(1)
	in.cfg.Observer.ObserveBatch(stats)
	if commitErr != nil {
		return fmt.Errorf("%w: %w", errCommit, commitErr)
	}
	return nil
}

// errCommit marks complete's error as the commit's: the batch is stored
// and its dead letters written.
var errCommit = errors.New("commit offsets")

// lags is, per partition of the batch, the messages left after its last one.
func lags(batch []kafka.Message) []PartitionLag {
	type tp struct {
		topic     string
		partition int
	}
	last := map[tp]*kafka.Message{}
	for i := range batch {
		m := &batch[i]
		k := tp{m.Topic, m.Partition}
		if p, ok := last[k]; !ok || m.Offset > p.Offset {
			last[k] = m
		}
	}
	out := make([]PartitionLag, 0, len(last))
	for k, m := range last {
		out = append(out, PartitionLag{Topic: k.topic, Partition: k.partition, Lag: max(m.HighWaterMark-m.Offset-1, 0)})
	}
	return out
}

// retry calls fn until it succeeds or ctx ends, backing off exponentially
// with jitter from 100 ms to 10 s.
func (in *Ingester) retry(ctx context.Context, what string, fn func() error) error {
	err := retry.Backoff{Base: 100 * time.Millisecond, Max: 10 * time.Second,
		OnRetry: func(attempt int, err error) {
			in.cfg.Observer.ObserveRetry(what)
			in.log.Warn("retrying", zap.String("what", what), zap.Int("attempt", attempt), zap.Error(err))
		},
	}.Do(ctx, fn)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
