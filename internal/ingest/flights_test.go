package ingest

import "sync"

// Flights counts the calls of a test's sink in flight, and the most there
// were at once. It is exported for the tests of package ingest_test too.
type Flights struct {
	mu        sync.Mutex
	now, most int
}

// Enter counts a call in and returns how many are in flight with it
// included; the call defers Leave.
func (f *Flights) Enter() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now++
	f.most = max(f.most, f.now)
	return f.now
}

// Leave counts a call out.
func (f *Flights) Leave() {
	f.mu.Lock()
	f.now--
	f.mu.Unlock()
}

// Most is the most calls there were in flight at once.
func (f *Flights) Most() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.most
}
