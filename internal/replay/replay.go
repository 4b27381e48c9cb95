// Package replay rebuilds a store version from the Kafka topics while the live
// ingester keeps writing the current one, and keeps the rebuilt version up to
// date until a swap makes it current. A version is written by one writer at a
// time: the live ingester writes only the current version (store.Sink), a
// replay only its target.
//
// A replay reads every partition with its own readers (no consumer group) and
// goes through these phases:
//
//   - catching up: from Config.From to the partitions' ends;
//   - following: every partition's lag is at most Config.CaughtUp; new
//     messages are replayed as they come, until the registry shows the target
//     current (someone swapped, or Config.Swap did it);
//   - swapped: the replay stops reading and waits Config.Grace, which exceeds
//     the registry's cache TTL and the longest single store write of a live
//     ingester, so that every live batch still writing the old version has
//     finished and been committed, and every later one writes the target;
//   - finishing: it reads the live group's committed offsets and replays each
//     partition up to them (whatever is past them the live ingester writes
//     to the target itself);
//   - done.
//
// With Config.To there is no following: each partition ends at its first
// message after To, or at the end it had once To had passed.
//
// Between the live ingesters' switch to the target and the replay's end both
// may write the target: only batches around the live offsets read after the
// grace. Assembly is idempotent and independent of order, so events both
// wrote are stored once. Progress is saved in the target after every batch:
// an interrupted replay resumes where it was, in whatever phase the registry
// and the saved progress say.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/retry"
	"github.com/chatreport/chatreport/internal/versions"
)

// Config configures a replay.
type Config struct {
	Brokers []string
	Topics  []string
	// LiveGroup is the live ingester's consumer group: once the target is
	// current, its committed offsets say where the replay ends.
	LiveGroup string
	// Version is the target's name in Registry.
	Version string
	// Registry is the store's registry of versions, which the replay
	// watches: the target becoming current starts the end of the replay;
	// the target no longer writable (abandoned) stops it with
	// versions.ErrNotWritable.
	Registry versions.Registry
	// From starts each partition at the first message at or after it; zero
	// starts at the earliest offset.
	From time.Time
	// To, when set, stops each partition at its first message after it (or
	// at the end it had once To had passed): no following, no swap.
	To time.Time
	// Grace is how long after the replay saw the target become current it
	// reads the live offsets: longer than the registry's cache TTL plus the
	// longest single store write of a live ingester.
	Grace time.Duration
	// Swap, when set, is called once every partition is caught up, to make
	// the target current; a failure is logged and the swap tried again
	// after SwapRetry.
	Swap      func(ctx context.Context) error
	SwapRetry time.Duration
	// CaughtUp is the lag, in messages, at or below which a partition is
	// caught up; 100 when zero.
	CaughtUp  int64
	BatchSize int
	// Poll is how often the replay reads the registry and the partitions'
	// ends; 500 ms when zero.
	Poll time.Duration
	// ReportEvery is how often progress is reported besides every change of
	// phase; 1 s when zero.
	ReportEvery time.Duration
	// Now is the clock of the grace and of To; time.Now when nil.
	Now func() time.Time
}

// Target is the version being rebuilt.
type Target interface {
	// Ingest assembles a batch into the target. An error that is an
	// ingest.Rejecter means everything but the events it lists was stored.
	Ingest(ctx context.Context, events []event.Event) error
	// LoadReplayState returns what SaveReplayState saved last, or nil.
	LoadReplayState(ctx context.Context) ([]byte, error)
	SaveReplayState(ctx context.Context, state []byte) error
}

// progress is the saved state of a replay.
type progress struct {
	// Next is the next offset to read, per "topic/partition".
	Next map[string]int64 `json:"next"`
	// Stop is where each partition ends: the live group's offsets, read
	// the grace after the target became current.
	Stop map[string]int64 `json:"stop,omitempty"`
	// ToReached lists partitions that passed Config.To.
	ToReached map[string]bool `json:"to_reached,omitempty"`
	// ToEnd is each partition's end once Config.To had passed.
	ToEnd    map[string]int64 `json:"to_end,omitempty"`
	Events   int64            `json:"events"`
	Invalid  int64            `json:"invalid"`
	Rejected int64            `json:"rejected,omitempty"`
}

// Phase is where a replay is.
type Phase int

const (
	// CatchingUp: reading the history, some partition lags by more than
	// Config.CaughtUp.
	CatchingUp Phase = iota
	// Following: caught up; new messages are replayed as they come until
	// the target becomes current.
	Following
	// Swapped: the target is current; the replay waits for the grace to
	// pass before reading the live offsets, and reads nothing meanwhile.
	Swapped
	// Finishing: replaying up to the live group's offsets.
	Finishing
	// Done: every partition reached its end.
	Done
)

func (p Phase) String() string {
	switch p {
	case CatchingUp:
		return "catching up"
	case Following:
		return "following"
	case Swapped:
		return "swapped"
	case Finishing:
		return "finishing"
	case Done:
		return "done"
	}
	return "phase " + strconv.Itoa(int(p))
}

// Status is a replay's progress, reported as it goes.
type Status struct {
	Phase Phase
	// Events were stored in the target; Invalid break the contract (the
	// live ingester dead-lettered them); Rejected were refused by the
	// target for good.
	Events, Invalid, Rejected int64
	Rate                      float64 // events per second since this run started
	Remaining                 int64   // messages left to read up to the ends known
	ETA                       time.Duration
	// GraceLeft is, in phase Swapped, how long until the live offsets are
	// read.
	GraceLeft  time.Duration
	Partitions []PartitionStatus
}

// PartitionStatus is one partition's position.
type PartitionStatus struct {
	Topic     string
	Partition int
	Next      int64
	// End is where the partition ends when known (live offsets, or its end
	// once To passed), else its current end.
	End int64
	// Lag is End - Next, or 0 once the partition is done.
	Lag  int64
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
// to report (which may be nil). It returns nil when done, ctx's error when
// ctx ends first (the progress of every stored batch is saved: running it
// again resumes), and an error wrapping versions.ErrNotWritable when the
// target was abandoned.
func Run(ctx context.Context, cfg Config, target Target, report func(Status), log *zap.Logger) error {
	if cfg.Registry == nil || cfg.Version == "" {
		return errors.New("replay: no target version or registry")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 2000
	}
	if cfg.CaughtUp == 0 {
		cfg.CaughtUp = 100
	}
	if cfg.Poll == 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.ReportEvery == 0 {
		cfg.ReportEvery = time.Second
	}
	if cfg.SwapRetry == 0 {
		cfg.SwapRetry = 30 * time.Second
	}
	if report == nil {
		report = func(Status) {}
	}
	if log == nil {
		log = zap.NewNop()
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

	r := &run{cfg: cfg, client: client, target: target, parts: parts, p: p, log: log, report: report,
		fetched: make(chan fetched, cfg.BatchSize), started: time.Now()}
	return r.loop(ctx)
}

type run struct {
	cfg     Config
	client  *kafka.Client
	target  Target
	parts   []partitionKey
	p       *progress
	log     *zap.Logger
	report  func(Status)
	fetched chan fetched
	started time.Time
	readEvt int64

	readers sync.WaitGroup
	cancels map[partitionKey]context.CancelFunc
	ends    map[partitionKey]int64

	phase      Phase
	reported   Phase
	lastReport time.Time
	// swappedAt is when this run saw the target current (or made it so).
	swappedAt time.Time
	nextSwap  time.Time
}

func (r *run) loop(ctx context.Context) error {
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
	tick := time.NewTicker(r.cfg.Poll)
	defer tick.Stop()
	var batch []fetched
	var lastStep time.Time
	ticked := true
	for {
		// The registry and the ends are read every Poll, not every batch.
		if ticked || time.Since(lastStep) >= r.cfg.Poll {
			ticked, lastStep = false, time.Now()
			if err := r.step(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			}
		}
		for _, k := range r.parts {
			if cancel, ok := r.cancels[k]; ok && r.done(k) {
				cancel()
				delete(r.cancels, k)
			}
		}
		if r.allDone() {
			r.phase = Done
			st := r.status()
			r.report(st)
			r.log.Info("replay done", zap.String("target", r.cfg.Version), zap.Int64("events", st.Events),
				zap.Int64("invalid", st.Invalid), zap.Int64("rejected", st.Rejected))
			return nil
		}
		r.maybeReport()
		// While swapped the replay reads nothing: it waits for the live
		// offsets, which say how far it must go.
		in := r.fetched
		if r.phase == Swapped {
			in = nil
		}
	collect:
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case f := <-in:
				batch = append(batch, f)
				if len(batch) >= r.cfg.BatchSize {
					break collect
				}
			case <-tick.C:
				ticked = true
				break collect
			}
		}
		if len(batch) > 0 {
			if err := r.store(ctx, batch); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			}
			batch = batch[:0]
		}
	}
}

// maybeReport reports the status on a change of phase and every
// ReportEvery.
func (r *run) maybeReport() {
	if r.phase == r.reported && time.Since(r.lastReport) < r.cfg.ReportEvery {
		return
	}
	r.reported, r.lastReport = r.phase, time.Now()
	r.report(r.status())
}

// step reads the registry and the partitions' ends, and moves the replay
// to its next phase when it is time.
func (r *run) step(ctx context.Context) error {
	state, err := r.cfg.Registry.State(ctx)
	if err != nil {
		r.log.Warn("replay: cannot read the registry of versions; trying again", zap.Error(err))
		return nil
	}
	if !slices.Contains(state.Writable(), r.cfg.Version) {
		return fmt.Errorf("replay: version %s is neither current nor being built any more (abandoned meanwhile): %w", r.cfg.Version, versions.ErrNotWritable)
	}
	if ends, err := endOffsets(ctx, r.client, r.parts); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Warn("replay: cannot read the partitions' ends; trying again", zap.Error(err))
	} else {
		r.ends = ends
	}
	now := r.cfg.Now()
	prev := r.phase
	defer func() {
		if r.phase != prev {
			r.logPhase()
		}
	}()
	if !r.cfg.To.IsZero() {
		r.phase = CatchingUp
		if r.p.ToEnd == nil && now.After(r.cfg.To) && r.ends != nil {
			r.p.ToEnd = map[string]int64{}
			for _, k := range r.parts {
				r.p.ToEnd[k.String()] = r.ends[k]
			}
			return saveProgress(ctx, r.target, r.p)
		}
		return nil
	}
	if r.p.Stop != nil {
		r.phase = Finishing
		return nil
	}
	if state.Current == r.cfg.Version && r.swappedAt.IsZero() {
		r.swappedAt = now
	}
	if !r.swappedAt.IsZero() {
		if now.Before(r.swappedAt.Add(r.cfg.Grace)) {
			r.phase = Swapped
			return nil
		}
		if err := r.fetchStops(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.log.Warn("replay: cannot read the live offsets; trying again", zap.Error(err))
			return nil
		}
		r.phase = Finishing
		return nil
	}
	r.phase = CatchingUp
	if !r.caughtUp() {
		return nil
	}
	r.phase = Following
	if r.cfg.Swap == nil || now.Before(r.nextSwap) {
		return nil
	}
	if prev != Following {
		r.logPhase()
		r.maybeReport()
		prev = Following
	}
	r.log.Info("replay: caught up; swapping", zap.String("target", r.cfg.Version))
	if err := r.cfg.Swap(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.nextSwap = now.Add(r.cfg.SwapRetry)
		r.log.Warn("replay: swap failed; following, and trying again later", zap.Error(err), zap.Duration("retry_in", r.cfg.SwapRetry))
		return nil
	}
	r.swappedAt = r.cfg.Now()
	r.phase = Swapped
	return nil
}

// logPhase logs the phase the replay just entered.
func (r *run) logPhase() {
	target := zap.String("target", r.cfg.Version)
	switch r.phase {
	case Following:
		lags := make([]zap.Field, 0, len(r.parts)+1)
		lags = append(lags, target)
		for _, k := range r.parts {
			lags = append(lags, zap.Int64("lag "+k.String(), max(r.ends[k]-r.p.Next[k.String()], 0)))
		}
		r.log.Info("replay: caught up, following; swap when ready", lags...)
	case Swapped:
		r.log.Info("replay: the target is current; waiting for the grace before reading the live offsets", target,
			zap.Duration("grace", r.cfg.Grace))
	case Finishing:
		r.log.Info("replay: replaying up to the live offsets", target)
	}
}

// caughtUp reports whether every partition not done lags by at most
// CaughtUp messages behind its known end.
func (r *run) caughtUp() bool {
	if r.ends == nil {
		return false
	}
	for _, k := range r.parts {
		if !r.done(k) && r.ends[k]-r.p.Next[k.String()] > r.cfg.CaughtUp {
			return false
		}
	}
	return true
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
// ends), then saves the progress. Events the target rejects for good are
// counted and logged (by reference, never by content), and the replay goes
// on.
func (r *run) store(ctx context.Context, batch []fetched) error {
	events := make([]event.Event, 0, len(batch))
	from := make([]*fetched, 0, len(batch)) // the message of each event
	next := map[string]int64{}
	for i := range batch {
		f := &batch[i]
		key := f.key.String()
		if r.done(f.key) || f.msg.Offset < r.p.Next[key] {
			continue // a partition already ended, or a message read before a resume
		}
		if f.pastTo {
			if r.p.ToReached == nil {
				r.p.ToReached = map[string]bool{}
			}
			r.p.ToReached[key] = true
			continue
		}
		// A message at or past where the partition ends ends it, even
		// when offsets below were missing (compaction, transaction markers).
		if stop, ok := r.p.Stop[key]; ok && f.msg.Offset >= stop {
			next[key] = max(next[key], stop)
			continue
		}
		if end, ok := r.p.ToEnd[key]; ok && f.msg.Offset >= end {
			next[key] = max(next[key], end)
			continue
		}
		next[key] = max(next[key], f.msg.Offset+1)
		e, err := event.Decode(f.msg.Value)
		if err != nil {
			r.p.Invalid++ // the live ingester dead-lettered it already
			continue
		}
		events = append(events, e)
		from = append(from, f)
	}
	var rejected map[event.Ref]string
	if len(events) > 0 {
		var err error
		if rejected, err = r.ingest(ctx, events); err != nil {
			return err
		}
	}
	stored := int64(len(events))
	if len(rejected) > 0 {
		logged := 0
		for i := range events {
			reason, ok := rejected[events[i].Ref()]
			if !ok {
				continue
			}
			stored--
			r.p.Rejected++
			if logged++; logged <= maxRejectedLogged {
				r.log.Warn("replay: event rejected by the target; going on", zap.String("tenant", events[i].Tenant),
					zap.String("event_id", events[i].EventID), zap.String("reason", reason),
					zap.Stringer("partition", from[i].key), zap.Int64("offset", from[i].msg.Offset))
			}
		}
		if logged > maxRejectedLogged {
			r.log.Warn("replay: more events of the batch rejected by the target", zap.Int("not_logged", logged-maxRejectedLogged))
		}
	}
	for key, n := range next {
		r.p.Next[key] = max(r.p.Next[key], n)
	}
	r.p.Events += stored
	r.readEvt += stored
	// What was stored is saved even when ctx ended meanwhile (an
	// interrupted replay resumes after it).
	save, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return saveProgress(save, r.target, r.p)
}

// maxRejectedLogged bounds the rejected events logged one by one per batch.
const maxRejectedLogged = 20

// ingest writes events to the target, retrying until it succeeds, the
// target is no longer writable, or ctx ends. It returns the events the
// target rejected for good.
func (r *run) ingest(ctx context.Context, events []event.Event) (rejected map[event.Ref]string, err error) {
	fence := versions.Fence(r.cfg.Registry, r.cfg.Version)
	err = retry.Backoff{Base: 100 * time.Millisecond, Max: 10 * time.Second,
		OnRetry: func(attempt int, err error) {
			r.log.Warn("replay: retrying store", zap.Int("attempt", attempt), zap.Error(err))
		},
	}.Do(ctx, func() error {
		// The fence: no write after an abandon that this replay's registry
		// shows (stores that fence each request, as Elasticsearch's, also
		// stop a write in flight).
		err := fence(ctx)
		if err == nil {
			err = r.target.Ingest(ctx, events)
		}
		var rej ingest.Rejecter
		if errors.As(err, &rej) {
			rejected = rej.Rejected()
			return nil
		}
		if errors.Is(err, versions.ErrNotWritable) {
			return retry.Permanent(fmt.Errorf("replay: the target was abandoned meanwhile: %w", err))
		}
		return err
	})
	if err != nil && !errors.Is(err, versions.ErrNotWritable) {
		return nil, fmt.Errorf("replay: store: %w", err)
	}
	return rejected, err
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
	for _, k := range r.parts {
		if _, ok := stop[k.String()]; !ok {
			return fmt.Errorf("replay: the live group's offsets lack %s", k)
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
	if end, ok := r.p.ToEnd[key]; ok && r.p.Next[key] >= end {
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

func (r *run) status() Status {
	st := Status{Phase: r.phase, Events: r.p.Events, Invalid: r.p.Invalid, Rejected: r.p.Rejected}
	if secs := time.Since(r.started).Seconds(); secs > 0 {
		st.Rate = float64(r.readEvt) / secs
	}
	if r.phase == Swapped {
		st.GraceLeft = max(r.swappedAt.Add(r.cfg.Grace).Sub(r.cfg.Now()), 0)
	}
	for _, k := range r.parts {
		key := k.String()
		ps := PartitionStatus{Topic: k.topic, Partition: k.partition, Next: r.p.Next[key], End: r.ends[k], Done: r.done(k)}
		if end, ok := r.p.ToEnd[key]; ok {
			ps.End = end
		}
		if stop, ok := r.p.Stop[key]; ok {
			ps.End = stop
		}
		if !ps.Done && ps.End > ps.Next {
			ps.Lag = ps.End - ps.Next
			st.Remaining += ps.Lag
		}
		st.Partitions = append(st.Partitions, ps)
	}
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
