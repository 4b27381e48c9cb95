package ingest

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// flight is a batch between its first store attempt and its commit: the
// attempt that launch started last, over once done is closed.
type flight struct {
	p    prepared
	done chan struct{}
	// err and took are the attempt's outcome and duration, written before
	// done is closed.
	err  error
	took time.Duration
}

// launch starts a store attempt of f (every sink call of the batch at once,
// storeAll) in a goroutine of its own. The previous attempt, if any, is over:
// the attempts of one batch share its groups.
func (in *Ingester) launch(ctx context.Context, f *flight) {
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		start := time.Now()
		f.err = in.storeAll(ctx, f.p.calls)
		f.took = time.Since(start)
	}()
}

// overlap stores the batches from ready, starting each as it comes while
// fewer than Config.InFlight are stored or waiting for their commit, and
// completes them (dead letters, commit) one at a time in batch order. It
// returns once ready is closed and every batch taken from it was committed
// or given up. Once ctx is done the batches in hand have
// Config.ShutdownGrace to be stored and committed; a batch that could not be
// stored by then is not committed, nor is any after it (committing a later
// batch would skip it), and the ones after it still coming from ready are
// dropped: they are delivered again to whoever consumes the partitions next.
func (in *Ingester) overlap(ctx context.Context, ready <-chan prepared) {
	work, cancel := in.workContext(ctx)
	defer cancel()
	var queue []*flight // in batch order; queue[0] is the next to commit
	unstored := false
	for ready != nil || len(queue) > 0 {
		next := ready
		if len(queue) >= in.cfg.InFlight {
			next = nil
		}
		var head <-chan struct{}
		if len(queue) > 0 {
			head = queue[0].done
		}
		select {
		case p, open := <-next:
			if !open {
				ready = nil
				continue
			}
			if unstored {
				continue
			}
			f := &flight{p: p}
			in.launch(work, f)
			queue = append(queue, f)
		case <-head:
			err := in.finish(work, queue)
			if err == nil {
				queue = queue[1:]
				continue
			}
			if queue[0].err == nil && (ctx.Err() == nil || errors.Is(err, errCommit)) {
				// The batch is stored and its dead letters written
				// (only shutdown ends their retries; at shutdown the
				// error says so): the commit failed, and a later one
				// of its partitions covers its offsets.
				in.log.Warn("batch stored, its commit failed; a later commit of its partitions covers it, or it is delivered again", zap.Error(err), zap.Int("messages", len(queue[0].p.batch)))
				queue = queue[1:]
				continue
			}
			in.log.Warn("batch not committed; it will be delivered again", zap.Error(err), zap.Int("messages", len(queue[0].p.batch)))
			unstored = true
			for _, f := range queue[1:] {
				<-f.done
			}
			queue = nil
		}
	}
}

// finish completes queue[0], whose store attempt is over, retrying the store
// until it succeeds or ctx ends. An attempt makes every sink call of the
// batch; when any fails, the whole attempt is made again, the calls that
// succeeded included (the sink is idempotent). So the events of a committed
// batch were all stored by calls that began together, as a single call would
// have been.
//
// When the first attempt failed, the later batches in flight were stored,
// or are being stored, by attempts that began before the one that stored
// queue[0]; each is stored again, from the start, once queue[0] is. So the
// attempts that stored consecutive batches began in batch order, and a batch
// is committed no later than its own store attempt's end plus the commits
// before it: never long after its store began, however long an earlier
// batch retried. A replay relies on that (its grace exceeds the longest
// single store of the live ingester: package replay) — a batch that stored
// the retired version, committed only after a long outage of an earlier
// batch, would be missing from the version that replaced it.
func (in *Ingester) finish(ctx context.Context, queue []*flight) error {
	f := queue[0]
	if f.err != nil {
		failed := f.err
		err := in.retry(ctx, "store events", func() error {
			if failed != nil { // the attempt launch made
				err := failed
				failed = nil
				return err
			}
			start := time.Now()
			f.err = in.storeAll(ctx, f.p.calls)
			f.took = time.Since(start)
			return f.err
		})
		if err != nil {
			return err
		}
		for _, later := range queue[1:] {
			<-later.done
			if later.err != nil {
				// Counted here, as the retry of queue[0] counts its own.
				in.cfg.Observer.ObserveRetry("store events")
				in.log.Warn("retrying", zap.String("what", "store events"), zap.Error(later.err))
			}
			in.launch(ctx, later)
		}
	}
	return in.complete(ctx, f)
}
