package elastic

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
	"github.com/chatreport/chatreport/internal/versions"
)

var (
	propertyN    = flag.Int("property.n", 120, "scenarios of TestStoreMatchesReference")
	propertySeed = flag.Uint64("property.seed", 0, "run only the scenario of this seed")
)

// TestStoreMatchesReference: random multi-tenant scenarios (explicit and
// derived sessions, duplicates, events up to days late, arrival shuffled,
// in order, reversed) delivered in random batches through two writers of
// one cluster, as two ingesters between which partitions move; now and then
// a bulk request fails midway (the writer "dies": its batch is delivered
// again) and a writer restarts with nothing in memory. The fake searches
// only what a refresh made visible and never refreshes by itself, so the
// write path is shown to need no search. The end state must be the
// reference implementation's, session for session.
func TestStoreMatchesReference(t *testing.T) {
	eachSeed(t, *propertyN, func(seed uint64) error { return storeScenario(t, seed, false) })
}

// TestStoreMatchesReferenceWithRefusals: the same scenarios, with about one
// event in six refused by Elasticsearch (400 on its document, every time):
// the store dead-letters them (RejectedError; the batch is committed) and
// must end in the reference's sessions of the other events, with no key
// document left claimed — also where a refused event was the only one of
// its key in a batch, or opened a session of its own.
func TestStoreMatchesReferenceWithRefusals(t *testing.T) {
	eachSeed(t, *propertyN/2, func(seed uint64) error { return storeScenario(t, seed, true) })
}

// eachSeed runs scenarios 1 to n of t's property (a quarter of them with
// -short), or only -property.seed, and stops at the first that fails,
// saying how to run it alone.
func eachSeed(t *testing.T, n int, run func(seed uint64) error) {
	t.Helper()
	first := uint64(1)
	if *propertySeed != 0 {
		first, n = *propertySeed, 1
	} else if testing.Short() {
		n /= 4
	}
	for seed := first; seed < first+uint64(n); seed++ {
		if err := run(seed); err != nil {
			t.Fatalf("%v\nreproduce with: go test ./internal/store/elastic -run '^%s$' -property.seed=%d", err, t.Name(), seed)
		}
	}
}

// scenario is a random multi-tenant set of events, as they arrive, and what
// the reference implementation makes of them.
type scenario struct {
	seed    uint64
	rng     *rand.Rand
	tenants []string
	def     *pipeline.Definition
	events  []event.Event
	want    map[session.Ref]sessiontest.Expected
	order   string
	arrival []event.Event
	log     []string
}

func newScenario(seed uint64) *scenario {
	sc := &scenario{seed: seed, rng: rand.New(rand.NewPCG(seed, 0xe1a5)), def: sessiontest.Definition()}
	sc.tenants = []string{"acme", "globex", "initech"}[:1+sc.rng.IntN(3)]
	sc.events = sessiontest.Generate(sc.rng, sessiontest.Options{
		Tenants: sc.tenants, Conversations: 1 + sc.rng.IntN(8), MaxEvents: 1 + sc.rng.IntN(12),
		Start: sessiontest.Base, Spread: time.Duration(1+sc.rng.IntN(4)) * 24 * time.Hour,
	})
	sc.want = sessiontest.Reference(sc.def, sc.events)
	order := sessiontest.Orders[sc.rng.IntN(len(sessiontest.Orders))]
	sc.order = fmt.Sprint(order)
	sc.arrival = sessiontest.Arrange(sc.rng, sessiontest.Duplicate(sc.rng, sc.events, 0.1), order)
	return sc
}

// batches cuts the arrival into random batches.
func (sc *scenario) batches() [][]event.Event {
	var out [][]event.Event
	maxBatch := max(1, len(sc.arrival)/4)
	for pos := 0; pos < len(sc.arrival); {
		end := min(len(sc.arrival), pos+1+sc.rng.IntN(maxBatch))
		out = append(out, sc.arrival[pos:end])
		pos = end
	}
	return out
}

// check compares what s stored with the reference.
func (sc *scenario) check(t *testing.T, s *Store, f *esfake.Server) error {
	ctx := context.Background()
	storetest.Visible(t, s)
	from, to := sessiontest.Base.Add(-24*time.Hour), sessiontest.Base.Add(60*24*time.Hour)
	if err := sessiontest.Check(ctx, s, sc.tenants, from, to, sc.want); err != nil {
		return fmt.Errorf("seed %d, %d events, arrival %s, deliveries %s:\n%w", sc.seed, len(sc.events), sc.order, strings.Join(sc.log, " "), err)
	}
	if err := sessionDocsMatch(f, sc.want); err != nil {
		return fmt.Errorf("seed %d, %d events, arrival %s, deliveries %s:\n%w", sc.seed, len(sc.events), sc.order, strings.Join(sc.log, " "), err)
	}
	return nil
}

// storeScenario runs scenario seed; with refusing, about one event in six
// is refused for good.
func storeScenario(t *testing.T, seed uint64, refusing bool) error {
	ctx := context.Background()
	sc := newScenario(seed)
	rng, arrival := sc.rng, sc.arrival
	refused := map[string]bool{} // by event document id
	if refusing {
		var kept []event.Event
		for _, e := range sc.events {
			if rng.IntN(6) == 0 {
				refused[docID(e.Tenant, e.EventID)] = true
				continue
			}
			kept = append(kept, e)
		}
		sc.want = sessiontest.Reference(sc.def, kept)
	}
	f := esfake.New(t, esfake.WithRefreshInterval(esfake.NoRefresh))
	var failing atomic.Bool
	f.BulkHook = func(action, index, id string, attempt int) (int, string) {
		if refused[id] && strings.Contains(index, "-events-") {
			return 400, "document_parsing_exception"
		}
		if failing.Load() && rng.IntN(3) == 0 {
			return 503, "unavailable_shards_exception"
		}
		return 0, ""
	}
	open := func() *Store {
		return fakeStore(t, f, func(c *Config) {
			c.BulkAttempts, c.ClaimLease, c.UpdateAttempts = 1, time.Nanosecond, 20
		})
	}
	writers := []*Store{open(), open()}
	maxBatch := max(1, len(arrival)/4)
	for pos, failures := 0, 0; pos < len(arrival); {
		w := rng.IntN(2)
		switch rng.IntN(8) {
		case 0:
			writers[w] = open() // a restart: nothing in memory
			sc.log = append(sc.log, fmt.Sprintf("restart %d", w))
		}
		end := min(len(arrival), pos+1+rng.IntN(maxBatch))
		failing.Store(rng.IntN(6) == 0)
		err := session.NewAssembler(sc.def, writers[w]).Ingest(ctx, arrival[pos:end])
		failing.Store(false)
		var rej *RejectedError
		if refusing && errors.As(err, &rej) {
			err = nil // dead-lettered: the batch is committed
		}
		if err != nil {
			if failures++; failures > 50 {
				return fmt.Errorf("seed %d: ingest keeps failing: %w", seed, err)
			}
			sc.log = append(sc.log, fmt.Sprintf("%d:[%d:%d] failed", w, pos, end))
			continue
		}
		sc.log = append(sc.log, fmt.Sprintf("%d:[%d:%d]", w, pos, end))
		pos = end
	}
	if err := sc.check(t, writers[0], f); err != nil {
		return err
	}
	if refusing {
		for id, d := range f.Docs("test-keys-*") {
			if d["pending"] != nil {
				return fmt.Errorf("seed %d: key document %s left claimed; deliveries %s", seed, id, strings.Join(sc.log, " "))
			}
		}
	}
	return nil
}

// sessionDocsMatch checks that every session document stored is, byte for
// byte, the document of the reference's session with all its events: the
// summary, the messages and the event references as a whole recomputation
// writes them, whatever batches, restarts and failures wrote them.
func sessionDocsMatch(f *esfake.Server, want map[session.Ref]sessiontest.Expected) error {
	docs := f.Sources("test-sessions-*")
	if len(docs) != len(want) {
		return fmt.Errorf("%d session documents, the reference has %d sessions", len(docs), len(want))
	}
	for ref, exp := range want {
		evs := make([]session.Stored, len(exp.Events))
		for i := range exp.Events {
			evs[i] = session.Stored{Event: &exp.Events[i], SessionID: ref.ID}
		}
		slices.SortFunc(evs, func(a, b session.Stored) int { return event.Compare(a.Event, b.Event) })
		d := newSessionDoc(&exp.Session, evs)
		key := "test-sessions-" + versions.Initial + "-" + exp.Session.StartedAt.UTC().Format(monthLayout) + " " + docID(ref.Tenant, ref.ID)
		if got, want := docs[key], d.appendJSON(nil); !bytes.Equal(got, want) {
			return fmt.Errorf("session document %s:\n got %s\nwant %s", key, got, want)
		}
	}
	return nil
}
