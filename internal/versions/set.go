package versions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
)

// Set opens each version's store once, on first use, and resolves the
// registry on every call, so a swap takes effect at the next request or batch.
type Set[S io.Closer] struct {
	reg  Registry
	open func(ctx context.Context, version string) (S, error)

	mu     sync.Mutex
	stores map[string]S
}

// NewSet returns a set of the stores of reg's versions, opened by open.
func NewSet[S io.Closer](reg Registry, open func(ctx context.Context, version string) (S, error)) *Set[S] {
	return &Set[S]{reg: reg, open: open, stores: map[string]S{}}
}

// Registry is the set's registry.
func (s *Set[S]) Registry() Registry { return s.reg }

// Get returns the store of version.
func (s *Set[S]) Get(ctx context.Context, version string) (S, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.stores[version]; ok {
		return st, nil
	}
	st, err := s.open(ctx, version)
	if err != nil {
		var zero S
		return zero, fmt.Errorf("open store version %s: %w", version, err)
	}
	s.stores[version] = st
	return st, nil
}

// Current returns the current version's store.
func (s *Set[S]) Current(ctx context.Context) (S, error) {
	state, err := s.reg.State(ctx)
	if err != nil {
		var zero S
		return zero, err
	}
	return s.Get(ctx, state.Current)
}

// Close closes every store the set opened.
func (s *Set[S]) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for v, st := range s.stores {
		if err := st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store version %s: %w", v, err))
		}
		delete(s.stores, v)
	}
	return errors.Join(errs...)
}

// WritableStore is a store the assembler writes.
type WritableStore interface {
	session.Store
	io.Closer
}

// Sink assembles each batch into the current version, and only into it: a
// version being rebuilt is written by its replay alone (package replay) until
// a swap makes it current. The registry is resolved on every call, so a swap
// takes effect at the next batch.
type Sink[S WritableStore] struct {
	set *Set[S]
	def *pipeline.Definition

	mu         sync.Mutex
	assemblers map[string]*session.Assembler
}

// NewSink returns a sink writing the current version of set.
func NewSink[S WritableStore](set *Set[S], def *pipeline.Definition) *Sink[S] {
	return &Sink[S]{set: set, def: def, assemblers: map[string]*session.Assembler{}}
}

// sinkAttempts bounds how many versions one call writes in turn: more than
// one only when swaps retire the version while the batch is written.
const sinkAttempts = 3

// Ingest stores the batch in the version the registry names current now.
// When that version's store answers ErrNotWritable (a swap retired it while
// the batch was being written: the Elasticsearch store checks before every
// request), the registry is read again and the batch is written to the
// version current now; if the registry still names the retired version, the
// error is returned and the caller retries the batch later. It may be called
// concurrently (the ingester stores the partition numbers of a batch at
// once): the registry, the set and the assemblers are safe for concurrent
// use, and each store must be too.
func (k *Sink[S]) Ingest(ctx context.Context, batch []event.Event) error {
	var refused string
	var last error
	for range sinkAttempts {
		state, err := k.set.reg.State(ctx)
		if err != nil {
			return err
		}
		v := state.Current
		if v == refused {
			return last // the registry still names the version that refused
		}
		a, err := k.assembler(ctx, v)
		if err != nil {
			return err
		}
		if err = a.Ingest(ctx, batch); err == nil {
			return nil
		}
		last = fmt.Errorf("version %s: %w", v, err)
		if !errors.Is(err, ErrNotWritable) {
			return last
		}
		refused = v
	}
	return last
}

func (k *Sink[S]) assembler(ctx context.Context, version string) (*session.Assembler, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.assemblers[version]; ok {
		return a, nil
	}
	st, err := k.set.Get(ctx, version)
	if err != nil {
		return nil, err
	}
	a := session.NewAssembler(k.def, st)
	k.assemblers[version] = a
	return a, nil
}

// Stats sums the work of every version's assembler.
func (k *Sink[S]) Stats() session.AssemblerStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	var sum session.AssemblerStats
	for _, a := range k.assemblers {
		st := a.Stats()
		sum.Keys += st.Keys
		sum.Reread += st.Reread
	}
	return sum
}
