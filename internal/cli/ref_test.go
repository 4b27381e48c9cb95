package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/metrics"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// runRef runs `chatreport ref` with args and returns what it printed.
func runRef(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Execute(t.Context(), append([]string{"ref"}, args...), &out, &out)
	return out.String(), err
}

// TestRefPrintsWhatTheStoreLogs: with the store's log.ref_key, `chatreport
// ref` prints the reference that the Elasticsearch store of the ingest
// command (opened from the same configuration file) gives an event it
// rejects and a key document it refuses, in its errors and log lines,
// which never quote the ids.
func TestRefPrintsWhatTheStoreLogs(t *testing.T) {
	const phone = "+5511999990000"
	ev := storetest.B{Contact: phone, Phone: phone}.Msg("msg-"+phone+"-1", 0, event.RoleCustomer, "oi")
	cases := []struct {
		name string
		// part is the kind of index whose bulk items the cluster refuses.
		part string
		// args gives the refused document's id to `ref`, with its index
		// (what the hook saw) when errors name it.
		args func(index string) []string
	}{
		{"event rejected", "-events-", func(string) []string { return []string{"--tenant", ev.Tenant, ev.EventID} }},
		{"event by its document id", "-events-", func(string) []string { return []string{ev.Tenant + "/" + ev.EventID} }},
		{"key document refused", "-keys-", func(index string) []string {
			return []string{"--index", index, "--tenant", ev.Tenant, session.KeyOf(&ev)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			es := esfake.New(t)
			cfgFile := filepath.Join(t.TempDir(), "config.yaml")
			os.WriteFile(cfgFile, []byte(fmt.Sprintf("store: {kind: elasticsearch, elasticsearch: {urls: [%q], index_prefix: it}}\nlog: {ref_key: 'the pods share this reference key'}\n", es.URL())), 0o600)
			cfg, err := config.Load(cfgFile)
			if err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zap.DebugLevel)
			be, err := openBackend("ingest", cfg, pipeline.MustDefault(), metrics.New(), zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			defer be.close()
			if err := be.init(t.Context()); err != nil {
				t.Fatal(err)
			}
			var refused string
			es.BulkHook = func(_, index, _ string, _ int) (int, string) {
				if strings.Contains(index, tc.part) {
					refused = index
					return 400, "document_parsing_exception"
				}
				return 0, ""
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			ingestErr := be.sink.Ingest(ctx, []event.Event{ev})
			if ingestErr == nil || refused == "" {
				t.Fatalf("ingest: %v, want the cluster's refusal", ingestErr)
			}
			said := ingestErr.Error()
			for _, e := range logs.All() {
				said += "\n" + fmt.Sprint(e.Message, e.ContextMap())
			}
			if strings.Contains(said, strings.TrimPrefix(phone, "+")) {
				t.Fatalf("the store quotes the contact: %s", said)
			}
			out, err := runRef(t, append([]string{"--config", cfgFile}, tc.args(refused)...)...)
			if err != nil {
				t.Fatalf("ref: %v: %s", err, out)
			}
			ref := strings.TrimSpace(out)
			if !strings.Contains(ref, "id#") || strings.Contains(ref, "\n") || !strings.Contains(said, ref) {
				t.Fatalf("ref printed %q, which the store did not say:\n%s", out, said)
			}
		})
	}
}

// TestRefNeedsTheKey: without log.ref_key the references are a random
// key's of each process, which `ref` cannot reproduce: it says so rather
// than print references that match nothing; a short key is refused as the
// other commands refuse it.
func TestRefNeedsTheKey(t *testing.T) {
	t.Setenv(config.EnvLogRefKey, "")
	if out, err := runRef(t, "acme/m1"); !errors.Is(err, errNoRefKey) || strings.Contains(out, "id#") {
		t.Fatalf("ref without a key: %v, %q", err, out)
	}
	t.Setenv(config.EnvLogRefKey, "short")
	if _, err := runRef(t, "acme/m1"); err == nil || !strings.Contains(err.Error(), "log.ref_key: at least") {
		t.Fatalf("ref with a short key: %v", err)
	}
	t.Setenv(config.EnvLogRefKey, "the environment's reference key")
	a, err := runRef(t, "acme/m1", "acme/m2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := runRef(t, "--tenant", "acme", "m1", "m2")
	if lines := strings.Split(strings.TrimSpace(a), "\n"); len(lines) != 2 || lines[0] == lines[1] || a != b {
		t.Fatalf("ref of two ids: %q, with --tenant %q", a, b)
	}
}
