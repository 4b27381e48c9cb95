package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/chatreport/chatreport/internal/golden"
)

// TestResponsesGolden: the main endpoints answer the conversations of
// conversations() exactly as testdata/responses/*.txt holds: status,
// content type and body (JSON indented). go test ./internal/api -run
// TestResponsesGolden -update rewrites them; review the diff.
func TestResponsesGolden(t *testing.T) {
	s, _ := conversationServer(t)
	tests := []struct {
		name, method, target, key, body string
	}{
		{"list", http.MethodGet, "/api/v1/sessions", acmeKey, ""},
		{"list_filtered", http.MethodGet, "/api/v1/sessions?" + url.Values{
			"tag": {"Segunda Via Sucesso"}, "from": {"2025-10-07"}, "to": {"2025-10-07"}, "limit": {"1"}}.Encode(), acmeKey, ""},
		{"list_next_page", http.MethodGet, "/api/v1/sessions?limit=1&cursor=" + firstCursor(t, s), acmeKey, ""},
		{"search", http.MethodPost, "/api/v1/sessions/search", acmeKey,
			`{"from":"2025-10-07","to":"2025-10-08","channels":["whatsapp"],"info":[{"key":"PLANO","op":"contains","value":"fibra"}]}`},
		{"session", http.MethodGet, "/api/v1/sessions/" + mariaID, acmeKey, ""},
		{"transcript", http.MethodGet, "/api/v1/sessions/" + mariaID + "/transcript", acmeKey, ""},
		{"export_jsonl", http.MethodGet, "/api/v1/export?from=2025-10-07&to=2025-10-07", acmeKey, ""},
		{"export_csv", http.MethodGet, "/api/v1/export?format=csv&from=2025-10-07&to=2025-10-07", acmeKey, ""},
		{"facets", http.MethodGet, "/api/v1/facets?from=2025-10-07&to=2025-10-07", acmeKey, ""},
		{"error_invalid_filter", http.MethodGet, "/api/v1/sessions?protocol=123&limit=0", acmeKey, ""},
		{"error_not_found", http.MethodGet, "/api/v1/sessions/" + globexID, acmeKey, ""},
		{"error_unauthorized", http.MethodGet, "/api/v1/sessions", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(s, tc.method, tc.target, tc.key, tc.body)
			got := fmt.Appendf(nil, "%s %s\nstatus: %d\ncontent-type: %s\n\n", tc.method, tc.target, w.Code, w.Header().Get("Content-Type"))
			var indented bytes.Buffer
			if json.Indent(&indented, w.Body.Bytes(), "", "  ") == nil {
				got = append(got, indented.Bytes()...)
				got = append(got, '\n')
			} else {
				got = append(got, w.Body.Bytes()...)
			}
			golden.Check(t, filepath.Join("testdata", "responses", tc.name+".txt"), got, nil)
		})
	}
}

// firstCursor is the next_cursor of the first page of one session.
func firstCursor(t *testing.T, s http.Handler) string {
	t.Helper()
	var p page
	getJSON(t, s, "/api/v1/sessions?limit=1", acmeKey, &p)
	if p.NextCursor == nil {
		t.Fatal("no second page")
	}
	return url.QueryEscape(*p.NextCursor)
}
