package elastic

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
)

var (
	concurrentSeed = flag.Uint64("concurrent.seed", 0, "run only the concurrent-writers scenario of this seed")
	concurrentN    = flag.Int("concurrent.n", 0, "concurrent-writers scenarios to run (default 60; 15 with -short)")
)

// TestConcurrentWriters: several writers, each a Store of its own, ingest
// overlapping shares of one scenario's events at the same time, in random
// batches and orders, as the live ingester and a replay do when both write
// the version being built, or two ingesters during a rebalance. Whatever
// the interleaving of their requests, the end state is the reference's.
func TestConcurrentWriters(t *testing.T) {
	first, n := uint64(1), *concurrentN
	switch {
	case *concurrentSeed != 0:
		first, n = *concurrentSeed, 1
	case n == 0 && testing.Short():
		n = 15
	case n == 0:
		n = 60
	}
	core, logs := observer.New(zap.DebugLevel)
	log, obs := zap.New(core), &countingObserver{}
	for seed := first; seed < first+uint64(n); seed++ {
		if err := concurrentScenario(t, seed, log, obs); err != nil {
			t.Errorf("%v\nreproduce with: go test ./internal/store/elastic -run TestConcurrentWriters -concurrent.seed=%d", err, seed)
		}
	}
	conflicts := obs.conflicts
	widened := logs.FilterMessageSnippet("reading the key again").Len()
	t.Logf("%d conflicts, %d reads of a key widened to an earlier session", conflicts, widened)
	if n >= 60 && conflicts == 0 {
		t.Error("the writers never met: the scenarios prove little")
	}
}

func concurrentScenario(t *testing.T, seed uint64, log *zap.Logger, obs Observer) error {
	rng := rand.New(rand.NewPCG(seed, 0xc0c0))
	tenants := []string{"acme", "globex"}[:1+rng.IntN(2)]
	events := sessiontest.Generate(rng, sessiontest.Options{
		Tenants:       tenants,
		Conversations: 2 + rng.IntN(5),
		MaxEvents:     2 + rng.IntN(12),
		Start:         sessiontest.Base,
		Spread:        time.Duration(1+rng.IntN(3)) * 24 * time.Hour,
	})
	want := sessiontest.Reference(sessiontest.Definition(), events)

	// Every event goes to at least one writer, a third of them to more.
	writers := 2 + rng.IntN(2)
	shares := make([][]event.Event, writers)
	for _, e := range events {
		first := rng.IntN(writers)
		shares[first] = append(shares[first], e)
		for w := range writers {
			if w != first && rng.IntN(3) == 0 {
				shares[w] = append(shares[w], e)
			}
		}
	}
	f := esfake.New(t)
	stores := make([]*Store, writers)
	tr := &trace{}
	for w := range stores {
		stores[w] = loggedFakeStore(t, f, log, func(c *Config) {
			c.UpdateAttempts = 50
			c.Observer = obs
			// Small pages in half the scenarios: keys then outgrow
			// Prefetch's single pages and are read page by page alone.
			c.PageSize = []int{1000, 3}[seed%2]
			c.Addresses = []string{tr.proxy(t, w, f.URL())}
		})
	}
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		order := sessiontest.Orders[rng.IntN(len(sessiontest.Orders))]
		arrival := sessiontest.Arrange(rand.New(rand.NewPCG(seed, uint64(w))), shares[w], order)
		batchRng := rand.New(rand.NewPCG(seed, uint64(w)+100))
		wg.Go(func() {
			errs[w] = ingestAll(t.Context(), batchRng, stores[w], arrival)
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			return fmt.Errorf("seed %d: writer %d: %w", seed, w, err)
		}
	}
	from, to := sessiontest.Base.Add(-24*time.Hour), sessiontest.Base.Add(60*24*time.Hour)
	if err := sessiontest.Check(t.Context(), stores[0], tenants, from, to, want); err != nil {
		path := filepath.Join(t.ArtifactDir(), fmt.Sprintf("seed-%d.trace", seed))
		if werr := os.WriteFile(path, []byte(tr.String()), 0o644); werr != nil {
			t.Log(werr)
		}
		return fmt.Errorf("seed %d, %d events, %d writers: %w\nstored documents:\n%s\nthe requests, in the order answered, are in %s (kept with -artifacts)",
			seed, len(events), writers, err, dumpDocs(f), path)
	}
	return nil
}

// ingestAll delivers arrival in random batches.
func ingestAll(ctx context.Context, rng *rand.Rand, s *Store, arrival []event.Event) error {
	a := session.NewAssembler(sessiontest.Definition(), s)
	for pos := 0; pos < len(arrival); {
		end := min(len(arrival), pos+1+rng.IntN(4))
		if err := a.Ingest(ctx, arrival[pos:end]); err != nil {
			return fmt.Errorf("events [%d:%d]: %w", pos, end, err)
		}
		pos = end
	}
	return nil
}

// dumpDocs lists the stored events and sessions, one line each.
func dumpDocs(f *esfake.Server) string {
	var lines []string
	for id, d := range f.Docs("test-events-v1-*") {
		lines = append(lines, fmt.Sprintf("event %s key=%v at=%v session=%v", id, d["key"], d["occurred_at"], d["session"]))
	}
	for id, d := range f.Docs("test-sessions-v1-*") {
		lines = append(lines, fmt.Sprintf("session %s key=%v start=%v events=%v", id, d["key"], d["started_at"], d["events"]))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// trace records the requests of every writer in the order the fake
// answered them.
type trace struct {
	mu  sync.Mutex
	log []string
}

func (tr *trace) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.log, "\n")
}

// proxy returns the address of a proxy to target that records writer w's
// requests and answers.
func (tr *trace) proxy(t *testing.T, w int, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		tr.mu.Lock()
		tr.log = append(tr.log, fmt.Sprintf("[writer %d] %s %s\n> %s\n< %s", w, r.Method, r.URL.RequestURI(), body, rec.Body.Bytes()))
		tr.mu.Unlock()
		maps.Copy(rw.Header(), rec.Header())
		rw.WriteHeader(rec.Code)
		rw.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
