package heappeak

import (
	"runtime"
	"testing"
	"time"
)

var sink [][]byte

// TestPeak: memory held while the sampler runs shows in the peak.
func TestPeak(t *testing.T) {
	runtime.GC()
	h := Start(time.Millisecond)
	const size = 64 << 20
	sink = append(sink, make([]byte, size))
	time.Sleep(20 * time.Millisecond) // at least one sample while it is held
	peak := h.Stop()
	sink = nil
	if peak < size {
		t.Fatalf("peak %d bytes while %d were held", peak, size)
	}
	if added := peak - h.Base(); added < size {
		t.Fatalf("peak %d over a base of %d: %d added while %d were held", peak, h.Base(), added, size)
	}
}

// TestBase: memory held before sampling began is the base, not the work's.
func TestBase(t *testing.T) {
	const size = 64 << 20
	sink = append(sink, make([]byte, size))
	runtime.GC()
	h := Start(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	peak := h.Stop()
	sink = nil
	if h.Base() < size {
		t.Fatalf("base %d bytes while %d were held before", h.Base(), size)
	}
	if peak < h.Base() {
		t.Fatalf("peak %d below the base %d", peak, h.Base())
	}
	if added := peak - h.Base(); added >= size/2 {
		t.Fatalf("%d bytes added by work that allocated nothing of size", added)
	}
}
