// Package waitfor lets a test wait for what another goroutine or process
// does: it polls a check until it passes or time runs out. Only tests
// import it.
package waitfor

import (
	"testing"
	"time"
)

// Check calls check until it returns nil, pausing 10 ms after the first
// failure and twice as long after each further one, up to 500 ms. When
// within has passed it fails t with what and check's last error.
func Check(t testing.TB, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := 10 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", within, what, err)
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// True waits as Check does until cond holds.
func True(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	Check(t, within, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

type notYet struct{}

func (notYet) Error() string { return "the condition does not hold" }

var errNotYet error = notYet{}
