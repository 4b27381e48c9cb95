package web_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/chatreport/chatreport/internal/web"
)

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

var assetRef = regexp.MustCompile(`(?:href|src)="(/assets/[0-9a-f]{12}/([a-z]+\.[a-z]+))"`)

func TestHandler(t *testing.T) {
	h := web.Handler()

	page := get(t, h, http.MethodGet, "/", nil)
	if page.Code != http.StatusOK {
		t.Fatalf("GET /: %d", page.Code)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-cache",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := page.Header().Get(k); got != want {
			t.Errorf("GET / %s = %q, want %q", k, got, want)
		}
	}
	if csp := page.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("GET / CSP = %q", csp)
	}
	body := page.Body.String()
	if strings.Contains(body, "__ASSETS__") {
		t.Fatal("index.html still has the assets placeholder")
	}
	refs := assetRef.FindAllStringSubmatch(body, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html names %d assets, want the icon, the styles and the script: %v", len(refs), refs)
	}

	wantTypes := map[string]string{
		".css": "text/css; charset=utf-8",
		".js":  "text/javascript; charset=utf-8",
		".svg": "image/svg+xml",
	}
	for _, ref := range refs {
		url, name := ref[1], ref[2]
		w := get(t, h, http.MethodGet, url, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", url, w.Code)
			continue
		}
		ext := name[strings.LastIndex(name, "."):]
		if got := w.Header().Get("Content-Type"); got != wantTypes[ext] {
			t.Errorf("GET %s Content-Type = %q, want %q", url, got, wantTypes[ext])
		}
		if got := w.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s Cache-Control = %q", url, got)
		}
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", url)
			continue
		}
		if again := get(t, h, http.MethodGet, url, http.Header{"If-None-Match": {etag}}); again.Code != http.StatusNotModified {
			t.Errorf("GET %s If-None-Match: %d, want 304", url, again.Code)
		}
	}

	// The modules the script imports resolve next to it, under the same version.
	version := strings.Split(refs[0][1], "/")[2]
	for _, name := range []string{"api.js", "filter.js", "dialog.js", "conversation.js", "i18n.js", "format.js", "dom.js"} {
		if w := get(t, h, http.MethodGet, "/assets/"+version+"/"+name, nil); w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", name, w.Code)
		}
	}

	// An older page's asset URL is still served, but not cached for good.
	old := get(t, h, http.MethodGet, "/assets/000000000000/app.js", nil)
	if old.Code != http.StatusOK || old.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("GET an old version: %d %q", old.Code, old.Header().Get("Cache-Control"))
	}

	head := get(t, h, http.MethodHead, "/", nil)
	if head.Code != http.StatusOK || head.Body.Len() != 0 {
		t.Errorf("HEAD /: %d with %d bytes", head.Code, head.Body.Len())
	}
	for _, p := range []string{"/nope", "/assets/" + version + "/nope.js", "/assets/" + version + "/../web.go", "/assets/app.js", "/static/app.js"} {
		if w := get(t, h, http.MethodGet, p, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	if w := get(t, h, http.MethodPost, "/", nil); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d Allow=%q", w.Code, w.Header().Get("Allow"))
	}
}

// TestHandlerTimeZone: the page names the report time zone it is given.
func TestHandlerTimeZone(t *testing.T) {
	for zone, want := range map[string]string{
		"":               `content="America/Sao_Paulo"`,
		"America/Manaus": `content="America/Manaus"`,
		`Bad"<zone`:      `content="Bad&#34;&lt;zone"`,
	} {
		h := web.Handler()
		if zone != "" {
			h = web.HandlerIn(zone)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if !strings.Contains(rec.Body.String(), `name="report-time-zone" `+want) {
			t.Errorf("zone %q: page lacks %s", zone, want)
		}
	}
}
