package api

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the report time zone, wherever the tests run

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/report"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { removeExportFixture() }))
}

// Test credentials and clock.
const (
	acmeKey   = "acme-key-0123456789"
	globexKey = "globex-key-0123456789"
)

var (
	testNow       = time.Date(2025, 10, 20, 12, 0, 0, 0, time.UTC)
	testCursorKey = []byte("test cursor key")
)

func saoPaulo(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/Sao_Paulo")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func testConfig(t testing.TB) Config {
	t.Helper()
	keys := NewKeys()
	if err := keys.AddKey("acme", acmeKey); err != nil {
		t.Fatal(err)
	}
	if err := keys.Add("globex", sha256.Sum256([]byte(globexKey))); err != nil {
		t.Fatal(err)
	}
	return Config{Keys: keys, Location: saoPaulo(t), CursorKey: testCursorKey, Now: func() time.Time { return testNow }}
}

func newServer(t testing.TB, cfg Config, store Store) *Server {
	t.Helper()
	s, err := New(cfg, store, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends a request with the key (none when "") and returns the recorder.
func do(h http.Handler, method, target, key, body string) *httptest.ResponseRecorder {
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// fakeStore records what the API asks and answers nothing.
type fakeStore struct {
	mu     sync.Mutex
	filter report.Filter
	page   report.Page
	calls  int
	err    error
}

func (f *fakeStore) Search(_ context.Context, flt report.Filter, p report.Page) (report.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter, f.page = flt, p
	f.calls++
	return report.Result{}, f.err
}

func (f *fakeStore) Session(context.Context, string, string) (report.Detail, error) {
	return report.Detail{}, report.ErrNotFound
}

func (f *fakeStore) Export(_ context.Context, flt report.Filter, _ func() report.Encoder, _ report.Emit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter = flt
	f.calls++
	return f.err
}

func (f *fakeStore) Facets(_ context.Context, tenant string, from, to time.Time) (report.Facets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter = report.Filter{Tenant: tenant, From: from, To: to}
	f.calls++
	return report.Facets{}, f.err
}

func (f *fakeStore) last() (report.Filter, report.Page, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.filter, f.page, f.calls
}
