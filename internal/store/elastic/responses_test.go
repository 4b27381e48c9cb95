package elastic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/report"
)

// recorded is a loopback server that answers from fixtures in
// testdata/responses, in order, and keeps the requests it got.
type recorded struct {
	srv *httptest.Server

	mu       sync.Mutex
	answers  []answer
	requests []request
}

type answer struct {
	status int
	file   string // in testdata/responses; "" answers every bulk item with 201
}

type request struct {
	method, path, query string
	body                []byte
}

func newRecorded(t *testing.T, answers ...answer) *recorded {
	r := &recorded{answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, request{req.Method, req.URL.Path, req.URL.RawQuery, body})
		if len(r.answers) == 0 {
			r.mu.Unlock()
			t.Errorf("unexpected request %s %s", req.Method, req.URL.Path)
			w.WriteHeader(500)
			return
		}
		a := r.answers[0]
		r.answers = r.answers[1:]
		r.mu.Unlock()
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		if a.file == "" {
			w.Write(allCreated(body))
			return
		}
		data, err := os.ReadFile(filepath.Join("testdata", "responses", a.file))
		if err != nil {
			t.Error(err)
		}
		w.Write(data)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// allCreated answers a bulk body with 201 for every item.
func allCreated(body []byte) []byte {
	var items []any
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var action map[string]map[string]any
		json.Unmarshal(sc.Bytes(), &action)
		for name, meta := range action {
			items = append(items, map[string]any{name: map[string]any{
				"_index": meta["_index"], "_id": meta["_id"], "_version": 1, "result": "created",
				"_seq_no": 1, "_primary_term": 1, "status": 201}})
			if name != "delete" {
				sc.Scan()
			}
		}
	}
	out, _ := json.Marshal(map[string]any{"took": 1, "errors": false, "items": items})
	return out
}

func (r *recorded) store(t *testing.T) *Store {
	s, err := New(Config{Addresses: []string{r.srv.URL}, Backoff: time.Millisecond, MaxBackoff: time.Millisecond, BulkAttempts: 2, RefKey: testRefKey}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSearchRecorded(t *testing.T) {
	rec := newRecorded(t, answer{200, "search_sessions.json"})
	s := rec.store(t)
	f := report.Filter{Tenant: "acme", From: from, To: to}
	res, err := s.Search(t.Context(), f, report.Page{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 3 || len(res.Items) != 2 {
		t.Fatalf("total %d, %d items", res.Total, len(res.Items))
	}
	maria := res.Items[1]
	if maria.ID != "c639c747-4637-4ff5-99c0-9f0e86d3c21b" || !maria.HandedOff || maria.Info["PLANO"] != "Fibra 500 Mega" ||
		maria.Attendances[0].Status != "resolved" || maria.StartedAt.Nanosecond() != 646000123 {
		t.Fatalf("session decoded wrong: %+v", maria)
	}
	want := report.Cursor{StartedAt: time.Date(2025, 10, 7, 9, 26, 33, 646000123, time.UTC), SessionID: maria.ID}
	if res.Next == nil || *res.Next != want {
		t.Fatalf("next %+v, want %+v", res.Next, want)
	}
	req := rec.requests[0]
	if req.path != "/chatreport-sessions/_search" || !strings.Contains(req.query, "allow_partial_search_results=false") {
		t.Fatalf("request %s ?%s", req.path, req.query)
	}
	// The next page continues with the cursor's exact values.
	body, _ := json.Marshal(searchRequest(&f, report.Page{Limit: 2, After: res.Next}))
	if !bytes.Contains(body, []byte(`"search_after":["2025-10-07T09:26:33.646000123Z","c639c747-4637-4ff5-99c0-9f0e86d3c21b"]`)) {
		t.Fatalf("search_after: %s", body)
	}
}

func TestFacetsRecorded(t *testing.T) {
	rec := newRecorded(t, answer{200, "facets.json"})
	got, err := rec.store(t).Facets(t.Context(), "acme", from, to)
	if err != nil {
		t.Fatal(err)
	}
	want := report.Facets{
		Tags:     []report.FacetValue{facet("Boleto", 3), facet("Menu", 2), facet("Atendimento", 1), facet("Ção", 1)},
		InfoKeys: []report.FacetValue{facet("PLANO", 3), facet("CPF", 1), facet("NPS", 1)},
		Channels: []report.FacetValue{facet("whatsapp", 3), facet("webchat", 2)},
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("facets\n got %s\nwant %s", g, w)
	}
	if len(rec.requests) != 1 {
		t.Fatalf("%d requests: fewer buckets than the page size need no second page", len(rec.requests))
	}
}

func TestErrorsRecorded(t *testing.T) {
	f := report.Filter{Tenant: "acme", From: from, To: to}
	page := report.Page{Limit: 10}
	rec := newRecorded(t, answer{400, "error_search_phase.json"}, answer{429, "error_circuit_breaker.json"}, answer{200, "search_partial.json"})
	s := rec.store(t)

	_, err := s.Search(t.Context(), f, page)
	var re *ResponseError
	if !errors.As(err, &re) || re.Status != 400 || re.Type != "search_phase_execution_exception" || errors.Is(err, ErrUnavailable) {
		t.Fatalf("bad request: %v", err)
	}
	if _, err = s.Search(t.Context(), f, page); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("circuit breaker: %v, want ErrUnavailable", err)
	}
	if _, err = s.Search(t.Context(), f, page); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "1 of 2 shards failed") {
		t.Fatalf("partial results: %v", err)
	}
}

// TestBulkRecorded reads every item of a mixed bulk answer, then sends
// again exactly the items answered 429 and 503.
func TestBulkRecorded(t *testing.T) {
	rec := newRecorded(t, answer{200, "bulk_mixed.json"}, answer{200, ""})
	s := rec.store(t)
	seq, term := int64(7), int64(1)
	doc := map[string]string{"x": "y"}
	ops := []Op{
		{Action: Create, Index: "chatreport-events-v1-2025.10", ID: "acme/e1", Doc: doc, ExistsOK: true},
		{Action: Create, Index: "chatreport-events-v1-2025.10", ID: "acme/e2", Doc: doc, ExistsOK: true},
		{Action: Index, Index: "chatreport-sessions-v1-2025.10", ID: "acme/s1", Doc: doc, IfSeqNo: &seq, IfPrimaryTerm: &term},
		{Action: Create, Index: "chatreport-events-v1-2025.10", ID: "acme/e3", Doc: doc, ExistsOK: true},
		{Action: Delete, Index: "chatreport-sessions-v1-2025.09", ID: "acme/s2"},
		{Action: Create, Index: "chatreport-events-v1-2025.10", ID: "acme/e4", Doc: doc, ExistsOK: true},
		{Action: Create, Index: "chatreport-events-v1-2025.10", ID: "acme/e5", Doc: doc, ExistsOK: true},
		{Action: Index, Index: "chatreport-sessions-v1-2025.10", ID: "acme/s3", Doc: doc, IfSeqNo: &seq, IfPrimaryTerm: &term},
		{Action: Delete, Index: "chatreport-sessions-v1-2025.09", ID: "acme/s4", IfSeqNo: &seq, IfPrimaryTerm: &term},
	}
	results, err := s.bulk.Write(t.Context(), ops)
	if err != nil {
		t.Fatal(err)
	}
	want := []Outcome{Written, Written, Conflict, Rejected, Written, Written, Written, Written, Written}
	for i, r := range results {
		if r.Outcome != want[i] {
			t.Errorf("%s: %s (HTTP %d), want %s", ops[i].ID, r.Outcome, r.Status, want[i])
		}
	}
	if results[0].SeqNo != 14 || results[7].SeqNo != 16 {
		t.Errorf("versions not read: %+v %+v", results[0], results[7])
	}
	reason := results[3].Reason
	if strings.Contains(reason, "Preview") || strings.Contains(reason, "1969") ||
		!strings.Contains(reason, "document_parsing_exception") || !strings.Contains(reason, "caused by illegal_argument_exception") {
		t.Errorf("rejection reason %q: want the type and cause, without the field's value", reason)
	}
	if len(rec.requests) != 2 {
		t.Fatalf("%d requests, want 2", len(rec.requests))
	}
	if n := bytes.Count(rec.requests[1].body, []byte("\n")); n != 4 ||
		!bytes.Contains(rec.requests[1].body, []byte(`"acme/e4"`)) || !bytes.Contains(rec.requests[1].body, []byte(`"acme/e5"`)) {
		t.Fatalf("the retry must carry e4 and e5 only:\n%s", rec.requests[1].body)
	}
	if strings.Contains(rec.requests[0].query, "refresh") {
		t.Errorf("a bulk request waits for or forces a refresh: %s", rec.requests[0].query)
	}
}

func facet(v string, n int) report.FacetValue { return report.FacetValue{Value: v, Count: n} }

// TestBulkBodyGolden pins the NDJSON of each kind of operation.
func TestBulkBodyGolden(t *testing.T) {
	seq, term := int64(41), int64(2)
	ops := []Op{
		{Action: Create, Index: "chatreport-events-v1-2025.10", ID: "acme/m1", Doc: map[string]string{"text": "<b>&</b>"}, ExistsOK: true},
		{Action: Index, Index: "chatreport-sessions-v1-2025.10", ID: "acme/s1", Doc: map[string]int{"events": 1}, IfSeqNo: &seq, IfPrimaryTerm: &term},
		{Action: Delete, Index: "chatreport-sessions-v1-2025.09", ID: "acme/s1", IfSeqNo: &seq, IfPrimaryTerm: &term},
		{Action: Index, Index: "chatreport-events-v1-2025.10", ID: "acme/\"m2\"", Doc: map[string]int{"n": 2}, Version: 7},
		{Action: Delete, Index: "chatreport-sessions-v1-2025.10", ID: "acme/s0", Version: 7},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range ops {
		if err := encodeOp(&buf, enc, &ops[i], testRefKey); err != nil {
			t.Fatal(err)
		}
	}
	// The store writes most of these scoped (Op.Scoped): the same bytes.
	var scoped bytes.Buffer
	enc = json.NewEncoder(&scoped)
	enc.SetEscapeHTML(false)
	for i := range ops {
		op := ops[i]
		op.Scoped, op.Tenant, op.ID = true, "acme", strings.TrimPrefix(op.ID, "acme/")
		if err := encodeOp(&scoped, enc, &op, testRefKey); err != nil {
			t.Fatal(err)
		}
	}
	if scoped.String() != buf.String() {
		t.Errorf("scoped operations encode as\n%s\nwant\n%s", scoped.String(), buf.String())
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	arr := "[" + strings.Join(lines, ",") + "]"
	golden(t, "bulk_body.json", []byte(arr))
	if !strings.Contains(buf.String(), "<b>&</b>") {
		t.Error("documents are HTML-escaped: needless bytes")
	}
}

// TestMgetRecorded reads an _mget answer as Elasticsearch 8 gives it: found
// documents with their source and versions, a missing document, a document
// of a missing index (not found: a month without data), and a shard failure
// (ErrUnavailable, the caller retries).
func TestMgetRecorded(t *testing.T) {
	rec := newRecorded(t, answer{200, "mget_mixed.json"}, answer{200, "mget_shard_failure.json"}, answer{200, "mget_mixed.json"})
	s := rec.store(t)
	docs := []mgetDoc{
		{Index: "chatreport-keys-v1", ID: "acme/d:whatsapp/5511987654321"},
		{Index: "chatreport-keys-v1", ID: "acme/d:whatsapp/nobody"},
		{Index: "chatreport-sessions-v1-2024.01", ID: "acme/old"},
	}
	kds := make([]keyDoc, len(docs))
	var sourced []int
	decode := func(i int, dec *jsontext.Decoder) error {
		sourced = append(sourced, i)
		return jsonv2.UnmarshalDecode(dec, &kds[i])
	}
	res, err := s.mget(t.Context(), docs, decode)
	if err != nil || len(res) != 3 {
		t.Fatalf("answers %+v, %v", res, err)
	}
	if !res[0].Found || res[0].SeqNo != 7 || res[0].PrimaryTerm != 1 || kds[0].Gen != 3 || len(kds[0].Sessions) != 1 {
		t.Fatalf("found document %+v, source %+v", res[0], kds[0])
	}
	if !slices.Equal(sourced, []int{0}) {
		t.Errorf("sources decoded of documents %v, want only the found one, 0", sourced)
	}
	if res[1].Found || res[2].Found {
		t.Fatalf("missing documents read as found: %+v %+v", res[1], res[2])
	}
	golden(t, "mget_body.json", rec.requests[0].body)
	if _, err := s.mget(t.Context(), docs, decode); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("shard failure: %v, want ErrUnavailable", err)
	}
	// A source that does not decode is the document's, noted by the
	// caller (decodeSource): the answer's other documents are read.
	wrong := make([]struct {
		Gen string `json:"gen"`
	}, len(docs))
	bad := make([]error, len(docs))
	res, err = s.mget(t.Context(), docs, func(i int, dec *jsontext.Decoder) (err error) {
		bad[i], err = decodeSource(dec, &wrong[i])
		return err
	})
	if err != nil || len(res) != 3 || !res[0].Found || res[1].Found || bad[0] == nil {
		t.Fatalf("a source that does not decode: %+v, %v, bad %v; want the answer read and the document noted", res, err, bad)
	}
}

// TestDecodeSourceSkipsWhatDoesNotDecode: a source of the wrong shape, at
// any depth, is skipped whole and the stream read on; the reason says where
// and what was expected, never the value (message text, a phone number).
func TestDecodeSourceSkipsWhatDoesNotDecode(t *testing.T) {
	const phone = "5511987654321"
	for _, tc := range []struct{ name, source, where string }{
		{"a number as text at the top", `{"tenant":"acme","gen":"` + phone + `"}`, `JSON string at "/gen"`},
		{"one value for a list", `{"sessions":"` + phone + `"}`, `JSON string at "/sessions"`},
		{"deep in a list", `{"gen":1,"sessions":[{"id":"s1","start":"2025-10-07T09:00:00Z"},{"id":` + phone + `,"start":"x"}],"writer":"w"}`, `JSON number at "/sessions/1/id"`},
		{"a time that is not one", `{"updated_at":"` + phone + `"}`, `at "/updated_at"`},
		{"not an object", `[["` + phone + `"]]`, `JSON array at ""`},
		{"a string", `"` + phone + `"`, `JSON string at ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer := `{"docs":[{"_index":"k","_id":"a","found":true,"_source":` + tc.source +
				`},{"_index":"k","_id":"b","found":true,"_source":{"gen":7}}]}`
			dec := jsontext.NewDecoder(strings.NewReader(answer), answerOptions)
			kds := make([]keyDoc, 2)
			bads := make([]error, 2)
			res, err := readMgetAnswer(dec, nil, func(i int, dec *jsontext.Decoder) (err error) {
				bads[i], err = decodeSource(dec, &kds[i])
				return err
			})
			if err != nil || len(res) != 2 || bads[0] == nil {
				t.Fatalf("answer read %+v, %v, bad %v; want the first source the document's error only", res, err, bads)
			}
			if bads[1] != nil || !res[1].Sourced || kds[1].Gen != 7 {
				t.Fatalf("the next source: %+v, %v; want gen 7: the answer was not read on", kds[1], bads[1])
			}
			bad := bads[0]
			reason := undecodable("key document", "chatreport-keys-v1/id#1", bad)
			if strings.Contains(reason, phone) || !strings.Contains(reason, tc.where) {
				t.Errorf("reason %q: want %q in it, and no value", reason, tc.where)
			}
		})
	}
	// Malformed JSON is the answer's: not skipped, an error.
	dec := jsontext.NewDecoder(strings.NewReader(`{"docs":[{"found":true,"_source":{"gen":1,,}}]}`), answerOptions)
	var kd keyDoc
	var bad error
	if _, err := readMgetAnswer(dec, nil, func(_ int, dec *jsontext.Decoder) (err error) {
		bad, err = decodeSource(dec, &kd)
		return err
	}); err == nil || bad != nil {
		t.Fatalf("malformed JSON: bad %v, err %v; want the answer's error", bad, err)
	}
}

// TestMgetCutConnection: an _mget answer cut inside a document's source is
// the cluster's failure (ErrUnavailable: read again), not the document's;
// only a source that does not decode is the document's error.
func TestMgetCutConnection(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "responses", "mget_mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	cut := bytes.Index(data, []byte(`"updated_at"`))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		w.Write(data[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection closes mid-answer
	}))
	t.Cleanup(srv.Close)
	rec := &recorded{srv: srv}
	s := rec.store(t)
	docs := []mgetDoc{{Index: "chatreport-keys-v1", ID: "acme/d:whatsapp/5511987654321"}}
	var kd keyDoc
	_, err = s.mget(t.Context(), docs, func(i int, dec *jsontext.Decoder) error {
		return jsonv2.UnmarshalDecode(dec, &kd)
	})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("an answer cut inside a source: %v, want ErrUnavailable", err)
	}
}

// TestErrorsHideDocumentIDs: a key document's id holds the contact's id (a
// phone number, often), and errors are logged: an _mget error and a bulk
// item's reason name the document by a hash, even where Elasticsearch's
// reason quotes the id.
func TestErrorsHideDocumentIDs(t *testing.T) {
	rec := newRecorded(t, answer{200, "mget_shard_failure.json"})
	s := rec.store(t)
	docs := []mgetDoc{
		{Index: "chatreport-keys-v1", ID: "acme/d:whatsapp/5511987654321"},
		{Index: "chatreport-keys-v1", ID: "acme/d:whatsapp/nobody"},
		{Index: "chatreport-sessions-v1-2024.01", ID: "acme/old"},
	}
	_, err := s.mget(t.Context(), docs, nil)
	if err == nil || strings.Contains(err.Error(), "nobody") || !strings.Contains(err.Error(), testRefKey.Doc(docs[1].Index, docs[1].ID)) {
		t.Fatalf("shard failure: %v, want the document named by its reference only", err)
	}
	op := Op{Index: "chatreport-keys-v1", ID: "acme/d:whatsapp/5511987654321"}
	it := bulkItem{Status: 409, Error: &causeJSON{Type: "version_conflict_engine_exception",
		Reason: "[acme/d:whatsapp/5511987654321]: version conflict, current version [4] is higher or equal to the one provided [3]"}}
	if r, _ := classify(&op, &it, testRefKey); strings.Contains(r.Reason, "5511987654321") || !strings.Contains(r.Reason, "["+testRefKey.Of(op.ID)+"]: version conflict") {
		t.Fatalf("bulk reason %q, want it with the id's reference in its place", r.Reason)
	}
}
