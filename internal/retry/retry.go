// Package retry calls an operation again, with exponential backoff and
// jitter, until it succeeds, fails for good, runs out of attempts, or its
// context ends.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff says how often and how long to wait between attempts.
type Backoff struct {
	// Base is the pause after the first failure; it doubles after each
	// further one, up to Max.
	Base, Max time.Duration
	// Attempts bounds the calls; 0 means no bound.
	Attempts int
	// OnRetry, when set, is called after a failed attempt (from 1) that
	// will be tried again, before the pause.
	OnRetry func(attempt int, err error)
	// Sleep waits between attempts; nil means Sleep. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Delay is the pause after the n-th failure (n from 1): Base doubled n-1
// times, capped at Max, then jittered down by up to half, so that callers
// that failed together do not come back together.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// Do calls fn until it returns nil or an error marked Permanent, Attempts
// calls were made, or ctx ends; it then returns fn's last error (unwrapped
// from Permanent), joined with ctx's error when ctx ended.
func (b Backoff) Do(ctx context.Context, fn func() error) error {
	sleep := b.Sleep
	if sleep == nil {
		sleep = Sleep
	}
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		if b.Attempts > 0 && attempt >= b.Attempts {
			return err
		}
		if ctx.Err() != nil {
			return gaveUp(err, ctx)
		}
		if b.OnRetry != nil {
			b.OnRetry(attempt, err)
		}
		if sleep(ctx, b.Delay(attempt)) != nil {
			return gaveUp(err, ctx)
		}
	}
}

func gaveUp(err error, ctx context.Context) error {
	if errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
}

// Permanent marks err as not worth another attempt: Do returns err at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Sleep waits d, or until ctx ends, returning ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
