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
// wrote are stored once. Up to Config.InFlight batches are stored at once;
// the progress is saved in the target after every batch, in batch order:
// an interrupted replay resumes where it was, in whatever phase the registry
// and the saved progress say.
package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/ingest"
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
	CaughtUp int64
	// BatchSize is the most events stored in one write; required (the
	// command passes the ingester's, config.Ingest.BatchSizeOf).
	BatchSize int
	// InFlight is the most batches being stored at once (the command
	// passes the ingester's, config.Ingest.InFlightOf); 1 when zero. A
	// store is a few round trips, so a replay storing one batch at a time
	// waits on them. The progress of the batches is applied and saved one
	// batch at a time in batch order, each once it and every batch before
	// it were stored: a resume never skips an unstored batch.
	InFlight int
	// Poll is how often the replay reads the registry and the partitions'
	// ends; 500 ms when zero.
	Poll time.Duration
	// ReportEvery is how often progress is reported besides every change of
	// phase; 1 s when zero.
	ReportEvery time.Duration
	// Now is the clock of the grace and of To; time.Now when nil.
	Now func() time.Time
	// Refs names the events the target rejects in the log (an event_id
	// may embed a phone number): log.ref_key, the process's random key
	// when zero.
	Refs idref.Key
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
	// err ends the replay: the partition cannot be read (a seek that
	// failed, fetches refused or failing for ingest.DefaultFetchGiveUp).
	err error
}

// Run replays into target until every partition is done, reporting progress
// to report (which may be nil). It returns nil when done, ctx's error when
// ctx ends first (the progress of every stored batch is saved: running it
// again resumes), an error wrapping versions.ErrNotWritable when the
// target was abandoned, and a save's error, at once, when the progress
// could not be saved.
func Run(ctx context.Context, cfg Config, target Target, report func(Status), log *zap.Logger) error {
	if cfg.Registry == nil || cfg.Version == "" {
		return errors.New("replay: no target version or registry")
	}
	if cfg.BatchSize < 1 {
		return errors.New("replay: batch size must be at least 1 (ingest.batch_size, or the store's default: config.Ingest.BatchSizeOf)")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.InFlight < 1 {
		cfg.InFlight = 1
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

	r := &run{cfg: cfg, client: client, target: target, parts: parts, p: p, planned: reach{next: map[string]int64{}},
		log: log, report: report, fetched: make(chan fetched, cfg.BatchSize), started: time.Now()}
	return r.loop(ctx)
}

type run struct {
	cfg    Config
	client *kafka.Client
	target Target
	parts  []partitionKey
	// p is the progress of the batches stored, the one saved.
	p *progress
	// planned is what the batches in flight reach once stored, beyond p
	// (complete drops what p holds): the batches after them are filtered
	// by it (prepare).
	planned reach
	// flying are the batches in flight, in batch order (launch).
	flying []*flight
	// work is the context of the batches being stored: it ends with the
	// replay's, or earlier when the replay stops on an error (stop,
	// completeHead).
	work       context.Context
	cancelWork context.CancelFunc
	log        *zap.Logger
	report     func(Status)
	fetched    chan fetched
	started    time.Time
	readEvt    int64

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
	r.work, r.cancelWork = context.WithCancel(ctx)
	defer r.cancelWork()
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
	// first is when batch got its first message; ready when it is to be
	// stored, as soon as fewer than InFlight batches are.
	var first, lastStep time.Time
	ticked, ready := true, false
	for {
		// The registry and the ends are read every Poll, not every batch.
		if ticked || time.Since(lastStep) >= r.cfg.Poll {
			ticked, lastStep = false, time.Now()
			if err := r.step(ctx); err != nil {
				return r.stop(ctx, err)
			}
		}
		for _, k := range r.parts {
			if cancel, ok := r.cancels[k]; ok && r.doneReading(k) {
				cancel()
				delete(r.cancels, k)
			}
		}
		if len(r.flying) == 0 && r.allDone() {
			r.phase = Done
			st := r.status()
			r.report(st)
			r.log.Info("replay done", zap.String("target", r.cfg.Version), zap.Int64("events", st.Events),
				zap.Int64("invalid", st.Invalid), zap.Int64("rejected", st.Rejected))
			return nil
		}
		r.maybeReport()
		if ready && len(r.flying) < r.cfg.InFlight {
			r.launch(r.prepare(batch))
			batch, ready = nil, false
		}
		// While swapped the replay reads nothing: it waits for the live
		// offsets, which say how far it must go.
		in := r.fetched
		if r.phase == Swapped || len(batch) >= r.cfg.BatchSize {
			in = nil
		}
		var head <-chan struct{}
		if len(r.flying) > 0 {
			head = r.flying[0].done
		}
		// A batch is ready when full, or at a tick that came after its
		// first message. A tick that came before — waiting in the ticker
		// while batches were stored — does not make it ready: behind the
		// partitions' ends the batch fills in far less than a Poll, and
		// cutting it would pay a store's round trips for a few events.
		// Every tick ends the collecting: the loop's own work is due.
	collect:
		for {
			select {
			case <-ctx.Done():
				return r.stop(ctx, ctx.Err())
			case <-head:
				if err := r.completeHead(ctx); err != nil {
					return r.stop(ctx, err)
				}
				break collect
			case f := <-in:
				if f.err != nil {
					if r.doneReading(f.key) {
						continue // a partition the replay no longer needs
					}
					return r.stop(ctx, f.err)
				}
				if len(batch) == 0 {
					first = time.Now()
				}
				batch = append(batch, f)
				if len(batch) >= r.cfg.BatchSize {
					ready = true
					break collect
				}
			case at := <-tick.C:
				ticked = true
				ready = ready || (len(batch) > 0 && !at.Before(first))
				break collect
			}
		}
	}
}

// stop ends the replay with err. The batches in flight still being stored
// end at once (retrying through a target outage, they would hold the
// replay and its error until the target is back); those stored before the
// first that was not are completed and saved. ctx's error, once ctx ended,
// is the replay's: every stored batch is saved, a resume goes on from
// there. Unless a save failed: the saved progress is then behind, and the
// save's error is returned (joined to err when ctx did not end).
func (r *run) stop(ctx context.Context, err error) error {
	r.cancelWork()
	settled := r.settle(ctx)
	if !errors.Is(settled, errSave) {
		// A batch not stored (ended just now or by ctx, or refused as
		// the target was abandoned): its progress is not saved, rightly.
		settled = nil
	}
	if ctx.Err() != nil && !errors.Is(err, errSave) {
		if settled != nil {
			return settled
		}
		return ctx.Err()
	}
	return errors.Join(err, settled)
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
			return r.save(ctx)
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
			if errors.Is(err, errSave) {
				return err // the ends are set: a later step would not save them
			}
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
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: ingest.ReaderMaxWait(250 * time.Millisecond),
	})
	defer rd.Close()
	log := r.log.With(zap.Stringer("partition", k))
	send := func(f fetched) bool {
		select {
		case r.fetched <- f:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if err := rd.SetOffset(offset); err != nil {
		send(fetched{key: k, err: fmt.Errorf("seek %s to %d: %w", k, offset, err)})
		return
	}
	for {
		// A partition is read until the replay no longer needs it: an
		// error kafka-go recovers from is logged, not the end of it;
		// one it does not, or fetches failing for the give-up time,
		// end the replay (it would wait for the partition for ever).
		m, err := ingest.Fetch(ctx, rd, ingest.DefaultFetchGiveUp, log)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			send(fetched{key: k, err: fmt.Errorf("read %s: %w", k, err)})
			return
		}
		f := fetched{key: k, msg: m, pastTo: !r.cfg.To.IsZero() && m.Time.After(r.cfg.To)}
		if !send(f) || f.pastTo {
			return
		}
	}
}
