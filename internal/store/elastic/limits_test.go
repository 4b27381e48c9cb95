package elastic

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// rejectedRefs is the event ids err rejects, each with its reason; it
// fails the test when err is another error.
func rejectedRefs(t *testing.T, err error) map[string]string {
	t.Helper()
	if err == nil {
		return nil
	}
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err %v, want a RejectedError", err)
	}
	out := map[string]string{}
	for _, e := range rej.Events {
		out[e.Ref.EventID] = e.Reason
	}
	return out
}

// TestSessionTextBudget: a new message that would take its session's text
// past SessionTextMaxBytes is rejected with a reason that quotes neither
// the text nor the contact; the session goes on with the messages that
// fit, later ones included, and events without text.
func TestSessionTextBudget(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f, func(c *Config) { c.SessionTextMaxBytes = 100 })
	c := storetest.B{Contact: "5511900000001", Name: "Joana Prado"}
	text := func(ch byte, n int) string { return strings.Repeat(string(ch), n) }
	m := time.Minute
	b1 := []event.Event{
		c.Msg("t1", 0, event.RoleCustomer, text('a', 40)),
		c.Msg("t2", m, event.RoleBot, text('b', 40)),
		c.Msg("t3", 2*m, event.RoleCustomer, text('c', 40)), // 120: over
		c.Tag("t4", 3*m, "Sem Texto"),
	}
	b2 := []event.Event{
		c.Msg("t5", 4*m, event.RoleCustomer, text('d', 30)), // 110: over
		c.Msg("t6", 5*m, event.RoleCustomer, text('e', 20)), // 100: fits
	}
	var got []string
	for i, b := range [][]event.Event{b1, b2} {
		rej := rejectedRefs(t, assembler(s).Ingest(t.Context(), b))
		for id, reason := range rej {
			got = append(got, id)
			if !strings.Contains(reason, "session_text_max_bytes") || strings.Contains(reason, c.Contact) ||
				strings.Contains(reason, "Joana") || strings.Contains(reason, text('c', 10)) || strings.Contains(reason, text('d', 10)) {
				t.Errorf("batch %d: reason for %s: %q", i, id, reason)
			}
		}
	}
	if strings.Join(got, ",") != "t3,t5" {
		t.Fatalf("rejected %v, want t3 and t5", got)
	}
	keep := func(b []event.Event, drop string) []event.Event {
		var out []event.Event
		for _, e := range b {
			if e.EventID != drop {
				out = append(out, e)
			}
		}
		return out
	}
	sameState(t, snapshot(t, s), reference(t, keep(b1, "t3"), keep(b2, "t5")))
	// A restart reads the session back and counts its stored text.
	s2 := fakeStore(t, f, func(c *Config) { c.SessionTextMaxBytes = 100 })
	rej := rejectedRefs(t, assembler(s2).Ingest(t.Context(), []event.Event{c.Msg("t7", 6*m, event.RoleCustomer, "x")}))
	if _, ok := rej["t7"]; !ok || len(rej) != 1 {
		t.Fatalf("after a restart: rejected %v, want t7", rej)
	}
}

// limitCluster is an esfake behind a transport that records the size of
// every _bulk body and answers 413 from the fake's http.max_content_length.
type limitCluster struct {
	f     *esfake.Server
	mu    sync.Mutex
	sizes []int
	n413  int
}

func (c *limitCluster) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, "/_bulk") || req.Body == nil {
		return http.DefaultTransport.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	res, err := http.DefaultTransport.RoundTrip(req)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sizes = append(c.sizes, len(body))
	if err == nil && res.StatusCode == http.StatusRequestEntityTooLarge {
		c.n413++
	}
	return res, err
}

// TestSessionDocTooLarge: a bulk request the cluster refuses as too large
// (413) is sent again as two halves until each fits; an operation that
// alone is too large is rejected, not retried: its event is dead-lettered,
// every other event of the batch is stored, and the session goes on.
func TestSessionDocTooLarge(t *testing.T) {
	const limit = 64 << 10
	lc := &limitCluster{f: esfake.New(t, esfake.WithMaxContentLength(limit))}
	s := fakeStore(t, lc.f, func(c *Config) {
		c.Transport = lc
		c.BulkMaxBytes = 1 << 20 // above the cluster's limit
		c.SessionTextMaxBytes = 1 << 20
	})
	big := storetest.B{Contact: "5511900000999", Name: "Joana Prado"}
	batch := contacts(40, func(i int) string { return fmt.Sprintf("c%d", i) }, 0, strings.Repeat("palavra ", 500))
	batch = append(batch, big.Msg("big", 0, event.RoleCustomer, strings.Repeat("z", limit)))
	rej := rejectedRefs(t, assembler(s).Ingest(t.Context(), batch))
	reason, ok := rej["big"]
	if len(rej) != 1 || !ok || !strings.Contains(reason, "http.max_content_length") || strings.Contains(reason, big.Contact) || strings.Contains(reason, "zzz") {
		t.Fatalf("rejected %v, want big alone, for http.max_content_length", rej)
	}
	if lc.n413 == 0 {
		t.Fatal("no request was over the limit: the test proves nothing")
	}
	sameState(t, snapshot(t, s), reference(t, batch[:40]))
	// The session stays usable.
	next := big.Msg("small", time.Minute, event.RoleCustomer, "oi")
	if err := assembler(s).Ingest(t.Context(), []event.Event{next}); err != nil {
		t.Fatalf("the next message of the session: %v", err)
	}
	sameState(t, snapshot(t, s), reference(t, batch[:40], []event.Event{next}))
}

// TestSessionDocTooLargeLeavesNoEventDoc: a small new message whose
// session's document it takes past the cluster's http.max_content_length:
// the session document is refused alone (413) while the message's own
// document is accepted in the same bulk. The message is rejected with the
// reason, and its document deleted in step 3: no realtime read by id and
// no conversation read finds it, and neither the key's state, in memory or
// read back, nor its key document (through the sessions it lists) holds
// it. The batch's other events are all stored.
func TestSessionDocTooLargeLeavesNoEventDoc(t *testing.T) {
	const limit = 64 << 10
	lc := &limitCluster{f: esfake.New(t, esfake.WithMaxContentLength(limit))}
	tune := func(c *Config) {
		c.Transport = lc
		c.BulkMaxBytes = 1 << 20 // above the cluster's limit
		c.SessionTextMaxBytes = 1 << 20
	}
	s := fakeStore(t, lc.f, tune)
	big := storetest.B{Contact: "5511900000999"}
	var first []event.Event
	for i := range 5 {
		first = append(first, big.Msg(fmt.Sprintf("b%d", i), time.Duration(i)*time.Minute, event.RoleCustomer, strings.Repeat("palavra ", 1400)))
	}
	if err := assembler(s).Ingest(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	batch := contacts(10, func(i int) string { return fmt.Sprintf("c%d", i) }, 0, "oi")
	last := big.Msg("last", 5*time.Minute, event.RoleCustomer, strings.Repeat("palavra ", 1400))
	batch = append(batch, last)
	rej := rejectedRefs(t, assembler(s).Ingest(t.Context(), batch))
	if reason, ok := rej["last"]; len(rej) != 1 || !ok || !strings.Contains(reason, "its session was rejected") || !strings.Contains(reason, "http.max_content_length") {
		t.Fatalf("rejected %v, want last alone, its session over http.max_content_length", rej)
	}
	if found := eventDocsFound(t, lc.f, "test-events-v1-2025.10", "last", "c0"); found["last"] || !found["c0"] {
		t.Fatalf("event documents found by id: %v; want c0's and not last's", found)
	}
	got := shown(t, s)
	if _, ok := got["last"]; ok {
		t.Fatalf("the conversation reads show the rejected event: %v", got)
	}
	for _, e := range slices.Concat(first, batch[:10]) {
		if got[e.EventID] == "" {
			t.Fatalf("event %s not shown: %v", e.EventID, got)
		}
	}
	// Nor does the key document, through the sessions it lists.
	key := lc.f.Docs("test-keys-v1")["test-keys-v1 acme/"+session.KeyOf(&last)]
	sessions := lc.f.Docs("test-sessions-v1-*")
	listed, _ := key["sessions"].([]any)
	for _, ref := range listed {
		id, _ := ref.(map[string]any)["id"].(string)
		doc, ok := sessions["test-sessions-v1-2025.10 acme/"+id]
		if refs := fmt.Sprint(doc["event_refs"]); !ok || strings.Contains(refs, "/last") {
			t.Errorf("the key document lists session %s (found %t), whose events are %s", id, ok, refs)
		}
	}
	if len(listed) != 1 {
		t.Errorf("the key document lists %v, want the one session", key["sessions"])
	}
	again := fakeStore(t, lc.f, tune, func(c *Config) { c.ClaimLease = time.Nanosecond })
	for name, st := range map[string]*Store{"the writer": s, "a new store": again} {
		if held := keyEvents(t, st, last); len(held) != len(first) || slices.Contains(held, "last") {
			t.Errorf("%s holds %v of the key, want the first %d events alone", name, held, len(first))
		}
	}
}

// TestBulkSplitsOnMaxBytes: every request carries at most MaxBytes, for
// every kind of operation, but for one operation larger alone.
func TestBulkSplitsOnMaxBytes(t *testing.T) {
	lc := &limitCluster{f: esfake.New(t)}
	s, err := New(Config{Addresses: []string{lc.f.URL()}, BulkMaxBytes: 1 << 10, Transport: lc}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req, _ := http.NewRequest("PUT", lc.f.URL()+"/ix", strings.NewReader(`{"mappings":{"properties":{"tenant":{"type":"keyword"}}}}`))
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("create ix: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	doc := func(n int) map[string]any { return map[string]any{"tenant": strings.Repeat("t", n)} }
	var ops []Op
	for i := range 30 {
		id := fmt.Sprintf("d%d", i)
		ops = append(ops, Op{Action: Create, Index: "ix", ID: id, Doc: doc(100)},
			Op{Action: Index, Index: "ix", ID: id, Doc: doc(50 + i)},
			Op{Action: Delete, Index: "ix", ID: id + "x", Version: 3})
	}
	ops = append(ops, Op{Action: Index, Index: "ix", ID: "huge", Doc: doc(3 << 10)})
	for range 30 {
		ops = append(ops, Op{Action: Delete, Index: "ix", ID: "gone"})
	}
	res, err := s.bulk.Write(t.Context(), ops)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Outcome != Written {
			t.Fatalf("op %d: %+v", i, r)
		}
	}
	over := 0
	for _, n := range lc.sizes {
		if n > 1<<10 {
			over++
		}
	}
	if over != 1 || len(lc.sizes) < 10 {
		t.Fatalf("%d requests of sizes %v; want one over 1 KiB (the huge document alone)", len(lc.sizes), lc.sizes)
	}
}
