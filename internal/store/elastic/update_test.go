package elastic

import (
	"bytes"
	"context"
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
	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-20 * 24 * time.Hour), To: storetest.Base.Add(10 * 24 * time.Hour)}
	out := map[string][]string{}
	err := s.Export(t.Context(), f, func(d report.Detail) error {
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

// TestStaleWriter: writer A reads, writer B stores an event of the same
// contact, then A writes what it computed without B's event. A's sessions
// are new documents, so no session write conflicts; the key's version
// does, and A computes again. The result is what one writer makes of both
// events, whichever order they came in.
func TestStaleWriter(t *testing.T) {
	c := storetest.B{Contact: "5511900000001"}
	early := c.Msg("e1", 0, event.RoleCustomer, "primeira")
	late := c.Msg("e2", time.Hour, event.RoleCustomer, "segunda")
	for _, tc := range []struct {
		name      string
		a, b      event.Event
		wantCalls int
	}{
		{"stale writer has the earlier event", early, late, 2},
		// A's leftover session (opened by the later event) is referenced
		// by no stored event after the rerun and must be deleted.
		{"stale writer has the later event", late, early, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := esfake.New(t)
			a, b := fakeStore(t, f), fakeStore(t, f)
			calls := 0
			err := a.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
				calls++
				ch, err := assembler(a).Assemble(ctx, r, []event.Event{tc.a})
				if calls == 1 {
					if err := assembler(b).Ingest(ctx, []event.Event{tc.b}); err != nil {
						t.Fatalf("writer B: %v", err)
					}
				}
				return ch, err
			})
			if err != nil {
				t.Fatal(err)
			}
			if calls != tc.wantCalls {
				t.Fatalf("fn ran %d times, want %d", calls, tc.wantCalls)
			}
			sameState(t, snapshot(t, a), reference(t, []event.Event{early, late}))
			for id, doc := range f.Docs("test-sessions-v1-*") {
				if n, _ := doc["events"].(float64); n == 0 {
					t.Errorf("session document %s without events", id)
				}
			}
		})
	}
}

// TestStaleWriterSameEvent: both writers have the same event (the batch
// was delivered again to the partition's new owner).
func TestStaleWriterSameEvent(t *testing.T) {
	f := esfake.New(t)
	a, b := fakeStore(t, f), fakeStore(t, f)
	batch := mariaEvents()
	calls := 0
	err := a.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
		calls++
		ch, err := assembler(a).Assemble(ctx, r, batch)
		if calls == 1 {
			if err := assembler(b).Ingest(ctx, append(slices.Clone(batch), maria.Msg("m9", time.Hour, event.RoleAgent, "algo mais?"))); err != nil {
				t.Fatalf("writer B: %v", err)
			}
		}
		return ch, err
	})
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, snapshot(t, a), reference(t, append(batch, maria.Msg("m9", time.Hour, event.RoleAgent, "algo mais?"))))
}

// TestConflictsGiveUp: a key whose version always changes makes Update
// give up with ErrConflict after UpdateAttempts.
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

// TestTornState: the key's state is what a writer halfway through its
// writes leaves, as a concurrent reader may see it: session B (from e2)
// holds e2 and e3 while the later e4 and e5 still belong to session A
// (from e1). A late event after e2 reads from B's start, finds events of A,
// which started earlier, and reads again from A's start: the sessions are
// recomputed from e1 and no event is left under a deleted session.
func TestTornState(t *testing.T) {
	c := storetest.B{Contact: "5511900000001"}
	m := time.Minute
	var events []event.Event
	for i := range 5 {
		events = append(events, c.Msg(fmt.Sprintf("e%d", i+1), time.Duration(i)*10*m, event.RoleCustomer, "oi"))
	}
	late := c.Msg("e2b", 15*m, event.RoleCustomer, "oi de novo")
	f := esfake.New(t)
	s := fakeStore(t, f)
	if err := assembler(s).Ingest(t.Context(), events); err != nil {
		t.Fatal(err)
	}

	e2, e3 := events[1], events[2]
	b := session.DeriveID(&e2)
	sb := session.Summarize(b, session.KeyOf(&e2), pipeline.MustDefault().PolicyFor(e2.Channel), []event.Event{e2, e3})
	members := []*session.Stored{{Event: e2, SessionID: b}, {Event: e3, SessionID: b}}
	ops := []Op{{Action: Create, Index: s.names.sessionsIndex(sb.StartedAt), ID: docID("acme", b), Doc: newSessionDoc(&sb, members)}}
	for _, st := range members {
		ops = append(ops, Op{Action: Index, Index: s.names.eventsIndex(st.OccurredAt), ID: docID("acme", st.EventID), Doc: newEventDoc(st)})
	}
	if _, err := s.bulk.Write(t.Context(), ops); err != nil {
		t.Fatal(err)
	}

	if err := assembler(s).Ingest(t.Context(), []event.Event{late}); err != nil {
		t.Fatal(err)
	}
	sameState(t, snapshot(t, s), reference(t, append(events, late)))
}

// countingTransport counts requests by the last element of their path,
// and keeps the bodies of _msearch requests.
type countingTransport struct {
	mu        sync.Mutex
	paths     map[string]int
	msearches [][]byte
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paths[path.Base(req.URL.Path)]++
	if path.Base(req.URL.Path) == "_msearch" {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		c.msearches = append(c.msearches, body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (c *countingTransport) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.paths
	c.paths = map[string]int{}
	return out
}

// TestPrefetch: a batch touching many session keys reads them all in a
// fixed number of requests, not a few per key, and stores what the
// per-key reads would.
func TestPrefetch(t *testing.T) {
	const contacts = 60
	var first, second []event.Event
	for i := range contacts {
		c := storetest.B{Contact: fmt.Sprintf("55119%08d", i)}
		first = append(first, c.Msg(fmt.Sprintf("a%d", i), 0, event.RoleCustomer, "oi"), c.Msg(fmt.Sprintf("b%d", i), time.Minute, event.RoleBot, "olá"))
		second = append(second, c.Msg(fmt.Sprintf("c%d", i), 2*time.Minute, event.RoleCustomer, "tudo bem?"))
	}
	// A late event before the first: its key is read from the start.
	second = append(second, storetest.B{Contact: "5511900000000"}.Msg("early", -time.Minute, event.RoleCustomer, "antes"))
	f := esfake.New(t)
	counter := &countingTransport{paths: map[string]int{}}
	s := fakeStore(t, f, func(c *Config) { c.Transport = counter })
	for _, b := range [][]event.Event{first, second} {
		counter.take()
		if err := assembler(s).Ingest(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	got := counter.take()
	want := map[string]int{"_search": 1, "_mget": 1, "_msearch": 3, "_bulk": 3}
	if !maps.Equal(got, want) {
		t.Errorf("requests of the second batch %v, want %v", got, want)
	}
	sameState(t, snapshot(t, s), reference(t, first, second))
}

// TestPrefetchGolden: the three _msearch bodies of a batch of two contacts,
// one of them stored before: the anchors of both, the first event of the
// session of the one found, then both keys' sessions and events (from that
// event, and from the beginning).
func TestPrefetchGolden(t *testing.T) {
	f := esfake.New(t)
	counter := &countingTransport{paths: map[string]int{}}
	s := fakeStore(t, f, func(c *Config) { c.Transport = counter })
	c := storetest.B{Contact: "5511900000001"}
	if err := assembler(s).Ingest(t.Context(), []event.Event{c.Msg("c1", 0, event.RoleCustomer, "oi")}); err != nil {
		t.Fatal(err)
	}
	counter.msearches = nil
	batch := []event.Event{c.Msg("c2", 10*time.Minute, event.RoleCustomer, "e agora?"), ana.Msg("a1", time.Hour, event.RoleCustomer, "oi")}
	if err := assembler(s).Ingest(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if len(counter.msearches) != 3 {
		t.Fatalf("%d _msearch requests, want 3", len(counter.msearches))
	}
	for i, body := range counter.msearches {
		lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
		golden(t, fmt.Sprintf("prefetch_round_%d.json", i+1), append(append([]byte("["), bytes.Join(lines, []byte(","))...), ']'))
	}
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

// TestKnownAndKeyEventsRequests: the reads of the write path stay on the
// versioned alias, scoped to the tenant.
func TestReadsAreScoped(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f)
	if err := assembler(s).Ingest(t.Context(), mariaEvents()); err != nil {
		t.Fatal(err)
	}
	r := newReader(s, map[event.Ref]string{}, map[event.Ref]bool{})
	known, err := r.Known(t.Context(), []event.Ref{{Tenant: "acme", EventID: "m1"}, {Tenant: "globex", EventID: "m1"}, {Tenant: "acme", EventID: "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	if !known[event.Ref{Tenant: "acme", EventID: "m1"}] || len(known) != 1 {
		t.Fatalf("known %v", known)
	}
	evs, err := r.KeyEvents(t.Context(), "globex", session.KeyOf(&mariaEvents()[0]), time.Time{})
	if err != nil || len(evs) != 0 {
		t.Fatalf("another tenant's key: %v %v", evs, err)
	}
}
