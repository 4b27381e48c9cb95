package esfake

import (
	"encoding/json"
	"strings"
	"testing"
)

// get and mget read the live documents: a write is visible to them at
// once, before any refresh, unless realtime=false.
func TestGetAndMgetAreRealtime(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	must(t, f, 200, "POST", "/_bulk", bulkLines(`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t","n":1}`))
	if got := searchIDs(t, f, "ix", ""); len(got) != 0 {
		t.Fatalf("search sees a write not refreshed: %v", got)
	}
	got := must(t, f, 200, "GET", "/ix/_doc/a", "")
	if got["found"] != true || got["_source"].(map[string]any)["n"] != 1.0 {
		t.Errorf("get: %v", got)
	}
	docs := must(t, f, 200, "POST", "/ix/_mget", `{"ids":["a"]}`)["docs"].([]any)
	if d := docs[0].(map[string]any); d["found"] != true || d["_source"] == nil {
		t.Errorf("mget: %v", d)
	}
	if status, got := call(t, f, "GET", "/ix/_doc/a?realtime=false", ""); status != 404 || got["found"] != false {
		t.Errorf("get realtime=false before a refresh: %d %v", status, got)
	}
	docs = must(t, f, 200, "POST", "/ix/_mget?realtime=false", `{"ids":["a"]}`)["docs"].([]any)
	if d := docs[0].(map[string]any); d["found"] != false {
		t.Errorf("mget realtime=false before a refresh: %v", d)
	}
	docs = must(t, f, 200, "POST", "/ix/_mget?realtime=false&refresh=true", `{"ids":["a"]}`)["docs"].([]any)
	if d := docs[0].(map[string]any); d["found"] != true {
		t.Errorf("mget realtime=false&refresh=true: %v", d)
	}
}

// mget answers, per document, what get would: _index, _id, _version,
// _seq_no, _primary_term, found and _source (filtered as asked), or the
// error of an index that does not exist; both forms of body.
func TestMget(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	createIndex(t, f, "iy", "")
	must(t, f, 200, "POST", "/_aliases", `{"actions":[{"add":{"index":"iy","alias":"one"}},
		{"add":{"index":"ix","alias":"two"}},{"add":{"index":"iy","alias":"two"}}]}`)
	must(t, f, 200, "POST", "/_bulk", bulkLines(
		`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t","n":1,"tags":["x","y"],"contact":{"id":"c1","name":"Ann"}}`,
		`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t","n":2,"tags":["x","y"],"contact":{"id":"c1","name":"Ann"}}`,
		`{"index":{"_index":"iy","_id":"b/1"}}`, `{"tenant":"u","n":3}`))
	full := `{"_id":"a","_index":"ix","_primary_term":1,"_seq_no":1,"_source":{"contact":{"id":"c1","name":"Ann"},"n":2,"tags":["x","y"],"tenant":"t"},"_version":2,"found":true}`
	for _, tc := range []struct {
		name, path, body string
		want             []string // the docs, as JSON
	}{
		{"ids", "/ix/_mget", `{"ids":["a","nope"]}`, []string{full, `{"_id":"nope","_index":"ix","found":false}`}},
		{"docs of several indices", "/_mget", `{"docs":[{"_index":"iy","_id":"b/1"},{"_index":"ix","_id":"a"}]}`, []string{
			`{"_id":"b/1","_index":"iy","_primary_term":1,"_seq_no":0,"_source":{"n":3,"tenant":"u"},"_version":1,"found":true}`, full}},
		{"docs with the index of the path", "/ix/_mget", `{"docs":[{"_id":"a"},{"_index":"iy","_id":"b/1","_source":false}]}`, []string{
			full, `{"_id":"b/1","_index":"iy","_primary_term":1,"_seq_no":0,"_version":1,"found":true}`}},
		{"missing index", "/_mget", `{"docs":[{"_index":"missing","_id":"a"},{"_index":"ix","_id":"a","_source":"n"}]}`, []string{
			`{"_id":"a","_index":"missing","error":{"index":"missing","index_uuid":"_na_","reason":"no such index [missing]","resource.id":"missing","resource.type":"index_or_alias","type":"index_not_found_exception"}}`,
			`{"_id":"a","_index":"ix","_primary_term":1,"_seq_no":1,"_source":{"n":2},"_version":2,"found":true}`}},
		{"ids of a missing index", "/missing/_mget", `{"ids":["a"]}`, []string{
			`{"_id":"a","_index":"missing","error":{"index":"missing","index_uuid":"_na_","reason":"no such index [missing]","resource.id":"missing","resource.type":"index_or_alias","type":"index_not_found_exception"}}`}},
		{"alias of one index", "/one/_mget", `{"ids":["b/1"]}`, []string{
			`{"_id":"b/1","_index":"iy","_primary_term":1,"_seq_no":0,"_source":{"n":3,"tenant":"u"},"_version":1,"found":true}`}},
		{"alias of two indices", "/_mget", `{"docs":[{"_index":"two","_id":"a"}]}`, []string{
			`{"_id":"a","_index":"two","error":{"reason":"alias [two] has more than one index associated with it [ix, iy], can't execute a single index op","type":"illegal_argument_exception"}}`}},
		{"_source=false", "/ix/_mget?_source=false", `{"ids":["a"]}`, []string{
			`{"_id":"a","_index":"ix","_primary_term":1,"_seq_no":1,"_version":2,"found":true}`}},
		{"_source_includes", "/ix/_mget?_source_includes=contact.id,n", `{"ids":["a"]}`, []string{
			`{"_id":"a","_index":"ix","_primary_term":1,"_seq_no":1,"_source":{"contact":{"id":"c1"},"n":2},"_version":2,"found":true}`}},
		{"_source_excludes", "/ix/_mget?_source_excludes=contact,tags", `{"ids":["a"]}`, []string{
			`{"_id":"a","_index":"ix","_primary_term":1,"_seq_no":1,"_source":{"n":2,"tenant":"t"},"_version":2,"found":true}`}},
		{"per-document _source object", "/ix/_mget", `{"docs":[{"_id":"a","_source":{"includes":["contact.*"],"excludes":["contact.name"]}}]}`, []string{
			`{"_id":"a","_index":"ix","_primary_term":1,"_seq_no":1,"_source":{"contact":{"id":"c1"}},"_version":2,"found":true}`}},
	} {
		out := must(t, f, 200, "POST", tc.path, tc.body)
		docs, _ := out["docs"].([]any)
		var got []string
		for _, d := range docs {
			b, _ := json.Marshal(d)
			got = append(got, string(b))
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	for _, body := range []string{`{"ids":["a"]}`, `{"docs":[{"_id":"a"}]}`, `{"ids":[]}`, `{"docs":[{"_index":"ix"}]}`} {
		if status, out := call(t, f, "POST", "/_mget", body); status != 400 || !strings.Contains(out["error"].(map[string]any)["type"].(string), "validation") {
			t.Errorf("mget %s: %d %v", body, status, out)
		}
	}
}

// get reads an id with a slash (escaped in the path), through an alias of
// one index, with _source filtering.
func TestGet(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	must(t, f, 200, "POST", "/_aliases", `{"actions":[{"add":{"index":"ix","alias":"one"}}]}`)
	must(t, f, 201, "PUT", "/ix/_doc/t%2Fa", `{"tenant":"t","n":1}`)
	got := must(t, f, 200, "GET", "/one/_doc/t%2Fa?_source_includes=n", "")
	if got["_id"] != "t/a" || got["_index"] != "ix" || len(got["_source"].(map[string]any)) != 1 {
		t.Errorf("get: %v", got)
	}
	if status, got := call(t, f, "GET", "/missing/_doc/a", ""); status != 404 || got["error"] == nil {
		t.Errorf("get of a missing index: %d %v", status, got)
	}
}
