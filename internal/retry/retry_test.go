package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for n := 1; n <= 10; n++ {
		d := b.Delay(n)
		ceiling := min(100*time.Millisecond<<(n-1), time.Second)
		if d < ceiling/2 || d > ceiling {
			t.Errorf("failure %d: %s outside [%s, %s]", n, d, ceiling/2, ceiling)
		}
	}
}

// noSleep records the pauses instead of waiting; it fails as Sleep does
// once ctx ended.
type noSleep struct{ pauses []time.Duration }

func (s *noSleep) sleep(ctx context.Context, d time.Duration) error {
	s.pauses = append(s.pauses, d)
	return ctx.Err()
}

func TestDo(t *testing.T) {
	errBusy := errors.New("busy")
	errBad := errors.New("bad")
	tests := []struct {
		name     string
		attempts int
		results  []error // of each call; the last repeats
		cancelAt int     // cancel ctx during this call (from 1); 0: never
		calls    int
		want     error // errors.Is(err, want); nil: err == nil
	}{
		{"first call succeeds", 0, []error{nil}, 0, 1, nil},
		{"succeeds after failures", 0, []error{errBusy, errBusy, nil}, 0, 3, nil},
		{"permanent stops at once", 0, []error{errBusy, Permanent(errBad)}, 0, 2, errBad},
		{"attempts bound the calls", 3, []error{errBusy}, 0, 3, errBusy},
		{"ctx ends: the last error and ctx's", 0, []error{errBusy}, 2, 2, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			s := &noSleep{}
			var retried []int
			calls := 0
			err := Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond, Attempts: tc.attempts, Sleep: s.sleep,
				OnRetry: func(attempt int, _ error) { retried = append(retried, attempt) },
			}.Do(ctx, func() error {
				calls++
				if calls == tc.cancelAt {
					cancel()
				}
				return tc.results[min(calls, len(tc.results))-1]
			})
			if calls != tc.calls {
				t.Errorf("%d calls, want %d", calls, tc.calls)
			}
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("err %v, want nil", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if tc.cancelAt > 0 && !errors.Is(err, errBusy) {
				t.Errorf("err %v lost the last error of fn", err)
			}
			var p permanent
			if errors.As(err, &p) {
				t.Errorf("err %v still marked permanent", err)
			}
			// Every retried failure was reported and paused after, with
			// pauses within the bounds.
			if len(retried) != len(s.pauses) {
				t.Errorf("%d retries reported, %d pauses", len(retried), len(s.pauses))
			}
			for i, d := range s.pauses {
				if d > 4*time.Millisecond || d < time.Millisecond/2 || retried[i] != i+1 {
					t.Errorf("pause %d: %s after attempt %d", i, d, retried[i])
				}
			}
		})
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if err := Sleep(t.Context(), time.Microsecond); err != nil {
		t.Fatalf("err %v", err)
	}
}
