package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// The ingester dead-letters what a RejectedError names.
var _ ingest.Rejecter = (*RejectedError)(nil)

func assembler(s session.Store) *session.Assembler {
	return session.NewAssembler(pipeline.MustDefault(), s)
}

var (
	maria = storetest.B{Contact: "5511987654321", Phone: "+55 11 98765-4321", Name: "Maria Souza",
		SessionID: "c639c747-4637-4ff5-99c0-9f0e86d3c21b", Protocol: "20251007092633646"}
	ana = storetest.B{Channel: "telegram", Contact: "tg-5", Name: "Ana Lima"}
)

func mariaEvents() []event.Event {
	m := time.Minute
	return []event.Event{
		maria.Msg("m1", 0, event.RoleCustomer, "Olá, preciso da segunda via"),
		maria.Msg("m2", m, event.RoleBot, "Claro! Informe seu CPF"),
		maria.Tag("m3", 2*m, "Segunda Via Sucesso"),
		maria.Info("m4", 3*m, "PLANO", "Fibra 500 Mega"),
		maria.Handoff("m5", 4*m, event.ActionRequested, ""),
		maria.Msg("m6", 5*m, event.RoleCustomer, "obrigada"),
	}
}

// snapshot is the state of a store as the report shows it: every session of
// a tenant in an interval, with its events.
func snapshot(t *testing.T, s storetest.Store) map[string][]string {
	t.Helper()
	storetest.Visible(t, s)
	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-20 * 24 * time.Hour), To: storetest.Base.Add(10 * 24 * time.Hour)}
	out := map[string][]string{}
	err := storetest.ExportDetails(t.Context(), s, f, func(d report.Detail) error {
		var ids []string
		for _, e := range d.Events {
			ids = append(ids, e.EventID)
		}
		if d.Session.Events != len(ids) {
			t.Errorf("session %s counts %d events, has %v", d.Session.ID, d.Session.Events, ids)
		}
		out[d.Session.ID] = ids
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// shown is every event the conversation reads show, by event id, with its
// session: the export, and the session read (GET /sessions/{id}) of each
// session it lists. Unlike snapshot it does not hold each session to its
// count of events.
func shown(t *testing.T, s *Store) map[string]string {
	t.Helper()
	storetest.Visible(t, s)
	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-20 * 24 * time.Hour), To: storetest.Base.Add(10 * 24 * time.Hour)}
	out := map[string]string{}
	var ids []string
	err := storetest.ExportDetails(t.Context(), s, f, func(d report.Detail) error {
		ids = append(ids, d.Session.ID)
		for _, e := range d.Events {
			out[e.EventID] = d.Session.ID
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		d, err := s.Session(t.Context(), "acme", id)
		if err != nil {
			t.Fatalf("session %s: %v", id, err)
		}
		for _, e := range d.Events {
			out[e.EventID] = d.Session.ID
		}
	}
	return out
}

// eventDocsFound reports which of the events (of tenant acme) have a
// document in index, read by id in real time (_mget): what a search
// would show only after a refresh.
func eventDocsFound(t *testing.T, f *esfake.Server, index string, eventIDs ...string) map[string]bool {
	t.Helper()
	ids := make([]string, len(eventIDs))
	for i, id := range eventIDs {
		ids[i] = docID("acme", id)
	}
	body, err := json.Marshal(map[string]any{"ids": ids})
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(f.URL()+"/"+index+"/_mget", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Docs []struct {
			ID    string `json:"_id"`
			Found bool   `json:"found"`
		} `json:"docs"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK || len(out.Docs) != len(ids) {
		t.Fatalf("_mget %s: HTTP %d, %d docs, %v", index, res.StatusCode, len(out.Docs), err)
	}
	found := map[string]bool{}
	for i, d := range out.Docs {
		if d.Found {
			found[eventIDs[i]] = true
		}
	}
	return found
}

// reference is what the SQLite store makes of the same events.
func reference(t *testing.T, batches ...[]event.Event) map[string][]string {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ref.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, b := range batches {
		if err := assembler(s).Ingest(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	return snapshot(t, s)
}

func sameState(t *testing.T, got, want map[string][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("sessions\n got %v\nwant %v", got, want)
	}
	for id, events := range want {
		if !slices.Equal(got[id], events) {
			t.Fatalf("session %s has %v, want %v\n got %v\nwant %v", id, got[id], events, got, want)
		}
	}
}

// TestUpdateRejections: events Elasticsearch refuses are named in a
// RejectedError, everything else is stored, and the sessions are written
// without them; 429 and 503 on the way are retried.
func TestUpdateRejections(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f)
	f.BulkHook = func(action, index, id string, attempt int) (int, string) {
		switch {
		case id == "acme/m2":
			return 400, "document_parsing_exception"
		case id == "acme/m4" && attempt <= 2:
			return 429, "es_rejected_execution_exception"
		case strings.Contains(index, "-sessions-") && attempt == 1:
			return 503, "unavailable_shards_exception"
		}
		return 0, ""
	}
	early := ana.Msg("a0", -time.Duration(storetest.Base.Sub(time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC))), event.RoleCustomer, "antes de 1970")
	batch := append(mariaEvents(), early, ana.Msg("a1", time.Hour, event.RoleCustomer, "oi"))
	err := assembler(s).Ingest(t.Context(), batch)
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err %v, want a RejectedError", err)
	}
	got := rej.Rejected()
	if len(got) != 2 || !strings.Contains(got[event.Ref{Tenant: "acme", EventID: "m2"}], "document_parsing_exception") ||
		!strings.Contains(got[event.Ref{Tenant: "acme", EventID: "a0"}], "1970") {
		t.Fatalf("rejected %v", got)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("the error quotes a field's value: %v", err)
	}
	without := slices.DeleteFunc(slices.Clone(batch), func(e event.Event) bool { return e.EventID == "m2" || e.EventID == "a0" })
	sameState(t, snapshot(t, s), reference(t, without))
	d, err := s.Session(t.Context(), "acme", maria.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Session.MessageCounts.Bot != 0 || d.Session.Events != 5 {
		t.Fatalf("the session counts the rejected bot message: %+v", d.Session)
	}
	// Delivered again (the ingester had not committed), the batch gives
	// the same answer and stores nothing twice.
	err = assembler(s).Ingest(t.Context(), batch)
	if !errors.As(err, &rej) || len(rej.Events) != 2 {
		t.Fatalf("second delivery: %v", err)
	}
	sameState(t, snapshot(t, s), reference(t, without))
}

// TestUpdateUnavailable: while the cluster fails, Update returns
// ErrUnavailable; the ingester's retry of the same batch then stores
// everything once.
func TestUpdateUnavailable(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f, func(c *Config) { c.BulkAttempts = 2 })
	down := true
	f.BulkHook = func(action, index, id string, attempt int) (int, string) {
		if down && strings.Contains(index, "-events-") {
			return 503, "unavailable_shards_exception"
		}
		return 0, ""
	}
	batch := mariaEvents()
	if err := assembler(s).Ingest(t.Context(), batch); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	down = false
	if err := assembler(s).Ingest(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	sameState(t, snapshot(t, s), reference(t, batch))
}

// TestSessionMovesMonth: a late event before the start of an explicit
// session, in the previous month, moves the session's document to that
// month's index.
func TestSessionMovesMonth(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f)
	first := time.Date(2025, 10, 1, 0, 30, 0, 0, time.UTC)
	at := func(t time.Time) time.Duration { return t.Sub(storetest.Base) }
	b1 := []event.Event{maria.Msg("x1", at(first), event.RoleCustomer, "oi"), maria.Msg("x2", at(first.Add(time.Minute)), event.RoleBot, "olá")}
	b2 := []event.Event{maria.Msg("x0", at(first.Add(-time.Hour)), event.RoleCustomer, "antes")}
	for _, b := range [][]event.Event{b1, b2} {
		if err := assembler(s).Ingest(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	var where []string
	for id := range f.Docs("test-sessions-v1-*") {
		where = append(where, id)
	}
	if want := "test-sessions-v1-2025.09 acme/" + maria.SessionID; len(where) != 1 || where[0] != want {
		t.Fatalf("session documents %v, want only %s", where, want)
	}
	sameState(t, snapshot(t, s), reference(t, b1, b2))
}

// countingTransport counts the requests of each kind (the last element of
// the path: _bulk, _mget, _search...).
type countingTransport struct {
	mu    sync.Mutex
	paths map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	name := path.Base(req.URL.Path)
	if f := req.URL.Query().Get("_source_includes"); f != "" {
		name += "?_source_includes=" + f
	}
	c.paths[name]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// take returns the counts so far and starts again.
func (c *countingTransport) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.paths
	c.paths = map[string]int{}
	return out
}

func contacts(n int, id func(i int) string, at time.Duration, text string) []event.Event {
	var out []event.Event
	for i := range n {
		c := storetest.B{Contact: fmt.Sprintf("55119%08d", i)}
		out = append(out, c.Msg(id(i), at, event.RoleCustomer, text))
	}
	return out
}

// TestRequestsPerBatch: the write path never searches. A batch of keys the
// writer holds in memory costs three bulk requests and no read; after a
// restart, the same keys are read back by id with three _mget requests for
// the whole batch, or one (their key documents) when their last sessions
// ended before the batch's events; a late event that reaches a session
// older than the two memory holds reads it back with two.
func TestRequestsPerBatch(t *testing.T) {
	const n = 60
	f := esfake.New(t)
	counter := &countingTransport{paths: map[string]int{}}
	s := fakeStore(t, f, func(c *Config) { c.Transport = counter })
	first := contacts(n, func(i int) string { return fmt.Sprintf("a%d", i) }, 0, "oi")
	second := contacts(n, func(i int) string { return fmt.Sprintf("b%d", i) }, time.Minute, "tudo bem?")
	next := contacts(n, func(i int) string { return fmt.Sprintf("c%d", i) }, 25*time.Hour, "voltei")
	soon := contacts(n, func(i int) string { return fmt.Sprintf("s%d", i) }, 25*time.Hour+time.Minute, "ainda aqui")
	third := contacts(n, func(i int) string { return fmt.Sprintf("d%d", i) }, 50*time.Hour, "de novo")
	late := storetest.B{Contact: "5511900000007"}.Msg("late", 2*time.Minute, event.RoleBot, "atrasada")
	batches := [][]event.Event{first, second}
	for _, b := range batches {
		counter.take()
		if err := assembler(s).Ingest(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := counter.take(), map[string]int{"_bulk": 3}; !maps.Equal(got, want) {
		t.Errorf("requests of a batch of keys in memory %v, want %v", got, want)
	}

	restarted := fakeStore(t, f, func(c *Config) { c.Transport = counter })
	counter.take()
	if err := assembler(restarted).Ingest(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	// The sessions of first and second ended (24 hours) before next: the
	// key documents alone.
	if got, want := counter.take(), map[string]int{"_mget": 1, "_bulk": 3}; !maps.Equal(got, want) {
		t.Errorf("requests of a batch after a restart, its keys' sessions ended %v, want %v", got, want)
	}
	restarted = fakeStore(t, f, func(c *Config) { c.Transport = counter })
	counter.take()
	if err := assembler(restarted).Ingest(t.Context(), soon); err != nil {
		t.Fatal(err)
	}
	// Keys, then the event_refs of their session documents (not their
	// messages), then the events.
	if got, want := counter.take(), map[string]int{"_mget": 2, "_mget?_source_includes=event_refs": 1, "_bulk": 3}; !maps.Equal(got, want) {
		t.Errorf("requests of a batch after a restart %v, want %v", got, want)
	}
	// Memory holds a key's latest two sessions; the late event belongs to
	// the one before them.
	if err := assembler(restarted).Ingest(t.Context(), third); err != nil {
		t.Fatal(err)
	}
	if got, want := counter.take(), map[string]int{"_bulk": 3}; !maps.Equal(got, want) {
		t.Errorf("requests of a batch opening new sessions %v, want %v", got, want)
	}
	if err := assembler(restarted).Ingest(t.Context(), []event.Event{late}); err != nil {
		t.Fatal(err)
	}
	if got, want := counter.take(), map[string]int{"_mget": 1, "_mget?_source_includes=event_refs": 1, "_bulk": 3}; !maps.Equal(got, want) {
		t.Errorf("requests of a late event %v, want %v", got, want)
	}
	sameState(t, snapshot(t, s), reference(t, first, second, next, soon, third, []event.Event{late}))
}

// TestKeyEventsInTwoRuns: changes that give a key's events in two runs,
// another key's between them (Store.Update takes any order of changes, not
// only the assembler's, which groups them by key), are written as they
// would be in one: the second run joins the key's first, and the other
// key's events stay its own (the first run, a part of the changes' list,
// is clipped: appending to it copies).
func TestKeyEventsInTwoRuns(t *testing.T) {
	a, b := storetest.B{Contact: "5511900000001"}, storetest.B{Contact: "5511900000002"}
	batch := []event.Event{
		a.Msg("a1", 0, event.RoleCustomer, "oi"),
		a.Msg("a2", time.Minute, event.RoleBot, "olá"),
		b.Msg("b1", 0, event.RoleCustomer, "bom dia"),
	}
	s := fakeStore(t, esfake.New(t))
	err := s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
		ch, err := assembler(s).Assemble(ctx, r, batch)
		if err != nil {
			return ch, err
		}
		// The first key's first event, the other key's, the first key's
		// others.
		first := ch.Events[0]
		var mine, others []session.Stored
		for _, e := range ch.Events {
			if e.Tenant == first.Tenant && session.KeyIs(e.Event, session.KeyOf(first.Event)) {
				mine = append(mine, e)
			} else {
				others = append(others, e)
			}
		}
		if len(mine) < 2 || len(others) == 0 {
			return ch, fmt.Errorf("changes' events %v: want two of the first key and others", storedIDs(ch.Events))
		}
		ch.Events = slices.Concat(mine[:1], others, mine[1:])
		return ch, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, snapshot(t, s), reference(t, batch))
}

// TestStaleWriterLoses: writer A holds a contact's state; writer B (the
// partition's new owner after a rebalance) writes the contact; A, a zombie
// with its old state, writes again. A's claim of the key conflicts, so A
// writes nothing from its stale state: it reads the key back and computes
// again, and the result is what one writer makes of all the events.
func TestStaleWriterLoses(t *testing.T) {
	c := storetest.B{Contact: "5511900000001"}
	m := time.Minute
	b1 := []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi"), c.Msg("e2", m, event.RoleBot, "olá")}
	b2 := []event.Event{c.Msg("e3", 2*m, event.RoleCustomer, "segunda via")}
	b3 := []event.Event{c.Msg("e0", -m, event.RoleCustomer, "antes"), c.Msg("e4", 3*m, event.RoleBot, "segue")}
	f := esfake.New(t)
	var conflicts atomic.Int64
	a := fakeStore(t, f, func(c *Config) { c.Observer = conflictCounter{&conflicts} })
	b := fakeStore(t, f)
	if err := assembler(a).Ingest(t.Context(), b1); err != nil {
		t.Fatal(err)
	}
	if err := assembler(b).Ingest(t.Context(), b2); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err := a.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
		calls++
		return assembler(a).Assemble(ctx, r, b3)
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || conflicts.Load() != 1 {
		t.Fatalf("fn ran %d times with %d conflicts; want the stale attempt to lose once", calls, conflicts.Load())
	}
	sameState(t, snapshot(t, a), reference(t, b1, b2, b3))
}

// TestLeftEventSparesNewerGeneration: an abandoned attempt's roll-back
// deletes the document of a new event only at the generation that wrote
// it. A stale writer's roll-back (an older generation) meets the document
// a newer generation of the key wrote and leaves it, without an error
// (409); at its own generation the document goes; once gone, the delete
// answers 404, again without an error.
func TestLeftEventSparesNewerGeneration(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f)
	c := storetest.B{Contact: "5511900000001"}
	e2 := c.Msg("e2", time.Minute, event.RoleBot, "olá")
	for _, b := range [][]event.Event{{c.Msg("e1", 0, event.RoleCustomer, "oi")}, {e2}} {
		if err := assembler(s).Ingest(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	// e2's document is the key's second generation's.
	ref := e2.Ref()
	ops := []Op{{Action: Index, Index: "test-events-v1-2025.10", Scoped: true, Tenant: e2.Tenant, ID: e2.EventID}}
	for _, step := range []struct {
		gen   int64
		found bool
	}{{1, true}, {2, false}, {2, false}} {
		owners := []owner{{w: &keyWrite{st: &keyState{}, gen: step.gen}, event: &ref}}
		if err := s.rollBack(t.Context(), ops, owners, []Result{{Outcome: Written}}); err != nil {
			t.Fatalf("clean-up at generation %d: %v", step.gen, err)
		}
		if found := eventDocsFound(t, f, "test-events-v1-2025.10", "e2")["e2"]; found != step.found {
			t.Fatalf("after a clean-up at generation %d: found %t, want %t", step.gen, found, step.found)
		}
	}
}

type conflictCounter struct{ n *atomic.Int64 }

func (conflictCounter) ObserveBulk(time.Duration, int, int) {}
func (c conflictCounter) ObserveConflict()                  { c.n.Add(1) }

// TestBusyKey: a key another writer claimed and has not released is busy
// until the claim is older than the lease; then the writer is taken to have
// died, and the key is read back from what it left.
func TestBusyKey(t *testing.T) {
	c := storetest.B{Contact: "5511900000001"}
	batch := []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi")}
	f := esfake.New(t)
	other := fakeStore(t, f)
	dead := errors.New("killed after the claim")
	var bulks atomic.Int64
	f.BeforeBulk = func() { bulks.Add(1) }
	f.BulkHook = func(action, index, id string, attempt int) (int, string) {
		if bulks.Load() >= 2 {
			return 503, "unavailable_shards_exception"
		}
		return 0, ""
	}
	other.bulk.cfg.Attempts = 1
	if err := assembler(other).Ingest(t.Context(), batch); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("%v: %v", dead, err)
	}
	f.BulkHook, f.BeforeBulk = nil, nil

	s := fakeStore(t, f, func(c *Config) { c.UpdateAttempts = 2 })
	if err := assembler(s).Ingest(t.Context(), batch); !errors.Is(err, ErrConflict) {
		t.Fatalf("a key claimed a moment ago: %v, want ErrConflict", err)
	}
	later := fakeStore(t, f, func(c *Config) { c.ClaimLease = time.Nanosecond })
	if err := assembler(later).Ingest(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	sameState(t, snapshot(t, later), reference(t, batch))
}

// TestWriterDiesMidway: a writer dies after each step of a write that moves
// events between sessions (a late event splits a window and merges the rest
// into the next). Kafka delivers the batch again to a new writer, which reads
// back what was left and ends in the state one uninterrupted writer makes.
func TestWriterDiesMidway(t *testing.T) {
	c := storetest.B{Contact: "5511912345678"}
	h := time.Hour
	stored := []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi"), c.Msg("e2", 22*h, event.RoleCustomer, "de novo"),
		c.Msg("e3", 26*h, event.RoleCustomer, "e agora")}
	late := []event.Event{c.Msg("e0", -4*h, event.RoleCustomer, "antes de tudo")}
	for steps := 0; steps < 3; steps++ {
		t.Run(fmt.Sprintf("after %d of 3 bulk requests", steps), func(t *testing.T) {
			f := esfake.New(t)
			w := fakeStore(t, f)
			if err := assembler(w).Ingest(t.Context(), stored); err != nil {
				t.Fatal(err)
			}
			var bulks atomic.Int64
			f.BeforeBulk = func() { bulks.Add(1) }
			f.BulkHook = func(action, index, id string, attempt int) (int, string) {
				if bulks.Load() > int64(steps) {
					return 503, "unavailable_shards_exception"
				}
				return 0, ""
			}
			w.bulk.cfg.Attempts = 1
			if err := assembler(w).Ingest(t.Context(), late); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("the dying write: %v", err)
			}
			f.BulkHook, f.BeforeBulk = nil, nil
			next := fakeStore(t, f, func(c *Config) { c.ClaimLease = time.Nanosecond })
			if err := assembler(next).Ingest(t.Context(), late); err != nil {
				t.Fatal(err)
			}
			sameState(t, snapshot(t, next), reference(t, stored, late))
			for id, doc := range f.Docs("test-sessions-v1-*") {
				if n, _ := doc["events"].(float64); n == 0 {
					t.Errorf("session document %s without events", id)
				}
			}
		})
	}
}

// TestConflictsGiveUp: a key whose document always changes under the
// writer makes Update give up with ErrConflict after UpdateAttempts.
func TestConflictsGiveUp(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f, func(c *Config) { c.UpdateAttempts = 3 })
	f.BulkHook = func(action, index, id string, attempt int) (int, string) {
		if strings.Contains(index, "-keys-") {
			return 409, "version_conflict_engine_exception"
		}
		return 0, ""
	}
	calls := 0
	err := s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
		calls++
		return assembler(s).Assemble(ctx, r, mariaEvents())
	})
	if !errors.Is(err, ErrConflict) || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

// TestConcurrentPartitions: the ingester stores the partition numbers of a
// batch at once; one store serves them all. Derived keys belong to one
// part; an explicit session's key may get events from several.
func TestConcurrentPartitions(t *testing.T) {
	f := esfake.New(t, esfake.WithRefreshInterval(esfake.NoRefresh))
	s := fakeStore(t, f)
	const parts, contacts, rounds = 4, 5, 6
	var all []event.Event
	batches := make([][][]event.Event, parts)
	for p := range parts {
		for r := range rounds {
			var b []event.Event
			for c := range contacts {
				who := storetest.B{Contact: fmt.Sprintf("55119%04d%04d", p, c)}
				// Every other round is late: it lands before what came.
				at := time.Duration(r) * time.Hour
				if r%2 == 1 {
					at = -at
				}
				b = append(b, who.Msg(fmt.Sprintf("p%d-c%d-r%d", p, c, r), at, event.RoleCustomer, "oi"))
			}
			// An explicit session gets events from every part: its key
			// is written by several parts at once (TestStateCache shows
			// they take turns; this test checks the result).
			shared := storetest.B{Contact: fmt.Sprintf("55118%04d", p), SessionID: "5f0c1a52-8a7e-4d47-9d4c-3b2e1f0a9c8d"}
			b = append(b, shared.Msg(fmt.Sprintf("x-p%d-r%d", p, r), time.Duration(r)*time.Minute, event.RoleAgent, "ok"))
			batches[p] = append(batches[p], b)
			all = append(all, b...)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for p := range parts {
		wg.Go(func() {
			for _, b := range batches[p] {
				if err := assembler(s).Ingest(t.Context(), b); err != nil {
					errs[p] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	sameState(t, snapshot(t, s), reference(t, all))
}

// TestReusedEventID: a producer reuses an event_id of the tenant for an
// event of another contact, which the contract forbids. The second copy
// is rejected with the reason (the ingester dead-letters it) instead of
// retried forever, and the first contact's session keeps its event.
func TestReusedEventID(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f)
	a := storetest.B{Contact: "5511900000001"}
	b := storetest.B{Contact: "5511900000002"}
	first := []event.Event{a.Msg("e1", 0, event.RoleCustomer, "oi"), a.Msg("e2", time.Minute, event.RoleBot, "olá")}
	// Key a's generation is ahead of key b's, so b's write of the shared
	// id meets a higher version.
	if err := assembler(s).Ingest(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if err := assembler(s).Ingest(t.Context(), []event.Event{a.Msg("e3", 2*time.Minute, event.RoleBot, "mais")}); err != nil {
		t.Fatal(err)
	}
	reused := []event.Event{b.Msg("e1", 0, event.RoleCustomer, "outro"), b.Msg("b2", time.Minute, event.RoleBot, "ok")}
	err := assembler(s).Ingest(t.Context(), reused)
	var rej *RejectedError
	if !errors.As(err, &rej) || len(rej.Events) != 1 || rej.Events[0].Ref.EventID != "e1" ||
		!strings.Contains(rej.Events[0].Reason, "another session key") {
		t.Fatalf("err %v, want e1 rejected as stored under another key", err)
	}
	want := reference(t, first, []event.Event{a.Msg("e3", 2*time.Minute, event.RoleBot, "mais")}, reused[1:])
	sameState(t, snapshot(t, s), want)
}

// TestUnreadableKeyRejected: a store that reads back a key whose stored
// document does not decode (each kind of document the read-back reads)
// rejects that key's new events with a reason naming the kind of document,
// writes the batch's other key, and does so again for the next batch of
// that key: an unreadable key is never held as if it were read.
func TestUnreadableKeyRejected(t *testing.T) {
	for _, c := range unreadableDocs {
		t.Run(c.kind, func(t *testing.T) {
			f := esfake.New(t)
			bad, good := storetest.B{Contact: "5511900000001"}, storetest.B{Contact: "5511900000002"}
			first := []event.Event{bad.Msg("a1", 0, event.RoleCustomer, "oi"), good.Msg("b1", 0, event.RoleCustomer, "oi")}
			if err := assembler(fakeStore(t, f)).Ingest(t.Context(), first); err != nil {
				t.Fatal(err)
			}
			name := docOf(t, f, c.pattern, bad.Contact)
			index, _, _ := strings.Cut(name, " ")
			orig := f.Docs(index)[name]
			rewriteDoc(t, f, name, c.change)
			s := fakeStore(t, f) // a restart: nothing in memory
			for i, batch := range [][]event.Event{
				{bad.Msg("a2", time.Minute, event.RoleCustomer, "de novo")},
				// With a key that is written: the write lends the
				// states it read, but not the unreadable one.
				{bad.Msg("a3", 2*time.Minute, event.RoleCustomer, "outra vez"), good.Msg("b2", 2*time.Minute, event.RoleCustomer, "de novo")},
			} {
				err := assembler(s).Ingest(t.Context(), batch)
				var rej *RejectedError
				if !errors.As(err, &rej) || len(rej.Events) != 1 || rej.Events[0].Ref.EventID != batch[0].EventID ||
					!strings.Contains(rej.Events[0].Reason, "the stored "+c.kind+" test-") || strings.Contains(rej.Events[0].Reason, bad.Contact) {
					t.Fatalf("batch %d: %v, want %s rejected for its unreadable %s, without the contact", i, err, batch[0].EventID, c.kind)
				}
			}
			if _, ok := f.Docs("test-events-*")["test-events-v1-2025.10 acme/b2"]; !ok {
				t.Errorf("the readable key's event was not stored: %v", slices.Collect(maps.Keys(f.Docs("test-events-*"))))
			}
			if _, ok := f.Docs("test-events-*")["test-events-v1-2025.10 acme/a2"]; ok {
				t.Error("the unreadable key's event was stored")
			}
			// Repaired, the key is read again: its state was not kept
			// in memory, also where the batch wrote another key.
			rewriteDoc(t, f, name, func(doc map[string]any) { clear(doc); maps.Copy(doc, orig) })
			if err := assembler(s).Ingest(t.Context(), []event.Event{bad.Msg("a4", 3*time.Minute, event.RoleCustomer, "consertado")}); err != nil {
				t.Fatalf("after the repair: %v", err)
			}
			if _, ok := f.Docs("test-events-*")["test-events-v1-2025.10 acme/a4"]; !ok {
				t.Error("the repaired key's event was not stored")
			}
		})
	}
}

// TestKnownHoldsTheStoredOnly: Known's map holds the refs stored already,
// and no entry for a new one (the assembler looks every event of a batch
// up in it: a batch of new events gets an empty map), from memory and
// after a restart.
func TestKnownHoldsTheStoredOnly(t *testing.T) {
	f := esfake.New(t)
	evs := mariaEvents()
	if err := assembler(fakeStore(t, f)).Ingest(t.Context(), evs[:4]); err != nil {
		t.Fatal(err)
	}
	var refs []event.Ref
	for i := range evs {
		refs = append(refs, evs[i].Ref())
	}
	want := map[event.Ref]bool{refs[0]: true, refs[1]: true, refs[2]: true, refs[3]: true}
	s := fakeStore(t, f) // a restart: read back
	for _, what := range []string{"read back", "from memory"} {
		if err := s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
			req := session.KeyRequest{Tenant: evs[0].Tenant, Key: session.KeyOf(&evs[0])}
			if err := r.(session.Prefetcher).Prefetch(ctx, []session.KeyRequest{req}); err != nil {
				return session.Changes{}, err
			}
			known, err := r.Known(ctx, refs)
			if err != nil {
				return session.Changes{}, err
			}
			if !maps.Equal(known, want) {
				t.Errorf("%s: known %v, want %v", what, known, want)
			}
			return session.Changes{}, nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := assembler(s).Ingest(t.Context(), evs[:1]); err != nil { // the key held
			t.Fatal(err)
		}
	}
}

// lostAnswer loses the answer of the first _bulk request that holds event
// documents and no session document, after the fake applied it: the bulk
// writer sends it again, as after a connection reset.
type lostAnswer struct {
	next http.RoundTripper
	mu   sync.Mutex
	lost bool
}

func (l *lostAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	if path.Base(req.URL.Path) != "_bulk" || req.Body == nil {
		return l.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	res, err := l.next.RoundTrip(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil || l.lost || !bytes.Contains(body, []byte(`"_index":"test-events-`)) || bytes.Contains(body, []byte("-sessions-")) {
		return res, err
	}
	l.lost = true
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return nil, errors.New("connection reset by peer")
}

// TestLostBulkAnswer: a request of event documents applied by the cluster
// whose answer was lost is sent again; its events answer 409 (their
// external version is not greater than the stored one), are read by id and
// found to be this write's own: stored once, in their sessions, none
// rejected. The read happens only then.
func TestLostBulkAnswer(t *testing.T) {
	f := esfake.New(t)
	counter := &countingTransport{paths: map[string]int{}}
	lost := &lostAnswer{next: counter}
	s := fakeStore(t, f, func(c *Config) { c.BulkMaxBytes = 1 << 10; c.Transport = lost })
	batch := mariaEvents()
	if err := assembler(s).Ingest(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if !lost.lost {
		t.Fatal("no answer was lost")
	}
	if got := counter.take()["_mget?_source_includes=key"]; got != 1 {
		t.Errorf("%d reads of the conflicting events, want 1", got)
	}
	sameState(t, snapshot(t, s), reference(t, batch))
}

// TestOnlyEventRejectedAfterItsSession: a batch whose only event of a key
// is refused after step 2 wrote the key's session (the event's document
// refused, the session's accepted) leaves no session counting the event
// and the key released: the rerun, with no new event of the key, computes
// again the key read back unfinished (session.Recomputer) and writes it,
// deleting a session only the refused event was in. Delivered again, the
// batch ends the same. A key whose session document is refused is not
// computed again: its events are dead-lettered, as before.
func TestOnlyEventRejectedAfterItsSession(t *testing.T) {
	c := storetest.B{Contact: "5511900000007"}
	first := []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi")}
	refuseEvent := func(action, index, id string, attempt int) (int, string) {
		if id == "acme/e2" {
			return 400, "document_parsing_exception"
		}
		return 0, ""
	}
	refuseSessions := func(action, index, id string, attempt int) (int, string) {
		if strings.Contains(index, "-sessions-") {
			return 400, "document_parsing_exception"
		}
		return 0, ""
	}
	for _, tc := range []struct {
		name   string
		stored []event.Event
		at     time.Duration
		hook   func(action, index, id string, attempt int) (int, string)
		// released: the key document ends released; computed: how many
		// times each delivery computes the key (twice: again without the
		// refused event).
		released bool
		computed int64
	}{
		{"in a session the key had", first, time.Minute, refuseEvent, true, 2},
		{"in a session of its own after the key's", first, 30 * time.Hour, refuseEvent, true, 2},
		{"of a new key", nil, 0, refuseEvent, true, 2},
		{"its session refused", first, time.Minute, refuseSessions, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := esfake.New(t)
			s := fakeStore(t, f)
			if err := assembler(s).Ingest(t.Context(), tc.stored); err != nil {
				t.Fatal(err)
			}
			f.BulkHook = tc.hook
			batch := []event.Event{c.Msg("e2", tc.at, event.RoleBot, "segredo")}
			for delivery := 1; delivery <= 2; delivery++ {
				a := assembler(s)
				err := a.Ingest(t.Context(), batch)
				var rej *RejectedError
				if !errors.As(err, &rej) || len(rej.Events) != 1 {
					t.Fatalf("delivery %d: %v, want e2 rejected", delivery, err)
				}
				if got := a.Stats().Keys; got != tc.computed {
					t.Errorf("delivery %d: the key was computed %d times, want %d", delivery, got, tc.computed)
				}
				hook := f.BulkHook
				f.BulkHook = nil
				sameState(t, snapshot(t, s), reference(t, tc.stored))
				for id, d := range f.Docs("test-keys-v1") {
					if tc.released && d["pending"] != nil {
						t.Errorf("delivery %d: key document %s left claimed", delivery, id)
					}
				}
				f.BulkHook = hook
			}
		})
	}
}

// TestRefusedBeforeStepTwoOnAClaimedKey: a key left claimed because its
// session document is refused every time gets a batch whose only event of
// it is refused before step 2 (over the session text bound): the event is
// dead-lettered (RejectedError), not computed again into a session that
// would be refused (a hard error that blocked the partition).
func TestRefusedBeforeStepTwoOnAClaimedKey(t *testing.T) {
	c := storetest.B{Contact: "5511900000007"}
	f := esfake.New(t)
	s := fakeStore(t, f, func(c *Config) { c.SessionTextMaxBytes = 50 })
	if err := assembler(s).Ingest(t.Context(), []event.Event{c.Msg("e1", 0, event.RoleCustomer, "oi")}); err != nil {
		t.Fatal(err)
	}
	f.BulkHook = func(action, index, id string, attempt int) (int, string) {
		if strings.Contains(index, "-sessions-") {
			return 400, "document_parsing_exception"
		}
		return 0, ""
	}
	var rej *RejectedError
	if err := assembler(s).Ingest(t.Context(), []event.Event{c.Msg("e2", time.Minute, event.RoleBot, "olá")}); !errors.As(err, &rej) {
		t.Fatalf("e2, whose session is refused: %v, want a RejectedError", err)
	}
	long := c.Msg("e3", 2*time.Minute, event.RoleCustomer, strings.Repeat("texto longo ", 9))
	for delivery := 1; delivery <= 2; delivery++ {
		if err := assembler(s).Ingest(t.Context(), []event.Event{long}); !errors.As(err, &rej) || len(rej.Events) != 1 {
			t.Fatalf("delivery %d of e3, over the text bound: %v, want it rejected", delivery, err)
		}
	}
}

// TestPlanTriesTheNextKeyAfterAMiss: plan finds the write of a key's events
// by trying the key after the last one found before it builds the key
// (session.KeyOf, an allocation for a derived key). Events whose first key
// comes last (a miss, then another at the end) cost at most those two
// builds more than events in the sessions' order, not one per key.
func TestPlanTriesTheNextKeyAfterAMiss(t *testing.T) {
	const keys = 32
	s := fakeStore(t, esfake.New(t))
	batch := make([]event.Event, keys)
	for i := range batch {
		c := storetest.B{Contact: fmt.Sprintf("551190%07d", i)}
		batch[i] = c.Msg(fmt.Sprintf("e%d", i), 0, event.RoleCustomer, "oi")
	}
	done := errors.New("measured")
	err := s.Update(t.Context(), func(ctx context.Context, sr session.Reader) (session.Changes, error) {
		ch, err := assembler(s).Assemble(ctx, sr, batch)
		if err != nil {
			return ch, err
		}
		if len(ch.Sessions) != keys || len(ch.Events) != keys {
			return ch, fmt.Errorf("%d sessions and %d events, want one of each per key", len(ch.Sessions), len(ch.Events))
		}
		r := sr.(*reader)
		allocs := func(ch session.Changes) float64 {
			return testing.AllocsPerRun(10, func() {
				if _, rejected, err := s.plan(r, &ch); err != nil || len(rejected) > 0 {
					t.Fatalf("plan: %v, %v", rejected, err)
				}
			})
		}
		inOrder := allocs(ch)
		moved := ch
		moved.Events = append(slices.Clone(ch.Events[1:]), ch.Events[0])
		if extra := allocs(moved) - inOrder; extra > 2 {
			t.Errorf("the first key's events last cost %.0f allocations more, want at most 2", extra)
		}
		return session.Changes{}, done
	})
	if !errors.Is(err, done) {
		t.Fatal(err)
	}
}
