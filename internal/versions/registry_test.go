package versions

import (
	"os"
	"slices"
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
	if _, err := a.Abandon(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(ctx, "v3", t0); err != nil {
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
