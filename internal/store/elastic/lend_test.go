package elastic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// gate is a transport that holds the first _bulk request whose body
// contains hold until open is closed, then sends it (or, with fail,
// answers it 503 without sending it), and logs when each key document's
// claim (pending) and release of each generation starts and ends, and
// when each request with hold does ("held"), and each with a string of
// watch (its value). With refuse, the first request whose body contains it
// is answered 503 without being sent.
type gate struct {
	hold string
	// holdMark, when set, holds the first request with that mark
	// ("release 1") instead.
	holdMark string
	fail     bool
	refuse   string
	watch    map[string]string
	held     chan struct{} // closed when the held request arrives
	open     chan struct{}
	once     atomic.Bool
	refused  atomic.Bool
	mu       sync.Mutex
	log      []string
	keyDocs  *regexp.Regexp
}

func newGate(hold string, fail bool) *gate {
	return &gate{hold: hold, fail: fail, held: make(chan struct{}), open: make(chan struct{}),
		keyDocs: regexp.MustCompile(`"gen":(\d+),"writer":"[0-9a-f]+"(,"pending":true)?`)}
}

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, "/_bulk") {
		return http.DefaultTransport.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var marks []string
	for _, m := range g.keyDocs.FindAllStringSubmatch(string(body), -1) {
		step := "release"
		if m[2] != "" {
			step = "claim"
		}
		marks = append(marks, step+" "+m[1])
	}
	hold := g.hold != "" && bytes.Contains(body, []byte(g.hold))
	if g.holdMark != "" {
		hold = slices.Contains(marks, g.holdMark)
	}
	if hold {
		marks = append(marks, "held")
	}
	for pattern, mark := range g.watch {
		if bytes.Contains(body, []byte(pattern)) {
			marks = append(marks, mark)
		}
	}
	g.note("start", marks)
	if hold && g.once.CompareAndSwap(false, true) {
		close(g.held)
		<-g.open
		if g.fail {
			return unavailable(req), nil
		}
	}
	if g.refuse != "" && bytes.Contains(body, []byte(g.refuse)) && g.refused.CompareAndSwap(false, true) {
		g.note("end", marks)
		return unavailable(req), nil
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		// The answer is read whole before the end is logged: the caller
		// has it when the next request starts.
		data, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		res.Body = io.NopCloser(bytes.NewReader(data))
	}
	g.note("end", marks)
	return res, err
}

// unavailable is a 503 answer to req, as a cluster without its shards
// gives.
func unavailable(req *http.Request) *http.Response {
	return &http.Response{StatusCode: http.StatusServiceUnavailable, Request: req,
		Header: http.Header{"Content-Type": {"application/json"}, "X-Elastic-Product": {"Elasticsearch"}},
		Body:   io.NopCloser(strings.NewReader(`{"error":{"type":"unavailable_shards_exception","reason":"held"},"status":503}`))}
}

func (g *gate) note(when string, marks []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range marks {
		g.log = append(g.log, when+" "+m)
	}
}

// await waits until entry is in the log.
func (g *gate) await(t *testing.T, entry string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); g.position(entry) < 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			g.mu.Lock()
			defer g.mu.Unlock()
			t.Fatalf("%q never came: %v", entry, g.log)
		}
	}
}

// position is where entry is in the log (-1: not there).
func (g *gate) position(entry string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, e := range g.log {
		if e == entry {
			return i
		}
	}
	return -1
}

// awaitFollower waits until a write of s follows another write of its key
// in flight: an update lent the successor of a state another write lent.
// It returns the follower's flight, whose handing over lend decided then.
// f.prev is written without flightsMu when a flight lands (flight.land);
// the caller's gate holds the write followed, so none lands here.
func awaitFollower(t *testing.T, s *Store) *flight {
	t.Helper()
	follower := func() *flight {
		s.flightsMu.Lock()
		defer s.flightsMu.Unlock()
		for _, f := range s.flights {
			if f.prev != nil {
				return f
			}
		}
		return nil
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if f := follower(); f != nil {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatal("no write followed the write in flight of its key")
		}
	}
}

// TestLentState: two updates of one key in flight at once. The first
// (events e1, e2) is held in its second bulk request (the sessions and
// events). The second update of the key plans on the state the first lent
// it while that request is held (before the change, it waited for the whole
// first update); its claim starts once the first update's claim was
// answered, while the first update's data are held, conditional on the
// first claim's version, and its data only after the first update's data
// were stored: the first update hands the key over (Store.handOver) and
// never releases it, the second does. When the
// first write fails, the second gives up what it planned on and computes
// again from the store: also when it found nothing to write because the
// first was writing its events (a duplicate delivery). That run is not
// counted: the store allows one attempt here, and the first update began
// before the second (TestLostAttemptsCount).
func TestLentState(t *testing.T) {
	c := storetest.B{Contact: "5511900000042"}
	m := time.Minute
	first := []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi"), c.Msg("e2", m, event.RoleBot, "olá")}
	newer := []event.Event{c.Msg("e3", 2*m, event.RoleCustomer, "segunda via")}
	again := []event.Event{c.Msg("e2", m, event.RoleBot, "olá")}
	tests := []struct {
		name   string
		second []event.Event
		fail   bool
		// calls is how many times the second update's fn runs.
		calls int
		// after is what the store holds once both updates returned
		// (before the failed batch is delivered again).
		after [][]event.Event
		// claims: the second update claims the key while the first
		// one's data are held (generation 2 after 1) and writes its own
		// after them; the first hands the key over: only the second
		// releases it.
		claims bool
	}{
		{name: "a new event", second: newer, calls: 1, after: [][]event.Event{first, newer}, claims: true},
		{name: "a duplicate", second: again, calls: 1, after: [][]event.Event{first}},
		{name: "a new event, the first write fails", second: newer, fail: true, calls: 2, after: [][]event.Event{newer}},
		{name: "a duplicate, the first write fails", second: again, fail: true, calls: 2, after: [][]event.Event{again}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := esfake.New(t)
			g := newGate(`"_id":"acme/e2"`, tc.fail)
			g.watch = map[string]string{`"_id":"acme/e3"`: "data 2"}
			s := fakeStore(t, f, func(c *Config) { c.Transport, c.BulkAttempts, c.UpdateAttempts = g, 1, 1 })
			defer func() {
				select {
				case <-g.open:
				default:
					close(g.open)
				}
			}()
			firstErr := make(chan error, 1)
			go func() { firstErr <- assembler(s).Ingest(t.Context(), first) }()
			<-g.held

			planned := make(chan struct{}, tc.calls+1)
			var calls atomic.Int64
			secondErr := make(chan error, 1)
			go func() {
				secondErr <- s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
					calls.Add(1)
					ch, err := assembler(s).Assemble(ctx, r, tc.second)
					planned <- struct{}{}
					return ch, err
				})
			}()
			select {
			case <-planned:
			case <-time.After(10 * time.Second):
				t.Fatal("the second update did not plan while the first one's write was in flight")
			}
			if tc.claims {
				// The second claim is answered while the first write's
				// data are held.
				g.await(t, "end claim 2")
			}
			close(g.open)
			err1, err2 := <-firstErr, <-secondErr
			if tc.fail {
				if !errors.Is(err1, ErrUnavailable) {
					t.Fatalf("the failed first update: %v, want ErrUnavailable", err1)
				}
			} else if err1 != nil {
				t.Fatal(err1)
			}
			if err2 != nil {
				t.Fatal(err2)
			}
			if got := int(calls.Load()); got != tc.calls {
				t.Errorf("the second update's fn ran %d times, want %d", got, tc.calls)
			}
			data1, data2 := g.position("end held"), g.position("start data 2")
			switch {
			case !tc.claims:
			case data1 < 0 || data2 < 0:
				t.Errorf("want the first write's data and the second's, got: %v", g.log)
			case data2 < data1:
				t.Errorf("the second write's data started before the first one's were stored: %v", g.log)
			}
			if tc.claims && (g.position("start release 1") >= 0 || g.position("end release 2") < 0) {
				t.Errorf("want the key handed over: released once, by the second write, got: %v", g.log)
			}
			sameState(t, snapshot(t, s), reference(t, tc.after...))
			if tc.fail {
				// The ingester delivers the failed batch again.
				if err := assembler(s).Ingest(t.Context(), first); err != nil {
					t.Fatal(err)
				}
				sameState(t, snapshot(t, s), reference(t, first, tc.second))
			}
		})
	}
}

// TestLostAttemptsCount: an update that planned on the state a write of
// another Update call lent, a write that then failed, runs again (errLost).
// The run is free when that call began before it (TestLentState), and
// counts against UpdateAttempts when it began after it, so that calls
// planning on each other's failing writes cannot run each other again
// for ever. Here the earlier call waits to plan until the later one's
// write is held, then fails: with one attempt it gives up, with two it
// stores its event.
func TestLostAttemptsCount(t *testing.T) {
	c := storetest.B{Contact: "5511900000042"}
	m := time.Minute
	later := []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi"), c.Msg("e2", m, event.RoleBot, "olá")}
	earlier := []event.Event{c.Msg("e3", 2*m, event.RoleCustomer, "segunda via")}
	for _, attempts := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d attempts", attempts), func(t *testing.T) {
			g := newGate(`"_id":"acme/e2"`, true)
			s := fakeStore(t, esfake.New(t), func(c *Config) { c.Transport, c.BulkAttempts, c.UpdateAttempts = g, 1, attempts })
			defer func() {
				select {
				case <-g.open:
				default:
					close(g.open)
				}
			}()
			began := make(chan struct{})
			var calls atomic.Int64
			earlierErr := make(chan error, 1)
			go func() {
				earlierErr <- s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
					if calls.Add(1) == 1 {
						close(began)
						select {
						case <-g.held: // the later call's write is in flight
						case <-time.After(10 * time.Second):
							return session.Changes{}, errors.New("the later call's write was never in flight")
						}
					}
					return assembler(s).Assemble(ctx, r, earlier)
				})
			}()
			<-began
			laterErr := make(chan error, 1)
			go func() { laterErr <- assembler(s).Ingest(t.Context(), later) }()
			<-g.held
			// The earlier call plans on the state the later one lent: its
			// write follows the later one's (and waits for it to claim).
			awaitFollower(t, s)
			close(g.open)
			if err := <-laterErr; !errors.Is(err, ErrUnavailable) {
				t.Fatalf("the later call: %v, want ErrUnavailable", err)
			}
			err := <-earlierErr
			switch attempts {
			case 1:
				if !errors.Is(err, errLost) || calls.Load() != 1 {
					t.Fatalf("with one attempt the earlier call returned %v after %d runs, want errLost after 1", err, calls.Load())
				}
				sameState(t, snapshot(t, s), reference(t))
			default:
				if err != nil || calls.Load() != 2 {
					t.Fatalf("with two attempts the earlier call returned %v after %d runs, want success after 2", err, calls.Load())
				}
				sameState(t, snapshot(t, s), reference(t, earlier))
			}
		})
	}
}

// TestOverlappingUpdatesMatchReference: random scenarios delivered as the
// ingester delivers them with two to eight batches in flight (by seed): each
// batch's update starts while the ones before it are still writing (most
// keys are shared, so a key's writes claim while the one before writes its
// data, up to seven deep),
// a bulk request now and then fails, and a batch that failed is delivered
// again, with those after it, until all are stored. The end state must be
// the reference implementation's.
func TestOverlappingUpdatesMatchReference(t *testing.T) {
	n := *propertyN / 2
	if testing.Short() {
		n /= 4
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		if err := overlapScenario(t, seed); err != nil {
			t.Fatalf("%v\nreproduce with: go test ./internal/store/elastic -run TestOverlappingUpdatesMatchReference -property.n=%d", err, 2*seed)
		}
	}
}

func overlapScenario(t *testing.T, seed uint64) error {
	ctx := context.Background()
	sc := newScenario(seed)
	f := esfake.New(t, esfake.WithRefreshInterval(esfake.NoRefresh))
	var failing atomic.Bool
	// The two updates' requests reach the hook at once: it has a source
	// of its own.
	var mu sync.Mutex
	faults := rand.New(rand.NewPCG(seed, 0xfa17))
	f.BulkHook = func(action, index, id string, attempt int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if failing.Load() && faults.IntN(4) == 0 {
			return 503, "unavailable_shards_exception"
		}
		return 0, ""
	}
	s := fakeStore(t, f, func(c *Config) {
		c.BulkAttempts, c.ClaimLease, c.UpdateAttempts = 1, time.Nanosecond, 20
	})
	batches := sc.batches()
	inFlight := 2 + int(seed%7) // 2 to 8: config.ElasticsearchInFlight is 8
	for pos, failures := 0, 0; pos < len(batches); {
		// inFlight at once: batches pos, pos+1, ….
		end := min(len(batches), pos+inFlight)
		failing.Store(sc.rng.IntN(4) == 0)
		errs := make([]error, end-pos)
		var wg sync.WaitGroup
		for i := pos; i < end; i++ {
			wg.Go(func() { errs[i-pos] = session.NewAssembler(sc.def, s).Ingest(ctx, batches[i]) })
		}
		wg.Wait()
		failing.Store(false)
		// Offsets are committed in order: the first failed batch and
		// those after it are delivered again.
		ok := 0
		for ok < len(errs) && errs[ok] == nil {
			ok++
		}
		sc.log = append(sc.log, fmt.Sprintf("[%d:%d] %d stored", pos, end, ok))
		if ok < len(errs) {
			if failures++; failures > 50 {
				return fmt.Errorf("seed %d: ingest keeps failing: %w", seed, errs[ok])
			}
		}
		pos += ok
	}
	return sc.check(t, s, f)
}

// TestFailedFlightLeavesItsPredecessor: writes of one key W1, W2, W3, each
// following the one before. A write that fails while a write it followed
// is still in flight leaves the latest such write as the key's flight, so
// that a read of the key by id waits for it; once every write ended, the
// key has no flight. A write that succeeds, or fails after the writes it
// followed ended, leaves none. The writes land in the order given (1-based
// indexes of W), W3 last among the failures.
func TestFailedFlightLeavesItsPredecessor(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		// before land before W3 lands, with the errors of fail.
		before []int
		fail   map[int]bool
		// want is the key's flight after W3 lands: a 1-based index, 0
		// for none.
		want int
	}{
		{"fails while both predecessors fly", nil, map[int]bool{3: true}, 2},
		{"fails after its predecessor failed while the first flies", []int{2}, map[int]bool{2: true, 3: true}, 1},
		{"fails after its predecessors ended", []int{1, 2}, map[int]bool{2: true, 3: true}, 0},
		{"fails after its predecessor succeeded", []int{1, 2}, map[int]bool{3: true}, 0},
		{"succeeds", []int{1, 2}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeStore(t, esfake.New(t))
			st := newKeyState(session.StateID{Tenant: "acme", Key: "k"})
			st.Tenant, st.Key = "acme", "k"
			id := session.StateID{Tenant: "acme", Key: "k"}
			var w [4]*flight // 1-based
			for i := 1; i <= 3; i++ {
				w[i] = newFlight(uint64(i))
				if i > 1 {
					w[i].prev = w[i-1]
				}
				s.flights[id] = w[i] // as lend records it
			}
			landed := map[int]bool{}
			land := func(i int) {
				var err error
				if tc.fail[i] {
					err = boom
				}
				s.land([]*keyWrite{{st: st, flight: w[i]}}, err)
				landed[i] = true
			}
			for _, i := range tc.before {
				land(i)
			}
			land(3)
			got, want := s.flightOf(id), (*flight)(nil)
			if tc.want > 0 {
				want = w[tc.want]
			}
			if got != want {
				t.Fatalf("the key's flight is %p, want W%d (%p)", got, tc.want, want)
			}
			for i := 1; i <= 2; i++ {
				if !landed[i] {
					land(i)
				}
			}
			if got := s.flightOf(id); got != nil {
				t.Fatalf("after every write landed the key's flight is %p, want none", got)
			}
		})
	}
}

// TestHandedOverKeyOutlivesItsSuccessor: the first update of a key hands
// it over to the second, which planned while the first one's data were in
// flight, and the second's claim, sent while they are, fails. The key document stays as the
// first write's claim left it (pending, generation 1) while the store holds
// that write's events; delivered again, the second batch reads the key back
// as unfinished, recomputes it and releases it.
func TestHandedOverKeyOutlivesItsSuccessor(t *testing.T) {
	c := storetest.B{Contact: "5511900000042"}
	m := time.Minute
	first := []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi"), c.Msg("e2", m, event.RoleBot, "olá")}
	second := []event.Event{c.Msg("e3", 2*m, event.RoleCustomer, "segunda via")}
	f := esfake.New(t)
	g := newGate(`"_id":"acme/e2"`, false)
	g.refuse = `"gen":2,`
	s := fakeStore(t, f, func(c *Config) { c.Transport, c.BulkAttempts, c.UpdateAttempts = g, 1, 1 })
	firstErr := make(chan error, 1)
	go func() { firstErr <- assembler(s).Ingest(t.Context(), first) }()
	<-g.held
	secondErr := make(chan error, 1)
	go func() { secondErr <- assembler(s).Ingest(t.Context(), second) }()
	// The second plans on the state the first lent and claims once the
	// first claim was answered: while the first write's data are held.
	select {
	case err := <-secondErr:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("the second update, whose claim failed: %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second update did not claim while the first one's data were held")
	}
	close(g.open)
	if err := <-firstErr; err != nil {
		t.Fatal(err)
	}
	if g.position("start release 1") >= 0 {
		t.Fatalf("the first write released the key it handed over: %v", g.log)
	}
	keyDoc := func() map[string]any {
		t.Helper()
		docs := f.Docs("test-keys-v1")
		if len(docs) != 1 {
			t.Fatalf("%d key documents, want 1", len(docs))
		}
		for _, d := range docs {
			return d
		}
		return nil
	}
	if d := keyDoc(); d["pending"] != true || d["gen"] != 1.0 {
		t.Fatalf("the key document after the second claim failed: pending %v, gen %v; want the first claim's (pending, 1)", d["pending"], d["gen"])
	}
	sameState(t, snapshot(t, s), reference(t, first))

	if err := assembler(s).Ingest(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	sameState(t, snapshot(t, s), reference(t, first, second))
	if d := keyDoc(); d["pending"] != nil {
		t.Fatalf("the key document after the second batch came again: pending %v, want released", d["pending"])
	}
}

// TestCancelledReadLetsTheKeyGo: an update that waits to read a key by id
// (its lent state evicted while the write that lent it is in flight) and
// whose context ends meanwhile lets the key go: the next update of the key
// takes it once that write ended.
func TestCancelledReadLetsTheKeyGo(t *testing.T) {
	c := storetest.B{Contact: "5511900000042"}
	m := time.Minute
	first := []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi"), c.Msg("e2", m, event.RoleBot, "olá")}
	later := []event.Event{c.Msg("e3", 2*m, event.RoleCustomer, "segunda via")}
	g := newGate(`"_id":"acme/e2"`, false)
	s := fakeStore(t, esfake.New(t), func(c *Config) { c.Transport = g })
	firstErr := make(chan error, 1)
	go func() { firstErr <- assembler(s).Ingest(t.Context(), first) }()
	<-g.held
	s.cache.Reset() // the lent state evicted: a read of the key waits for the write
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := assembler(s).Ingest(ctx, later); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the update whose context ended while it waited: %v, want context.DeadlineExceeded", err)
	}
	close(g.open)
	if err := <-firstErr; err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- assembler(s).Ingest(t.Context(), later) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the key stayed held by the update whose context ended")
	}
	sameState(t, snapshot(t, s), reference(t, first, later))
}

// TestReleasedKeyClaimedAfterTheRelease: an update that plans a key once
// the write before it decided to release it (its data were stored, its
// release is held) is not handed the key (lend decides when it lends the
// follower's state: no early claim): it claims after the release was
// answered, conditional on it.
func TestReleasedKeyClaimedAfterTheRelease(t *testing.T) {
	c := storetest.B{Contact: "5511900000042"}
	m := time.Minute
	first := []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi"), c.Msg("e2", m, event.RoleBot, "olá")}
	second := []event.Event{c.Msg("e3", 2*m, event.RoleCustomer, "segunda via")}
	g := newGate("", false)
	g.holdMark = "release 1"
	s := fakeStore(t, esfake.New(t), func(c *Config) { c.Transport = g })
	firstErr := make(chan error, 1)
	go func() { firstErr <- assembler(s).Ingest(t.Context(), first) }()
	<-g.held
	secondErr := make(chan error, 1)
	go func() { secondErr <- assembler(s).Ingest(t.Context(), second) }()
	follower := awaitFollower(t, s)
	s.flightsMu.Lock()
	handed := follower.prev.handed
	s.flightsMu.Unlock()
	if handed {
		t.Error("the write whose release is held handed the key over: the next claim would not wait for the release")
	}
	close(g.open)
	if err := <-firstErr; err != nil {
		t.Fatal(err)
	}
	if err := <-secondErr; err != nil {
		t.Fatal(err)
	}
	if claim, release := g.position("start claim 2"), g.position("end release 1"); claim < 0 || release < 0 || claim < release {
		t.Errorf("want the second claim after the first release ended, got: %v", g.log)
	}
	sameState(t, snapshot(t, s), reference(t, first, second))
}

// TestFailedPredecessorNotHandedOver: an update that planned on the state
// a write lent, a write that failed (its claim answered, its data refused)
// before the update's plan was written, does not claim early: its claim,
// conditional on the failed write's, would be sent for nothing. It runs
// again on the key read back and claims once.
func TestFailedPredecessorNotHandedOver(t *testing.T) {
	c := storetest.B{Contact: "5511900000042"}
	m := time.Minute
	first := []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi"), c.Msg("e2", m, event.RoleBot, "olá")}
	second := []event.Event{c.Msg("e3", 2*m, event.RoleCustomer, "segunda via")}
	g := newGate(`"_id":"acme/e2"`, true)
	s := fakeStore(t, esfake.New(t), func(c *Config) { c.Transport, c.BulkAttempts, c.UpdateAttempts = g, 1, 1 })
	firstErr := make(chan error, 1)
	go func() { firstErr <- assembler(s).Ingest(t.Context(), first) }()
	<-g.held

	planned, failed := make(chan struct{}), make(chan struct{})
	var calls atomic.Int64
	secondErr := make(chan error, 1)
	go func() {
		secondErr <- s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
			ch, err := assembler(s).Assemble(ctx, r, second)
			if calls.Add(1) == 1 {
				close(planned)
				select {
				case <-failed: // the first write failed
				case <-ctx.Done():
					return session.Changes{}, ctx.Err()
				}
			}
			return ch, err
		})
	}()
	select {
	case <-planned:
	case <-time.After(10 * time.Second):
		t.Fatal("the second update did not plan while the first one's write was in flight")
	}
	close(g.open)
	if err := <-firstErr; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("the first update, whose data were refused: %v, want ErrUnavailable", err)
	}
	g.mu.Lock()
	claims := len(g.log)
	g.mu.Unlock()
	close(failed)
	if err := <-secondErr; err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("the second update's fn ran %d times, want 2 (once more on the key read back)", got)
	}
	g.mu.Lock()
	after := slices.Clone(g.log[claims:])
	g.mu.Unlock()
	n := 0
	for _, e := range after {
		if strings.HasPrefix(e, "start claim ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the second update sent %d claims, want 1: %v", n, after)
	}
	sameState(t, snapshot(t, s), reference(t, second))
}
