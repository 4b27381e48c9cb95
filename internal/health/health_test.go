package health

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestReadiness(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name   string
		checks Checks
		status int
	}{
		{"all reachable", Checks{"kafka": Kafka([]string{closedAddr, ln.Addr().String()}), "store": func(context.Context) error { return nil }}, http.StatusOK},
		{"kafka down", Checks{"kafka": Kafka([]string{closedAddr})}, http.StatusServiceUnavailable},
		{"store down", Checks{"store": func(context.Context) error { return errors.New("disk full") }}, http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			Register(mux, tc.checks)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			var res result
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || len(res.Checks) != len(tc.checks) {
				t.Fatalf("body %s (%v)", rec.Body, err)
			}
			rec = httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("healthz %d", rec.Code)
			}
		})
	}
}
