package esstandin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/bench/esstandin"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/simulate"
	"github.com/chatreport/chatreport/internal/store/elastic"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, o esstandin.Options) (*esstandin.Server, string) {
	t.Helper()
	s := esstandin.New(o)
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); srv.Close() })
	return s, srv.URL
}

func call(t *testing.T, base, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Errorf("%s %s: no product header", method, path)
	}
	if len(raw) > 0 && !json.Valid(raw) {
		t.Errorf("%s %s: answer is not JSON: %s", method, path, raw)
	}
	return res.StatusCode, string(raw)
}

// bulkStatuses sends a bulk body and returns each item's action:status.
func bulkStatuses(t *testing.T, base, query string, lines ...string) []string {
	t.Helper()
	status, body := call(t, base, "POST", "/_bulk"+query, strings.Join(lines, "\n")+"\n")
	if status != 200 {
		t.Fatalf("bulk: %d %s", status, body)
	}
	var res struct {
		Errors bool
		Items  []map[string]struct {
			Status int
			SeqNo  int64 `json:"_seq_no"`
		}
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range res.Items {
		for action, r := range it {
			out = append(out, fmt.Sprintf("%s:%d", action, r.Status))
		}
	}
	return out
}

func TestConditionalWrites(t *testing.T) {
	_, base := start(t, esstandin.Options{RefreshInterval: -1})
	got := bulkStatuses(t, base, "",
		`{"create":{"_index":"k","_id":"a/1"}}`, `{"gen":1}`,
		`{"create":{"_index":"k","_id":"a/1"}}`, `{"gen":1}`, // exists
		`{"index":{"_index":"k","_id":"a/1","if_seq_no":0,"if_primary_term":1}}`, `{"gen":2}`,
		`{"index":{"_index":"k","_id":"a/1","if_seq_no":0,"if_primary_term":1}}`, `{"gen":3}`, // stale
		`{"index":{"_index":"k","_id":"a/2","if_seq_no":0,"if_primary_term":1}}`, `{"gen":1}`, // no document
		`{"index":{"_index":"k","_id":"a/1","if_seq_no":1,"if_primary_term":2}}`, `{"gen":3}`, // other term
	)
	want := []string{"create:201", "create:409", "index:200", "index:409", "index:409", "index:409"}
	if !slices.Equal(got, want) {
		t.Errorf("items %v, want %v", got, want)
	}
	got = bulkStatuses(t, base, "",
		`{"index":{"_index":"s","_id":"x","version":2,"version_type":"external"}}`, `{"v":2}`,
		`{"index":{"_index":"s","_id":"x","version":2,"version_type":"external"}}`, `{"v":"2 again"}`,
		`{"index":{"_index":"s","_id":"x","version":3,"version_type":"external"}}`, `{"v":3}`,
		`{"delete":{"_index":"s","_id":"x","version":3,"version_type":"external"}}`,
		`{"delete":{"_index":"s","_id":"x","version":4,"version_type":"external"}}`,
		`{"index":{"_index":"s","_id":"x","version":4,"version_type":"external"}}`, `{"v":"older than the delete"}`,
		`{"index":{"_index":"s","_id":"x","version":5,"version_type":"external"}}`, `{"v":5}`,
		`{"delete":{"_index":"s","_id":"gone","version":7,"version_type":"external"}}`,
		`{"index":{"_index":"s","_id":"gone","version":6,"version_type":"external"}}`, `{"v":6}`,
		`{"delete":{"_index":"missing","_id":"y"}}`,
	)
	want = []string{"index:201", "index:409", "index:200", "delete:409", "delete:200", "index:409", "index:201", "delete:404", "index:409", "delete:404"}
	if !slices.Equal(got, want) {
		t.Errorf("items %v, want %v", got, want)
	}
	// Requests Elasticsearch refuses whole.
	for _, body := range []string{
		`{"create":{"_index":"k","_id":"c","version":1,"version_type":"external"}}` + "\n{}\n",
		`{"index":{"_index":"k","_id":"c","version":1}}` + "\n{}\n",
		`{"index":{"_index":"k","_id":"c","if_seq_no":1}}` + "\n{}\n",
		`{"update":{"_index":"k","_id":"c"}}` + "\n{}\n",
		`{"index":{"_index":"k","_id":"c"}}` + "\n",
		"",
	} {
		if status, out := call(t, base, "POST", "/_bulk", body); status != 400 {
			t.Errorf("%q: %d %s, want 400", body, status, out)
		}
	}
}

func TestRealtimeReadsAnswerWhatWasWritten(t *testing.T) {
	_, base := start(t, esstandin.Options{RefreshInterval: -1})
	src := `{"text":"Olá \"mundo\"","n":12345678901234567890,"z":[1,2]}`
	bulkStatuses(t, base, "", `{"index":{"_index":"e","_id":"acme/evt 1"}}`, src)
	status, out := call(t, base, "POST", "/_mget", `{"docs":[{"_index":"e","_id":"acme/evt 1"},{"_index":"e","_id":"nope"},{"_index":"none","_id":"x"}]}`)
	if status != 200 {
		t.Fatalf("mget: %d %s", status, out)
	}
	var res struct {
		Docs []struct {
			Index  string          `json:"_index"`
			ID     string          `json:"_id"`
			Found  bool            `json:"found"`
			SeqNo  *int64          `json:"_seq_no"`
			Term   *int64          `json:"_primary_term"`
			Source json.RawMessage `json:"_source"`
			Error  *struct{ Type string }
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	d := res.Docs
	if len(d) != 3 || !d[0].Found || string(d[0].Source) != src || d[0].SeqNo == nil || *d[0].SeqNo != 0 || *d[0].Term != 1 || d[0].ID != "acme/evt 1" {
		t.Errorf("found document: %s", out)
	}
	if d[1].Found || d[1].Error != nil || d[2].Error == nil || d[2].Error.Type != "index_not_found_exception" {
		t.Errorf("missing documents: %s", out)
	}
	// The ids form, and a get; a search does not see unrefreshed writes.
	if status, out := call(t, base, "POST", "/e/_mget", `{"ids":["acme/evt 1"]}`); status != 200 || !strings.Contains(out, `"_source":`+src) {
		t.Errorf("mget ids: %d %s", status, out)
	}
	if status, out := call(t, base, "GET", "/e/_doc/acme%2Fevt%201", ""); status != 200 || !strings.Contains(out, src) {
		t.Errorf("get: %d %s", status, out)
	}
	if status, out := call(t, base, "GET", "/e/_doc/acme%2Fevt%201?realtime=false", ""); status != 404 {
		t.Errorf("get realtime=false before a refresh: %d %s", status, out)
	}
	if _, out := call(t, base, "POST", "/e/_count", `{"query":{"match_all":{}}}`); !strings.Contains(out, `"count":0`) {
		t.Errorf("count before a refresh: %s", out)
	}
	if status, out := call(t, base, "POST", "/_mget", `{"docs":[{"_index":"e","_id":"x","_source":["a"]}]}`); status != 400 {
		t.Errorf("mget with source filtering: %d %s, want 400 (not modelled)", status, out)
	}
	if status, out := call(t, base, "POST", "/alias-of-e/_search", `{}`); status != 400 {
		t.Errorf("search of an unknown name: %d %s, want 400 (aliases are not modelled)", status, out)
	}
}

func TestRefresh(t *testing.T) {
	_, base := start(t, esstandin.Options{RefreshInterval: 100 * time.Millisecond})
	count := func() string {
		_, out := call(t, base, "POST", "/e-*/_count", `{}`)
		return out
	}
	bulkStatuses(t, base, "", `{"index":{"_index":"e-1","_id":"a"}}`, `{}`)
	if c := count(); !strings.Contains(c, `"count":0`) {
		t.Errorf("searchable before a refresh: %s", c)
	}
	began := time.Now()
	bulkStatuses(t, base, "?refresh=wait_for", `{"index":{"_index":"e-1","_id":"b"}}`, `{}`)
	if c := count(); !strings.Contains(c, `"count":2`) {
		t.Errorf("after a wait_for write: %s", c)
	}
	if time.Since(began) > 2*time.Second {
		t.Errorf("wait_for took %s", time.Since(began))
	}
	bulkStatuses(t, base, "?refresh=true", `{"index":{"_index":"e-2","_id":"c"}}`, `{}`)
	if c := count(); !strings.Contains(c, `"count":3`) {
		t.Errorf("after a refresh=true write: %s", c)
	}
	status, out := call(t, base, "POST", "/e-1,e-2/_search", `{"size":2,"from":1}`)
	if status != 200 || !strings.Contains(out, `"value":3`) || strings.Count(out, `"_id"`) != 2 || !strings.Contains(out, `"_id":"b"`) {
		t.Errorf("search: %d %s", status, out)
	}
}

func TestRefreshOnlyWhenAsked(t *testing.T) {
	_, base := start(t, esstandin.Options{RefreshInterval: -1})
	bulkStatuses(t, base, "", `{"index":{"_index":"e","_id":"a"}}`, `{}`)
	time.Sleep(50 * time.Millisecond)
	if _, out := call(t, base, "GET", "/e/_count", ""); !strings.Contains(out, `"count":0`) {
		t.Errorf("refreshed by itself: %s", out)
	}
	done := make(chan string, 1)
	go func() {
		_, out := call(t, base, "POST", "/_bulk?refresh=wait_for", `{"index":{"_index":"e","_id":"b"}}`+"\n{}\n")
		done <- out
	}()
	select {
	case out := <-done:
		t.Fatalf("a wait_for write answered before any refresh: %s", out)
	case <-time.After(100 * time.Millisecond):
	}
	call(t, base, "POST", "/_refresh", "")
	<-done
	if _, out := call(t, base, "GET", "/e/_count", ""); !strings.Contains(out, `"count":2`) {
		t.Errorf("after POST _refresh: %s", out)
	}
}

// TestStoreWritesWhatEsfakeHolds runs the same batches through the
// Elasticsearch store on the stand-in and on esfake, with a restart of the
// store (nothing in memory: every key read back by id) and late events, and
// compares the session and event documents: the stand-in holds what the
// full model holds.
func TestStoreWritesWhatEsfakeHolds(t *testing.T) {
	ctx := context.Background()
	g := simulate.NewGenerator(simulate.Options{Seed: 3, Tenants: []string{"acme"}, Sessions: 60,
		Start: time.Now().Add(-30 * time.Hour).Truncate(time.Second), Spread: 24 * time.Hour})
	var evs []event.Event
	for {
		c, ok := g.Next()
		if !ok {
			break
		}
		evs = append(evs, c...)
	}
	// Every key's events in three parts (the last part with every fifth
	// event of the first two, late), each part in time order.
	byKey := map[string][]event.Event{}
	for _, e := range evs {
		byKey[e.RecommendedKey()] = append(byKey[e.RecommendedKey()], e)
	}
	parts := make([][]event.Event, 3)
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		list := byKey[k]
		slices.SortFunc(list, func(a, b event.Event) int { return event.Compare(&a, &b) })
		for i, e := range list {
			p := min(3*i/len(list), 2)
			if p < 2 && i%5 == 4 {
				p = 2
			}
			parts[p] = append(parts[p], e)
		}
	}
	def := pipeline.MustDefault()
	run := func(url string) {
		for i, part := range parts {
			// A new store for each part: the second starts cold.
			st, err := elastic.New(elastic.Config{Addresses: []string{url}}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Init(ctx); err != nil {
				t.Fatal(err)
			}
			a := session.NewAssembler(def, st)
			for b := range slices.Chunk(part, 97) {
				if err := a.Ingest(ctx, b); err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
			}
			st.Close()
		}
	}
	s, base := start(t, esstandin.Options{})
	run(base)
	f := esfake.New(t)
	run(f.URL())
	for _, pattern := range []string{"chatreport-sessions-v1-*", "chatreport-events-v1-*"} {
		want := f.Docs(pattern)
		got := s.Docs(pattern)
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%s: %d documents on the stand-in, %d on esfake", pattern, len(got), len(want))
		}
		for id, w := range want {
			var g map[string]any
			if err := json.Unmarshal(got[id], &g); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			wb, _ := json.Marshal(w)
			gb, _ := json.Marshal(g)
			if !bytes.Equal(wb, gb) {
				t.Errorf("%s differs:\nstand-in %s\n  esfake %s", id, gb, wb)
			}
		}
	}
	if n := len(s.Docs("chatreport-keys-v1")); n != len(byKey) {
		t.Errorf("%d key documents, want %d", n, len(byKey))
	}
}

// TestActionLines: the quick scan of action lines and encoding/json, for
// what the scan leaves to it, read the same items.
func TestActionLines(t *testing.T) {
	_, base := start(t, esstandin.Options{RefreshInterval: -1})
	got := bulkStatuses(t, base, "",
		` { "index" : { "_index" : "k" , "_id" : "plain" } } `, `{"n":1}`,
		`{"index":{"_index":"k","_id":"quo\"te\u00e9"}}`, `{"n":2}`,
		`{"index":{"_index":"k","_id":"nul","routing":null}}`, `{"n":3}`,
		`{"create":{"_id":"unknown field","_index":"k","pipeline":"p"}}`, `{"n":4}`,
		`{"delete":{"_index":"k","_id":"plain","version":10,"version_type":"external_gte"}}`,
		`{"index":{"_index":"k","_id":"nul","if_seq_no":2,"if_primary_term":1}}`, `{"n":5}`,
	)
	want := []string{"index:201", "index:201", "index:201", "create:201", "delete:200", "index:200"}
	if !slices.Equal(got, want) {
		t.Errorf("items %v, want %v", got, want)
	}
	_, out := call(t, base, "POST", "/k/_mget", `{"ids":["plain","quo\"teé","nul","unknown field"]}`)
	for _, s := range []string{`"_id":"plain","found":false`, `"_id":"quo\"teé","_version":1`, `"_source":{"n":5}`, `"_source":{"n":4}`} {
		if !strings.Contains(out, s) {
			t.Errorf("mget lacks %s: %s", s, out)
		}
	}
	for _, body := range []string{`{"index":{"_index":"k","_id":"x"},"create":{"_index":"k","_id":"y"}}` + "\n{}\n", `{"index":1}` + "\n{}\n", `["index"]` + "\n{}\n"} {
		if status, out := call(t, base, "POST", "/_bulk", body); status != 400 {
			t.Errorf("%q: %d %s, want 400", body, status, out)
		}
	}
}
