package esfake

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// itemSummary is "<status> <result or error type> v<version>" of a bulk
// item.
func itemSummary(it map[string]any) string {
	what := it["result"]
	if e, ok := it["error"].(map[string]any); ok {
		what = e["type"]
	}
	return fmt.Sprintf("%v %v v%v", it["status"], what, it["_version"])
}

// External versioning on bulk index and delete: a write succeeds when the
// document is absent or its version is lower (or equal, external_gte) than
// the one given, and the document takes that version; otherwise 409. A
// delete is checked as an index is: with external_gte it removes the
// document at exactly its version, not one at a higher version. A
// delete leaves a tombstone with its version, which later writes are
// checked against; a delete of a document that does not exist leaves one
// too.
func TestExternalVersioning(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  []string // itemSummary of each item
	}{
		{"index, higher, lower, equal", []string{
			`{"index":{"_index":"ix","_id":"a","version":5,"version_type":"external"}}`, `{"n":1}`,
			`{"index":{"_index":"ix","_id":"a","version":7,"version_type":"external"}}`, `{"n":2}`,
			`{"index":{"_index":"ix","_id":"a","version":6,"version_type":"external"}}`, `{"n":3}`,
			`{"index":{"_index":"ix","_id":"a","version":7,"version_type":"external"}}`, `{"n":4}`,
		}, []string{"201 created v5", "200 updated v7", "409 version_conflict_engine_exception v<nil>", "409 version_conflict_engine_exception v<nil>"}},
		{"external_gte takes an equal version", []string{
			`{"index":{"_index":"ix","_id":"a","version":5,"version_type":"external_gte"}}`, `{"n":1}`,
			`{"index":{"_index":"ix","_id":"a","version":5,"version_type":"external_gte"}}`, `{"n":2}`,
			`{"index":{"_index":"ix","_id":"a","version":4,"version_type":"external_gte"}}`, `{"n":3}`,
			`{"index":{"_index":"ix","_id":"a","version":5,"version_type":"external_gt"}}`, `{"n":4}`,
		}, []string{"201 created v5", "200 updated v5", "409 version_conflict_engine_exception v<nil>", "409 version_conflict_engine_exception v<nil>"}},
		{"external_gte delete takes an equal version, not a higher one", []string{
			`{"index":{"_index":"ix","_id":"a","version":5,"version_type":"external"}}`, `{"n":1}`,
			`{"delete":{"_index":"ix","_id":"a","version":4,"version_type":"external_gte"}}`,
			`{"delete":{"_index":"ix","_id":"a","version":5,"version_type":"external_gte"}}`,
			`{"delete":{"_index":"ix","_id":"a","version":5,"version_type":"external_gte"}}`,
			`{"index":{"_index":"ix","_id":"a","version":5,"version_type":"external"}}`, `{"n":2}`,
			`{"index":{"_index":"ix","_id":"a","version":6,"version_type":"external"}}`, `{"n":3}`,
		}, []string{"201 created v5", "409 version_conflict_engine_exception v<nil>", "200 deleted v5", "404 not_found v5",
			"409 version_conflict_engine_exception v<nil>", "201 created v6"}},
		{"external after internal", []string{
			`{"index":{"_index":"ix","_id":"a"}}`, `{"n":1}`,
			`{"index":{"_index":"ix","_id":"a"}}`, `{"n":2}`,
			`{"index":{"_index":"ix","_id":"a","version":2,"version_type":"external"}}`, `{"n":3}`,
			`{"index":{"_index":"ix","_id":"a","version":3,"version_type":"external"}}`, `{"n":4}`,
			`{"index":{"_index":"ix","_id":"a"}}`, `{"n":5}`,
		}, []string{"201 created v1", "200 updated v2", "409 version_conflict_engine_exception v<nil>", "200 updated v3", "200 updated v4"}},
		{"delete leaves a tombstone", []string{
			`{"index":{"_index":"ix","_id":"a","version":5,"version_type":"external"}}`, `{"n":1}`,
			`{"delete":{"_index":"ix","_id":"a","version":4,"version_type":"external"}}`,
			`{"delete":{"_index":"ix","_id":"a","version":8,"version_type":"external"}}`,
			`{"index":{"_index":"ix","_id":"a","version":8,"version_type":"external"}}`, `{"n":2}`,
			`{"index":{"_index":"ix","_id":"a","version":6,"version_type":"external"}}`, `{"n":3}`,
			`{"index":{"_index":"ix","_id":"a","version":9,"version_type":"external"}}`, `{"n":4}`,
		}, []string{"201 created v5", "409 version_conflict_engine_exception v<nil>", "200 deleted v8",
			"409 version_conflict_engine_exception v<nil>", "409 version_conflict_engine_exception v<nil>", "201 created v9"}},
		{"delete of a document that does not exist records its version", []string{
			`{"delete":{"_index":"ix","_id":"a","version":10,"version_type":"external"}}`,
			`{"index":{"_index":"ix","_id":"a","version":10,"version_type":"external"}}`, `{"n":1}`,
			`{"delete":{"_index":"ix","_id":"a","version":9,"version_type":"external"}}`,
			`{"index":{"_index":"ix","_id":"a","version":11,"version_type":"external"}}`, `{"n":2}`,
		}, []string{"404 not_found v10", "409 version_conflict_engine_exception v<nil>", "409 version_conflict_engine_exception v<nil>", "201 created v11"}},
		{"external delete creates the index, internal does not", []string{
			`{"delete":{"_index":"new","_id":"a"}}`,
			`{"delete":{"_index":"new","_id":"a","version":3,"version_type":"external"}}`,
			`{"delete":{"_index":"new","_id":"a"}}`,
		}, []string{"404 index_not_found_exception v<nil>", "404 not_found v3", "404 not_found v4"}},
		{"internal versions continue over a tombstone", []string{
			`{"index":{"_index":"ix","_id":"a"}}`, `{"n":1}`,
			`{"delete":{"_index":"ix","_id":"a"}}`,
			`{"create":{"_index":"ix","_id":"a"}}`, `{"n":2}`,
			`{"create":{"_index":"ix","_id":"a"}}`, `{"n":3}`,
		}, []string{"201 created v1", "200 deleted v2", "201 created v3", "409 version_conflict_engine_exception v<nil>"}},
		{"if_seq_no", []string{
			`{"index":{"_index":"ix","_id":"a"}}`, `{"n":1}`,
			`{"index":{"_index":"ix","_id":"a","if_seq_no":0,"if_primary_term":1}}`, `{"n":2}`,
			`{"index":{"_index":"ix","_id":"a","if_seq_no":0,"if_primary_term":1}}`, `{"n":3}`,
			`{"index":{"_index":"ix","_id":"a","if_seq_no":1,"if_primary_term":2}}`, `{"n":3}`,
			`{"delete":{"_index":"ix","_id":"b","if_seq_no":1,"if_primary_term":1}}`,
		}, []string{"201 created v1", "200 updated v2", "409 version_conflict_engine_exception v<nil>",
			"409 version_conflict_engine_exception v<nil>", "409 version_conflict_engine_exception v<nil>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t, WithRefreshInterval(NoRefresh))
			createIndex(t, f, "ix", "")
			must(t, f, 200, "PUT", "/_index_template/new", `{"index_patterns":["new"],"template":{"mappings":{"properties":{"n":{"type":"integer"}}}}}`)
			out := must(t, f, 200, "POST", "/_bulk", bulkLines(tc.lines...))
			var got []string
			for i := range tc.want {
				got = append(got, itemSummary(item(t, out, i)))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			wantErrors := strings.Contains(strings.Join(tc.want, " "), "exception")
			if out["errors"] != wantErrors {
				t.Errorf("errors: %v, want %v", out["errors"], wantErrors)
			}
		})
	}
}

// A tombstone lasts index.gc_deletes: after it, a write no longer finds the
// deleted version.
func TestTombstonesExpireAfterGCDeletes(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", `{"index":{"gc_deletes":"50ms"}}`)
	out := must(t, f, 200, "POST", "/_bulk", bulkLines(
		`{"index":{"_index":"ix","_id":"a","version":5,"version_type":"external"}}`, `{"n":1}`,
		`{"delete":{"_index":"ix","_id":"a","version":6,"version_type":"external"}}`,
		`{"index":{"_index":"ix","_id":"a","version":3,"version_type":"external"}}`, `{"n":2}`))
	if got := itemSummary(item(t, out, 2)); got != "409 version_conflict_engine_exception v<nil>" {
		t.Errorf("within gc_deletes: %s", got)
	}
	time.Sleep(100 * time.Millisecond)
	out = must(t, f, 200, "POST", "/_bulk", bulkLines(
		`{"index":{"_index":"ix","_id":"a","version":3,"version_type":"external"}}`, `{"n":2}`))
	if got := itemSummary(item(t, out, 0)); got != "201 created v3" {
		t.Errorf("after gc_deletes: %s", got)
	}
}

// Requests Elasticsearch refuses before applying anything fail whole with
// action_request_validation_exception, every reason numbered; nothing of
// them is applied.
func TestBulkValidation(t *testing.T) {
	long := strings.Repeat("é", 257) // 514 bytes
	for _, tc := range []struct {
		name   string
		lines  []string
		reason string
	}{
		{"id over 512 bytes", []string{
			`{"index":{"_index":"ix","_id":"ok"}}`, `{"n":1}`,
			`{"index":{"_index":"ix","_id":"` + long + `"}}`, `{"n":1}`,
			`{"create":{"_index":"ix","_id":"` + long + `"}}`, `{"n":1}`,
		}, "Validation Failed: 1: id [" + long + "] is too long, must be no longer than 512 bytes but was: 514;2: id [" + long + "] is too long, must be no longer than 512 bytes but was: 514;"},
		{"create with external versioning", []string{
			`{"create":{"_index":"ix","_id":"a","version":3,"version_type":"external"}}`, `{"n":1}`,
		}, "Validation Failed: 1: create operations only support internal versioning. use index instead;"},
		{"external without a version", []string{
			`{"index":{"_index":"ix","_id":"a","version_type":"external"}}`, `{"n":1}`,
		}, "Validation Failed: 1: illegal version value [-3] for version type [EXTERNAL];"},
		{"internal with a version", []string{
			`{"delete":{"_index":"ix","_id":"a","version":3}}`,
		}, "Validation Failed: 1: internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead;"},
		{"if_seq_no with a version", []string{
			`{"index":{"_index":"ix","_id":"a","version":3,"version_type":"external","if_seq_no":1,"if_primary_term":1}}`, `{"n":1}`,
		}, "Validation Failed: 1: compare and write operations can not use versioning;"},
		{"if_seq_no alone", []string{
			`{"index":{"_index":"ix","_id":"a","if_seq_no":1}}`, `{"n":1}`,
		}, "Validation Failed: 1: ifSeqNo is set, but primary term is [0];"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t, WithRefreshInterval(NoRefresh))
			createIndex(t, f, "ix", "")
			status, out := call(t, f, "POST", "/_bulk", bulkLines(tc.lines...))
			e, _ := out["error"].(map[string]any)
			if status != 400 || e["type"] != "action_request_validation_exception" || e["reason"] != tc.reason {
				t.Errorf("%d %v, want 400 action_request_validation_exception %q", status, out, tc.reason)
			}
			if docs := f.Docs("ix"); len(docs) != 0 {
				t.Errorf("an invalid bulk applied %v", docs)
			}
		})
	}
	// 512 bytes is fine; a delete of a longer id is no validation error (it
	// finds nothing).
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	out := must(t, f, 200, "POST", "/_bulk", bulkLines(
		`{"index":{"_index":"ix","_id":"`+strings.Repeat("a", 512)+`"}}`, `{"n":1}`,
		`{"delete":{"_index":"ix","_id":"`+long+`"}}`))
	if a, b := itemSummary(item(t, out, 0)), itemSummary(item(t, out, 1)); a != "201 created v1" || b != "404 not_found v1" {
		t.Errorf("512 bytes: %s; delete of a long id: %s", a, b)
	}
	// The single-document API validates the same way.
	status, got := call(t, f, "PUT", "/ix/_doc/"+strings.Repeat("b", 513), `{"n":1}`)
	if e, _ := got["error"].(map[string]any); status != 400 || e["type"] != "action_request_validation_exception" {
		t.Errorf("PUT _doc with a long id: %d %v", status, got)
	}
	status, got = call(t, f, "PUT", "/ix/_doc/c?op_type=create&version=2&version_type=external", `{"n":1}`)
	if e, _ := got["error"].(map[string]any); status != 400 || !strings.Contains(fmt.Sprint(e["reason"]), "create operations only support internal versioning") {
		t.Errorf("PUT _doc create with external versioning: %d %v", status, got)
	}
}

// _doc writes take version and version_type as parameters.
func TestDocExternalVersioning(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	if got := must(t, f, 201, "PUT", "/ix/_doc/a?version=4&version_type=external", `{"n":1}`); got["_version"] != 4.0 {
		t.Errorf("put: %v", got)
	}
	if status, got := call(t, f, "PUT", "/ix/_doc/a?version=4&version_type=external", `{"n":2}`); status != 409 {
		t.Errorf("put of the same version: %d %v", status, got)
	}
	if got := must(t, f, 200, "DELETE", "/ix/_doc/a?version=6&version_type=external", ""); got["_version"] != 6.0 || got["result"] != "deleted" {
		t.Errorf("delete: %v", got)
	}
	if status, got := call(t, f, "PUT", "/ix/_doc/a?version=5&version_type=external", `{"n":2}`); status != 409 {
		t.Errorf("put under the tombstone: %d %v", status, got)
	}
}

// Action lines are read as JSON: names and values with escapes mean what
// they mean unescaped, and index names read once serve every item.
func TestBulkActionEscapes(t *testing.T) {
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	out := must(t, f, 200, "POST", "/_bulk", bulkLines(
		`{"\u0069ndex":{"\u005findex":"i\u0078","_id":"a"}}`, `{"n":1}`,
		`{"create":{"_index":"ix","_i\u0064":"b"}}`, `{"n":2}`,
		`{"index":{"_index":"ix","_id":"a"}}`, `{"n":3}`))
	var got []string
	for i := range 3 {
		got = append(got, itemSummary(item(t, out, i)))
	}
	if want := []string{"201 created v1", "201 created v1", "200 updated v2"}; !equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	status, body := callRaw(t, f, "POST", "/_bulk", bulkLines(`{"ind\u0065x":{"_index":"ix","r\u006futing":"x"}}`, `{}`))
	if status != 400 || !strings.Contains(string(body), "unknown parameter [routing]") {
		t.Errorf("HTTP %d %s: want the unknown parameter named unescaped", status, body)
	}
}

// A source that repeats a member name within one object, at any depth,
// is refused as Elasticsearch's strict duplicate detection refuses it: the
// item fails with 400 document_parsing_exception naming the field, the
// other items of the request are applied. The same name in two different
// objects is no repetition. The single-document index API refuses it too.
// bulkBesideGood sends src as a create of document "tested" to a new
// fake's index "ix", after a good document in the same _bulk, checks the
// good one stored, and returns the fake, the answer and the tested item.
func bulkBesideGood(t *testing.T, src string) (*Server, map[string]any, map[string]any) {
	t.Helper()
	f := New(t, WithRefreshInterval(NoRefresh))
	createIndex(t, f, "ix", "")
	out := must(t, f, 200, "POST", "/_bulk", bulkLines(
		`{"index":{"_index":"ix","_id":"good"}}`, `{"tenant":"t","n":1}`,
		`{"create":{"_index":"ix","_id":"tested"}}`, src))
	if good := item(t, out, 0); good["status"] != 201.0 {
		t.Errorf("the good item: %v", good)
	}
	return f, out, item(t, out, 1)
}

func TestRepeatedMemberNames(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		field     string // the repeated name; "" if the source is accepted
	}{
		{"top level", `{"tenant":"t","n":1,"tenant":"u"}`, "tenant"},
		{"nested object", `{"tenant":"t","contact":{"id":"c1","name":"x","id":"c2"}}`, "id"},
		{"object in an array", `{"contact":[{"id":"c1"},{"name":"x","name":"y"}]}`, "name"},
		{"escaped spelling", `{"n":1,"\u006e":2}`, "n"},
		{"same name in two objects", `{"contact":[{"id":"c1","name":"x"},{"id":"c2","name":"y"}]}`, ""},
		{"same name at two depths", `{"tenant":"t","contact":{"id":"c1"},"n":1}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, out, it := bulkBesideGood(t, tc.src)
			doc, _ := call(t, f, "GET", "/ix/_doc/tested", "")
			if tc.field == "" {
				if it["status"] != 201.0 || out["errors"] != false || doc != 200 {
					t.Errorf("item %v, errors %v, get %d: want it stored", it, out["errors"], doc)
				}
				return
			}
			e, _ := it["error"].(map[string]any)
			reason, _ := e["reason"].(string)
			if it["status"] != 400.0 || e["type"] != "document_parsing_exception" || out["errors"] != true ||
				!strings.Contains(reason, "failed to parse: ") || !strings.HasSuffix(reason, "Duplicate field '"+tc.field+"'") {
				t.Errorf("item %v, errors %v: want 400 document_parsing_exception, Duplicate field '%s'", it, out["errors"], tc.field)
			}
			if doc != 404 {
				t.Errorf("get of the refused document: %d, want 404", doc)
			}
			if got := must(t, f, 200, "GET", "/ix/_doc/good", ""); got["found"] != true {
				t.Errorf("the good document: %v", got)
			}
			status, body := call(t, f, "PUT", "/ix/_doc/single", tc.src)
			e, _ = body["error"].(map[string]any)
			if status != 400 || e["type"] != "document_parsing_exception" {
				t.Errorf("_doc: %d %v, want 400 document_parsing_exception", status, body)
			}
		})
	}
}

// TestSourceText: a source with bytes that are not UTF-8 is refused, item
// by item, as Jackson's UTF-8 parser refuses it; a lone surrogate, escaped
// or encoded, is stored, as Elasticsearch 8 stores it (decodeSource), and
// its source read back byte for byte.
func TestSourceText(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		refused   bool
	}{
		{"escaped lone high surrogate", `{"tenant":"t","tags":["\ud800 hi"]}`, false},
		{"escaped lone low surrogate", `{"tenant":"t","contact":{"name":"x\udc00"}}`, false},
		{"escaped pair", `{"tenant":"t","tags":["\ud83d\ude00"]}`, false},
		{"raw invalid byte", "{\"tenant\":\"t\",\"tags\":[\"a\xffb\"]}", true},
		{"raw truncated sequence", "{\"tenant\":\"t\",\"tags\":[\"\xe2\x82\"]}", true},
		{"encoded surrogate", "{\"tenant\":\"t\",\"tags\":[\"\xed\xa0\x80 x\"]}", false},
		{"encoded surrogate cut short", "{\"tenant\":\"t\",\"tags\":[\"\xed\xa0\"]}", true},
		{"overlong encoding", "{\"tenant\":\"t\",\"tags\":[\"\xc0\x80\"]}", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, out, it := bulkBesideGood(t, tc.src)
			status, _ := call(t, f, "GET", "/ix/_doc/tested", "")
			if !tc.refused {
				if it["status"] != 201.0 || out["errors"] != false || status != 200 {
					t.Fatalf("item %v, errors %v, get %d: want it stored", it, out["errors"], status)
				}
				if _, raw := callRaw(t, f, "GET", "/ix/_doc/tested", ""); !strings.Contains(string(raw), `"_source":`+tc.src) {
					t.Errorf("read back %s, want the source %s as written", raw, tc.src)
				}
				return
			}
			e, _ := it["error"].(map[string]any)
			reason, _ := e["reason"].(string)
			if it["status"] != 400.0 || e["type"] != "document_parsing_exception" || out["errors"] != true ||
				!strings.Contains(reason, "failed to parse: Invalid UTF-8") {
				t.Errorf("item %v, errors %v: want 400 document_parsing_exception, Invalid UTF-8", it, out["errors"])
			}
			if status != 404 {
				t.Errorf("get of the refused document: %d, want 404", status)
			}
		})
	}
}
