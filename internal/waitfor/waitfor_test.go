package waitfor

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records a failure instead of ending the
// test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	for _, a := range args {
		if err, ok := a.(error); ok {
			r.failed += " " + err.Error()
		}
	}
}

func TestCheck(t *testing.T) {
	calls := 0
	r := &recorder{TB: t}
	Check(r, time.Second, "the third call", func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if r.failed != "" || calls != 3 {
		t.Fatalf("failed %q after %d calls", r.failed, calls)
	}
	r = &recorder{TB: t}
	start := time.Now()
	Check(r, 50*time.Millisecond, "never", func() error { return errors.New("the last error") })
	if !strings.Contains(r.failed, "the last error") || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("failed %q after %s", r.failed, time.Since(start))
	}
	r = &recorder{TB: t}
	True(r, 20*time.Millisecond, "false", func() bool { return false })
	if r.failed == "" {
		t.Fatal("True of a condition that never holds did not fail")
	}
}
