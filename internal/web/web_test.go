package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	_ "time/tzdata" // the report time zone, wherever the test runs

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/api"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/simulate"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/web"
)

const (
	apiKey   = "test-key-4b1d6c"
	timeZone = "America/Sao_Paulo"
)

// findChromium returns the browser the test drives, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHATREPORT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found, skipping the browser test: install it (apt-get install chromium) or set CHATREPORT_CHROMIUM to a Chrome binary")
	return ""
}

// ---- the server: the real API over a seeded SQLite store, and the screen ----

type fixture struct {
	url    string
	api    http.Handler
	loc    *time.Location
	record *recorder
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "report.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	// Conversations of the last days, inside the API's default interval.
	start := time.Now().UTC().Truncate(time.Hour).Add(-9 * 24 * time.Hour)
	g := simulate.NewGenerator(simulate.Options{Seed: 6, Sessions: 120, Start: start, Spread: 7 * 24 * time.Hour})
	var events []event.Event
	for {
		conv, ok := g.Next()
		if !ok {
			break
		}
		events = append(events, conv...)
	}
	if err := session.NewAssembler(pipeline.MustDefault(), store).Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}

	loc, err := time.LoadLocation(timeZone)
	if err != nil {
		t.Fatal(err)
	}
	keys := api.NewKeys()
	if err := keys.AddKey("acme", apiKey); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Keys: keys, Location: loc, CursorKey: []byte("browser test cursor key")}, store, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", srv)
	mux.Handle("/", web.Handler())
	rec := &recorder{next: mux}
	ts := httptest.NewServer(rec) // listens on 127.0.0.1
	t.Cleanup(ts.Close)
	return &fixture{url: ts.URL, api: srv, loc: loc, record: rec}
}

type sessionJSON struct {
	SessionID string `json:"session_id"`
	Channel   string `json:"channel"`
	Contact   struct {
		ID    string  `json:"id"`
		Phone *string `json:"phone"`
		Name  *string `json:"name"`
	} `json:"contact"`
	StartedAt     time.Time         `json:"started_at"`
	Protocols     []string          `json:"protocols"`
	Tags          []string          `json:"tags"`
	Info          map[string]string `json:"info"`
	HandedOff     bool              `json:"handed_off"`
	MessageCounts struct {
		Customer, Bot, Agent int
	} `json:"message_counts"`
	Messages []struct {
		Author struct {
			Role string `json:"role"`
		} `json:"author"`
	} `json:"messages"`
	Events      []json.RawMessage `json:"events"`
	Attendances []struct {
		Protocol string `json:"protocol"`
		Outcome  string `json:"outcome"`
	} `json:"attendances"`
}

type listJSON struct {
	Items      []sessionJSON `json:"items"`
	NextCursor *string       `json:"next_cursor"`
	Total      int           `json:"total"`
}

// call asks the API directly, as the test's reference for what the screen
// must show.
func (f *fixture) call(t *testing.T, path string, q url.Values, out any) int {
	t.Helper()
	target := path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, req)
	if out != nil && w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
	}
	return w.Code
}

func (f *fixture) list(t *testing.T, q url.Values) listJSON {
	t.Helper()
	var out listJSON
	if code := f.call(t, "/api/v1/sessions", q, &out); code != http.StatusOK {
		t.Fatalf("GET /api/v1/sessions?%s: %d", q.Encode(), code)
	}
	return out
}

// all returns every session of the default interval.
func (f *fixture) all(t *testing.T) []sessionJSON {
	t.Helper()
	var out []sessionJSON
	q := url.Values{"limit": {"100"}}
	for {
		page := f.list(t, q)
		out = append(out, page.Items...)
		if page.NextCursor == nil {
			return out
		}
		q.Set("cursor", *page.NextCursor)
	}
}

func ids(items []sessionJSON) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = s.SessionID
	}
	return out
}

// recorder notes every request the browser makes.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	log  []request
	// exportGate, when set, lets an export's first write through and holds
	// each later one until the gate is closed or the client goes away, so
	// that the test can watch an export in progress without racing its end.
	exportGate atomic.Pointer[chan struct{}]
}

type request struct {
	URI, Auth, ContentType string
	Status                 int
	Bytes                  int
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if req.URL.Path == "/api/v1/export" {
		if g := r.exportGate.Load(); g != nil {
			sw.gate, sw.gone = *g, req.Context().Done()
		}
	}
	r.next.ServeHTTP(sw, req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, request{
		URI: req.URL.RequestURI(), Auth: req.Header.Get("Authorization"),
		ContentType: sw.Header().Get("Content-Type"), Status: sw.status, Bytes: sw.bytes,
	})
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// wait returns the first request after the first skip ones whose path is
// path, waiting for it.
func (r *recorder) wait(t *testing.T, path string, skip int) request {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, req := range r.requests() {
			if u, _ := url.Parse(req.URI); u.Path == path {
				if n == skip {
					return req
				}
				n++
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no request to %s", path)
	return request{}
}

func (r *recorder) count(path string) int {
	n := 0
	for _, req := range r.requests() {
		if u, _ := url.Parse(req.URI); u.Path == path {
			n++
		}
	}
	return n
}

type statusWriter struct {
	http.ResponseWriter
	status, bytes int
	writes        int
	gate, gone    <-chan struct{} // see recorder.exportGate
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.gate != nil && len(b) > 0 {
		if w.writes > 0 {
			select {
			case <-w.gate:
			case <-w.gone:
				return 0, errors.New("the client went away while the export was held")
			}
		}
		defer w.Flush()
	}
	if len(b) > 0 {
		w.writes++
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ---- the browser ----

type page struct {
	mu        sync.Mutex
	errs      []string // the page's uncaught exceptions
	t         *testing.T
	ctx       context.Context
	base      string
	shots     string
	downloads string
}

func newPage(t *testing.T, base string) *page {
	t.Helper()
	exe := findChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Containers give /dev/shm 64 MB, which Chrome can fill.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "pt-BR"),
		chromedp.Env("LANG=pt_BR.UTF-8", "LANGUAGE=pt_BR"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)

	p := &page{t: t, ctx: tab, base: base, downloads: t.TempDir()}
	p.shots = os.Getenv("CHATREPORT_SCREENSHOTS")
	if p.shots == "" {
		p.shots = t.TempDir()
	} else if err := os.MkdirAll(p.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	p.do(chromedp.EmulateViewport(1440, 900))
	if err := chromedp.Listen(tab, func(ev any) {
		if ev, ok := ev.(*runtime.EventExceptionThrown); ok {
			p.noteError(ev.ExceptionDetails.Text + " " + exceptionDescription(ev.ExceptionDetails))
		}
	}); err != nil {
		t.Fatal(err)
	}
	// A Brazilian operator's browser: date pickers show dd/mm/aaaa (with
	// Debian's chromium-l10n; without it they are in English).
	if _, err := chromedp.Call(tab, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: "pt-BR"}); err != nil {
		t.Fatalf("locale: %v", err)
	}
	if _, err := chromedp.CallBrowser(tab, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: p.downloads,
	}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	return p
}

func (p *page) noteError(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, s)
}

func (p *page) scriptErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.errs)
}

func exceptionDescription(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

func eval[T any](p *page, js string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// until waits for a JavaScript condition.
func (p *page) until(what, js string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		p.t.Fatalf("waiting for %s: %v", what, err)
	}
}

func (p *page) click(sel string) { p.t.Helper(); p.do(chromedp.Click(chromedp.CSS(sel))) }
func (p *page) typeInto(sel, text string) {
	p.t.Helper()
	p.do(chromedp.SendKeys(chromedp.CSS(sel), text))
}
func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ''`, sel))
}

// setValue sets a field the way a date picker or a select does, with its
// input and change events.
func (p *page) setValue(sel, value string) {
	p.t.Helper()
	eval[chromedp.Void](p, fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = %q;
		el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); })()`, sel, value))
}

func (p *page) seq() int {
	return eval[int](p, `Number(document.querySelector('#results').dataset.seq)`)
}

// waitList waits for the list request after seq to end.
func (p *page) waitList(seq int) {
	p.t.Helper()
	p.until("the list", fmt.Sprintf(`Number(document.querySelector('#results').dataset.seq) > %d &&
		document.querySelector('#results').getAttribute('aria-busy') === 'false'`, seq))
}

func (p *page) rows() []string {
	return eval[[]string](p, `[...document.querySelectorAll('#rows tr')].map(r => r.dataset.sessionId)`)
}

func (p *page) search() url.Values {
	p.t.Helper()
	q, err := url.ParseQuery(strings.TrimPrefix(eval[string](p, `location.search`), "?"))
	if err != nil {
		p.t.Fatal(err)
	}
	return q
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	// No row highlighted by a resting mouse.
	p.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 0, 0))
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(p.shots, name), buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// download waits for a finished, non-empty file whose name has suffix.
// Chrome reserves the final name with an empty file and writes into a
// .crdownload file until the download ends.
func (p *page) download(suffix string) []byte {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(p.downloads)
		var found string
		busy := false
		for _, e := range entries {
			switch {
			case strings.HasSuffix(e.Name(), ".crdownload"):
				busy = true
			case strings.HasSuffix(e.Name(), suffix):
				found = e.Name()
			}
		}
		if found != "" && !busy {
			b, err := os.ReadFile(filepath.Join(p.downloads, found))
			if err == nil && len(b) > 0 {
				os.Remove(filepath.Join(p.downloads, found))
				return b
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("no downloaded %s file in %s", suffix, p.downloads)
	return nil
}

// expectList checks that the rows and total on screen are the API's first
// page for q.
func (p *page) expectList(f *fixture, q url.Values) listJSON {
	p.t.Helper()
	want := f.list(p.t, q)
	if got := p.rows(); !slices.Equal(got, ids(want.Items)) {
		p.t.Fatalf("filter %s: rows %v, want %v", q.Encode(), got, ids(want.Items))
	}
	total := eval[string](p, `document.querySelector('#total').dataset.total`)
	if total != fmt.Sprint(want.Total) {
		p.t.Fatalf("filter %s: total %s, want %d", q.Encode(), total, want.Total)
	}
	return want
}

// sameQuery compares query strings ignoring the order of parameters and of
// repeated values.
func sameQuery(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb := b[k]
		va, vb = slices.Clone(va), slices.Clone(vb)
		slices.Sort(va)
		slices.Sort(vb)
		if !slices.Equal(va, vb) {
			return false
		}
	}
	return true
}

// applyFilter opens the popup, clears it, lets fill set the fields, applies
// and checks the list, the page URL and the request against want.
func (p *page) applyFilter(f *fixture, name string, want url.Values, fill func()) listJSON {
	p.t.Helper()
	seq := p.seq()
	p.click("#filter-button")
	p.until("the popup", `document.querySelector('#filter-dialog').open`)
	p.click("#filter-clear")
	p.until("the facets", `document.querySelector('#filter-dialog').dataset.facets !== 'loading'`)
	fill()
	p.click("#filter-apply")
	p.waitList(seq)
	p.until("the popup to close", `!document.querySelector('#filter-dialog').open`)
	if got := p.search(); !sameQuery(got, want) {
		p.t.Fatalf("%s: page URL has %v, want %v", name, got, want)
	}
	sent, _ := url.ParseQuery(eval[string](p, `document.querySelector('#results').dataset.query`))
	sent.Del("limit")
	if !sameQuery(sent, want) {
		p.t.Fatalf("%s: the screen asked for %v, want %v", name, sent, want)
	}
	got := p.expectList(f, want)
	p.t.Logf("filter %-14s %-60s → %d sessions", name, want.Encode(), got.Total)
	return got
}

func TestScreen(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	f := newFixture(t)
	p := newPage(t, f.url)
	started := time.Now()

	all := f.all(t)
	if len(all) < 60 {
		t.Fatalf("fixture: %d sessions, want at least 60 for three pages", len(all))
	}
	// The routes the screen needs besides the list (issue 5's contract).
	for _, route := range []string{"/api/v1/facets", "/api/v1/export?format=jsonl", "/api/v1/sessions/" + all[0].SessionID + "/transcript"} {
		path, query, _ := strings.Cut(route, "?")
		q, _ := url.ParseQuery(query)
		if code := f.call(t, path, q, nil); code != http.StatusOK {
			t.Fatalf("GET %s: %d; the screen needs this API route", route, code)
		}
	}

	// Sign in: the key is asked once and kept for the tab.
	p.do(chromedp.Navigate(f.url + "/"))
	p.do(chromedp.WaitVisible(chromedp.CSS("#login-key")))
	if lang := eval[string](p, `document.documentElement.lang`); lang != "pt-BR" {
		t.Errorf("page language %q, want pt-BR by default", lang)
	}
	seq := p.seq()
	p.typeInto("#login-key", apiKey)
	p.click("#login-form button[type=submit]")
	p.waitList(seq)
	if got := eval[string](p, `sessionStorage.getItem('chatreport.apiKey')`); got != apiKey {
		t.Errorf("sessionStorage key = %q", got)
	}

	// The list: the newest sessions first, as the API pages them.
	first := p.expectList(f, url.Values{})
	if len(first.Items) != 20 || first.Total != len(all) {
		t.Fatalf("first page: %d items of %d, want 20 of %d", len(first.Items), first.Total, len(all))
	}
	s0 := first.Items[0]
	wantDate := s0.StartedAt.In(f.loc).Format("02/01/2006")
	wantTime := s0.StartedAt.In(f.loc).Format("15:04")
	row0 := `#rows tr:first-child`
	if d, tm := p.text(row0+" .date"), p.text(row0+" .time"); d != wantDate || tm != wantTime {
		t.Errorf("first row date %q %q, want %q %q (São Paulo, pt-BR)", d, tm, wantDate, wantTime)
	}
	if got := p.text(row0 + " .session-id"); got != s0.SessionID {
		t.Errorf("first row session id %q, want %q", got, s0.SessionID)
	}
	if s0.Contact.Name != nil && p.text(row0+" .who") != *s0.Contact.Name {
		t.Errorf("first row name %q, want %q", p.text(row0+" .who"), *s0.Contact.Name)
	}
	handedRows := eval[int](p, `document.querySelectorAll('#rows [data-handed-off]').length`)
	wantHanded := 0
	for _, s := range first.Items {
		if s.HandedOff {
			wantHanded++
		}
	}
	if handedRows != wantHanded {
		t.Errorf("%d rows marked handed off, want %d", handedRows, wantHanded)
	}
	p.screenshot("list.png")

	// Pages: forward twice, back twice, following next_cursor.
	second := f.list(t, url.Values{"cursor": {*first.NextCursor}})
	third := f.list(t, url.Values{"cursor": {*second.NextCursor}})
	for i, want := range [][]string{ids(second.Items), ids(third.Items)} {
		seq := p.seq()
		p.click("#next-page")
		p.waitList(seq)
		if got := p.rows(); !slices.Equal(got, want) {
			t.Fatalf("page %d: rows %v, want %v", i+2, got, want)
		}
	}
	for i, want := range [][]string{ids(second.Items), ids(first.Items)} {
		seq := p.seq()
		p.click("#prev-page")
		p.waitList(seq)
		if got := p.rows(); !slices.Equal(got, want) {
			t.Fatalf("back to page %d: rows %v, want %v", 2-i, got, want)
		}
	}
	if !eval[bool](p, `document.querySelector('#prev-page').disabled`) {
		t.Error("previous page is enabled on the first page")
	}

	// Each filter of the popup, through the popup.
	today := time.Now().In(f.loc)
	from := today.AddDate(0, 0, -6).Format(time.DateOnly)
	to := today.AddDate(0, 0, -4).Format(time.DateOnly)
	p.applyFilter(f, "interval", url.Values{"from": {from}, "to": {to}}, func() {
		p.setValue("#f-from", from)
		p.setValue("#f-to", to)
	})

	target := all[len(all)/2]
	p.applyFilter(f, "session", url.Values{"session": {target.SessionID}}, func() {
		p.typeInto("#f-session", target.SessionID)
	})
	if rows := p.rows(); len(rows) != 1 || rows[0] != target.SessionID {
		t.Fatalf("session filter: rows %v", rows)
	}

	var protocol string
	for _, s := range all {
		if len(s.Protocols) > 0 {
			protocol = s.Protocols[0]
			break
		}
	}
	p.applyFilter(f, "protocol", url.Values{"protocol": {protocol}}, func() {
		p.typeInto("#f-protocol", protocol)
	})

	p.click("#filter-button")
	p.until("the facets", `document.querySelector('#filter-dialog').dataset.facets === 'ready'`)
	tags := eval[[]string](p, `[...document.querySelectorAll('#f-tags-list input')].map(i => i.value)`)
	p.do(chromedp.KeyEvent(kb.Escape))
	p.until("the popup to close", `!document.querySelector('#filter-dialog').open`)
	if len(tags) < 2 {
		t.Fatalf("the popup offers tags %v", tags)
	}
	tagA, tagB := "Segunda Via Sucesso", "Transbordo Humano"
	if !slices.Contains(tags, tagA) || !slices.Contains(tags, tagB) {
		tagA, tagB = tags[0], tags[1]
	}
	p.applyFilter(f, "tags any", url.Values{"tag": {tagA, tagB}}, func() {
		p.click(fmt.Sprintf(`#f-tags-list input[value=%q]`, tagA))
		p.click(fmt.Sprintf(`#f-tags-list input[value=%q]`, tagB))
	})
	p.applyFilter(f, "tags all", url.Values{"tag": {"Menu Principal", tagA}, "tag_mode": {"all"}}, func() {
		p.typeInto("#f-tags-search", "menu")
		p.click(`#f-tags-list input[value="Menu Principal"]`)
		p.setValue("#f-tags-search", "")
		p.click(fmt.Sprintf(`#f-tags-list input[value=%q]`, tagA))
		p.click(`label[for="f-tag-all"]`)
	})

	// The attendance filters: outcomes ticked in their words, a queue typed.
	p.applyFilter(f, "outcomes and queue", url.Values{"outcome": {"resolved", "cancelled_inactivity"}, "queue": {"Financeiro"}}, func() {
		p.click(`#f-outcomes input[value="resolved"]`)
		p.click(`#f-outcomes input[value="cancelled_inactivity"]`)
		p.setValue("#f-queue", "Financeiro")
	})
	if chips := p.text("#chips"); !strings.Contains(chips, "Resolvido, Cancelado por inatividade") || !strings.Contains(chips, "Fila: Financeiro") {
		t.Errorf("chips %q: want the outcomes in words and the queue", chips)
	}

	// Two conditions on additional information, from a session that has both.
	var menu string
	for _, s := range all {
		if _, ok := s.Info["NAO_TRANSBORDADA"]; ok && s.Info["OPCAO_MENU"] != "" {
			menu = s.Info["OPCAO_MENU"]
			break
		}
	}
	if menu == "" {
		t.Fatal("fixture: no session with NAO_TRANSBORDADA and OPCAO_MENU")
	}
	info := p.applyFilter(f, "info", url.Values{"info": {"OPCAO_MENU:equals:" + menu, "NAO_TRANSBORDADA:exists"}}, func() {
		p.click("#f-info-add")
		p.typeInto(".info-row:nth-child(1) .info-key", "OPCAO_MENU")
		p.setValue(".info-row:nth-child(1) .info-op", "equals")
		p.typeInto(".info-row:nth-child(1) .info-value", menu)
		p.click("#f-info-add")
		p.typeInto(".info-row:nth-child(2) .info-key", "NAO_TRANSBORDADA")
		p.setValue(".info-row:nth-child(2) .info-op", "exists")
		if !eval[bool](p, `document.querySelector('.info-row:nth-child(2) .info-value').disabled`) {
			t.Error("the value of an exists condition is enabled")
		}
	})
	if info.Total == 0 {
		t.Error("info filter: no session matched; the fixture should have some")
	}

	var contact sessionJSON
	for _, s := range all {
		if s.Channel == simulate.ChannelTelegram && s.Contact.Name != nil {
			contact = s
			break
		}
	}
	if contact.SessionID == "" {
		t.Fatal("fixture: no Telegram session with a name")
	}
	p.applyFilter(f, "channel+contact", url.Values{"channel": {contact.Channel}, "contact": {*contact.Contact.Name}}, func() {
		p.click(fmt.Sprintf(`#f-channels input[value=%q]`, contact.Channel))
		p.typeInto("#f-contact", *contact.Contact.Name)
	})
	if !slices.Contains(p.rows(), contact.SessionID) {
		t.Errorf("channel+contact: %s not listed", contact.SessionID)
	}

	p.applyFilter(f, "q", url.Values{"q": {"modem"}}, func() { p.typeInto("#f-q", "modem") })

	handed := p.applyFilter(f, "handed off", url.Values{"handed_off": {"true"}}, func() {
		p.click(`label[for="f-handed-yes"]`)
	})

	// Several criteria at once, with an interval preset; the popup's
	// screenshot shows them.
	combined := url.Values{
		"from": {today.AddDate(0, 0, -6).Format(time.DateOnly)}, "to": {today.Format(time.DateOnly)},
		"tag": {tagA}, "info": {"CPF_VALIDADO:equals:true"}, "handed_off": {"false"},
	}
	p.applyFilter(f, "combined", combined, func() {
		p.click(`[data-preset="7"]`)
		p.until("the facets of the week", `document.querySelector('#filter-dialog').dataset.facets === 'ready'`)
		p.click(fmt.Sprintf(`#f-tags-list input[value=%q]`, tagA))
		p.click("#f-info-add")
		p.typeInto(".info-row .info-key", "CPF_VALIDADO")
		p.typeInto(".info-row .info-value", "true")
		p.click(`label[for="f-handed-no"]`)
		// Clicking a field far down the popup scrolls its body, never the
		// popup itself: its title and × stay on the screen.
		if top := eval[float64](p, `document.querySelector('#filter-dialog').scrollTop`); top != 0 {
			t.Errorf("the popup itself scrolled by %v px", top)
		}
		p.do(chromedp.EmulateViewport(1440, 1280))
		eval[chromedp.Void](p, `document.activeElement.blur(); document.querySelector('.dialog-body').scrollTop = 0`)
		p.screenshot("filter.png")
		p.do(chromedp.EmulateViewport(1440, 900))
	})

	// The filter is in the URL: loading it restores the list and the popup.
	restore := url.Values{"tag": {tagA}, "handed_off": {"false"}, "channel": {"whatsapp"}}
	p.do(chromedp.Navigate(f.url + "/?" + restore.Encode()))
	p.waitList(0)
	p.expectList(f, restore)
	p.click("#filter-button")
	p.until("the popup", `document.querySelector('#filter-dialog').open`)
	p.until("the restored fields", fmt.Sprintf(`document.querySelector('#f-handed-no').checked &&
		document.querySelector('#f-tags-list input[value=%q]')?.checked &&
		document.querySelector('#f-channels input[value="whatsapp"]')?.checked`, tagA))
	if id := eval[string](p, `document.activeElement.id`); id != "f-from" {
		t.Errorf("focus in the popup is on %q, want the first field", id)
	}
	// A filter too long for the report: the form refuses it without asking.
	before := f.record.count("/api/v1/sessions")
	p.setValue("#f-from", today.AddDate(0, 0, -40).Format(time.DateOnly))
	p.setValue("#f-to", today.Format(time.DateOnly))
	p.click("#filter-apply")
	p.until("the interval error", `document.querySelector('#f-to-error').textContent !== ''`)
	if msg := p.text("#f-to-error"); !strings.Contains(msg, "31 dias") {
		t.Errorf("interval error %q", msg)
	}
	if !eval[bool](p, `document.querySelector('#filter-dialog').open`) || f.record.count("/api/v1/sessions") != before {
		t.Error("a 40-day interval left the popup or reached the API")
	}
	// The popup checks with the rules the API serves: its operations are
	// the served ones, and a protocol whose date cannot be (month 13) is
	// refused before asking, as the served pattern says.
	if f.record.count("/api/v1/filter/rules") == 0 {
		t.Error("the popup did not load GET /api/v1/filter/rules")
	}
	var rules struct {
		Operations []struct {
			Op string `json:"op"`
		} `json:"operations"`
	}
	f.call(t, "/api/v1/filter/rules", nil, &rules)
	var servedOps []string
	for _, o := range rules.Operations {
		servedOps = append(servedOps, o.Op)
	}
	p.click("#f-info-add")
	if got := eval[[]string](p, `[...document.querySelectorAll('.info-row:last-child .info-op option')].map((o) => o.value)`); !slices.Equal(got, servedOps) {
		t.Errorf("the popup offers operations %q, the API serves %q", got, servedOps)
	}
	p.click(".info-row:last-child .info-remove")
	p.setValue("#f-from", "")
	p.setValue("#f-to", "")
	p.setValue("#f-protocol", "20251307092633646")
	p.click("#filter-apply")
	p.until("the protocol error", `document.querySelector('#f-protocol-error').textContent !== ''`)
	if f.record.count("/api/v1/sessions") != before {
		t.Error("a protocol with month 13 reached the API: the popup did not check it with the served pattern")
	}
	p.setValue("#f-protocol", "")
	p.do(chromedp.KeyEvent(kb.Escape))
	p.until("the popup to close", `!document.querySelector('#filter-dialog').open`)
	if id := eval[string](p, `document.activeElement.id`); id != "filter-button" {
		t.Errorf("focus after closing the popup is on %q, want the filter button", id)
	}

	// A protocol the form's pattern would refuse, from a hand-edited link:
	// the API's message appears next to the field.
	p.do(chromedp.Navigate(f.url + "/?protocol=123"))
	p.waitList(0)
	p.until("the API's error in the popup", `document.querySelector('#filter-dialog').open &&
		document.querySelector('#f-protocol-error').textContent !== ''`)
	if msg := p.text("#f-protocol-error"); !strings.Contains(msg, "17 dígitos") {
		t.Errorf("protocol error %q, want the API's error in Portuguese", msg)
	}
	if got := eval[string](p, `document.querySelector('#f-protocol').getAttribute('aria-invalid')`); got != "true" {
		t.Errorf("protocol field aria-invalid=%q", got)
	}
	if id := eval[string](p, `document.activeElement.id`); id != "f-protocol" {
		t.Errorf("focus on %q, want the invalid protocol field", id)
	}
	p.do(chromedp.KeyEvent(kb.Escape))

	// A conversation, opened with one click from the list of handed-off
	// sessions: the richest timelines, bot and agents.
	var rich sessionJSON
	for _, s := range handed.Items {
		if s.MessageCounts.Agent > rich.MessageCounts.Agent {
			rich = s
		}
	}
	if rich.SessionID == "" {
		t.Fatal("no handed-off session with agent messages on the first page")
	}
	// The source's example: each row names the attendance that was not
	// handed off, with its outcome, and the session's status.
	p.do(chromedp.Navigate(f.url + "/?info=NAO_TRANSBORDADA:contains:true"))
	p.waitList(0)
	rowsSeen := eval[map[string]int](p, `(() => {
		const rows = [...document.querySelectorAll('#rows tr')];
		return {
			rows: rows.length,
			status: rows.filter((r) => r.querySelector('.session-status')).length,
			marked: rows.filter((r) => r.querySelector('.matched-mark')).length,
			markedHandedOff: rows.filter((r) => { const o = r.querySelector('.attendance-shown .status'); return r.querySelector('.matched-mark') && o && !/outcome-(bot_finished|open)/.test(o.className); }).length,
		};
	})()`)
	if rowsSeen["rows"] == 0 || rowsSeen["status"] != rowsSeen["rows"] || rowsSeen["marked"] == 0 || rowsSeen["markedHandedOff"] != 0 {
		t.Errorf("NAO_TRANSBORDADA rows: %v (every row a status, some a matched attendance, none of those handed off)", rowsSeen)
	}
	p.screenshot("list-matched.png")
	p.do(chromedp.Navigate(f.url + "/?handed_off=true"))
	p.waitList(0)
	p.click(fmt.Sprintf(`#rows tr[data-session-id=%q] .open-button`, rich.SessionID))
	var detail sessionJSON
	if code := f.call(t, "/api/v1/sessions/"+rich.SessionID, nil, &detail); code != http.StatusOK {
		t.Fatalf("GET session: %d", code)
	}
	p.until("the conversation", fmt.Sprintf(`document.querySelectorAll('#timeline .bubble').length === %d &&
		document.querySelector('#conv-body').getAttribute('aria-busy') === 'false'`, len(detail.Messages)))
	if got := p.search().Get("open"); got != rich.SessionID {
		t.Errorf("conversation URL open=%q", got)
	}
	roles := map[string]int{}
	for _, m := range detail.Messages {
		roles[m.Author.Role]++
	}
	for role, n := range roles {
		got := eval[int](p, fmt.Sprintf(`document.querySelectorAll('#timeline .msg-%s .bubble').length`, role))
		if got != n {
			t.Errorf("%d %s bubbles, want %d", got, role, n)
		}
	}
	if roles["agent"] == 0 {
		t.Error("the conversation has no agent message")
	}
	if got := eval[int](p, `document.querySelectorAll('#timeline .system-line').length`); got != len(detail.Events) {
		t.Errorf("%d system lines, want %d events", got, len(detail.Events))
	}
	// Customer on the left, bot and agent on the right.
	sides := eval[map[string]float64](p, `(() => {
		const x = (sel) => { const el = document.querySelector(sel); return el ? el.getBoundingClientRect().left : -1; };
		return { customer: x('.msg-customer .bubble'), bot: x('.msg-bot .bubble'), agent: x('.msg-agent .bubble') };
	})()`)
	if sides["customer"] >= sides["bot"] || sides["customer"] >= sides["agent"] {
		t.Errorf("bubble positions %v: the customer should be left of the bot and the agent", sides)
	}
	if got := p.text("#conv-session-id"); got != rich.SessionID {
		t.Errorf("conversation id %q", got)
	}
	// Each attendance shows its outcome in the operator's words.
	words := map[string]string{"open": "Em andamento", "bot_finished": "Finalizado pelo bot", "resolved": "Resolvido",
		"abandoned": "Abandonado pelo cliente", "cancelled_inactivity": "Cancelado por inatividade", "closed": "Encerrado"}
	shown := eval[[]string](p, `[...document.querySelectorAll('.attendances .attendance .status')].map((e) => e.textContent)`)
	if len(shown) != len(detail.Attendances) || len(shown) == 0 {
		t.Errorf("attendances shown %q, the session has %d", shown, len(detail.Attendances))
	}
	for i := range min(len(shown), len(detail.Attendances)) {
		if want := words[detail.Attendances[i].Outcome]; shown[i] != want {
			t.Errorf("attendance %s shows %q, want %q (%s)", detail.Attendances[i].Protocol, shown[i], want, detail.Attendances[i].Outcome)
		}
	}
	p.do(chromedp.EmulateViewport(1440, 1280))
	p.screenshot("conversation.png")
	eval[chromedp.Void](p, `document.querySelector('#timeline .system-handoff').scrollIntoView({block: 'start'}); scrollBy(0, -240)`)
	p.screenshot("conversation-handoff.png")
	eval[chromedp.Void](p, `scrollTo(0, 0)`)
	p.do(chromedp.EmulateViewport(1440, 900))

	if _, err := chromedp.CallBrowser(p.ctx, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "clipboard-write"}, Setting: browser.PermissionSettingGranted, Origin: f.url,
	}); err != nil {
		t.Logf("grant the clipboard: %v", err)
	}
	p.click("#conv-copy")
	p.until("the copy announcement", `document.querySelector('#status').textContent.includes('copi')`)
	t.Logf("copy: %s", p.text("#status"))

	// The transcript: fetched with the key in a header, saved as a file.
	n := f.record.count("/api/v1/sessions/" + rich.SessionID + "/transcript")
	p.click("#conv-transcript")
	tr := f.record.wait(t, "/api/v1/sessions/"+rich.SessionID+"/transcript", n)
	if tr.Status != http.StatusOK || !strings.HasPrefix(tr.ContentType, "text/plain") || tr.Auth != "Bearer "+apiKey {
		t.Errorf("transcript: %d %q auth %q", tr.Status, tr.ContentType, tr.Auth)
	} else if b := p.download(".txt"); len(b) == 0 {
		t.Error("empty transcript file")
	}

	// Back to the list, where the rows wait as they were and the focus is
	// on the row that was opened.
	p.click("#conv-back")
	p.until("the list", `!document.querySelector('#list-view').hidden`)
	if got := p.rows(); !slices.Equal(got, ids(handed.Items)) {
		t.Errorf("back from the conversation: rows %v", got)
	}
	if got := eval[string](p, `document.activeElement.closest('tr')?.dataset.sessionId ?? ''`); got != rich.SessionID {
		t.Errorf("focus back on the row of %q, want %q", got, rich.SessionID)
	}
	if p.search().Has("open") {
		t.Error("the list URL still opens a conversation")
	}

	// Export of the filter on screen: CSV streamed into a file the operator
	// picks (a stand-in for the browser's save dialog records what the
	// screen writes), JSONL downloaded from memory where the browser cannot
	// write files.
	eval[chromedp.Void](p, `window.__saved = null;
		window.showSaveFilePicker = async (options) => {
			window.__picked = options.suggestedName;
			const chunks = [];
			return { name: options.suggestedName, createWritable: async () => new WritableStream({
				write(chunk) { chunks.push(chunk); },
				async close() { window.__saved = await new Blob(chunks).text(); },
			}) };
		}`)
	for _, format := range []struct{ name, contentType string }{
		{"csv", "text/csv"},
		{"jsonl", "application/x-ndjson"},
	} {
		n := f.record.count("/api/v1/export")
		p.click("#export-" + format.name)
		req := f.record.wait(t, "/api/v1/export", n)
		u, _ := url.Parse(req.URI)
		if req.Status != http.StatusOK || !strings.HasPrefix(req.ContentType, format.contentType) {
			t.Errorf("export %s: %d %q", format.name, req.Status, req.ContentType)
			continue
		}
		if q := u.Query(); q.Get("format") != format.name || q.Get("handed_off") != "true" {
			t.Errorf("export %s asked %s, want the filter on screen", format.name, u.RawQuery)
		}
		var file []byte
		if format.name == "csv" {
			p.until("the streamed export", `window.__saved !== null`)
			file = []byte(eval[string](p, `window.__saved`))
			if name := eval[string](p, `window.__picked`); !strings.HasSuffix(name, ".csv") {
				t.Errorf("suggested file name %q", name)
			}
			// The next export has no file picker, like Firefox or plain http.
			eval[chromedp.Void](p, `window.showSaveFilePicker = undefined`)
		} else {
			file = p.download(".jsonl")
		}
		if format.name == "jsonl" {
			if lines := bytes.Count(file, []byte("\n")); lines != handed.Total {
				t.Errorf("jsonl export: %d lines, want %d sessions", lines, handed.Total)
			}
		} else if !bytes.HasPrefix(file, []byte("session_id,")) || int64(len(file)) != int64(req.Bytes) {
			t.Errorf("csv export: %d bytes starting %.40q; the API sent %d", len(file), file, req.Bytes)
		}
	}

	// English on request, and back.
	p.click(`.lang-button[data-lang="en"]`)
	if got := p.text("#list-title span"); got != "Conversations" {
		t.Errorf("English title %q", got)
	}
	if got := p.text("#rows tr:first-child .open-button"); got != "Open" {
		t.Errorf("English rows: action %q", got)
	}
	if lang := eval[string](p, `document.documentElement.lang`); lang != "en" {
		t.Errorf("page language %q after switching to English", lang)
	}
	p.click(`.lang-button[data-lang="pt-BR"]`)
	if got := p.text("#list-title span"); got != "Conversas" {
		t.Errorf("Portuguese title %q", got)
	}

	// A key the API refuses asks for the key again.
	p.do(chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('chatreport.apiKey', 'wrong-key')`))
	p.do(chromedp.Navigate(f.url + "/"))
	p.until("the sign-in form", `!document.querySelector('#login-view').hidden &&
		document.querySelector('#login-error').textContent !== ''`)
	if got := eval[string](p, `sessionStorage.getItem('chatreport.apiKey') ?? ''`); got != "" {
		t.Errorf("a refused key stays stored: %q", got)
	}
	seq = p.seq()
	p.typeInto("#login-key", apiKey)
	p.click("#login-form button[type=submit]")
	p.waitList(seq)

	// Sign out forgets the key and the sessions on screen.
	p.click("#signout")
	p.until("the sign-in form", `!document.querySelector('#login-view').hidden`)
	if got := eval[string](p, `(sessionStorage.getItem('chatreport.apiKey') ?? '') + document.querySelector('#rows').innerHTML`); got != "" {
		t.Errorf("after sign-out the page keeps %q", got)
	}

	// The key never travels in a URL.
	for _, req := range f.record.requests() {
		if strings.Contains(req.URI, apiKey) {
			t.Errorf("the key is in the URL %s", req.URI)
		}
		if strings.HasPrefix(req.URI, "/api/") && req.Auth == "" {
			t.Errorf("%s went without credentials", req.URI)
		}
	}
	for _, e := range p.scriptErrors() {
		t.Errorf("uncaught exception in the page: %s", e)
	}
	t.Logf("browser test took %v; screenshots in %s", time.Since(started).Round(time.Millisecond), p.shots)
}
