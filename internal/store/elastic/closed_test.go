package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// openClose closes (or opens) index on f.
func openClose(t *testing.T, f *esfake.Server, index, action string) {
	t.Helper()
	res, err := http.Post(f.URL()+"/"+index+"/"+action, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d", action, index, res.StatusCode)
	}
}

// withSeptemberClosed stores first, closes September's indices (the month
// before storetest.Base), and returns the store, a new one when restart
// (the key read back) or the one that wrote (the key held in memory).
func withSeptemberClosed(t *testing.T, first []event.Event, restart bool) (*esfake.Server, *Store) {
	t.Helper()
	f := esfake.New(t)
	s := fakeStore(t, f)
	if err := assembler(s).Ingest(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	openClose(t, f, "test-sessions-v1-2025.09", "_close")
	openClose(t, f, "test-events-v1-2025.09", "_close")
	if restart {
		s = fakeStore(t, f)
	}
	return f, s
}

// TestClosedMonthIndex: when an operator closes an old month's indices, the
// new events of a session key whose sessions are there are rejected (the
// ingester dead-letters them and commits) with a reason naming the index
// and not the contact, whether the key's state is read back or held in
// memory, and the batch's other keys are written. When the key index is
// closed, nothing can be written: Update returns ErrUnavailable, which the
// ingester retries, and writes again once it is opened.
func TestClosedMonthIndex(t *testing.T) {
	old := storetest.B{Contact: "5511900000001", Name: "Joana Prado"}
	cur := storetest.B{Contact: "5511900000002"}
	back := -10 * 24 * time.Hour // September, the month before storetest.Base
	first := []event.Event{old.Msg("o1", back, event.RoleCustomer, "oi"), cur.Msg("c1", 0, event.RoleCustomer, "oi")}
	late := []event.Event{old.Msg("o2", back+time.Minute, event.RoleCustomer, "de novo"), cur.Msg("c2", time.Minute, event.RoleCustomer, "de novo")}
	for _, restart := range []bool{true, false} {
		name := map[bool]string{true: "read back", false: "in memory"}[restart]
		t.Run("month/"+name, func(t *testing.T) {
			f, s := withSeptemberClosed(t, first, restart)
			rej := rejectedRefs(t, assembler(s).Ingest(t.Context(), late))
			reason, ok := rej["o2"]
			if len(rej) != 1 || !ok || !strings.Contains(reason, "v1-2025.09 is closed") ||
				strings.Contains(reason, old.Contact) || strings.Contains(reason, "Joana") {
				t.Fatalf("rejected %v, want o2 alone, naming the closed index and not the contact", rej)
			}
			openClose(t, f, "test-sessions-v1-2025.09", "_open")
			openClose(t, f, "test-events-v1-2025.09", "_open")
			sameState(t, snapshot(t, s), reference(t, first, late[1:]))
			// Opened again, the key takes events.
			again := old.Msg("o3", back+2*time.Minute, event.RoleCustomer, "aberto")
			if err := assembler(s).Ingest(t.Context(), []event.Event{again}); err != nil {
				t.Fatalf("after the index was opened: %v", err)
			}
			sameState(t, snapshot(t, s), reference(t, first, late[1:], []event.Event{again}))
		})
		t.Run("keys/"+name, func(t *testing.T) {
			f := esfake.New(t)
			s := fakeStore(t, f)
			if err := assembler(s).Ingest(t.Context(), first); err != nil {
				t.Fatal(err)
			}
			openClose(t, f, "test-keys-v1", "_close")
			if restart {
				s = fakeStore(t, f)
			}
			err := assembler(s).Ingest(t.Context(), late[1:])
			var rej *RejectedError
			if !errors.Is(err, ErrUnavailable) || errors.As(err, &rej) || !strings.Contains(err.Error(), "test-keys-v1 is closed") ||
				strings.Contains(err.Error(), cur.Contact) {
				t.Fatalf("err %v, want ErrUnavailable naming the key index and not the contact", err)
			}
			openClose(t, f, "test-keys-v1", "_open")
			if err := assembler(s).Ingest(t.Context(), late[1:]); err != nil {
				t.Fatalf("after the key index was opened: %v", err)
			}
			sameState(t, snapshot(t, s), reference(t, first, late[1:]))
		})
	}
}

// TestClosedMonthNewSession: a key whose last session is in a closed month
// and ended (its window) before the key's new event needs nothing of it:
// the new event starts a session in an open month and is stored, whether
// the key is read back or held in memory, and the closed session is
// neither read nor rewritten. An event that falls within the closed
// session's window (TestClosedMonthIndex) is still refused.
func TestClosedMonthNewSession(t *testing.T) {
	old := storetest.B{Contact: "5511900000001"}
	back := -10 * 24 * time.Hour
	first := []event.Event{old.Msg("o1", back, event.RoleCustomer, "oi")}
	later := []event.Event{old.Msg("o2", time.Hour, event.RoleCustomer, "voltei")}
	for _, restart := range []bool{true, false} {
		t.Run(map[bool]string{true: "read back", false: "in memory"}[restart], func(t *testing.T) {
			f, s := withSeptemberClosed(t, first, restart)
			if err := assembler(s).Ingest(t.Context(), later); err != nil {
				t.Fatalf("the new event of a key whose closed session ended: %v", err)
			}
			if found := eventDocsFound(t, f, "test-events-v1-2025.10", "o2"); !found["o2"] {
				t.Fatal("o2 is not stored")
			}
			openClose(t, f, "test-sessions-v1-2025.09", "_open")
			openClose(t, f, "test-events-v1-2025.09", "_open")
			sameState(t, snapshot(t, s), reference(t, first, later))
		})
	}
}

// TestClosedMonthLeavesNoEventDocs: a key held in memory whose session in
// a closed month is refused in step 2 while its new event, in an open
// month, is accepted there (the event joins a session that started in the
// closed month): the event is rejected and its document, which no session
// counts, is deleted before the attempt is given up, so that neither a
// realtime read by id nor the conversation reads find it, and the key read
// back once the month is opened, in memory or by a new store, does not
// hold it. The batch's other key is stored.
func TestClosedMonthLeavesNoEventDocs(t *testing.T) {
	old := storetest.B{Contact: "5511900000001"}
	cur := storetest.B{Contact: "5511900000002"}
	lastOfSeptember := time.Date(2025, 9, 30, 23, 50, 0, 0, time.UTC).Sub(storetest.Base)
	for _, tc := range []struct {
		name        string
		first, late time.Duration // of the key's stored event and its new one
		// resend: the batch brings the stored event again, so that the
		// key is read from its session in the closed month, which the new
		// session then makes the write rewrite.
		resend bool
	}{
		{"session across months", lastOfSeptember, lastOfSeptember + 15*time.Minute, false},
		{"new session, the old event sent again", -10 * 24 * time.Hour, time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := []event.Event{old.Msg("o1", tc.first, event.RoleCustomer, "oi")}
			late := []event.Event{old.Msg("o2", tc.late, event.RoleCustomer, "de novo"), cur.Msg("c1", time.Hour, event.RoleCustomer, "oi")}
			if tc.resend {
				late = append(late, first...)
			}
			f, s := withSeptemberClosed(t, first, false)
			rej := rejectedRefs(t, assembler(s).Ingest(t.Context(), late))
			// The stored event sent again may be dead-lettered beside it
			// (the retry reads the key back from the closed month): a copy.
			delete(rej, "o1")
			if reason, ok := rej["o2"]; len(rej) != 1 || !ok || !strings.Contains(reason, "test-sessions-v1-2025.09 is closed") {
				t.Fatalf("rejected %v, want o2, naming the closed index", rej)
			}
			if found := eventDocsFound(t, f, "test-events-v1-2025.10", "o2", "c1"); found["o2"] || !found["c1"] {
				t.Fatalf("event documents found by id: %v; want c1's alone", found)
			}
			// A session o2 would have opened, written beside the refused
			// one, is gone too: it would count o2 and hold its text.
			if id := session.DeriveID(&late[0]); eventDocsFound(t, f, "test-sessions-v1-2025.10", id)[id] {
				t.Fatal("the session o2 opened is stored")
			}
			got := shown(t, s)
			if _, ok := got["o2"]; ok || got["c1"] == "" {
				t.Fatalf("the conversation reads show %v; want c1 and not o2", got)
			}
			openClose(t, f, "test-sessions-v1-2025.09", "_open")
			openClose(t, f, "test-events-v1-2025.09", "_open")
			// The key stays claimed by the writer until its next write: the
			// new store takes the claim over at once.
			again := fakeStore(t, f, func(c *Config) { c.ClaimLease = time.Nanosecond })
			for name, st := range map[string]*Store{"the writer": s, "a new store": again} {
				if held := keyEvents(t, st, late[0]); !slices.Equal(held, []string{"o1"}) {
					t.Errorf("%s holds %v of the key, want o1 alone", name, held)
				}
			}
		})
	}
}

// TestLeftEventsHiddenFromOverlappingUpdate: when an update abandons an
// attempt that wrote a rejected event's document, another update of the
// key (the next batch, two in flight at once) that reads the key back
// meanwhile does not hold the event as stored (the roll-back ran before
// the key was released), though
// the new session document the first update wrote still lists it: the
// second update's session is written without it, and counts what it shows.
func TestLeftEventsHiddenFromOverlappingUpdate(t *testing.T) {
	old := storetest.B{Contact: "5511900000001"}
	cur := storetest.B{Contact: "5511900000002"}
	// o2 joins o1's session, which started in September (closed); o3
	// comes after that session's window and starts one of its own.
	lastOfSeptember := time.Date(2025, 9, 30, 23, 50, 0, 0, time.UTC).Sub(storetest.Base)
	first := []event.Event{old.Msg("o1", lastOfSeptember, event.RoleCustomer, "oi")}
	late := []event.Event{old.Msg("o2", lastOfSeptember+15*time.Minute, event.RoleCustomer, "de novo"), cur.Msg("c1", time.Hour, event.RoleCustomer, "oi")}
	next := []event.Event{old.Msg("o3", lastOfSeptember+25*time.Hour, event.RoleCustomer, "e agora")}
	f := esfake.New(t)
	g := newGate(`"acme/o2"`, false) // the first update's step 2
	s := fakeStore(t, f, func(c *Config) { c.Transport = g })
	if err := assembler(s).Ingest(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	openClose(t, f, "test-sessions-v1-2025.09", "_close")
	openClose(t, f, "test-events-v1-2025.09", "_close")
	planned, readBack := make(chan struct{}), make(chan struct{})
	wait := func(ch chan struct{}, what string) error {
		select {
		case <-ch:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("timed out waiting for " + what)
		}
	}
	errs := make(chan error, 2)
	calls := 0
	go func() {
		errs <- s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
			if calls++; calls > 1 {
				// Once the other update read the key back.
				if err := wait(readBack, "the second update's read-back"); err != nil {
					return session.Changes{}, err
				}
			}
			return assembler(s).Assemble(ctx, r, late)
		})
	}()
	if err := wait(g.held, "the first update's step 2"); err != nil {
		t.Fatal(err)
	}
	var calls2 atomic.Int32
	go func() {
		errs <- s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
			ch, err := assembler(s).Assemble(ctx, r, next)
			if calls2.Add(1) == 1 {
				close(planned) // on the state the first update lent
			} else if calls2.Load() == 2 {
				close(readBack) // the first update's write failed: read back
			}
			return ch, err
		})
	}()
	if err := wait(planned, "the second update's plan"); err != nil {
		t.Fatal(err)
	}
	close(g.open)
	var rejected map[string]string
	for range 2 {
		if err := <-errs; err != nil {
			rejected = rejectedRefs(t, err)
		}
	}
	if _, ok := rejected["o2"]; len(rejected) != 1 || !ok || calls2.Load() < 2 {
		t.Fatalf("rejected %v, the second update ran %d times; want o2 rejected, the second update run again", rejected, calls2.Load())
	}
	if found := eventDocsFound(t, f, "test-events-v1-2025.10", "o2", "o3"); found["o2"] || !found["o3"] {
		t.Fatalf("event documents found by id: %v; want o3's alone", found)
	}
	openClose(t, f, "test-sessions-v1-2025.09", "_open")
	openClose(t, f, "test-events-v1-2025.09", "_open")
	sameState(t, snapshot(t, s), reference(t, first, late[1:], next))
}

// keyEvents is the ids of the events s holds of e's key, in memory or
// read back, through an update that changes nothing.
func keyEvents(t *testing.T, s *Store, e event.Event) []string {
	t.Helper()
	var ids []string
	err := s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
		evs, err := r.KeyEvents(ctx, e.Tenant, session.KeyOf(&e), time.Time{})
		ids = storedIDs(evs)
		return session.Changes{}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestForgetRefusesClosedIndex: searches and deletes by wildcard skip a
// closed index, so forget refuses, erasing nothing, while one is closed,
// and names it; opened, the contact is erased.
func TestForgetRefusesClosedIndex(t *testing.T) {
	b := storetest.B{Contact: "5511900000001"}
	f := esfake.New(t)
	s := fakeStore(t, f)
	evs := []event.Event{b.Msg("o1", -10*24*time.Hour, event.RoleCustomer, "oi"), b.Msg("o2", 0, event.RoleCustomer, "oi")}
	if err := assembler(s).Ingest(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	b.Tenant = evs[0].Tenant
	openClose(t, f, "test-events-v1-2025.09", "_close")
	got, err := s.Forget(t.Context(), b.Tenant, b.Contact)
	if err == nil || !strings.Contains(err.Error(), "test-events-v1-2025.09") || got != (Forgotten{}) {
		t.Fatalf("forget with a closed index: %+v, %v; want nothing erased and the index named", got, err)
	}
	if n := len(f.Docs("test-sessions-v1-*")); n != 2 {
		t.Fatalf("%d sessions left, want both", n)
	}
	openClose(t, f, "test-events-v1-2025.09", "_open")
	if got, err = s.Forget(t.Context(), b.Tenant, b.Contact); err != nil || got.Sessions != 2 || got.Events != 2 {
		t.Fatalf("forget: %+v, %v; want 2 sessions and 2 events", got, err)
	}
}

// mgetLog records the bodies of the _mget requests a store sends.
type mgetLog struct {
	mu     sync.Mutex
	bodies []string
}

func (l *mgetLog) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/_mget") {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		l.mu.Lock()
		l.bodies = append(l.bodies, string(body))
		l.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (l *mgetLog) read(index string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.bodies, func(b string) bool { return strings.Contains(b, index) })
}

// TestEndedSessionNotReadBack: a key read back after a restart whose last
// session's window ended at or before its new events is not read beyond
// its key document (the session and its events change in nothing), and
// the sessions are the reference's; one whose new event falls within the
// last session's window, by a millisecond, reads that session back. So
// does a key document written before sessions carried their end (no
// "end"). A sliding window (webchat, 30 minutes from the latest customer
// message) ends where its last customer message puts it: an event at that
// very end, with an id that sorts first, opens a session of its own.
func TestEndedSessionNotReadBack(t *testing.T) {
	wa := storetest.B{Contact: "5511900000001"}
	web := storetest.B{Contact: "5511900000002", Channel: "webchat"}
	chat := []event.Event{wa.Msg("e1", 0, event.RoleCustomer, "oi"), wa.Msg("e2", time.Minute, event.RoleBot, "olá")}
	sliding := []event.Event{web.Msg("w1", 0, event.RoleCustomer, "oi"), web.Msg("w2", 20*time.Minute, event.RoleCustomer, "ainda aí?"),
		web.Msg("w3", 25*time.Minute, event.RoleBot, "sim")}
	for _, tc := range []struct {
		name   string
		first  []event.Event
		next   event.Event
		noEnd  bool
		readsS bool
	}{
		{"after the window", chat, wa.Msg("e3", 30*time.Hour, event.RoleCustomer, "voltei"), false, false},
		{"within the window", chat, wa.Msg("e3", 2*time.Hour, event.RoleCustomer, "voltei"), false, true},
		{"a list without ends", chat, wa.Msg("e3", 30*time.Hour, event.RoleCustomer, "voltei"), true, true},
		{"sliding, at its end", sliding, web.Msg("a0", 50*time.Minute, event.RoleCustomer, "voltei"), false, false},
		{"sliding, a millisecond before its end", sliding, web.Msg("a0", 50*time.Minute-time.Millisecond, event.RoleCustomer, "voltei"), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := esfake.New(t)
			s := fakeStore(t, f)
			if err := assembler(s).Ingest(t.Context(), tc.first); err != nil {
				t.Fatal(err)
			}
			if tc.noEnd {
				withoutEnds(t, f, "test-keys-v1", docID(tc.first[0].Tenant, session.KeyOf(&tc.first[0])))
			}
			var log mgetLog
			again := fakeStore(t, f, func(cfg *Config) { cfg.Transport = &log })
			later := []event.Event{tc.next}
			if err := assembler(again).Ingest(t.Context(), later); err != nil {
				t.Fatal(err)
			}
			if got := log.read("-sessions-"); got != tc.readsS {
				t.Errorf("session documents read back: %t, want %t", got, tc.readsS)
			}
			sameState(t, snapshot(t, again), reference(t, tc.first, later))
		})
	}
}

// withoutEnds rewrites the key document id of index as a version before
// sessions carried their end wrote it: without "end".
func withoutEnds(t *testing.T, f *esfake.Server, index, id string) {
	t.Helper()
	editKeyDoc(t, f, index, id, func(doc map[string]any) {
		sessions, _ := doc["sessions"].([]any)
		ends := 0
		for _, ref := range sessions {
			if m, ok := ref.(map[string]any); ok && m["end"] != nil {
				delete(m, "end")
				ends++
			}
		}
		if ends == 0 {
			t.Fatal("the key document lists no session end to take out")
		}
	})
}

// editKeyDoc reads the document id of index, changes its source with
// edit and writes it back, as something else than the store would.
func editKeyDoc(t *testing.T, f *esfake.Server, index, id string, edit func(map[string]any)) {
	t.Helper()
	u := f.URL() + "/" + index + "/_doc/" + url.PathEscape(id)
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Source map[string]any `json:"_source"`
	}
	err = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if err != nil || got.Source == nil {
		t.Fatalf("read %s: %v", id, err)
	}
	edit(got.Source)
	body, err := json.Marshal(got.Source)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("rewrite %s: HTTP %d", id, res.StatusCode)
	}
}

// TestRollBackKeepsRetiredSession: a key whose document lists its session
// as retired (a write that claimed it, then did not finish: a crash) is
// rewritten in an attempt abandoned for another key's refused session; the
// roll-back deletes only sessions the key did not have, so the retired
// session's document, the only one listing the key's stored events, stays
// and the next attempt writes them whole.
func TestRollBackKeepsRetiredSession(t *testing.T) {
	k := storetest.B{Contact: "5511900000003"}
	old := storetest.B{Contact: "5511900000001"}
	lastOfSeptember := time.Date(2025, 9, 30, 23, 50, 0, 0, time.UTC).Sub(storetest.Base)
	stored := []event.Event{k.Msg("e1", 0, event.RoleCustomer, "oi"), k.Msg("e2", time.Minute, event.RoleCustomer, "olá")}
	f := esfake.New(t)
	if err := assembler(fakeStore(t, f)).Ingest(t.Context(), stored); err != nil {
		t.Fatal(err)
	}
	s := fakeStore(t, f, func(c *Config) { c.ClaimLease = time.Nanosecond })
	first := []event.Event{old.Msg("o1", lastOfSeptember, event.RoleCustomer, "oi")}
	if err := assembler(s).Ingest(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	openClose(t, f, "test-sessions-v1-2025.09", "_close")
	openClose(t, f, "test-events-v1-2025.09", "_close")
	editKeyDoc(t, f, "test-keys-v1", keyDocID("acme", session.KeyOf(&stored[0])), func(doc map[string]any) {
		doc["retired"], doc["pending"] = doc["sessions"], true
		doc["sessions"] = []any{map[string]any{"id": "ghost", "start": storetest.Base.Add(-time.Hour).Format(time.RFC3339Nano)}}
	})
	late := []event.Event{old.Msg("o2", lastOfSeptember+15*time.Minute, event.RoleCustomer, "de novo"), k.Msg("e3", 2*time.Minute, event.RoleCustomer, "mais")}
	if rej := rejectedRefs(t, assembler(s).Ingest(t.Context(), late)); len(rej) != 1 || rej["o2"] == "" {
		t.Fatalf("rejected %v, want o2 alone", rej)
	}
	openClose(t, f, "test-sessions-v1-2025.09", "_open")
	openClose(t, f, "test-events-v1-2025.09", "_open")
	sameState(t, snapshot(t, fakeStore(t, f)), reference(t, stored, first, late[1:]))
}

// TestEndedSessionUnderAnotherPolicy: a session whose end was computed
// under a policy the pipeline no longer has is read back and recomputed
// under the new one, as SQLite does: webchat's window made two hours long
// takes an event 45 minutes after the customer's message into the session
// that ended after 30 under the old policy.
func TestEndedSessionUnderAnotherPolicy(t *testing.T) {
	web := storetest.B{Contact: "5511900000002", Channel: "webchat"}
	first := []event.Event{web.Msg("w1", 0, event.RoleCustomer, "oi")}
	later := []event.Event{web.Msg("w2", 45*time.Minute, event.RoleCustomer, "voltei")}
	longer := pipeline.MustDefault()
	longer.Sessions.Channels = maps.Clone(longer.Sessions.Channels)
	longer.Sessions.Channels["webchat"] = pipeline.Policy{Mode: pipeline.Sliding, Duration: 2 * time.Hour}
	f := esfake.New(t)
	if err := assembler(fakeStore(t, f)).Ingest(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	var log mgetLog
	again := fakeStore(t, f, func(cfg *Config) { cfg.Transport = &log })
	if err := session.NewAssembler(longer, again).Ingest(t.Context(), later); err != nil {
		t.Fatal(err)
	}
	if !log.read("-sessions-") {
		t.Error("the session that ended under the old policy was not read back")
	}
	got := snapshot(t, again)
	if len(got) != 1 {
		t.Fatalf("sessions %v, want one of w1 and w2 (the new policy's window)", got)
	}
	for _, ids := range got {
		if !slices.Equal(ids, []string{"w1", "w2"}) {
			t.Errorf("sessions %v, want one of w1 and w2", got)
		}
	}
}
