package versions

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRegistryLifecycle(t *testing.T) {
	dir, ctx := t.TempDir(), t.Context()
	a, b := OpenFile(dir), OpenFile(dir) // two processes' views of one file
	s, err := a.State(ctx)
	if err != nil || s.Current != Initial || len(s.Building) != 0 {
		t.Fatalf("fresh state %+v %v", s, err)
	}
	t0 := time.Date(2025, 10, 7, 9, 0, 0, 0, time.UTC)
	if _, err := a.Register(ctx, "v1", t0); err == nil {
		t.Fatal("registering the current version accepted")
	}
	if _, err := a.Register(ctx, "V2!", t0); err == nil {
		t.Fatal("bad version name accepted")
	}
	if _, err := a.Register(ctx, "v2", t0); err != nil {
		t.Fatal(err)
	}
	if s, _ := a.Register(ctx, "v2", t0.Add(time.Hour)); !s.Building["v2"].Equal(t0) {
		t.Fatalf("registering again moved the registration time: %v", s.Building["v2"])
	}
	if s, _ := b.State(ctx); !slices.Equal(s.Writable(), []string{"v1", "v2"}) {
		t.Fatalf("the other view sees %+v", s)
	}
	if _, err := b.Swap(ctx, "v3"); err == nil {
		t.Fatal("swap to a version not being built accepted")
	}
	if _, err := b.Swap(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	if s, _ := a.State(ctx); s.Current != "v2" || !slices.Equal(s.Writable(), []string{"v2"}) {
		t.Fatalf("after swap %+v", s)
	}
	if _, err := a.Swap(ctx, "v2"); err == nil {
		t.Fatal("swap to the current version accepted")
	}
	if _, err := a.Register(ctx, "v3", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Abandon(ctx, "v3"); err != nil {
		t.Fatal(err)
	}
	if s, _ := a.State(ctx); len(s.Building) != 0 {
		t.Fatalf("after abandon %+v", s)
	}
	if _, err := a.Abandon(ctx, "v3"); err == nil {
		t.Fatal("abandoning twice accepted")
	}
	if err := os.WriteFile(a.path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(dir).State(ctx); err == nil {
		t.Fatal("a corrupt registry accepted")
	}
}

// TestRegistrySeesEveryReplacement: a change that leaves the file's size
// and modification time as they were (two changes within one tick of the
// file system's clock) still reaches another view at its next read.
func TestRegistrySeesEveryReplacement(t *testing.T) {
	dir, ctx := t.TempDir(), t.Context()
	a, b := OpenFile(dir), OpenFile(dir)
	t0 := time.Date(2025, 10, 7, 9, 0, 0, 0, time.UTC)
	if _, err := a.Register(ctx, "v2", t0); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(a.path)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := b.State(ctx); !slices.Equal(s.Writable(), []string{"v1", "v2"}) {
		t.Fatalf("b sees %+v", s)
	}
	// v3 built instead of v2, in one change of the same size (Abandon
	// would record when, at a time of its own).
	if _, err := a.update(func(s *State) error {
		s.Building = map[string]time.Time{"v3": t0}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a.path, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(a.path)
	if err != nil || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("the test did not forge an equal size and time: %v", err)
	}
	if s, _ := b.State(ctx); !slices.Equal(s.Writable(), []string{"v1", "v3"}) {
		t.Fatalf("b sees %+v after the change", s)
	}
}

// TestStateHistory: a swap retires the current version and an abandon
// records the version, each with its time, and Role says so (both were
// "old"); a registry from before knows neither, and says that. A swap does
// not go back to a retired version (it lacks what was ingested since) nor to
// an abandoned one, and says why; registering either again builds it anew.
func TestStateHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := State{Current: Initial}
	steps := []struct {
		name   string
		change func(*State) error
		roles  map[string]string
		refuse string // the error a swap to "v1" then gives, when one
	}{
		{"legacy", func(*State) error { return nil },
			map[string]string{"v1": "current", "v0": "old or abandoned (not written)"}, "already current"},
		{"register v2, v3", func(s *State) error {
			return errors.Join(s.Register("v2", t0), s.Register("v3", t0))
		}, map[string]string{"v2": "building since 2026-12-01T09:00:00Z"}, "already current"},
		{"swap to v2", func(s *State) error { return s.Swap("v2", t0.Add(time.Hour)) },
			map[string]string{"v1": "old, current until 2026-12-01T10:00:00Z", "v2": "current"},
			"version v1 was current until 2026-12-01T10:00:00Z and has not been written since: it lacks every event ingested after that (they are in v2 and the topics only)"},
		{"abandon v3", func(s *State) error {
			if err := s.Abandon("v3", t0.Add(2*time.Hour)); err != nil {
				return err
			}
			try := *s
			if err := try.Swap("v3", t0); err == nil || !strings.Contains(err.Error(), "version v3 was abandoned at 2026-12-01T11:00:00Z") {
				return fmt.Errorf("a swap to the abandoned v3: %v", err)
			}
			return nil
		},
			map[string]string{"v3": "abandoned at 2026-12-01T11:00:00Z"}, "chatreport replay --from earliest --target NEW --swap"},
		{"register v1 again: refused", func(s *State) error {
			err := s.Register("v1", t0.Add(3*time.Hour))
			if err == nil || !strings.Contains(err.Error(), "version v1 was current until 2026-12-01T10:00:00Z and a replay into it would not rebuild it") {
				return fmt.Errorf("registering the retired v1: %v", err)
			}
			return nil
		}, map[string]string{"v1": "old, current until 2026-12-01T10:00:00Z"}, "version v1 was current until"},
		{"register v3 again, swap to it", func(s *State) error {
			return errors.Join(s.Register("v3", t0.Add(3*time.Hour)), s.Swap("v3", t0.Add(4*time.Hour)))
		}, map[string]string{"v1": "old, current until 2026-12-01T10:00:00Z", "v2": "old, current until 2026-12-01T13:00:00Z", "v3": "current"}, "version v1 was current until"},
	}
	for _, step := range steps {
		shared := s // a State shared with others is never modified
		before, _ := json.Marshal(shared)
		if err := step.change(&s); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if after, _ := json.Marshal(shared); string(after) != string(before) {
			t.Fatalf("%s changed a shared State: %s, was %s", step.name, after, before)
		}
		for v, want := range step.roles {
			if got := s.Role(v); got != want {
				t.Errorf("after %s, %s: %q, want %q", step.name, v, got, want)
			}
		}
		try := s
		err := try.Swap("v1", t0)
		switch {
		case step.refuse == "" && err != nil:
			t.Errorf("after %s a swap to v1: %v", step.name, err)
		case step.refuse != "" && (err == nil || !strings.Contains(err.Error(), step.refuse)):
			t.Errorf("after %s a swap to v1: %v, want %q", step.name, err, step.refuse)
		}
	}
	if err := s.Register("v2", t0.Add(5*time.Hour)); err == nil {
		t.Errorf("registering the retired v2: no error")
	}
}
