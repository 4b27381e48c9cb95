package elastic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"go.uber.org/zap"
)

// faultyCluster answers _bulk like an overloaded, flaky cluster. Per
// document (by number i of "acme/ev-i"):
//
//	i%10 == 0  400: the document is refused for good
//	i%10 == 1  409: it exists already (stored before the test)
//	i%10 == 2  429 twice, then 201
//	i%10 == 3  503 once, then 201
//	otherwise  201
//
// and per request: the 2nd is a 503 and the 4th a 429 as a whole, the 6th
// loses its connection. It records what it stored.
type faultyCluster struct {
	mu       sync.Mutex
	requests int
	tries    map[string]int
	stored   map[string]int // successful writes per id
	resent   []string       // ids sent again after they were stored
	srv      *httptest.Server
}

func newFaultyCluster(t *testing.T, preexisting []string) *faultyCluster {
	c := &faultyCluster{tries: map[string]int{}, stored: map[string]int{}}
	for _, id := range preexisting {
		c.stored[id] = 0 // present, written before the test
	}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *faultyCluster) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	switch c.requests {
	case 2:
		w.WriteHeader(503)
		io.WriteString(w, `{"error":{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/2/no master];"},"status":503}`)
		return
	case 4:
		w.WriteHeader(429)
		io.WriteString(w, `{"error":{"type":"circuit_breaking_exception","reason":"[parent] Data too large"},"status":429}`)
		return
	case 6:
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return
	}
	var items []any
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var action map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		json.Unmarshal(sc.Bytes(), &action)
		meta := action["create"]
		sc.Scan() // the document
		var i int
		fmt.Sscanf(meta.ID, "acme/ev-%d", &i)
		c.tries[meta.ID]++
		item := map[string]any{"_index": meta.Index, "_id": meta.ID}
		status, errType := 201, ""
		if n, ok := c.stored[meta.ID]; ok && n > 0 {
			c.resent = append(c.resent, meta.ID)
		}
		switch {
		case i%10 == 0:
			status, errType = 400, "document_parsing_exception"
		case i%10 == 1:
			status, errType = 409, "version_conflict_engine_exception"
		case i%10 == 2 && c.tries[meta.ID] <= 2:
			status, errType = 429, "es_rejected_execution_exception"
		case i%10 == 3 && c.tries[meta.ID] == 1:
			status, errType = 503, "unavailable_shards_exception"
		}
		item["status"] = status
		if errType != "" {
			item["error"] = map[string]any{"type": errType, "reason": "injected; Preview of field's value: 'secret'"}
		} else {
			c.stored[meta.ID]++
			item["result"], item["_seq_no"], item["_primary_term"], item["_version"] = "created", c.stored[meta.ID], 1, 1
		}
		items = append(items, map[string]any{"create": item})
	}
	json.NewEncoder(w).Encode(map[string]any{"took": 3, "errors": true, "items": items})
}

func faultyWriter(t *testing.T, url string, attempts int) *BulkWriter {
	s, err := New(Config{Addresses: []string{url}, BulkMaxBytes: 2 << 10, BulkAttempts: attempts}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w := s.bulk
	w.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	return w
}

// countingObserver counts what an Observer is told.
type countingObserver struct {
	mu                                sync.Mutex
	requests, ops, retried, conflicts int
}

func (o *countingObserver) ObserveBulk(_ time.Duration, ops, retried int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests++
	o.ops += ops
	o.retried += retried
}

func (o *countingObserver) ObserveConflict() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.conflicts++
}

// TestBulkFaults: every event ends up either stored or rejected (to be
// dead-lettered), none both, none twice, none lost; the observer is told
// of every request, and of every operation sent again.
func TestBulkFaults(t *testing.T) {
	const n = 200
	var pre []string
	ops := make([]Op, n)
	for i := range ops {
		id := fmt.Sprintf("acme/ev-%03d", i)
		ops[i] = Op{Action: Create, Index: "chatreport-events-v1-2025.10", ID: id, ExistsOK: true,
			Doc: map[string]string{"event_id": id, "text": strings.Repeat("x", 40)}}
		if i%10 == 1 {
			pre = append(pre, id)
		}
	}
	c := newFaultyCluster(t, pre)
	w, obs := faultyWriter(t, c.srv.URL, 6), &countingObserver{}
	w.cfg.Observer = obs
	results, err := w.Write(t.Context(), ops)
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.requests < 10 {
		t.Fatalf("%d requests: the body limit should have split the batch", c.requests)
	}
	var stored, rejected int
	for i, r := range results {
		id := ops[i].ID
		n, present := c.stored[id]
		switch r.Outcome {
		case Written:
			stored++
			if !present || n > 1 || (n == 0) != (i%10 == 1) {
				t.Errorf("%s: written, but the cluster has it %d times (present %t)", id, n, present)
			}
		case Rejected:
			rejected++
			if present || i%10 != 0 || r.Status != 400 {
				t.Errorf("%s: rejected with %d, stored %t", id, r.Status, present)
			}
			if strings.Contains(r.Reason, "secret") {
				t.Errorf("%s: the reason quotes the field's value: %s", id, r.Reason)
			}
		default:
			t.Errorf("%s: %s", id, r.Outcome)
		}
	}
	if stored+rejected != n || rejected != n/10 {
		t.Fatalf("%d stored + %d rejected of %d", stored, rejected, n)
	}
	if len(c.resent) > 0 {
		t.Fatalf("sent again after success: %v", c.resent)
	}
	if obs.requests != c.requests || obs.retried == 0 || obs.ops-obs.retried != n {
		t.Fatalf("observed %d requests (the cluster saw %d), %d operations, %d of them sent again; want %d sent once each plus the retries",
			obs.requests, c.requests, obs.ops, obs.retried, n)
	}
}

// TestBulkGivesUp: a cluster that keeps answering 503 makes Write return
// ErrUnavailable after the configured attempts, and a cancelled context
// stops it at once.
func TestBulkGivesUp(t *testing.T) {
	var requests int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.WriteHeader(503)
		io.WriteString(w, `{"error":{"type":"master_not_discovered_exception","reason":null},"status":503}`)
	}))
	defer srv.Close()
	w := faultyWriter(t, srv.URL, 3)
	ops := []Op{{Action: Create, Index: "i", ID: "acme/1", Doc: map[string]int{"a": 1}}}
	if _, err := w.Write(t.Context(), ops); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	if requests != 3 {
		t.Fatalf("%d requests, want 3 attempts", requests)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := w.Write(ctx, ops); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// An error of the cluster's configuration is not retried.
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.WriteHeader(401)
		io.WriteString(w, `{"error":{"type":"security_exception","reason":"missing authentication credentials"},"status":401}`)
	}))
	defer auth.Close()
	_, err := faultyWriter(t, auth.URL, 3).Write(t.Context(), ops)
	var re *ResponseError
	if !errors.As(err, &re) || re.Status != 401 || errors.Is(err, ErrUnavailable) {
		t.Fatalf("401: %v", err)
	}
}

// TestReadBulkAnswer: the streaming reader keeps what the write path uses
// of each item and refuses answers that are not a bulk answer.
func TestReadBulkAnswer(t *testing.T) {
	tests := []struct {
		name, answer string
		want         []bulkItem // nil: an error
	}{
		{"members in any order, unknown ones skipped",
			`{"took":3,"errors":true,"ingest_took":0,"items":[` +
				`{"index":{"_index":"i","_id":"a","_version":2,"result":"updated","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":7,"_primary_term":2,"status":200}},` +
				`{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"r","caused_by":{"type":"x","reason":"y"}},"_id":"b"}},` +
				`{"delete":{"_index":"i","_id":"c","status":404,"result":"not_found","_seq_no":null,"error":null}}],"extra":[1,{"a":[]}]}`,
			[]bulkItem{
				{Status: 200, SeqNo: 7, PrimaryTerm: 2},
				{Status: 409, Error: &causeJSON{Type: "version_conflict_engine_exception", Reason: "r", CausedBy: &causeJSON{Type: "x", Reason: "y"}}},
				{Status: 404},
			}},
		{"no items", `{"took":1,"errors":false,"items":[]}`, []bulkItem{}},
		{"truncated", `{"took":1,"errors":false,"items":[{"index":{"status":201`, nil},
		{"an item without an action", `{"items":[{}]}`, nil},
		{"a status that is not a number", `{"items":[{"index":{"status":"201"}}]}`, nil},
		{"an error that is not an object", `{"items":[{"index":{"status":400,"error":"bad"}}]}`, nil},
		{"not an object", `[]`, nil},
		{"an empty body", ``, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readBulkAnswer(jsontext.NewDecoder(strings.NewReader(tt.answer)), make([]bulkItem, 0, 4))
			if tt.want == nil {
				if err == nil {
					t.Fatalf("read %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %s\nwant %s", dump(got), dump(tt.want))
			}
		})
	}
}

func dump(v any) string { b, _ := json.Marshal(v); return string(b) }

// Bulk requests ask for answers filtered to what the writer reads
// (filter_path), and the writer reads such an answer: an item holds only
// its status, _seq_no, _primary_term and error.
func TestBulkAsksFilteredAnswers(t *testing.T) {
	var filter []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		filter = r.URL.Query()["filter_path"]
		io.WriteString(w, `{"items":[{"index":{"_seq_no":7,"_primary_term":2,"status":201}},`+
			`{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[acme/b]: version conflict"}}},`+
			`{"index":{"status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse"}}}]}`)
	}))
	t.Cleanup(srv.Close)
	w := faultyWriter(t, srv.URL, 1)
	ops := []Op{
		{Action: Index, Index: "ix", Scoped: true, Tenant: "acme", ID: "a", Doc: map[string]int{"n": 1}},
		{Action: Create, Index: "ix", ID: "acme/b", Doc: map[string]int{"n": 2}},
		{Action: Index, Index: "ix", ID: "acme/c", Doc: map[string]int{"n": 3}},
	}
	results, err := w.Write(t.Context(), ops)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"items.*.status,items.*._seq_no,items.*._primary_term,items.*.error"}; !reflect.DeepEqual(filter, want) {
		t.Errorf("filter_path %q, want %q", filter, want)
	}
	want := []Result{
		{Outcome: Written, Status: 201, SeqNo: 7, PrimaryTerm: 2},
		{Outcome: Conflict, Status: 409, Reason: "version_conflict_engine_exception"},
		{Outcome: Rejected, Status: 400, Reason: "document_parsing_exception: failed to parse"},
	}
	for i, r := range results {
		reason := r.Reason
		r.Reason = ""
		if wr := want[i].Reason; !strings.HasPrefix(reason, wr) || strings.Contains(reason, "acme/b") {
			t.Errorf("item %d: reason %q, want it to begin %q and not name the id", i, reason, wr)
		}
		want[i].Reason = ""
		if r != want[i] {
			t.Errorf("item %d: %+v, want %+v", i, r, want[i])
		}
	}
}
