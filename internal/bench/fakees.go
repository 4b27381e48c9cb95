package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeElastic answers the write path of the Elasticsearch store like an
// empty, infinitely fast cluster: every search finds nothing, every mget
// finds nothing, every bulk item succeeds. It parses only each bulk item's
// action line (to answer it item by item, in order) and skips documents,
// so that the scenario measures the client side: the assembler, the store's
// reads and the encoding of bulk bodies.
type fakeElastic struct {
	srv *httptest.Server
	// latency delays every answer, to model a cluster across a network.
	latency time.Duration

	mu        sync.Mutex
	requests  map[string]int // by endpoint: _bulk, _search, _mget, other
	bulkBytes int64
	bulkItems int64
	seq       int64
}

func newFakeElastic(latency time.Duration) *fakeElastic {
	f := &fakeElastic{requests: map[string]int{}, latency: latency}
	f.srv = httptest.NewServer(f)
	return f
}

func (f *fakeElastic) URL() string { return f.srv.URL }
func (f *fakeElastic) Close()      { f.srv.Close() }

const emptySearch = `{"took":0,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},` +
	`"hits":{"total":{"value":0,"relation":"eq"},"max_score":null,"hits":[]}}`

func (f *fakeElastic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The Go client refuses answers without the product header.
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	kind := "other"
	switch p := r.URL.Path; {
	case strings.HasSuffix(p, "/_bulk"):
		kind = "_bulk"
	case strings.HasSuffix(p, "/_search"):
		kind = "_search"
	case strings.HasSuffix(p, "/_msearch"):
		kind = "_msearch"
	case strings.HasSuffix(p, "/_mget"):
		kind = "_mget"
	}
	f.mu.Lock()
	f.requests[kind]++
	f.mu.Unlock()
	if f.latency > 0 {
		time.Sleep(f.latency)
	}
	switch kind {
	case "_bulk":
		f.bulk(w, r)
	case "_search":
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, emptySearch)
	case "_mget":
		f.mget(w, r)
	case "_msearch":
		f.msearch(w, r)
	default:
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{}`)
	}
}

func (f *fakeElastic) mget(w http.ResponseWriter, r *http.Request) {
	var body struct {
		IDs  []string `json:"ids"`
		Docs []struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		} `json:"docs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, `{"error":{"type":"parse_exception","reason":"bad mget"},"status":400}`, http.StatusBadRequest)
		return
	}
	index := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/_mget")
	for _, id := range body.IDs {
		body.Docs = append(body.Docs, struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}{index, id})
	}
	var b bytes.Buffer
	b.WriteString(`{"docs":[`)
	for i, d := range body.Docs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"_index":%s,"_id":%s,"found":false}`, quote(d.Index), quote(d.ID))
	}
	b.WriteString(`]}`)
	_, _ = w.Write(b.Bytes())
}

// msearch answers every search of the body with no hits.
func (f *fakeElastic) msearch(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, `{"error":{"type":"parse_exception","reason":"bad msearch"},"status":400}`, http.StatusBadRequest)
		return
	}
	searches := bytes.Count(body, []byte("\n")) / 2
	var b bytes.Buffer
	b.WriteString(`{"took":0,"responses":[`)
	for i := range searches {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strings.TrimSuffix(emptySearch, "}") + `,"status":200}`)
	}
	b.WriteString(`]}`)
	_, _ = w.Write(b.Bytes())
}

// bulk answers every item with success, in order.
func (f *fakeElastic) bulk(w http.ResponseWriter, r *http.Request) {
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	var out bytes.Buffer
	out.WriteString(`{"took":1,"errors":false,"items":[`)
	var size int64
	items := 0
	skipDoc := false
	for sc.Scan() {
		line := sc.Bytes()
		size += int64(len(line)) + 1
		if skipDoc {
			skipDoc = false
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var action map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(line, &action); err != nil || len(action) != 1 {
			http.Error(w, `{"error":{"type":"illegal_argument_exception","reason":"bad action line"},"status":400}`, http.StatusBadRequest)
			return
		}
		for name, a := range action {
			status, result := 201, "created"
			switch name {
			case "index":
				status, result = 200, "updated"
			case "delete":
				status, result = 200, "deleted"
			}
			skipDoc = name != "delete"
			f.mu.Lock()
			f.seq++
			seq := f.seq
			f.mu.Unlock()
			if items > 0 {
				out.WriteByte(',')
			}
			fmt.Fprintf(&out, `{%s:{"_index":%s,"_id":%s,"_version":1,"result":%q,`+
				`"_shards":{"total":1,"successful":1,"failed":0},"_seq_no":%d,"_primary_term":1,"status":%d}}`,
				quote(name), quote(a.Index), quote(a.ID), result, seq, status)
			items++
		}
	}
	if err := sc.Err(); err != nil {
		http.Error(w, `{"error":{"type":"parse_exception","reason":"bad bulk body"},"status":400}`, http.StatusBadRequest)
		return
	}
	out.WriteString(`]}`)
	f.mu.Lock()
	f.bulkBytes += size
	f.bulkItems += int64(items)
	f.mu.Unlock()
	_, _ = w.Write(out.Bytes())
}

func quote(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// report adds what the store asked of the fake, per event.
func (f *fakeElastic) report(res *Results, run ingestRun) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if run.events == 0 || run.batches == 0 {
		return
	}
	total := 0
	for _, n := range f.requests {
		total += n
	}
	per := func(n int) float64 { return float64(n) / float64(run.batches) }
	res.add(Figure{Scenario: ScenarioIngestElastic, Name: "HTTP requests per batch", Unit: "requests", Value: per(total),
		Note: "_search " + strconv.FormatFloat(per(f.requests["_search"]), 'f', 1, 64) +
			", _msearch " + strconv.FormatFloat(per(f.requests["_msearch"]), 'f', 1, 64) +
			", _mget " + strconv.FormatFloat(per(f.requests["_mget"]), 'f', 1, 64) +
			", _bulk " + strconv.FormatFloat(per(f.requests["_bulk"]), 'f', 1, 64) + " per batch"})
	res.add(Figure{Scenario: ScenarioIngestElastic, Name: "bulk body bytes per event", Unit: "B",
		Value: float64(f.bulkBytes) / float64(run.events),
		Note:  fmt.Sprintf("%.2f bulk items per event", float64(f.bulkItems)/float64(run.events))})
}
