// Package heappeak measures the largest heap a piece of work reaches, for
// the benchmarks and the bench command.
package heappeak

import (
	"runtime/metrics"
	"sync"
	"time"
)

// Sampler records the largest heap (objects, live and not yet swept) seen
// while it runs. runtime/metrics reads it without stopping the world.
type Sampler struct {
	mu   sync.Mutex
	peak uint64
	// start is the heap when sampling began: what the process held before
	// the work (right after a collection, the live heap of everything else).
	start uint64
	stop  chan struct{}
	done  chan struct{}
}

// Start samples the heap now and every interval until Stop.
func Start(every time.Duration) *Sampler {
	h := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	h.start = heapObjects()
	h.peak = h.start
	go func() {
		defer close(h.done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			metrics.Read(s)
			if s[0].Value.Kind() == metrics.KindUint64 {
				h.mu.Lock()
				h.peak = max(h.peak, s[0].Value.Uint64())
				h.mu.Unlock()
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// Stop ends the sampling and returns the peak heap in bytes.
func (h *Sampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}

// Base returns the heap when sampling began. The peak minus Base is what the
// work added at its peak (less whatever the process freed meanwhile).
func (h *Sampler) Base() uint64 { return h.start }

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
