package esfake

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A request body over http.max_content_length is answered 413 with no
// body, and nothing of it is applied, whether its length was declared or
// the body was sent in chunks; a body at the limit is read.
func TestMaxContentLength(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh), WithMaxContentLength(1000))
	createIndex(t, f, "ix", "")
	doc := func(id string, n int) string {
		return bulkLines(`{"index":{"_index":"ix","_id":"`+id+`"}}`, `{"tags":["`+strings.Repeat("x", n)+`"]}`)
	}
	small := doc("a", 10)
	atLimit := doc("b", 1000-len(doc("b", 0)))
	if len(atLimit) != 1000 {
		t.Fatalf("body of %d bytes", len(atLimit))
	}
	over := doc("c", 1001-len(doc("c", 0)))
	must(t, f, 200, "POST", "/_bulk", small)
	must(t, f, 200, "POST", "/_bulk", atLimit)
	status, raw := callRaw(t, f, "POST", "/_bulk", over)
	if status != http.StatusRequestEntityTooLarge || len(raw) != 0 {
		t.Errorf("over the limit: status %d, body %q", status, raw)
	}
	// Chunked: no Content-Length to judge by.
	req, err := http.NewRequest("POST", f.URL()+"/_bulk", io.MultiReader(strings.NewReader(doc("d", 600)), strings.NewReader(doc("e", 600))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ContentLength > 0 || res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked over the limit: status %d, length %d", res.StatusCode, res.ContentLength)
	}
	got := f.Docs("ix")
	if len(got) != 2 || got["ix a"] == nil || got["ix b"] == nil {
		t.Errorf("documents written: %v", got)
	}
	// The default is Elasticsearch's, 100mb.
	if g := New(t); g.maxContentLength != 100<<20 {
		t.Errorf("default %d", g.maxContentLength)
	}
}

// errorOf is the type and index of an error answer's (or item's) error.
func errorOf(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	return fmt.Sprintf("%v %v", e["type"], e["index"])
}

// A closed index keeps its documents, and answers reads and writes with
// 400 index_closed_exception: GET whole, _mget and _bulk item by item. A
// search fails when it names the index or an alias of it, and skips it
// with ignore_unavailable; a wildcard skips it (expand_wildcards=open).
// Closing takes names, not wildcards; opening gives everything back.
func TestClosedIndex(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	createIndex(t, f, "iy", "")
	must(t, f, 200, "POST", "/_bulk?refresh=true", bulkLines(
		`{"index":{"_index":"ix","_id":"a"}}`, `{"n":1}`, `{"index":{"_index":"iy","_id":"b"}}`, `{"n":2}`))
	must(t, f, 200, "POST", "/_aliases", `{"actions":[{"add":{"index":"ix","alias":"al"}}]}`)
	must(t, f, 400, "POST", "/i*/_close", "")
	out := must(t, f, 200, "POST", "/ix/_close", "")
	if out["acknowledged"] != true {
		t.Fatalf("close: %v", out)
	}

	if got := errorOf(must(t, f, 400, "GET", "/ix/_doc/a", "")); got != "index_closed_exception ix" {
		t.Errorf("get: %s", got)
	}
	out = must(t, f, 200, "POST", "/_mget", `{"docs":[{"_index":"ix","_id":"a"},{"_index":"iy","_id":"b"}]}`)
	docs := out["docs"].([]any)
	if got := errorOf(docs[0].(map[string]any)); got != "index_closed_exception ix" || docs[1].(map[string]any)["found"] != true {
		t.Errorf("mget: %v", docs)
	}
	out = must(t, f, 200, "POST", "/_bulk", bulkLines(
		`{"index":{"_index":"ix","_id":"c"}}`, `{"n":3}`, `{"delete":{"_index":"al","_id":"a"}}`,
		`{"index":{"_index":"iy","_id":"c"}}`, `{"n":3}`))
	for i, want := range []string{"400 index_closed_exception v<nil>", "400 index_closed_exception v<nil>", "201 created v1"} {
		if got := itemSummary(item(t, out, i)); got != want {
			t.Errorf("bulk item %d: %s, want %s", i, got, want)
		}
	}
	must(t, f, 200, "POST", "/_refresh", "")
	for _, target := range []string{"ix", "al", "ix,iy"} {
		if got := errorOf(must(t, f, 400, "POST", "/"+target+"/_search", `{}`)); got != "index_closed_exception ix" {
			t.Errorf("search %s: %s", target, got)
		}
		if ids := hitIDs(must(t, f, 200, "POST", "/"+target+"/_search?ignore_unavailable=true", `{}`)); !equal(ids, []string{"iy/b", "iy/c"}) && !(target != "ix,iy" && len(ids) == 0) {
			t.Errorf("search %s, ignore_unavailable: %v", target, ids)
		}
	}
	must(t, f, 400, "POST", "/ix/_count", `{}`)
	for _, target := range []string{"i*", ""} {
		if ids := searchIDs(t, f, target, ""); !equal(ids, []string{"iy/b", "iy/c"}) {
			t.Errorf("search %q: %v", target, ids)
		}
	}
	// The index APIs still see it.
	if out := must(t, f, 200, "GET", "/al/_alias", ""); out["ix"] == nil {
		t.Errorf("aliases: %v", out)
	}

	must(t, f, 200, "POST", "/al/_open", "")
	if out := must(t, f, 200, "GET", "/ix/_doc/a", ""); out["found"] != true {
		t.Errorf("get after open: %v", out)
	}
	if ids := searchIDs(t, f, "i*", ""); !equal(ids, []string{"ix/a", "iy/b", "iy/c"}) {
		t.Errorf("search after open: %v", ids)
	}
}
