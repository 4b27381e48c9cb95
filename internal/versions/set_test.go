package versions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
)

// fencedStore is a store of one version whose writes first run the
// version's fence, as the Elasticsearch store does before each request.
type fencedStore struct {
	fence  func(context.Context) error
	writes int
}

func (s *fencedStore) Update(ctx context.Context, fn func(context.Context, session.Reader) (session.Changes, error)) error {
	if err := s.fence(ctx); err != nil {
		return err
	}
	s.writes++
	return nil
}

func (s *fencedStore) Close() error { return nil }

// TestFence: a version's fence passes while the registry lists it as
// writable and fails with ErrNotWritable once it is abandoned or a swap
// retires it; the sink leaves such a version out of the batch and writes
// the others.
func TestFence(t *testing.T) {
	ctx := t.Context()
	reg := OpenFile(t.TempDir())
	if _, err := reg.Register(ctx, "v2", time.Now()); err != nil {
		t.Fatal(err)
	}
	stores := map[string]*fencedStore{}
	set := NewSet(reg, func(_ context.Context, v string) (*fencedStore, error) {
		stores[v] = &fencedStore{fence: Fence(reg, v)}
		return stores[v], nil
	})
	for _, v := range []string{"v1", "v2"} {
		if err := Fence(reg, v)(ctx); err != nil {
			t.Fatalf("fence of writable %s: %v", v, err)
		}
	}
	if err := Fence(reg, "v3")(ctx); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("fence of unknown v3: %v", err)
	}

	sink := NewSink(set, pipeline.MustDefault())
	batch := []event.Event{{Tenant: "acme", EventID: "e1"}}
	if err := sink.Ingest(ctx, batch); err != nil || stores["v1"].writes != 1 || stores["v2"].writes != 1 {
		t.Fatalf("ingest into both: %v, stores %+v %+v", err, stores["v1"], stores["v2"])
	}
	// v2 is abandoned after the sink read the registry: its write is
	// fenced and left out, v1's goes on.
	stale := &staleRegistry{Registry: reg}
	stale.keep(ctx)
	sink = NewSink(NewSet(stale, func(_ context.Context, v string) (*fencedStore, error) { return stores[v], nil }), pipeline.MustDefault())
	if _, err := reg.Abandon(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	if err := Fence(reg, "v2")(ctx); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("fence of abandoned v2: %v", err)
	}
	if err := sink.Ingest(ctx, batch); err != nil || stores["v1"].writes != 2 || stores["v2"].writes != 1 {
		t.Fatalf("ingest after abandon: %v, v1 %d writes, v2 %d", err, stores["v1"].writes, stores["v2"].writes)
	}
}

// staleRegistry answers State with what it read when keep was called, as
// a cached registry does.
type staleRegistry struct {
	Registry
	state State
}

func (r *staleRegistry) keep(ctx context.Context) { r.state, _ = r.Registry.State(ctx) }

func (r *staleRegistry) State(context.Context) (State, error) { return r.state, nil }

// countingStore counts its writes; it is safe for concurrent use.
type countingStore struct {
	mu     sync.Mutex
	writes int
}

func (s *countingStore) Update(ctx context.Context, fn func(context.Context, session.Reader) (session.Changes, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return nil
}

func (s *countingStore) Close() error { return nil }

// TestSinkConcurrent: the ingester calls the sink concurrently, one call per
// partition number of a batch; every call writes every writable version, and
// each version's store is opened once.
func TestSinkConcurrent(t *testing.T) {
	ctx := t.Context()
	reg := OpenFile(t.TempDir())
	if _, err := reg.Register(ctx, "v2", time.Now()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	stores := map[string]*countingStore{}
	opened := 0
	set := NewSet(reg, func(_ context.Context, v string) (*countingStore, error) {
		mu.Lock()
		defer mu.Unlock()
		opened++
		stores[v] = &countingStore{}
		return stores[v], nil
	})
	sink := NewSink(set, pipeline.MustDefault())
	const calls = 16
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() {
			errs[i] = sink.Ingest(ctx, []event.Event{{Tenant: "acme", EventID: fmt.Sprint("e", i)}})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if opened != 2 || stores["v1"].writes != calls || stores["v2"].writes != calls {
		t.Fatalf("%d stores opened; writes v1 %d, v2 %d of %d calls", opened, stores["v1"].writes, stores["v2"].writes, calls)
	}
}
