package versions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
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
