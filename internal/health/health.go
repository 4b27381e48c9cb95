// Package health serves liveness (/healthz) and readiness (/readyz): ready
// means every dependency (Kafka, the store) answered just now.
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/chatreport/chatreport/internal/config"
)

// Check reports whether a dependency is reachable.
type Check func(ctx context.Context) error

// Checks names the dependencies readiness depends on.
type Checks map[string]Check

// timeout bounds each check.
const timeout = 2 * time.Second

// Register adds /healthz and /readyz to mux.
func Register(mux *http.ServeMux, checks Checks) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		status, results := checks.run(r.Context())
		writeJSON(w, status, results)
	})
}

type result struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (c Checks) run(ctx context.Context) (int, result) {
	res := result{Status: "ready", Checks: map[string]string{}}
	status := http.StatusOK
	names := make([]string, 0, len(c))
	for name := range c {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := c[name](cctx)
		cancel()
		if err != nil {
			res.Checks[name] = err.Error()
			res.Status = "not ready"
			status = http.StatusServiceUnavailable
			continue
		}
		res.Checks[name] = "ok"
	}
	return status, res
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body) //nolint:errcheck // the client went away
}

// Kafka checks that at least one of the brokers accepts a connection.
func Kafka(brokers []string) Check {
	return func(ctx context.Context) error {
		var d net.Dialer
		var last error
		for _, b := range brokers {
			conn, err := d.DialContext(ctx, "tcp", config.BrokerAddr(b))
			if err == nil {
				return conn.Close()
			}
			last = err
		}
		return fmt.Errorf("no Kafka broker reachable: %w", last)
	}
}
