package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/versions"
)

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
	set *versions.Set[S]
	def *pipeline.Definition

	mu         sync.Mutex
	assemblers map[string]*session.Assembler
}

// NewSink returns a sink writing the current version of set.
func NewSink[S WritableStore](set *versions.Set[S], def *pipeline.Definition) *Sink[S] {
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
		state, err := k.set.Registry().State(ctx)
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
		if !errors.Is(err, versions.ErrNotWritable) {
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
