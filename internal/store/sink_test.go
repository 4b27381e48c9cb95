package store

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
	"github.com/chatreport/chatreport/internal/versions"
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

// TestSinkWritesTheCurrentVersion: the sink writes every batch to the
// current version only, never to a version being built; a swap takes effect
// at the next batch; a batch whose version a swap retires while it is
// written (its fence answers versions.ErrNotWritable, the sink's registry is stale)
// goes to the version current now.
func TestSinkWritesTheCurrentVersion(t *testing.T) {
	ctx := t.Context()
	reg := versions.OpenFile(t.TempDir())
	if _, err := reg.Register(ctx, "v2", time.Now()); err != nil {
		t.Fatal(err)
	}
	stores := map[string]*fencedStore{}
	open := func(_ context.Context, v string) (*fencedStore, error) {
		if stores[v] == nil {
			stores[v] = &fencedStore{fence: versions.Fence(reg, v)}
		}
		return stores[v], nil
	}
	writes := func() [3]int {
		var w [3]int
		for i, v := range []string{"v1", "v2", "v3"} {
			if stores[v] != nil {
				w[i] = stores[v].writes
			}
		}
		return w
	}
	sink := NewSink(versions.NewSet(reg, open), pipeline.MustDefault())
	batch := []event.Event{{Tenant: "acme", EventID: "e1"}}
	if err := sink.Ingest(ctx, batch); err != nil || writes() != [3]int{1, 0, 0} {
		t.Fatalf("ingest while v2 is built: %v, writes v1..v3 %v", err, writes())
	}
	if _, err := reg.Swap(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	if err := sink.Ingest(ctx, batch); err != nil || writes() != [3]int{1, 1, 0} {
		t.Fatalf("ingest after the swap: %v, writes v1..v3 %v", err, writes())
	}

	// The sink's registry still says v2 while v3 became current: v2's
	// fence refuses, the sink reads the registry again and writes v3.
	if _, err := reg.Register(ctx, "v3", time.Now()); err != nil {
		t.Fatal(err)
	}
	stale := &staleRegistry{Registry: reg}
	stale.keep(ctx)
	if _, err := reg.Swap(ctx, "v3"); err != nil {
		t.Fatal(err)
	}
	sink = NewSink(versions.NewSet(stale, open), pipeline.MustDefault())
	stale.refreshOnNextRead = true
	if err := sink.Ingest(ctx, batch); err != nil || writes() != [3]int{1, 1, 1} {
		t.Fatalf("ingest across a swap: %v, writes v1..v3 %v", err, writes())
	}
	// A registry that keeps naming the refused version: the error is
	// returned (the ingester retries the batch), wrapping versions.ErrNotWritable.
	stale.keep(ctx)
	stale.state.Current = "v2"
	if err := sink.Ingest(ctx, batch); !errors.Is(err, versions.ErrNotWritable) || writes() != [3]int{1, 1, 1} {
		t.Fatalf("ingest with a registry stuck on a retired version: %v, writes v1..v3 %v", err, writes())
	}
}

// staleRegistry answers State with what it read when keep was called, as
// a cached registry does; with refreshOnNextRead, the read after the next
// one reads the registry again (a cache expiring meanwhile).
type staleRegistry struct {
	versions.Registry
	state             versions.State
	refreshOnNextRead bool
}

func (r *staleRegistry) keep(ctx context.Context) { r.state, _ = r.Registry.State(ctx) }

func (r *staleRegistry) State(ctx context.Context) (versions.State, error) {
	st := r.state
	if r.refreshOnNextRead {
		r.refreshOnNextRead = false
		r.keep(ctx)
	}
	return st, nil
}

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
// partition number of a batch; every call writes the current version (and
// only that one), whose store is opened once.
func TestSinkConcurrent(t *testing.T) {
	ctx := t.Context()
	reg := versions.OpenFile(t.TempDir())
	if _, err := reg.Register(ctx, "v2", time.Now()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	stores := map[string]*countingStore{}
	opened := 0
	set := versions.NewSet(reg, func(_ context.Context, v string) (*countingStore, error) {
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
	if opened != 1 || stores["v1"].writes != calls || stores["v2"] != nil {
		t.Fatalf("%d stores opened; writes v1 %d of %d calls; v2 (being built) %v", opened, stores["v1"].writes, calls, stores["v2"])
	}
}
