package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/sqlite"
)

// controls are characters a filter's text may not hold, and whitespace ones
// it may.
var (
	controls = []string{"\x00", "\x01", "\x08", "\x1b", "\x7f", "\u0080", "\u009b"}
	spaces   = []string{"\t", "\n", "\r", "\v", "\f", "\u0085"}
)

// textParams are the free-text parameters of the filter, as query parameters
// (with the value around the character) and as JSON fields.
var textParams = []struct {
	param, query, field, json string
}{
	{"q", "q=boleto%s", "q", `{"q": "boleto%s"}`},
	{"contact", "contact=maria%s", "contact", `{"contact": "maria%s"}`},
	{"tag", "tag=Segunda%sVia", "tags[0]", `{"tags": ["Segunda%sVia"]}`},
	{"info", "info=PLANO:contains:fibra%s", "info[0].value", `{"info": [{"key": "PLANO", "op": "contains", "value": "fibra%s"}]}`},
}

// TestControlCharacters: a NUL or another control character in any text of
// the filter is a 400 that names the parameter, on the list, the export and
// the search body (a NUL in q used to reach SQLite's full-text query and
// come back a 503); tab, line breaks and the like are text.
func TestControlCharacters(t *testing.T) {
	store := &fakeStore{}
	s := newServer(t, testConfig(t), store)
	jsonEscape := func(c string) string { b, _ := json.Marshal(c); return strings.Trim(string(b), `"`) }
	for _, p := range textParams {
		for _, c := range controls {
			for _, route := range []string{"/api/v1/sessions?", "/api/v1/export?"} {
				w := do(s, http.MethodGet, route+strings.Replace(p.query, "%s", url.QueryEscape(c), 1), acmeKey, "")
				if w.Code != http.StatusBadRequest || !slices.Equal(errorParams(t, w, w.Body.Bytes()), []string{p.param}) {
					t.Errorf("GET %s %s with %q: %d %s", route, p.param, c, w.Code, w.Body)
				}
			}
			w := do(s, http.MethodPost, "/api/v1/sessions/search", acmeKey, strings.Replace(p.json, "%s", jsonEscape(c), 1))
			if w.Code != http.StatusBadRequest || !slices.Equal(errorParams(t, w, w.Body.Bytes()), []string{p.field}) {
				t.Errorf("POST %s with %q: %d %s", p.field, c, w.Code, w.Body)
			}
		}
		for _, c := range spaces {
			if p.param == "contact" && strings.TrimSpace(c) == "" {
				c = "x" + c + "x" // trimmed at the end; inside it is text
			}
			w := do(s, http.MethodGet, "/api/v1/sessions?"+strings.Replace(p.query, "%s", url.QueryEscape(c), 1), acmeKey, "")
			if w.Code != http.StatusOK {
				t.Errorf("GET %s with %q: %d %s", p.param, c, w.Code, w.Body)
			}
		}
	}
	// A NUL in the path is not a session id.
	if w := do(s, http.MethodGet, "/api/v1/sessions/%00", acmeKey, ""); w.Code != http.StatusBadRequest {
		t.Errorf("session id NUL: %d %s", w.Code, w.Body)
	}
	// A NUL in an unknown parameter's name, or a raw one in the body.
	if w := do(s, http.MethodGet, "/api/v1/sessions?a%00b=1", acmeKey, ""); w.Code != http.StatusBadRequest {
		t.Errorf("parameter name NUL: %d %s", w.Code, w.Body)
	}
	if w := do(s, http.MethodPost, "/api/v1/sessions/search", acmeKey, "{\"q\": \"a\x00\"}"); w.Code != http.StatusBadRequest {
		t.Errorf("raw NUL in the body: %d %s", w.Code, w.Body)
	}
}

// TestControlCharactersSQLite: with the SQLite store behind the API, every
// parameter of the list, the export and the facets with a control
// character in it is answered with a 200 or a 4xx problem, never a 5xx.
func TestControlCharactersSQLite(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A session in the interval: on an empty database SQLite never runs
	// the full-text match.
	e := event.Event{
		EventID: "m1", Type: event.TypeMessage, OccurredAt: time.Date(2025, 10, 7, 12, 0, 0, 0, time.UTC),
		Tenant: "acme", Channel: "whatsapp", Contact: event.Contact{ID: "c1", Name: "Maria"},
		Author: &event.Author{Role: event.RoleCustomer}, Text: "boleto vencido", ContentType: "text",
	}
	if err := session.NewAssembler(pipeline.MustDefault(), st).Ingest(context.Background(), []event.Event{e}); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, testConfig(t), st)
	if w := do(s, http.MethodGet, "/api/v1/sessions?from=2025-10-01&to=2025-10-31&q=boleto", acmeKey, ""); !strings.Contains(w.Body.String(), `"total":1`) {
		t.Fatalf("the session is not found: %d %s", w.Code, w.Body)
	}
	values := map[string]string{
		"from": "2025-10-01", "to": "2025-10-31", "session": "c639c747-4637-4ff5-99c0-9f0e86d3c21b",
		"protocol": "20251007092633646", "tag": "Segunda Via", "tag_mode": "all", "info": "PLANO:contains:fibra",
		"channel": "whatsapp", "contact": "maria", "handed_off": "true", "q": "boleto", "limit": "10", "format": "csv",
	}
	for _, route := range []string{"/api/v1/sessions", "/api/v1/export", "/api/v1/facets"} {
		for param, value := range values {
			for _, c := range append(controls, spaces...) {
				for _, v := range []string{c, value + c, c + value, value[:1] + c + value[1:]} {
					q := url.Values{param: {v}}
					if param == "to" || param == "from" {
						q.Set("from", values["from"])
						q.Set("to", values["to"])
						q.Set(param, v)
					}
					w := do(s, http.MethodGet, route+"?"+q.Encode(), acmeKey, "")
					if w.Code >= 500 || w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
						t.Errorf("GET %s?%s: %d %s", route, q.Encode(), w.Code, w.Body)
					}
				}
			}
		}
	}
}
