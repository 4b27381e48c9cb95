package esfake

import (
	"net/url"
	"testing"
)

// filter_path on _bulk keeps only the members whose path a pattern
// matches: * within a name, ** over names, an array adding no name, an
// object or array left empty left out, an error answer not filtered.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/common-options.html#common-options-response-filtering
func TestBulkFilterPath(t *testing.T) {
	lines := bulkLines(
		`{"index":{"_index":"ix","_id":"a"}}`, `{"n":1}`,
		`{"create":{"_index":"ix","_id":"a"}}`, `{"n":2}`,
		`{"delete":{"_index":"ix","_id":"b"}}`,
	)
	for _, tc := range []struct {
		name, filter, want string
	}{
		{"none", "",
			`{"took":1,"errors":true,"items":[` +
				`{"index":{"_index":"ix","_id":"a","_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}},` +
				`{"create":{"_index":"ix","_id":"a","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[a]: version conflict, document already exists (current version [1])","index":"ix","shard":"0"}}},` +
				`{"delete":{"_index":"ix","_id":"b","_version":1,"result":"not_found","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":1,"_primary_term":1,"status":404}}]}`},
		{"what the write path asks", "items.*.status,items.*._seq_no,items.*._primary_term,items.*.error",
			`{"items":[{"index":{"_seq_no":0,"_primary_term":1,"status":201}},` +
				`{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[a]: version conflict, document already exists (current version [1])","index":"ix","shard":"0"}}},` +
				`{"delete":{"_seq_no":1,"_primary_term":1,"status":404}}]}`},
		{"top-level members", "errors,took", `{"took":1,"errors":true}`},
		{"one action only, empty items left out", "items.create.status",
			`{"items":[{"create":{"status":409}}]}`},
		{"a name with *, a member of an object", "items.*.res*,items.index._shards.failed,items.*.error.type",
			`{"items":[{"index":{"result":"created","_shards":{"failed":0}}},` +
				`{"create":{"error":{"type":"version_conflict_engine_exception"}}},` +
				`{"delete":{"result":"not_found"}}]}`},
		{"** over names", "**.status",
			`{"items":[{"index":{"status":201}},{"create":{"status":409}},{"delete":{"status":404}}]}`},
		{"a whole subtree", "items.delete",
			`{"items":[{"delete":{"_index":"ix","_id":"b","_version":1,"result":"not_found","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":1,"_primary_term":1,"status":404}}]}`},
		{"nothing matches", "nothing.here", `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t, WithRefreshInterval(NoRefresh))
			createIndex(t, f, "ix", "")
			path := "/_bulk"
			if tc.filter != "" {
				path += "?filter_path=" + url.QueryEscape(tc.filter)
			}
			status, out := callRaw(t, f, "POST", path, lines)
			if status != 200 || string(out) != tc.want {
				t.Errorf("HTTP %d\n got %s\nwant %s", status, out, tc.want)
			}
		})
	}
}

func TestBulkFilterPathLeavesErrorsWhole(t *testing.T) {
	f := New(t)
	status, out := callRaw(t, f, "POST", "/_bulk?filter_path=items.*.status", bulkLines(`{"index":{"_index":"ix"}`))
	if status != 400 || len(out) < 20 {
		t.Errorf("HTTP %d %s: want the whole error", status, out)
	}
	// Refused, as not modelled: an exclusion; an empty filter, which the
	// reference does not describe (the fake answered {} to it, stronger
	// than anything Elasticsearch is known to do), empty between commas or
	// in a name.
	for _, filter := range []string{"-items.*._shards", "", "items.*.status,", ",items.*.status", "items..status", "items.*.", " "} {
		status, out := callRaw(t, f, "POST", "/_bulk?filter_path="+url.QueryEscape(filter), bulkLines(`{"index":{"_index":"ix"}}`, `{}`))
		if status != 400 {
			t.Errorf("filter_path=%q: HTTP %d %s, want 400 (not modelled)", filter, status, out)
		}
	}
}
