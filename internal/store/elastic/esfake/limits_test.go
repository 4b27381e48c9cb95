package esfake

import (
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
