package esfake

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// modes are the two ways a Server runs: with the mapping checks the
// store's tests rely on, and without them (the bench's stand-in). Every
// promise but the checks holds in both.
var modes = []struct {
	name string
	opts []Option
}{
	{"checked", []Option{WithRefreshInterval(NoRefresh)}},
	{"unchecked", []Option{WithRefreshInterval(NoRefresh), WithoutMappingChecks()}},
}

// bulkStatuses sends a bulk body and returns each item's action:status.
func bulkStatuses(t *testing.T, f *Server, lines ...string) []string {
	t.Helper()
	out := must(t, f, 200, "POST", "/_bulk", bulkLines(lines...))
	var got []string
	for _, it := range out["items"].([]any) {
		for action, r := range it.(map[string]any) {
			got = append(got, fmt.Sprintf("%s:%v", action, r.(map[string]any)["status"]))
		}
	}
	return got
}

// Without mapping checks a document outside the mapping is kept as
// written; with them it is refused. A source that does not begin as an
// object is refused either way.
func TestWithoutMappingChecks(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f := New(t, m.opts...)
			createIndex(t, f, "ix", "")
			got := bulkStatuses(t, f,
				`{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":"t","unmapped":1}`,
				`{"index":{"_index":"ix","_id":"b"}}`, `{"n":"not a number"}`,
				`{"index":{"_index":"ix","_id":"c"}}`, `["not an object"]`,
				`{"index":{"_index":"ix","_id":"d"}}`, `{"tenant":"t","n":1}`)
			want := []string{"index:400", "index:400", "index:400", "index:201"}
			if m.name == "unchecked" {
				want = []string{"index:201", "index:201", "index:400", "index:201"}
			}
			if !slices.Equal(got, want) {
				t.Errorf("items %v, want %v", got, want)
			}
		})
	}
	// A source that is not JSON after its brace is kept unparsed; the
	// search that needs its fields fails, instead of skipping it.
	f := New(t, modes[1].opts...)
	createIndex(t, f, "ix", "")
	bulkStatuses(t, f, `{"index":{"_index":"ix","_id":"a"}}`, `{"tenant":`)
	f.Refresh()
	if status, out := call(t, f, "POST", "/ix/_search", `{"query":{"term":{"tenant":{"value":"t"}}}}`); status != 500 {
		t.Errorf("search over a broken source: %d %v", status, out)
	}
	if status, raw := callRaw(t, f, "GET", "/ix/_doc/a", ""); status != 200 || !strings.HasSuffix(string(raw), `"_source":{"tenant":}`) {
		t.Errorf("get of a broken source: %d %s", status, raw)
	}
}

// Reads answer the source as the bytes written (spaces, escapes, numbers
// as they were spelt), unless source filtering is asked; queries,
// sorts and filtering decode it.
func TestSourcesAnswerAsWritten(t *testing.T) {
	src := `{ "tenant":"Olá \"mundo\" <b>&amp;\u00e9", "n":1.50e1,"tags":["x","y"],"contact":{"id":"c1"} }`
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f := New(t, m.opts...)
			createIndex(t, f, "ix", "")
			if got := bulkStatuses(t, f, `{"index":{"_index":"ix","_id":"acme/evt 1"}}`, src,
				`{"index":{"_index":"ix","_id":"b"}}`, `{"tenant":"u","n":2}`); !slices.Equal(got, []string{"index:201", "index:201"}) {
				t.Fatalf("items %v", got)
			}
			for _, tc := range []struct{ method, path, body string }{
				{"GET", "/ix/_doc/acme%2Fevt%201", ""},
				{"POST", "/ix/_mget", `{"ids":["acme/evt 1"]}`},
				{"POST", "/_mget", `{"docs":[{"_index":"ix","_id":"acme/evt 1"},{"_index":"ix","_id":"nope"}]}`},
			} {
				status, raw := callRaw(t, f, tc.method, tc.path, tc.body)
				if status != 200 || !strings.Contains(string(raw), `"_source":`+src+`}`) {
					t.Errorf("%s %s: %d %s, want the source as written", tc.method, tc.path, status, raw)
				}
			}
			docs := must(t, f, 200, "POST", "/ix/_mget?_source_includes=contact", `{"ids":["acme/evt 1"]}`)["docs"].([]any)
			if b, _ := json.Marshal(docs[0].(map[string]any)["_source"]); string(b) != `{"contact":{"id":"c1"}}` {
				t.Errorf("filtered source: %s", b)
			}
			f.Refresh()
			if got := searchIDs(t, f, "ix", `{"term":{"tags":{"value":"y"}}}`); !equal(got, []string{"ix/acme/evt 1"}) {
				t.Errorf("term query: %v", got)
			}
			out := must(t, f, 200, "POST", "/ix/_search", `{"size":10,"sort":[{"tenant":{"order":"desc"}}]}`)
			hits := out["hits"].(map[string]any)["hits"].([]any)
			var want map[string]any
			json.Unmarshal([]byte(src), &want)
			if len(hits) != 2 || hits[0].(map[string]any)["_id"] != "b" || fmt.Sprint(hits[1].(map[string]any)["_source"]) != fmt.Sprint(want) {
				t.Errorf("sorted search: %v", hits)
			}
		})
	}
}

// Conditional writes: create conflicts, if_seq_no and if_primary_term,
// external versions against documents and tombstones; requests
// Elasticsearch refuses whole are refused whole.
func TestConditionalWrites(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f := New(t, m.opts...)
			createIndex(t, f, "k", "")
			createIndex(t, f, "s", "")
			got := bulkStatuses(t, f,
				`{"create":{"_index":"k","_id":"a/1"}}`, `{"n":1}`,
				`{"create":{"_index":"k","_id":"a/1"}}`, `{"n":1}`, // exists
				`{"index":{"_index":"k","_id":"a/1","if_seq_no":0,"if_primary_term":1}}`, `{"n":2}`,
				`{"index":{"_index":"k","_id":"a/1","if_seq_no":0,"if_primary_term":1}}`, `{"n":3}`, // stale
				`{"index":{"_index":"k","_id":"a/2","if_seq_no":0,"if_primary_term":1}}`, `{"n":1}`, // no document
				`{"index":{"_index":"k","_id":"a/1","if_seq_no":1,"if_primary_term":2}}`, `{"n":3}`, // other term
			)
			want := []string{"create:201", "create:409", "index:200", "index:409", "index:409", "index:409"}
			if !slices.Equal(got, want) {
				t.Errorf("items %v, want %v", got, want)
			}
			got = bulkStatuses(t, f,
				`{"index":{"_index":"s","_id":"x","version":2,"version_type":"external"}}`, `{"n":2}`,
				`{"index":{"_index":"s","_id":"x","version":2,"version_type":"external"}}`, `{"n":20}`,
				`{"index":{"_index":"s","_id":"x","version":3,"version_type":"external"}}`, `{"n":3}`,
				`{"delete":{"_index":"s","_id":"x","version":3,"version_type":"external"}}`,
				`{"delete":{"_index":"s","_id":"x","version":4,"version_type":"external"}}`,
				`{"index":{"_index":"s","_id":"x","version":4,"version_type":"external"}}`, `{"n":4}`,
				`{"index":{"_index":"s","_id":"x","version":5,"version_type":"external"}}`, `{"n":5}`,
				`{"delete":{"_index":"s","_id":"gone","version":7,"version_type":"external"}}`,
				`{"index":{"_index":"s","_id":"gone","version":6,"version_type":"external"}}`, `{"n":6}`,
				`{"delete":{"_index":"missing","_id":"y"}}`,
			)
			want = []string{"index:201", "index:409", "index:200", "delete:409", "delete:200", "index:409", "index:201", "delete:404", "index:409", "delete:404"}
			if !slices.Equal(got, want) {
				t.Errorf("items %v, want %v", got, want)
			}
			for _, body := range []string{
				`{"create":{"_index":"k","_id":"c","version":1,"version_type":"external"}}` + "\n{}\n",
				`{"index":{"_index":"k","_id":"c","version":1}}` + "\n{}\n",
				`{"index":{"_index":"k","_id":"c","if_seq_no":1}}` + "\n{}\n",
				`{"index":{"_index":"k","_id":"` + strings.Repeat("c", 513) + `"}}` + "\n{}\n",
				`{"update":{"_index":"k","_id":"c"}}` + "\n{}\n",
				`{"index":{"_index":"k","_id":"c"}}` + "\n",
				"",
			} {
				if status, out := call(t, f, "POST", "/_bulk", body); status != 400 {
					t.Errorf("%.60q: %d %v, want 400", body, status, out)
				}
			}
			if docs := f.Docs("k"); len(docs) != 1 {
				t.Errorf("refused requests applied: %v", docs)
			}
		})
	}
}

// Action lines are read token by token: spaces, escapes and nulls are
// JSON's; what Elasticsearch refuses, or the fake does not model, is a 400.
func TestActionLines(t *testing.T) {
	f := New(t, modes[1].opts...)
	createIndex(t, f, "k", "")
	got := bulkStatuses(t, f,
		` { "index" : { "_index" : "k" , "_id" : "plain" } } `, `{"n":1}`,
		`{"index":{"_index":"k","_id":"quo\"te\u00e9"}}`, `{"n":2}`,
		`{"index":{"_index":"k","_id":"nul","version_type":null,"if_seq_no":null}}`, `{"n":3}`,
		`{"create":{"_id":"order","_index":"k"}}`, `{"n":4}`,
		`{"delete":{"_index":"k","_id":"plain","version":10,"version_type":"external_gte"}}`,
		`{"index":{"_index":"k","_id":"nul","if_seq_no":2,"if_primary_term":1}}`, `{"n":5}`,
	)
	want := []string{"index:201", "index:201", "index:201", "create:201", "delete:200", "index:200"}
	if !slices.Equal(got, want) {
		t.Errorf("items %v, want %v", got, want)
	}
	_, raw := callRaw(t, f, "POST", "/k/_mget", `{"ids":["plain","quo\"teé","nul","order"]}`)
	for _, s := range []string{`"_id":"plain","found":false`, `"_id":"quo\"teé","_version":1`, `"_source":{"n":5}`, `"_source":{"n":4}`} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("mget lacks %s: %s", s, raw)
		}
	}
	for _, line := range []string{
		`{"index":{"_index":"k","_id":"x"},"create":{"_index":"k","_id":"y"}}`,
		`{"index":{"_index":"k","_id":"x"}} {"index":{"_index":"k","_id":"y"}}`,
		`{"index":{"_index":"k","_id":"x","routing":"r"}}`,
		`{"index":{"_index":"k","_id":"x","version":"5","version_type":"external"}}`,
		`{"index":{"_index":"k","_id":"x","version":5.5,"version_type":"external"}}`,
		`{"index":{"_index":"k","_id":7}}`,
		`{"index":{"_index":"k","_id":"x"}`,
		`{"index":1}`,
		`["index"]`,
		`{"upsert":{"_index":"k","_id":"x"}}`,
		`{"index":{"_id":"x"}}`,
	} {
		if status, out := call(t, f, "POST", "/_bulk", line+"\n{}\n"); status != 400 {
			t.Errorf("%s: %d %v, want 400", line, status, out)
		}
	}
}

// Source filtering by top-level names works on the bytes written and
// keeps what filtering the decoded source keeps.
func TestTopLevelSourceFiltering(t *testing.T) {
	src := []byte(`{"tenant":"t","n":1.50e1,"t\u0061gs":["x","y"],"contact":{"id":"c1","name":"Ann"},"event_refs":["2025.10/e1"]}`)
	var doc map[string]any
	if err := json.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		includes []string
		want     string // as written
	}{
		{[]string{"event_refs"}, `{"event_refs":["2025.10/e1"]}`},
		{[]string{"n", "contact"}, `{"n":1.50e1,"contact":{"id":"c1","name":"Ann"}}`},
		{[]string{"tags"}, `{"tags":["x","y"]}`},
		{[]string{"missing"}, `{}`},
	} {
		s := sourceFilter{includes: tc.includes}
		if !s.topLevel() {
			t.Fatalf("%v: not top-level", tc.includes)
		}
		got, err := s.appendTopLevel(nil, src)
		if err != nil || string(got) != tc.want {
			t.Errorf("%v: %s %v, want %s", tc.includes, got, err, tc.want)
		}
		var gotDoc any
		json.Unmarshal(got, &gotDoc)
		g, _ := json.Marshal(gotDoc)
		w, _ := json.Marshal(s.apply(doc))
		if string(g) != string(w) {
			t.Errorf("%v: %s from the bytes, %s from the decoded source", tc.includes, g, w)
		}
	}
	for _, s := range []sourceFilter{{includes: []string{"contact.id"}}, {includes: []string{"t*"}}, {includes: []string{"n"}, excludes: []string{"x"}}, {off: true}, {}} {
		if s.topLevel() {
			t.Errorf("%+v taken for top-level names", s)
		}
	}
}
