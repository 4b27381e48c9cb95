package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/retry"
	"github.com/chatreport/chatreport/internal/versions"
)

// flight is a batch between its preparation and its completion: the events
// being stored, and what the progress reaches once they are.
type flight struct {
	events []event.Event
	// from is the message of each event: partition and offset.
	from  []position
	reach reach
	// invalid counts the batch's messages that are not events.
	invalid int64
	// done is closed once the store is over; rejected and err are its
	// outcome, written before.
	done     chan struct{}
	rejected map[event.Ref]string
	err      error
}

type position struct {
	key    partitionKey
	offset int64
}

// reach is what a batch adds to the progress once it is stored, and not
// before: a Next or a ToReached saved before the events below it were
// stored would skip them on a resume.
type reach struct {
	next      map[string]int64
	toReached map[string]bool
}

// prepare picks from a fetched batch what belongs to the replay, judging by
// the planned view (what the batches before it reach once stored), which it
// moves on by this batch's reach.
func (r *run) prepare(batch []fetched) *flight {
	b := &flight{reach: reach{next: map[string]int64{}}}
	reached := func(key string, next int64) {
		b.reach.next[key] = max(b.reach.next[key], next)
		r.planned.next[key] = max(r.planned.next[key], next)
	}
	for i := range batch {
		f := &batch[i]
		key := f.key.String()
		if r.doneReading(f.key) || f.msg.Offset < r.plannedNext(key) {
			continue // a partition already ended, or a message read before a resume
		}
		if f.pastTo {
			b.reach.toReached = setTrue(b.reach.toReached, key)
			r.planned.toReached = setTrue(r.planned.toReached, key)
			continue
		}
		// A message at or past where the partition ends ends it, even
		// when offsets below were missing (compaction, transaction markers).
		if stop, ok := r.p.Stop[key]; ok && f.msg.Offset >= stop {
			reached(key, stop)
			continue
		}
		if end, ok := r.p.ToEnd[key]; ok && f.msg.Offset >= end {
			reached(key, end)
			continue
		}
		reached(key, f.msg.Offset+1)
		e, err := event.Decode(f.msg.Value)
		if err != nil {
			b.invalid++ // the live ingester dead-lettered it already
			continue
		}
		b.events = append(b.events, e)
		b.from = append(b.from, position{f.key, f.msg.Offset})
	}
	return b
}

func setTrue(m map[string]bool, key string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[key] = true
	return m
}

// launch stores b in a goroutine of its own (retrying until it succeeds or
// r.work ends, see ingest) and puts it at the end of the batches in flight.
func (r *run) launch(b *flight) {
	b.done = make(chan struct{})
	r.flying = append(r.flying, b)
	if len(b.events) == 0 {
		close(b.done)
		return
	}
	go func() {
		defer close(b.done)
		b.rejected, b.err = r.ingest(r.work, b.events)
	}()
}

// completeHead waits for the first batch in flight to be stored, then
// applies it to the progress and saves it. When it was not stored (or its
// progress not saved), nothing after it is applied: it ends the other
// batches in flight (a store that retries while the target is down would
// hold the replay, and its error, until the target is back), waits for
// them, drops them and returns the error.
func (r *run) completeHead(ctx context.Context) error {
	b := r.flying[0]
	<-b.done
	err := b.err
	if err == nil {
		err = r.complete(ctx, b)
	}
	if err != nil {
		r.cancelWork()
		r.wait()
		return err
	}
	r.flying = r.flying[1:]
	return nil
}

// settle completes every batch in flight, in batch order, up to the first
// that was not stored, and returns that one's error.
func (r *run) settle(ctx context.Context) error {
	for len(r.flying) > 0 {
		if err := r.completeHead(ctx); err != nil {
			return err
		}
	}
	return nil
}

// wait waits for every batch in flight to end, and drops them.
func (r *run) wait() {
	for _, b := range r.flying {
		<-b.done
	}
	r.flying = nil
}

// complete applies a stored batch to the progress and saves it. Events the
// target rejected for good are counted and logged (by reference, never by
// content), and the replay goes on.
func (r *run) complete(ctx context.Context, b *flight) error {
	stored := int64(len(b.events))
	if len(b.rejected) > 0 {
		logged := 0
		for i := range b.events {
			reason, ok := b.rejected[b.events[i].Ref()]
			if !ok {
				continue
			}
			stored--
			r.p.Rejected++
			if logged++; logged <= maxRejectedLogged {
				r.log.Warn("replay: event rejected by the target; going on", zap.String("tenant", b.events[i].Tenant),
					zap.String("event", r.cfg.Refs.Scoped(b.events[i].Tenant, b.events[i].EventID)), zap.String("reason", reason),
					zap.Stringer("partition", b.from[i].key), zap.Int64("offset", b.from[i].offset))
			}
		}
		if logged > maxRejectedLogged {
			r.log.Warn("replay: more events of the batch rejected by the target", zap.Int("not_logged", logged-maxRejectedLogged))
		}
	}
	// What p now holds is dropped from planned: only the batches still in
	// flight may go further.
	for key, n := range b.reach.next {
		r.p.Next[key] = max(r.p.Next[key], n)
		if r.planned.next[key] <= r.p.Next[key] {
			delete(r.planned.next, key)
		}
	}
	for key := range b.reach.toReached {
		r.p.ToReached = setTrue(r.p.ToReached, key)
		delete(r.planned.toReached, key)
	}
	r.p.Invalid += b.invalid
	r.p.Events += stored
	r.readEvt += stored
	return r.save(ctx)
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
