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
}
