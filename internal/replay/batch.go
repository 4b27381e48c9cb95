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
					zap.String("event", r.cfg.Refs.Scoped(events[i].Tenant, events[i].EventID)), zap.String("reason", reason),
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
