package esfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that a Server leaves no goroutine behind: its refresh
// scheduler stops with the test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// call sends a request to f and decodes the JSON answer (nil if not an
// object).
func call(t testing.TB, f *Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	status, raw := callRaw(t, f, method, path, body)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return status, out
}

// callRaw sends a request to f and returns its answer as is.
func callRaw(t testing.TB, f *Server, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.URL()+path, strings.NewReader(body))
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
	return res.StatusCode, raw
}

// must is call expecting the status want.
func must(t testing.TB, f *Server, want int, method, path, body string) map[string]any {
	t.Helper()
	status, out := call(t, f, method, path, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %v", method, path, status, want, out)
	}
	return out
}

// createIndex creates index with a small strict mapping and settings.
func createIndex(t testing.TB, f *Server, index, settings string) {
	t.Helper()
	if settings == "" {
		settings = "{}"
	}
	must(t, f, 200, "PUT", "/"+index, `{"settings":`+settings+`,"mappings":{"dynamic":"strict","properties":{
		"tenant":{"type":"keyword"},"n":{"type":"integer"},"tags":{"type":"keyword"},
		"contact":{"properties":{"id":{"type":"keyword"},"name":{"type":"keyword"}}}}}}`)
}

// bulkLines joins bulk lines into a body.
func bulkLines(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// searchIDs returns the sorted "<index>/<id>" of the hits of a search of
// target (all of them, up to 1000); an empty query matches everything.
func searchIDs(t testing.TB, f *Server, target, query string) []string {
	t.Helper()
	body := `{"size":1000}`
	if query != "" {
		body = `{"size":1000,"query":` + query + `}`
	}
	path := "/_search"
	if target != "" {
		path = "/" + target + "/_search"
	}
	return hitIDs(must(t, f, 200, "POST", path, body))
}

func hitIDs(out map[string]any) []string {
	hits, _ := out["hits"].(map[string]any)["hits"].([]any)
	ids := []string{}
	for _, h := range hits {
		m := h.(map[string]any)
		ids = append(ids, m["_index"].(string)+"/"+m["_id"].(string))
	}
	sort.Strings(ids)
	return ids
}

func equal(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// item returns the i-th item of a bulk answer, whatever its action.
func item(t testing.TB, out map[string]any, i int) map[string]any {
	t.Helper()
	items, _ := out["items"].([]any)
	if i >= len(items) {
		t.Fatalf("bulk answer without item %d: %v", i, out)
	}
	for _, v := range items[i].(map[string]any) {
		return v.(map[string]any)
	}
	return nil
}
