package versions

import (
	"errors"
	"testing"
	"time"
)

// TestFence: a version's fence passes while the registry lists it as
// writable and fails with ErrNotWritable once it is abandoned or a swap
// retires it.
func TestFence(t *testing.T) {
	ctx := t.Context()
	reg := OpenFile(t.TempDir())
	if _, err := reg.Register(ctx, "v2", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v1", "v2"} {
		if err := Fence(reg, v)(ctx); err != nil {
			t.Fatalf("fence of writable %s: %v", v, err)
		}
	}
	if err := Fence(reg, "v3")(ctx); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("fence of unknown v3: %v", err)
	}
	if _, err := reg.Abandon(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	if err := Fence(reg, "v2")(ctx); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("fence of abandoned v2: %v", err)
	}
	if _, err := reg.Register(ctx, "v3", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Swap(ctx, "v3"); err != nil {
		t.Fatal(err)
	}
	if err := Fence(reg, "v1")(ctx); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("fence of v1 retired by a swap: %v", err)
	}
}
