package session_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
	"github.com/chatreport/chatreport/internal/store/sqlite"
)

var (
	propertySeed  = flag.Uint64("property.seed", 0, "run only the scenario of this seed, in every arrival order")
	propertyFirst = flag.Uint64("property.first", 1, "seed of the first scenario; the others follow")
	propertyN     = flag.Int("property.n", 0, "scenarios to run (default 1200 in memory and 300 on SQLite; a quarter with -short)")
)

// TestAssemblerMatchesReference: for random multi-tenant scenarios, any
// arrival order, any batching, redelivery from any committed offset and
// failed updates give exactly the sessions of the reference implementation.
// Stores are in memory; TestAssemblerMatchesReferenceSQLite repeats a share
// of the scenarios on the SQLite store.
func TestAssemblerMatchesReference(t *testing.T) {
	var mu sync.Mutex
	var total sessiontest.Stats
	runProperty(t, 1200, 3, func(rng *rand.Rand) (*testStore, error) {
		m := sessiontest.NewMemStore()
		// One update in twenty fails after computing its changes, as a
		// crash before commit would; the batch is delivered again.
		m.Fail = func() bool { return rng.IntN(20) == 0 }
		return &testStore{Store: m, reopen: func() error { return nil }, close: func() {
			s := m.Stats()
			mu.Lock()
			defer mu.Unlock()
			total.Updates += s.Updates
			total.Late += s.Late
			total.Moved += s.Moved
			total.Deleted += s.Deleted
		}}, nil
	})
	t.Logf("%d updates; %d late look-ups; %d events moved to another session, %d sessions deleted",
		total.Updates, total.Late, total.Moved, total.Deleted)
	if *propertySeed == 0 && !t.Failed() && (total.Moved == 0 || total.Deleted == 0 || total.Late == 0) {
		t.Error("no late event moved a window boundary: the scenarios prove little")
	}
}

func TestAssemblerMatchesReferenceSQLite(t *testing.T) {
	dir := t.TempDir()
	var dbs atomic.Int64
	runProperty(t, 300, 1, func(*rand.Rand) (*testStore, error) {
		path := filepath.Join(dir, fmt.Sprintf("s%d.db", dbs.Add(1)))
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			return nil, err
		}
		ts := &testStore{Store: db}
		ts.close = func() { ts.Store.(*sqlite.Store).Close() }
		// A restart closes the database and opens it again.
		ts.reopen = func() error {
			ts.close()
			db, err := sqlite.Open(context.Background(), path)
			if err != nil {
				return err
			}
			ts.Store = db
			return nil
		}
		return ts, nil
	})
}

// testStore is a store a scenario can restart, as a new process would find
// it.
type testStore struct {
	sessiontest.Store
	reopen func() error
	close  func()
}

// openStore returns a fresh store.
type openStore func(rng *rand.Rand) (*testStore, error)

func runProperty(t *testing.T, scenarios, orders int, open openStore) {
	if *propertySeed != 0 {
		if err := runScenario(*propertySeed, len(sessiontest.Orders), open); err != nil {
			t.Fatal(err)
		}
		return
	}
	if *propertyN > 0 {
		scenarios = *propertyN
	} else if testing.Short() {
		scenarios /= 4
	}
	first := *propertyFirst
	t.Logf("%d scenarios, seeds %d to %d, %d arrival orders each", scenarios, first, first+uint64(scenarios)-1, orders)

	var (
		next   atomic.Uint64
		mu     sync.Mutex
		failed []error
		wg     sync.WaitGroup
	)
	next.Store(first)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				seed := next.Add(1) - 1
				if seed >= first+uint64(scenarios) {
					return
				}
				if err := runScenario(seed, orders, open); err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	for i, err := range failed {
		if i == 3 {
			break
		}
		t.Error(err)
	}
	if len(failed) > 0 {
		t.Logf("reproduce one scenario with: go test ./internal/session/ -run '%s$' -property.seed=N", t.Name())
	}
}

// runScenario generates the events of seed and delivers them in orders
// arrival orders, each into a fresh store, comparing the end state with the
// reference. The error names the seed and the order.
func runScenario(seed uint64, orders int, open openStore) error {
	ctx := context.Background()
	sc := newScenario(seed)
	def := sessiontest.Definition()
	want := sessiontest.Reference(def, sc.events)
	if err := sessiontest.Invariants(sc.events, want); err != nil {
		return fmt.Errorf("seed %d: the reference breaks an invariant: %w", seed, err)
	}
	if withDups := sessiontest.Reference(def, sc.delivered); len(withDups) != len(want) {
		return fmt.Errorf("seed %d: duplicates change the reference: %d sessions, %d without", seed, len(withDups), len(want))
	}
	from, to := sessiontest.Base.Add(-24*time.Hour), sessiontest.Base.Add(60*24*time.Hour)

	kinds := sc.rng.Perm(len(sessiontest.Orders))[:orders]
	for _, k := range kinds {
		order := sessiontest.Orders[k]
		st, err := open(sc.rng)
		if err != nil {
			return fmt.Errorf("seed %d: open store: %w", seed, err)
		}
		arrival := sessiontest.Arrange(sc.rng, sc.delivered, order)
		log, err := deliver(ctx, sc.rng, st, arrival)
		if err == nil {
			// Every tenant, so that a session leaking into a tenant
			// absent from the scenario shows too.
			err = sessiontest.Check(ctx, st, allTenants, from, to, want)
		}
		st.close()
		if err != nil {
			return fmt.Errorf("seed %d, %d events, arrival %s, deliveries %s:\n%w", seed, len(sc.events), order, log, err)
		}
	}
	return nil
}

var allTenants = []string{"acme", "globex", "initech"}

// scenario is the generated input of one seed.
type scenario struct {
	rng     *rand.Rand
	tenants []string
	// events are distinct; delivered has some of them twice.
	events, delivered []event.Event
}

func newScenario(seed uint64) scenario {
	rng := rand.New(rand.NewPCG(seed, 0x5e551011))
	tenants := allTenants[:1+rng.IntN(len(allTenants))]
	events := sessiontest.Generate(rng, sessiontest.Options{
		Tenants:       tenants,
		Conversations: 1 + rng.IntN(10),
		MaxEvents:     1 + rng.IntN(14),
		Start:         sessiontest.Base,
		Spread:        time.Duration(1+rng.IntN(5)) * 24 * time.Hour,
	})
	return scenario{rng: rng, tenants: tenants, events: events, delivered: sessiontest.Duplicate(rng, events, 0.1)}
}

// deliveryLog records how events were delivered, for failure messages.
type deliveryLog struct {
	batches []string
}

func (l *deliveryLog) String() string { return fmt.Sprint(l.batches) }

// deliver ingests arrival in random batches the way a consumer would: a
// failed batch is delivered again; now and then the consumer restarts from
// an earlier committed offset (a fresh Assembler, a reopened store) and
// delivers again what it had already stored.
func deliver(ctx context.Context, rng *rand.Rand, st *testStore, arrival []event.Event) (*deliveryLog, error) {
	def := sessiontest.Definition()
	log := &deliveryLog{}
	a := session.NewAssembler(def, st)
	maxBatch := max(1, len(arrival)/3)
	restarts, failures := 0, 0
	for pos := 0; pos < len(arrival); {
		end := min(len(arrival), pos+1+rng.IntN(maxBatch))
		if err := a.Ingest(ctx, arrival[pos:end]); err != nil {
			if failures++; failures > 50 {
				return log, fmt.Errorf("ingest keeps failing: %w", err)
			}
			log.batches = append(log.batches, fmt.Sprintf("[%d:%d]failed", pos, end))
			continue
		}
		log.batches = append(log.batches, fmt.Sprintf("[%d:%d]", pos, end))
		pos = end
		if restarts < 3 && rng.IntN(5) == 0 {
			restarts++
			pos = rng.IntN(pos + 1)
			if err := st.reopen(); err != nil {
				return log, fmt.Errorf("restart: %w", err)
			}
			a = session.NewAssembler(def, st.Store)
			log.batches = append(log.batches, fmt.Sprintf("restart@%d", pos))
		}
	}
	return log, nil
}

// TestNamespace pins the namespace of derived session ids to the value
// docs/sessions.md states: changing it changes every derived id.
func TestNamespace(t *testing.T) {
	if got := session.Namespace.String(); got != sessiontest.NamespaceText {
		t.Fatalf("session.Namespace is %s, docs/sessions.md says %s", got, sessiontest.NamespaceText)
	}
}

// TestScenariosExerciseTheRules counts, over the property test's scenarios,
// the situations the rules single out, so that a change to the generator
// cannot quietly make the property tests weaker.
func TestScenariosExerciseTheRules(t *testing.T) {
	n := 1200
	if testing.Short() {
		n /= 4
	}
	def := sessiontest.Definition()
	counts := map[string]int{}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		sc := newScenario(seed)
		if len(sc.delivered) > len(sc.events) {
			counts["duplicate deliveries"]++
		}
		ids := map[string]map[string]bool{} // event id → tenants
		for _, e := range sc.events {
			if ids[e.EventID] == nil {
				ids[e.EventID] = map[string]bool{}
			}
			ids[e.EventID][e.Tenant] = true
		}
		for _, ts := range ids {
			if len(ts) > 1 {
				counts["event id reused by another tenant"]++
			}
		}
		want := sessiontest.Reference(def, sc.events)
		chains := map[string][]sessiontest.Expected{}
		explicitTenants := map[string]int{}
		for ref, x := range want {
			s := x.Session
			if s.Key[0] == 's' {
				explicitTenants[ref.ID]++
				for _, e := range x.Events {
					if e.Channel != s.Channel {
						counts["explicit session across channels"]++
						break
					}
				}
			} else {
				chains[ref.Tenant+s.Key] = append(chains[ref.Tenant+s.Key], x)
			}
			if len(x.Events) > 1 && x.Events[1].OccurredAt.Equal(s.StartedAt) {
				counts["tie on a session's first timestamp"]++
			}
			if s.Channel == "webchat" && s.Key[0] == 'd' && s.WindowEndsAt.After(s.StartedAt.Add(30*time.Minute)) {
				counts["sliding window extended by a customer"]++
			}
			for _, a := range s.Agents {
				if a.ID == a.Name {
					counts["agent known by name only"]++
				}
			}
			for _, a := range s.Attendances {
				switch a.Status {
				case session.StatusOpen:
					counts["open attendance"]++
				case session.StatusClosed:
					counts["attendance closed without status"]++
				default:
					counts["attendance closed with status"]++
				}
			}
			for _, e := range x.Events {
				counts["type "+string(e.Type)]++
				if e.Author != nil {
					counts["role "+e.Author.Role]++
				}
			}
		}
		for _, n := range explicitTenants {
			if n > 1 {
				counts["session id reused by another tenant"]++
			}
		}
		for _, chain := range chains {
			if len(chain) < 2 {
				continue
			}
			counts["derived key with several windows"]++
			slices.SortFunc(chain, func(a, b sessiontest.Expected) int { return a.Session.StartedAt.Compare(b.Session.StartedAt) })
			for i := 1; i < len(chain); i++ {
				prev, next := chain[i-1], chain[i]
				if next.Session.StartedAt.Equal(prev.Session.WindowEndsAt) {
					counts["window opened exactly at the previous end"]++
				}
				// A bot or agent message within 30 minutes before
				// the next window opened: it did not extend its own.
				last := prev.Events[len(prev.Events)-1]
				if prev.Session.Channel == "webchat" && last.Author != nil && last.Author.Role != event.RoleCustomer &&
					next.Session.StartedAt.Before(last.OccurredAt.Add(30*time.Minute)) {
					counts["sliding window not extended by bot or agent"]++
				}
			}
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.Logf("%-45s %6d", k, counts[k])
	}
	for _, k := range []string{
		"duplicate deliveries", "event id reused by another tenant", "explicit session across channels",
		"tie on a session's first timestamp", "sliding window extended by a customer", "agent known by name only",
		"open attendance", "attendance closed without status", "attendance closed with status",
		"type message", "type handoff", "type tag", "type info", "role customer", "role bot", "role agent",
		"session id reused by another tenant", "derived key with several windows",
		"window opened exactly at the previous end", "sliding window not extended by bot or agent",
	} {
		if counts[k] < 10 {
			t.Errorf("%s: %d times in %d scenarios, want at least 10", k, counts[k], n)
		}
	}
}
