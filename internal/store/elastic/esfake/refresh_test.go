package esfake

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every kind of write changes what get reads at once, and what a search
// (_search, _msearch, aggregations, the search phase of _delete_by_query)
// sees only after a refresh.
func TestWritesAreSearchableOnlyAfterARefresh(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, f *Server)
		// before and after are the ids a search finds before and after the
		// refresh.
		before, after []string
	}{
		{"bulk index", func(t *testing.T, f *Server) {
			must(t, f, 200, "POST", "/_bulk", bulkLines(`{"index":{"_index":"ix","_id":"b"}}`, `{"tenant":"t","n":2}`))
		}, []string{"ix/a"}, []string{"ix/a", "ix/b"}},
		{"bulk create", func(t *testing.T, f *Server) {
			must(t, f, 200, "POST", "/_bulk", bulkLines(`{"create":{"_index":"ix","_id":"b"}}`, `{"tenant":"t","n":2}`))
		}, []string{"ix/a"}, []string{"ix/a", "ix/b"}},
		{"bulk delete", func(t *testing.T, f *Server) {
			must(t, f, 200, "POST", "/_bulk", bulkLines(`{"delete":{"_index":"ix","_id":"a"}}`))
		}, []string{"ix/a"}, []string{}},
		// A document written more than once between two refreshes: the
		// search sees the last write.
		{"bulk index then delete", func(t *testing.T, f *Server) {
			must(t, f, 200, "POST", "/_bulk", bulkLines(`{"index":{"_index":"ix","_id":"b"}}`, `{"tenant":"t","n":2}`, `{"delete":{"_index":"ix","_id":"b"}}`))
		}, []string{"ix/a"}, []string{"ix/a"}},
		{"bulk delete then index again", func(t *testing.T, f *Server) {
			must(t, f, 200, "POST", "/_bulk", bulkLines(`{"delete":{"_index":"ix","_id":"a"}}`, `{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t","n":3}`))
		}, []string{"ix/a"}, []string{"ix/a"}},
		{"doc put", func(t *testing.T, f *Server) {
			must(t, f, 201, "PUT", "/ix/_doc/b", `{"tenant":"t","n":2}`)
		}, []string{"ix/a"}, []string{"ix/a", "ix/b"}},
		{"doc delete", func(t *testing.T, f *Server) {
			must(t, f, 200, "DELETE", "/ix/_doc/a", "")
		}, []string{"ix/a"}, []string{}},
		{"delete by query", func(t *testing.T, f *Server) {
			out := must(t, f, 200, "POST", "/ix/_delete_by_query", `{"query":{"term":{"tenant":{"value":"t"}}}}`)
			if out["deleted"] != 1.0 {
				t.Errorf("delete by query: %v", out)
			}
		}, []string{"ix/a"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t, WithRefreshInterval(NoRefresh))
			createIndex(t, f, "ix", "")
			must(t, f, 201, "PUT", "/ix/_doc/a?refresh=true", `{"tenant":"t","n":1}`)
			tc.write(t, f)
			if got := searchIDs(t, f, "ix", ""); !equal(got, tc.before) {
				t.Errorf("search before the refresh: %v, want %v", got, tc.before)
			}
			if got := msearchIDs(t, f, "ix"); !equal(got, tc.before) {
				t.Errorf("msearch before the refresh: %v, want %v", got, tc.before)
			}
			if got := aggCount(t, f, "ix"); got != len(tc.before) {
				t.Errorf("aggregation before the refresh counts %d documents, want %d", got, len(tc.before))
			}
			// get is realtime: it sees the write already.
			_, got := call(t, f, "GET", "/ix/_doc/b", "")
			if want := slicesContain(tc.after, "ix/b"); got["found"] != want {
				t.Errorf("get b before the refresh: found %v, want %v", got["found"], want)
			}
			must(t, f, 200, "POST", "/_refresh", "")
			if got := searchIDs(t, f, "ix", ""); !equal(got, tc.after) {
				t.Errorf("search after the refresh: %v, want %v", got, tc.after)
			}
			if got := aggCount(t, f, "ix"); got != len(tc.after) {
				t.Errorf("aggregation after the refresh counts %d documents, want %d", got, len(tc.after))
			}
		})
	}
}

func slicesContain(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

func msearchIDs(t *testing.T, f *Server, index string) []string {
	t.Helper()
	out := must(t, f, 200, "POST", "/_msearch", bulkLines(`{"index":["`+index+`"]}`, `{"size":100}`))
	return hitIDs(out["responses"].([]any)[0].(map[string]any))
}

// aggCount is the number of documents a composite aggregation on tenant
// counts.
func aggCount(t *testing.T, f *Server, index string) int {
	t.Helper()
	out := must(t, f, 200, "POST", "/"+index+"/_search",
		`{"size":0,"aggregations":{"t":{"composite":{"size":10,"sources":[{"tenant":{"terms":{"field":"tenant"}}}]}}}}`)
	n := 0
	for _, b := range out["aggregations"].(map[string]any)["t"].(map[string]any)["buckets"].([]any) {
		n += int(b.(map[string]any)["doc_count"].(float64))
	}
	return n
}

// The refresh parameter of writes: true makes the write searchable before
// the answer; wait_for answers after the next refresh, which it does not
// cause; false (or none) answers at once, the write not searchable yet.
func TestRefreshParameter(t *testing.T) {
	writes := map[string]func(f *Server, refresh string) (int, map[string]any){
		"bulk": func(f *Server, refresh string) (int, map[string]any) {
			return call(t, f, "POST", "/_bulk"+refresh, bulkLines(`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t"}`))
		},
		"doc": func(f *Server, refresh string) (int, map[string]any) {
			return call(t, f, "PUT", "/ix/_doc/a"+refresh, `{"tenant":"t"}`)
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			for _, refresh := range []string{"?refresh=true", "?refresh", "?refresh=false", ""} {
				f := New(t, WithRefreshInterval(NoRefresh))
				createIndex(t, f, "ix", "")
				status, out := write(f, refresh)
				if status >= 300 {
					t.Fatalf("%s%s: %d %v", name, refresh, status, out)
				}
				want := []string{}
				if refresh == "?refresh=true" || refresh == "?refresh" {
					want = []string{"ix/a"}
				}
				if got := searchIDs(t, f, "ix", ""); !equal(got, want) {
					t.Errorf("%s%s: a search right after finds %v, want %v", name, refresh, got, want)
				}
			}

			// wait_for with no periodic refresh answers only once something
			// refreshes the index.
			f := New(t, WithRefreshInterval(NoRefresh))
			createIndex(t, f, "ix", "")
			answered := make(chan int)
			go func() {
				status, _ := write(f, "?refresh=wait_for")
				answered <- status
			}()
			select {
			case <-answered:
				t.Fatal("a write with refresh=wait_for answered before any refresh")
			case <-time.After(200 * time.Millisecond):
			}
			if got := searchIDs(t, f, "ix", ""); len(got) != 0 {
				t.Errorf("wait_for caused a refresh: %v", got)
			}
			f.Refresh()
			if status := <-answered; status >= 300 {
				t.Errorf("wait_for answered %d", status)
			}

			// With a periodic refresh, wait_for answers after it, and the
			// write is searchable then.
			f = New(t, WithRefreshInterval(30*time.Millisecond))
			createIndex(t, f, "ix", "")
			if status, out := write(f, "?refresh=wait_for"); status >= 300 {
				t.Fatalf("wait_for: %d %v", status, out)
			}
			if got := searchIDs(t, f, "ix", ""); !equal(got, []string{"ix/a"}) {
				t.Errorf("after a write with refresh=wait_for answered, a search finds %v", got)
			}
		})
	}
}

// A write with refresh=wait_for that waits when the test ends is released,
// so that the server can close.
func TestWaitForReleasedWhenTheServerStops(t *testing.T) {
	answered := make(chan int, 1)
	t.Run("server", func(t *testing.T) {
		f := New(t, WithRefreshInterval(NoRefresh))
		createIndex(t, f, "ix", "")
		go func() { // not call: t ends before the answer
			req, _ := http.NewRequest("PUT", f.URL()+"/ix/_doc/a?refresh=wait_for", strings.NewReader(`{"tenant":"t"}`))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				answered <- 0
				return
			}
			res.Body.Close()
			answered <- res.StatusCode
		}()
		for deadline := time.Now().Add(5 * time.Second); len(f.Docs("ix")) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the write was not applied")
			}
		}
	})
	select {
	case status := <-answered:
		if status != 503 {
			t.Errorf("a write waiting for a refresh when the server stopped answered %d", status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a write waiting for a refresh was not released when the server stopped")
	}
}

// Periodic refreshes follow index.refresh_interval of the index settings
// (1s by default; -1 never), unless the server overrides it; a refresh
// takes the writes made before it, not those after.
func TestPeriodicRefresh(t *testing.T) {
	f := New(t)
	start := time.Now() // the default index's periodic refreshes tick 1s, 2s... after its creation
	createIndex(t, f, "default", "")
	createIndex(t, f, "fast", `{"index":{"refresh_interval":"50ms"}}`)
	createIndex(t, f, "never", `{"refresh_interval":"-1"}`)
	for _, ix := range []string{"fast", "never", "default"} {
		must(t, f, 201, "PUT", "/"+ix+"/_doc/a", `{"tenant":"t"}`)
	}
	if got := searchIDs(t, f, "never,default", ""); len(got) != 0 {
		t.Fatalf("writes searchable before any refresh: %v", got)
	}
	waitSearch(t, f, "fast", []string{"fast/a"}, 2*time.Second)
	waitSearch(t, f, "default", []string{"default/a"}, 3*time.Second)
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("the default refresh interval (1s) made a write searchable after %v", waited)
	}
	if got := searchIDs(t, f, "never", ""); len(got) != 0 {
		t.Errorf("refresh_interval -1 refreshed: %v", got)
	}

	// A write after a refresh waits for the next one.
	must(t, f, 201, "PUT", "/default/_doc/b", `{"tenant":"t"}`)
	if got := searchIDs(t, f, "default", ""); !equal(got, []string{"default/a"}) {
		t.Errorf("a write made after the refresh is searchable at once: %v", got)
	}
	waitSearch(t, f, "default", []string{"default/a", "default/b"}, 3*time.Second)

	// The server's interval overrides the settings.
	f.SetRefreshInterval(20 * time.Millisecond)
	must(t, f, 201, "PUT", "/never/_doc/b", `{"tenant":"t"}`)
	waitSearch(t, f, "never", []string{"never/a", "never/b"}, 2*time.Second)
	f.SetRefreshInterval(NoRefresh)
	must(t, f, 201, "PUT", "/fast/_doc/b", `{"tenant":"t"}`)
	if iv := refreshInterval(f, "fast"); iv > 0 {
		t.Errorf("SetRefreshInterval(NoRefresh) left periodic refreshes every %s", iv)
	}
	if got := searchIDs(t, f, "fast", ""); !equal(got, []string{"fast/a"}) {
		t.Errorf("a write after SetRefreshInterval(NoRefresh) is searchable before a refresh: %v", got)
	}
	f.Refresh()
	if got := searchIDs(t, f, "fast", ""); !equal(got, []string{"fast/a", "fast/b"}) {
		t.Errorf("after Refresh: %v", got)
	}
}

// Templates carry index.refresh_interval too, from component templates and
// the index template itself.
func TestRefreshIntervalFromTemplates(t *testing.T) {
	f := New(t)
	must(t, f, 200, "PUT", "/_component_template/m", `{"template":{"settings":{"index":{"refresh_interval":"-1"}},
		"mappings":{"properties":{"tenant":{"type":"keyword"}}}}}`)
	must(t, f, 200, "PUT", "/_index_template/low", `{"index_patterns":["logs-*"],"priority":1,"composed_of":["m"],
		"template":{"settings":{"index.refresh_interval":"10ms"}}}`)
	must(t, f, 200, "PUT", "/_index_template/high", `{"index_patterns":["logs-*"],"priority":5,"composed_of":["m"]}`)
	must(t, f, 200, "POST", "/_bulk", bulkLines(`{"index":{"_index":"logs-1","_id":"a"}}`, `{"tenant":"t"}`))
	if iv := refreshInterval(f, "logs-1"); iv != NoRefresh {
		t.Errorf("the index took the settings of the template of lower priority: refresh every %s", iv)
	}
	if got := searchIDs(t, f, "logs-1", ""); len(got) != 0 {
		t.Errorf("a write is searchable before a refresh: %v", got)
	}
	must(t, f, 200, "POST", "/logs-1/_refresh", "")
	if got := searchIDs(t, f, "logs-1", ""); !equal(got, []string{"logs-1/a"}) {
		t.Errorf("after POST /logs-1/_refresh: %v", got)
	}
}

func waitSearch(t *testing.T, f *Server, target string, want []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := searchIDs(t, f, target, "")
		if equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: search finds %v after %v, want %v", target, got, within, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A point in time sees the searchable view of when it was opened: neither
// the writes not refreshed then, nor those refreshed since.
func TestPointInTimeSeesTheViewWhenOpened(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	must(t, f, 200, "POST", "/_bulk?refresh=true", bulkLines(
		`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t"}`,
		`{"index":{"_index":"ix","_id":"b"}}`, `{"tenant":"t"}`))
	must(t, f, 201, "PUT", "/ix/_doc/c", `{"tenant":"t"}`) // not refreshed
	pit := must(t, f, 200, "POST", "/ix/_pit?keep_alive=1m", "")["id"].(string)
	must(t, f, 200, "POST", "/_bulk?refresh=true", bulkLines(
		`{"delete":{"_index":"ix","_id":"a"}}`,
		`{"index":{"_index":"ix","_id":"d"}}`, `{"tenant":"t"}`))
	got := hitIDs(must(t, f, 200, "POST", "/_search", `{"size":100,"pit":{"id":"`+pit+`","keep_alive":"1m"}}`))
	if want := []string{"ix/a", "ix/b"}; !equal(got, want) {
		t.Errorf("point in time finds %v, want %v", got, want)
	}
	if got, want := searchIDs(t, f, "ix", ""), []string{"ix/b", "ix/c", "ix/d"}; !equal(got, want) {
		t.Errorf("search finds %v, want %v", got, want)
	}
	must(t, f, 200, "DELETE", "/_pit", `{"id":"`+pit+`"}`)
}

// A search of a point in time ends each hit's sort values with the implicit
// _shard_doc tiebreaker, so search_after must give all of them back: with
// the explicit sort's values alone the fake refuses it (a search_after must
// have a value per sort field, and Elasticsearch counts the tiebreaker it
// adds among them; the fake promises no more than that); with them all it
// pages on, ties broken by the tiebreaker. A search without a point in
// time has none.
func TestPointInTimeTiebreaker(t *testing.T) {
	f := New(t)
	createIndex(t, f, "ix", "")
	must(t, f, 200, "POST", "/_bulk?refresh=true", bulkLines(
		`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t"}`,
		`{"index":{"_index":"ix","_id":"b"}}`, `{"tenant":"t"}`,
		`{"index":{"_index":"ix","_id":"c"}}`, `{"tenant":"t"}`))
	pit := must(t, f, 200, "POST", "/ix/_pit?keep_alive=1m", "")["id"].(string)
	page := func(after string) map[string]any {
		body := `{"size":2,"sort":[{"tenant":{"order":"asc"}}],"pit":{"id":"` + pit + `"}` + after + `}`
		return must(t, f, 200, "POST", "/_search", body)
	}
	first := page("")
	hits := first["hits"].(map[string]any)["hits"].([]any)
	last := hits[len(hits)-1].(map[string]any)["sort"].([]any)
	if len(last) != 2 {
		t.Fatalf("sort values %v, want the tenant's and the tiebreaker's", last)
	}
	if status, _ := call(t, f, "POST", "/_search", `{"size":2,"sort":[{"tenant":{"order":"asc"}}],"pit":{"id":"`+pit+`"},"search_after":["t"]}`); status != 400 {
		t.Errorf("search_after without the tiebreaker: HTTP %d, want 400", status)
	}
	after, err := json.Marshal(last)
	if err != nil {
		t.Fatal(err)
	}
	got := append(hitIDs(first), hitIDs(page(`,"search_after":`+string(after)))...)
	if want := []string{"ix/a", "ix/b", "ix/c"}; !equal(got, want) {
		t.Errorf("pages find %v, want %v", got, want)
	}
	plain := must(t, f, 200, "POST", "/ix/_search", `{"size":1,"sort":[{"tenant":{"order":"asc"}}]}`)
	if v := plain["hits"].(map[string]any)["hits"].([]any)[0].(map[string]any)["sort"].([]any); len(v) != 1 {
		t.Errorf("a search without a point in time sorts by %v, want the tenant alone", v)
	}
}

// The search phase of _delete_by_query sees the searchable view: a document
// not refreshed yet is not deleted, and one changed since the refresh is a
// version conflict; refresh=true refreshes the indices afterwards.
func TestDeleteByQuerySearchesTheRefreshedView(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	must(t, f, 200, "POST", "/_bulk?refresh=true", bulkLines(
		`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t","n":1}`,
		`{"index":{"_index":"ix","_id":"b"}}`, `{"tenant":"t","n":1}`))
	must(t, f, 200, "POST", "/_bulk", bulkLines(
		`{"index":{"_index":"ix","_id":"b"}}`, `{"tenant":"t","n":2}`, // changed since the refresh
		`{"index":{"_index":"ix","_id":"c"}}`, `{"tenant":"t","n":1}`)) // not refreshed
	if status, out := call(t, f, "POST", "/ix/_delete_by_query", `{"query":{"ids":{"values":["b"]}}}`); status != 409 {
		t.Errorf("a conflict without conflicts=proceed: %d %v", status, out)
	}
	out := must(t, f, 200, "POST", "/ix/_delete_by_query?conflicts=proceed&refresh=true", `{"query":{"term":{"tenant":{"value":"t"}}}}`)
	if out["total"] != 2.0 || out["deleted"] != 1.0 || out["version_conflicts"] != 1.0 {
		t.Errorf("delete by query: %v", out)
	}
	if got, want := searchIDs(t, f, "ix", ""), []string{"ix/b", "ix/c"}; !equal(got, want) {
		t.Errorf("after the delete by query with refresh=true, search finds %v, want %v", got, want)
	}
}

// The bulk answer of refresh=true says so per item, as Elasticsearch does.
func TestForcedRefreshInBulkItems(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	out := must(t, f, 200, "POST", "/_bulk?refresh=true", bulkLines(`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t"}`))
	if it := item(t, out, 0); it["forced_refresh"] != true {
		t.Errorf("item: %v", it)
	}
	if status, out := call(t, f, "POST", "/_bulk?refresh=sometimes", bulkLines(`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t"}`)); status != 400 ||
		!strings.Contains(out["error"].(map[string]any)["reason"].(string), "refresh") {
		t.Errorf("refresh=sometimes: %d %v", status, out)
	}
}

// refreshInterval is how often the scheduler refreshes index name: the
// only periodic refresh there is, so a test asserts on it instead of
// waiting to see that no refresh happens.
func refreshInterval(f *Server, name string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	iv := f.interval(f.indices[name])
	if iv <= 0 {
		return NoRefresh
	}
	return iv
}

// A point in time lives keep_alive after it was opened or last searched
// with a keep_alive; past that, searching or closing it is a 404
// search_context_missing_exception. A search without keep_alive does not
// extend it, and a keep_alive that is not a time value is a 400.
func TestPointInTimeKeepAlive(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Date(2025, 10, 7, 9, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	f := New(t, WithClock(clock))
	createIndex(t, f, "ix", "")
	must(t, f, 200, "POST", "/_bulk?refresh=true", bulkLines(`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t"}`))
	search := func(pit, keepAlive string) (int, map[string]any) {
		body := `{"size":10,"pit":{"id":"` + pit + `"}}`
		if keepAlive != "" {
			body = `{"size":10,"pit":{"id":"` + pit + `","keep_alive":"` + keepAlive + `"}}`
		}
		return call(t, f, "POST", "/_search", body)
	}
	missing := func(status int, out map[string]any) bool {
		e, _ := out["error"].(map[string]any)
		return status == 404 && e["type"] == "search_context_missing_exception"
	}

	pit := must(t, f, 200, "POST", "/ix/_pit?keep_alive=30s", "")["id"].(string)
	// Each search with a keep_alive extends it from then: five searches
	// 20s apart span 100s on a 30s keep-alive.
	for range 5 {
		advance(20 * time.Second)
		if status, out := search(pit, "30s"); status != 200 {
			t.Fatalf("search within the keep-alive: %d %v", status, out)
		}
	}
	// Without keep_alive a search does not extend it.
	advance(20 * time.Second)
	if status, out := search(pit, ""); status != 200 {
		t.Fatalf("search within the keep-alive, without keep_alive: %d %v", status, out)
	}
	advance(10 * time.Second)
	if status, out := search(pit, "30s"); !missing(status, out) {
		t.Fatalf("search 30s after the last extension: %d %v, want 404 search_context_missing_exception", status, out)
	}
	if status, out := call(t, f, "DELETE", "/_pit", `{"id":"`+pit+`"}`); !missing(status, out) {
		t.Fatalf("close of an expired point in time: %d %v", status, out)
	}

	// A point in time never searched expires keep_alive after it opened;
	// a shorter keep_alive in a search shortens what is left.
	idle := must(t, f, 200, "POST", "/ix/_pit?keep_alive=1m", "")["id"].(string)
	short := must(t, f, 200, "POST", "/ix/_pit?keep_alive=1m", "")["id"].(string)
	if status, out := search(short, "500ms"); status != 200 {
		t.Fatalf("search: %d %v", status, out)
	}
	advance(time.Second)
	if status, out := search(short, "1m"); !missing(status, out) {
		t.Fatalf("search past a 500ms keep-alive: %d %v", status, out)
	}
	if status, out := search(idle, "1m"); status != 200 {
		t.Fatalf("search 1s into a 1m keep-alive: %d %v", status, out)
	}
	advance(time.Minute)
	if status, out := search(idle, "1m"); !missing(status, out) {
		t.Fatalf("search 1m after the last use: %d %v", status, out)
	}

	must(t, f, 400, "POST", "/ix/_pit?keep_alive=forever", "")
	must(t, f, 400, "POST", "/ix/_pit?keep_alive=-1", "")
	alive := must(t, f, 200, "POST", "/ix/_pit?keep_alive=1m", "")["id"].(string)
	if status, _ := search(alive, "2x"); status != 400 {
		t.Fatalf("search with keep_alive 2x: %d, want 400", status)
	}
	must(t, f, 200, "DELETE", "/_pit", `{"id":"`+alive+`"}`)
}
