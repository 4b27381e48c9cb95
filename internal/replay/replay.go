// Package replay rebuilds a store version from the Kafka topics while the live
// ingester keeps serving the current one.
//
// The live ingester writes every batch to the current version and to every
// version being built (package versions), reading the registry before each
// store attempt. A replay registers its target, reads each partition with its
// own readers (no consumer group), and stops a partition at the offset the
// live group had committed once a grace period after the registration has
// passed: batches committed by then had begun writing before the
// registration and are replayed; everything after was written to the target
// by the live ingester itself. So the target misses nothing, whatever the
// timing, and events both wrote are stored once (assembly is idempotent).
// Progress is saved in the target after every batch: an interrupted replay
// resumes where it was.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/versions"
)

// Config configures a replay.
type Config struct {
	Brokers []string
	Topics  []string
	// LiveGroup is the live ingester's consumer group: its committed offsets
	// say where the replay may stop.
	LiveGroup string
	// From starts each partition at the first message at or after it; zero
	// starts at the earliest offset.
	From time.Time
	// To, when set, stops each partition at its first message after it.
	To time.Time
	// Registered is when the target was registered for live writes.
	Registered time.Time
	// Grace must exceed the longest single store write of the live
	// ingester; the live offsets are read once it has passed.
	Grace     time.Duration
	BatchSize int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Target is the version being rebuilt.
type Target interface {
	// Ingest assembles a batch into the target.
	Ingest(ctx context.Context, events []event.Event) error
	// LoadReplayState returns what SaveReplayState saved last, or nil.
	LoadReplayState(ctx context.Context) ([]byte, error)
	SaveReplayState(ctx context.Context, state []byte) error
}

// progress is the saved state of a replay.
type progress struct {
	// Next is the next offset to read, per "topic/partition".
	Next map[string]int64 `json:"next"`
	// Stop is where each partition ends, once the live offsets are known.
	Stop map[string]int64 `json:"stop,omitempty"`
	// ToReached lists partitions that passed Config.To.
	ToReached map[string]bool `json:"to_reached,omitempty"`
	Events    int64           `json:"events"`
	Invalid   int64           `json:"invalid"`
}

// Status is a replay's progress, reported as it goes.
type Status struct {
	Events     int64
	Invalid    int64
	Rate       float64 // events per second since this run started
	Remaining  int64   // messages left to read
	ETA        time.Duration
	Partitions []PartitionStatus
	// WaitingForLive is set while the replay has read everything there is
	// and waits for the grace period to read the live offsets.
	WaitingForLive bool
	Done           bool
}

// PartitionStatus is one partition's position.
type PartitionStatus struct {
	Topic     string
	Partition int
	Next      int64
	// End is the stop offset when known, else the partition's end.
	End  int64
	Done bool
}

type partitionKey struct {
	topic     string
	partition int
}

func (k partitionKey) String() string { return k.topic + "/" + strconv.Itoa(k.partition) }

type fetched struct {
	key partitionKey
	msg kafka.Message
	// pastTo marks the first message after Config.To: not replayed.
	pastTo bool
}

// Run replays into target until every partition is done, reporting progress
// to report (which may be nil).
func Run(ctx context.Context, cfg Config, target Target, report func(Status), log *zap.Logger) error {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 2000
	}
	if report == nil {
		report = func(Status) {}
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: &kafka.Transport{}}
	defer client.Transport.(*kafka.Transport).CloseIdleConnections()

	parts, err := partitions(ctx, client, cfg.Topics)
	if err != nil {
		return err
	}
	p, err := loadProgress(ctx, target)
	if err != nil {
		return err
	}
	if err := startOffsets(ctx, client, cfg, parts, p); err != nil {
		return err
	}

	r := &run{cfg: cfg, client: client, target: target, parts: parts, p: p, log: log,
		fetched: make(chan fetched, cfg.BatchSize), started: cfg.Now()}
	return r.loop(ctx, report)
}

type run struct {
	cfg     Config
	client  *kafka.Client
	target  Target
	parts   []partitionKey
	p       *progress
	log     *zap.Logger
	fetched chan fetched
	started time.Time
	readEvt int64

	readers sync.WaitGroup
	cancels map[partitionKey]context.CancelFunc
	ends    map[partitionKey]int64
}

func (r *run) loop(ctx context.Context, report func(Status)) error {
	readCtx, cancelAll := context.WithCancel(ctx)
	defer func() {
		cancelAll()
		r.readers.Wait()
	}()
	r.cancels = map[partitionKey]context.CancelFunc{}
	for _, k := range r.parts {
		if r.done(k) {
			continue
		}
		pctx, cancel := context.WithCancel(readCtx)
		r.cancels[k] = cancel
		r.readers.Add(1)
		go r.read(pctx, k, r.p.Next[k.String()])
	}
	lastReport := time.Time{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var batch []fetched
	for {
		if r.p.Stop == nil && !r.cfg.Now().Before(r.cfg.Registered.Add(r.cfg.Grace)) {
			if err := r.fetchStops(ctx); err != nil {
				return err
			}
		}
		for _, k := range r.parts {
			if cancel, ok := r.cancels[k]; ok && r.done(k) {
				cancel()
				delete(r.cancels, k)
			}
		}
		if len(batch) == 0 && r.allDone() {
			st := r.status(ctx, true)
			report(st)
			r.log.Info("replay done", zap.Int64("events", st.Events), zap.Int64("invalid", st.Invalid))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case f := <-r.fetched:
			batch = append(batch, f)
			if len(batch) < r.cfg.BatchSize {
				continue
			}
		case <-tick.C:
		}
		if len(batch) > 0 {
			if err := r.store(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if now := r.cfg.Now(); now.Sub(lastReport) >= time.Second {
			lastReport = now
			report(r.status(ctx, false))
		}
	}
}

// read feeds one partition's messages from offset on.
func (r *run) read(ctx context.Context, k partitionKey, offset int64) {
	defer r.readers.Done()
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers: r.cfg.Brokers, Topic: k.topic, Partition: k.partition,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
	})
	defer rd.Close()
	if err := rd.SetOffset(offset); err != nil {
		r.log.Warn("replay: seek failed", zap.Stringer("partition", k), zap.Error(err))
		return
	}
	for {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			return
		}
		f := fetched{key: k, msg: m, pastTo: !r.cfg.To.IsZero() && m.Time.After(r.cfg.To)}
		select {
		case r.fetched <- f:
		case <-ctx.Done():
			return
		}
		if f.pastTo {
			return
		}
	}
}

// store ingests a batch into the target (retrying until it succeeds or ctx
// ends), then saves the progress.
func (r *run) store(ctx context.Context, batch []fetched) error {
	events := make([]event.Event, 0, len(batch))
	next := map[string]int64{}
	for _, f := range batch {
		key := f.key.String()
		if r.p.ToReached[key] || f.msg.Offset < r.p.Next[key] {
			continue // a partition already ended, or a message read before a resume
		}
		if f.pastTo {
			if r.p.ToReached == nil {
				r.p.ToReached = map[string]bool{}
			}
			r.p.ToReached[key] = true
			continue
		}
		if stop, ok := r.p.Stop[key]; ok && f.msg.Offset >= stop {
			continue
		}
		next[key] = max(next[key], f.msg.Offset+1)
		e, err := event.Decode(f.msg.Value)
		if err != nil {
			r.p.Invalid++ // the live ingester dead-lettered it already
			continue
		}
		events = append(events, e)
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := r.target.Ingest(ctx, events)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("replay: store: %w", err)
		}
		if errors.Is(err, versions.ErrNotWritable) {
			return fmt.Errorf("replay: the target was abandoned or retired meanwhile: %w", err)
		}
		r.log.Warn("replay: retrying store", zap.Int("attempt", attempt), zap.Error(err))
		select {
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		case <-ctx.Done():
			return fmt.Errorf("replay: store: %w", err)
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	for key, n := range next {
		r.p.Next[key] = n
	}
	r.p.Events += int64(len(events))
	r.readEvt += int64(len(events))
	return saveProgress(ctx, r.target, r.p)
}

// fetchStops reads the live group's committed offsets: the replay ends there.
func (r *run) fetchStops(ctx context.Context) error {
	req := &kafka.OffsetFetchRequest{GroupID: r.cfg.LiveGroup, Topics: map[string][]int{}}
	for _, k := range r.parts {
		req.Topics[k.topic] = append(req.Topics[k.topic], k.partition)
	}
	resp, err := r.client.OffsetFetch(ctx, req)
	if err != nil {
		return fmt.Errorf("replay: read the live group's offsets: %w", err)
	}
	if resp.Error != nil {
		return fmt.Errorf("replay: read the live group's offsets: %w", resp.Error)
	}
	stop := map[string]int64{}
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return fmt.Errorf("replay: live offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			// No committed offset: the live group will read this partition
			// from its start, writing the target as it goes.
			stop[partitionKey{topic, p.Partition}.String()] = max(p.CommittedOffset, 0)
		}
	}
	r.p.Stop = stop
	r.log.Info("replay: live offsets read; the replay ends there", zap.Any("stop", stop))
	return saveProgress(ctx, r.target, r.p)
}

func (r *run) done(k partitionKey) bool {
	key := k.String()
	if r.p.ToReached[key] {
		return true
	}
	stop, ok := r.p.Stop[key]
	return ok && r.p.Next[key] >= stop
}

func (r *run) allDone() bool {
	for _, k := range r.parts {
		if !r.done(k) {
			return false
		}
	}
	return true
}

func (r *run) status(ctx context.Context, done bool) Status {
	st := Status{Events: r.p.Events, Invalid: r.p.Invalid, Done: done}
	if secs := r.cfg.Now().Sub(r.started).Seconds(); secs > 0 {
		st.Rate = float64(r.readEvt) / secs
	}
	ends, err := endOffsets(ctx, r.client, r.parts)
	if err != nil {
		ends = r.ends // keep the last known ends while the broker does not answer
	}
	r.ends = ends
	caughtUp := true
	for _, k := range r.parts {
		key := k.String()
		ps := PartitionStatus{Topic: k.topic, Partition: k.partition, Next: r.p.Next[key], End: ends[k], Done: r.done(k)}
		if stop, ok := r.p.Stop[key]; ok {
			ps.End = stop
		}
		if !ps.Done && ps.End > ps.Next {
			st.Remaining += ps.End - ps.Next
			caughtUp = false
		}
		st.Partitions = append(st.Partitions, ps)
	}
	st.WaitingForLive = !done && r.p.Stop == nil && caughtUp
	if st.Rate > 0 {
		st.ETA = time.Duration(float64(st.Remaining) / st.Rate * float64(time.Second))
	}
	return st
}

func partitions(ctx context.Context, client *kafka.Client, topics []string) ([]partitionKey, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("replay: metadata: %w", err)
	}
	var out []partitionKey
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("replay: topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			out = append(out, partitionKey{t.Name, p.ID})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("replay: the topics have no partitions")
	}
	return out, nil
}

// startOffsets sets where each partition not started yet begins.
func startOffsets(ctx context.Context, client *kafka.Client, cfg Config, parts []partitionKey, p *progress) error {
	var todo []partitionKey
	for _, k := range parts {
		if _, ok := p.Next[k.String()]; !ok {
			todo = append(todo, k)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	first, err := listOffsets(ctx, client, todo, kafka.FirstOffsetOf)
	if err != nil {
		return err
	}
	for _, k := range todo {
		p.Next[k.String()] = first[k].FirstOffset
	}
	if cfg.From.IsZero() {
		return nil
	}
	at, err := listOffsets(ctx, client, todo, func(partition int) kafka.OffsetRequest {
		return kafka.TimeOffsetOf(partition, cfg.From)
	})
	if err != nil {
		return err
	}
	last, err := listOffsets(ctx, client, todo, kafka.LastOffsetOf)
	if err != nil {
		return err
	}
	for _, k := range todo {
		off := last[k].LastOffset // nothing at or after From: start at the end
		for o := range at[k].Offsets {
			if o >= 0 {
				off = o
			}
		}
		p.Next[k.String()] = off
	}
	return nil
}

// listOffsets asks one kind of offset for every partition (one kind per
// request: brokers refuse a partition listed twice).
func listOffsets(ctx context.Context, client *kafka.Client, parts []partitionKey, kind func(partition int) kafka.OffsetRequest) (map[partitionKey]kafka.PartitionOffsets, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, k := range parts {
		req.Topics[k.topic] = append(req.Topics[k.topic], kind(k.partition))
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("replay: list offsets: %w", err)
	}
	out := map[partitionKey]kafka.PartitionOffsets{}
	for topic, ps := range resp.Topics {
		for _, po := range ps {
			if po.Error != nil {
				return nil, fmt.Errorf("replay: offsets of %s/%d: %w", topic, po.Partition, po.Error)
			}
			out[partitionKey{topic, po.Partition}] = po
		}
	}
	return out, nil
}

func endOffsets(ctx context.Context, client *kafka.Client, parts []partitionKey) (map[partitionKey]int64, error) {
	last, err := listOffsets(ctx, client, parts, kafka.LastOffsetOf)
	if err != nil {
		return nil, err
	}
	out := make(map[partitionKey]int64, len(last))
	for k, po := range last {
		out[k] = po.LastOffset
	}
	return out, nil
}

func loadProgress(ctx context.Context, t Target) (*progress, error) {
	data, err := t.LoadReplayState(ctx)
	if err != nil {
		return nil, fmt.Errorf("replay: load progress: %w", err)
	}
	p := &progress{Next: map[string]int64{}}
	if len(data) > 0 {
		if err := json.Unmarshal(data, p); err != nil {
			return nil, fmt.Errorf("replay: saved progress is not readable: %w", err)
		}
		if p.Next == nil {
			p.Next = map[string]int64{}
		}
	}
	return p, nil
}

func saveProgress(ctx context.Context, t Target, p *progress) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if err := t.SaveReplayState(ctx, data); err != nil {
		return fmt.Errorf("replay: save progress: %w", err)
	}
	return nil
}
