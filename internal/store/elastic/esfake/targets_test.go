package esfake

import (
	"strings"
	"testing"
)

// A concrete name (not a wildcard) that matches no index or alias is a 404
// index_not_found_exception, unless ignore_unavailable; a wildcard matching
// nothing is an empty answer, unless allow_no_indices=false.
func TestMissingConcreteTargets(t *testing.T) {
	f := New(t)
	createIndex(t, f, "ix", "")
	must(t, f, 200, "POST", "/_aliases", `{"actions":[{"add":{"index":"ix","alias":"al"}}]}`)
	must(t, f, 201, "PUT", "/ix/_doc/a?refresh=true", `{"tenant":"t"}`)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string // in the answer
	}{
		{"GET", "/_cat/indices/missing?format=json", "", 404, `"index":"missing"`},
		{"GET", "/_cat/indices/ix,missing?format=json", "", 404, "no such index [missing]"},
		{"GET", "/_cat/indices/nomatch-*?format=json", "", 200, "[]"},
		{"GET", "/_cat/indices/ix,nomatch-*?format=json", "", 200, `"index":"ix"`},
		{"GET", "/_cat/indices/al?format=json", "", 200, `"docs.count":"1"`},
		{"GET", "/_cat/indices/missing?format=json&ignore_unavailable=true", "", 200, "[]"},
		{"GET", "/missing/_alias", "", 404, `"type":"index_not_found_exception"`},
		{"GET", "/ix,missing/_alias", "", 404, "no such index [missing]"},
		{"GET", "/nomatch-*/_alias", "", 200, "{}"},
		{"GET", "/ix,missing/_alias?ignore_unavailable=true", "", 200, `{"ix":{"aliases":{"al":{}}}}`},
		{"GET", "/al/_alias", "", 200, `{"ix":{"aliases":{"al":{}}}}`},
		{"GET", "/i*/_alias", "", 200, `{"ix":{"aliases":{"al":{}}}}`},
		{"GET", "/nomatch-*/_alias?allow_no_indices=false", "", 404, "no such index [nomatch-*]"},
		{"POST", "/missing/_search", "{}", 404, `"index":"missing"`},
		{"POST", "/missing/_search?ignore_unavailable=true", "{}", 200, `"hits":[]`},
		{"POST", "/nomatch-*/_search", "{}", 200, `"hits":[]`},
		{"POST", "/nomatch-*/_search?allow_no_indices=false", "{}", 404, "index_not_found_exception"},
		{"POST", "/al/_search", "{}", 200, `"_id":"a"`},
		{"POST", "/_search", "{}", 200, `"_id":"a"`},
		{"POST", "/missing/_count", "{}", 404, "index_not_found_exception"},
		{"POST", "/ix/_count", `{"query":{"term":{"tenant":{"value":"t"}}}}`, 200, `"count":1`},
		{"POST", "/missing/_refresh", "", 404, "index_not_found_exception"},
		{"POST", "/nomatch-*/_refresh", "", 200, `"total":0`},
		{"POST", "/missing/_pit?keep_alive=1m", "", 404, "index_not_found_exception"},
		{"POST", "/missing/_pit?keep_alive=1m&ignore_unavailable=true", "", 200, `"id":"pit-`},
		{"POST", "/missing/_delete_by_query", `{"query":{"ids":{"values":["a"]}}}`, 404, "index_not_found_exception"},
		{"POST", "/missing/_delete_by_query?ignore_unavailable=true", `{"query":{"ids":{"values":["a"]}}}`, 200, `"deleted":0`},
		{"POST", "/_msearch", bulkLines(`{"index":["missing"]}`, `{}`), 200, `"status":404`},
		{"POST", "/_msearch", bulkLines(`{"index":["missing"],"ignore_unavailable":true}`, `{}`), 200, `"status":200`},
	} {
		status, raw := callRaw(t, f, tc.method, tc.path, tc.body)
		if status != tc.status || !strings.Contains(string(raw), tc.want) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, status, raw, tc.status, tc.want)
		}
	}
}

// _cat/indices counts Lucene's documents: each object of a nested field,
// at any depth, besides its parent; an object field's objects are not
// documents. _count counts the documents.
func TestCatIndicesCountsNestedDocuments(t *testing.T) {
	f := New(t)
	must(t, f, 200, "PUT", "/ix", `{"mappings":{"dynamic":"strict","properties":{
		"tenant":{"type":"keyword"},
		"contact":{"properties":{"id":{"type":"keyword"}}},
		"messages":{"type":"nested","properties":{"text":{"type":"text"},
			"parts":{"type":"nested","properties":{"url":{"type":"keyword"}}}}}}}}`)
	must(t, f, 201, "PUT", "/ix/_doc/a", `{"tenant":"t","contact":{"id":"c"},
		"messages":[{"text":"oi"},{"text":"olá","parts":[{"url":"x"},{"url":"y"}]}]}`)
	must(t, f, 201, "PUT", "/ix/_doc/b", `{"tenant":"t","messages":{"text":"um só"}}`)
	must(t, f, 201, "PUT", "/ix/_doc/c?refresh=true", `{"tenant":"t"}`)
	// a: itself, two messages, two parts; b: itself, one message; c.
	for path, want := range map[string]string{"/_cat/indices/ix?format=json": `"docs.count":"8"`, "/ix/_count": `"count":3`} {
		if status, raw := callRaw(t, f, "GET", path, ""); status != 200 || !strings.Contains(string(raw), want) {
			t.Errorf("GET %s: %d %s, want %s", path, status, raw, want)
		}
	}
	// Closed, it has no counts to show.
	must(t, f, 200, "POST", "/ix/_close", "")
	if status, raw := callRaw(t, f, "GET", "/_cat/indices/ix?format=json", ""); status != 200 || !strings.Contains(string(raw), `"docs.count":null`) || !strings.Contains(string(raw), `"status":"close"`) {
		t.Errorf("GET /_cat/indices/ix of a closed index: %d %s, want status close and docs.count null", status, raw)
	}
}
