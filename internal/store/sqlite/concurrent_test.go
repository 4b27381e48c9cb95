package sqlite_test

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
)

// TestConcurrentUpdates: the ingester calls the assembler concurrently, one
// call per partition number of a batch, and a replay may write the same
// store meanwhile. Writers of disjoint session keys, and writers that share
// keys (misrouted events, a replay), end in the reference state.
func TestConcurrentUpdates(t *testing.T) {
	def := sessiontest.Definition()
	tenants := []string{"acme", "globex"}
	rng := rand.New(rand.NewPCG(7, 11))
	events := sessiontest.Generate(rng, sessiontest.Options{
		Tenants: tenants, Conversations: 150, MaxEvents: 10, Start: sessiontest.Base, Spread: 4 * 24 * time.Hour,
	})
	want := sessiontest.Reference(def, events)
	arrival := sessiontest.Arrange(rng, sessiontest.Duplicate(rng, events, 0.05), sessiontest.Late)
	const writers = 4
	byKey := func(e *event.Event) int {
		h := fnv.New32a()
		h.Write([]byte(e.Tenant + "/" + session.KeyOf(e)))
		return int(h.Sum32() % writers)
	}
	byArrival := func(*event.Event) int { return rng.IntN(writers) }
	for _, tc := range []struct {
		name   string
		writer func(*event.Event) int
	}{{"disjoint keys", byKey}, {"shared keys", byArrival}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, _ := openStore(ctx, t)
			a := session.NewAssembler(def, st)
			streams := make([][]event.Event, writers)
			for i := range arrival {
				w := tc.writer(&arrival[i])
				streams[w] = append(streams[w], arrival[i])
			}
			var wg sync.WaitGroup
			errs := make([]error, writers)
			for w, stream := range streams {
				wg.Go(func() {
					for len(stream) > 0 {
						n := min(len(stream), 40)
						if err := a.Ingest(ctx, stream[:n]); err != nil {
							errs[w] = err
							return
						}
						stream = stream[n:]
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			from, to := sessiontest.Base.Add(-24*time.Hour), sessiontest.Base.Add(30*24*time.Hour)
			if err := sessiontest.Check(ctx, st, tenants, from, to, want); err != nil {
				t.Fatal(err)
			}
		})
	}
}
