package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
)

// TestReplaySwapForgetElasticsearch is TestReplaySwapForget on the
// Elasticsearch store (the in-memory fake), with the replay swapping itself
// (--swap) once caught up: the swap moves the read aliases without a failed
// API request; live ingesters switch to v2 within the registry's TTL while
// the replay waits for its grace and then writes v2 up to the live offsets
// (the only time both write v2); v2 holds every event once and equals a v3
// replayed from scratch; forget erases a contact from every version and
// changes no other document.
func TestReplaySwapForgetElasticsearch(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	// Search sees writes after a refresh, every 100 ms here rather than
	// Elasticsearch's default second, so that the scenario's polling of the
	// API sees live ingest while the producer is still sending.
	es := esfake.New(t, esfake.WithRefreshInterval(100*time.Millisecond))
	cfg := config.Default()
	cfg.Store = config.Store{Kind: config.StoreElasticsearch, Elasticsearch: config.Elasticsearch{
		URLs: []string{es.URL()}, IndexPrefix: "it", RegistryTTL: 100 * time.Millisecond}}
	up := startUpWith(t, cfg, "", false)
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf("kafka: {brokers: [%q]}\nstore: {kind: elasticsearch, elasticsearch: {urls: [%q], index_prefix: it, registry_ttl: 100ms}}\nlog: {level: warn}\n",
		up.Kafka, es.URL())), 0o600)

	opsScenario{up: up, cfgFile: cfgFile, store: cfg.Store, pace: 50 * time.Millisecond, replaySwaps: true,
		interrupted: func() {
			if len(es.Docs("it-versions")) != 2 {
				t.Fatalf("after the interruption the versions index holds %v, want the registry and the replay's progress", es.Docs("it-versions"))
			}
		},
		swapped: func() {
			// The read aliases moved in one request: every index of v2
			// has them, no index of v1 does.
			for _, ix := range aliasesOf(t, es, "it-sessions-*,it-events-*") {
				readAlias := strings.Contains(ix.aliases, "it-sessions,") || strings.Contains(ix.aliases, "it-events,")
				if readAlias != strings.Contains(ix.name, "-v2-") {
					t.Errorf("after the swap %s has aliases %s", ix.name, ix.aliases)
				}
			}
		},
		docs: func() map[string]map[string]any { return es.Docs("it-*-v*") },
	}.run(t)

	// The live ingester's write path is measured per bulk request.
	text := scrape(t, "http://"+up.HTTP)
	for _, want := range []string{
		"chatreport_elasticsearch_bulk_seconds_count ",
		"chatreport_elasticsearch_bulk_operations_total ",
		"chatreport_elasticsearch_bulk_retried_operations_total ",
		"chatreport_elasticsearch_conflicts_total ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, "chatreport_elasticsearch_bulk_operations_total 0\n") {
		t.Error("no bulk operation counted")
	}
}

type indexAliases struct{ name, aliases string }

// aliasesOf lists the indices matching patterns with their aliases, each
// followed by a comma.
func aliasesOf(t *testing.T, es *esfake.Server, patterns string) []indexAliases {
	t.Helper()
	resp, err := http.Get(es.URL() + "/" + patterns + "/_alias")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]struct {
		Aliases map[string]any `json:"aliases"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	var out []indexAliases
	for name, ix := range got {
		var b strings.Builder
		for a := range ix.Aliases {
			b.WriteString(a + ",")
		}
		out = append(out, indexAliases{name, b.String()})
	}
	if len(out) == 0 {
		t.Fatalf("no index matches %s", patterns)
	}
	return out
}

// checkForgotten: no document of the contact remains in any version, every
// removed document was the contact's (a session of the contact, an event of
// the contact or of one of its sessions, the key document of one of them),
// and every other document is unchanged.
func checkForgotten(t *testing.T, before, after map[string]map[string]any, contact string) {
	t.Helper()
	sessions, keys := map[string]bool{}, map[string]bool{}
	owned := func(doc map[string]any) bool {
		c, _ := doc["contact"].(map[string]any)
		return c != nil && c["id"] == contact
	}
	for _, doc := range before {
		if owned(doc) {
			for _, f := range []string{"session_id", "session"} {
				if s, _ := doc[f].(string); s != "" {
					sessions[s] = true
				}
			}
			keys[fmt.Sprint(doc["key"])] = true
		}
	}
	ofContact := func(doc map[string]any) bool {
		if owned(doc) || keys[fmt.Sprint(doc["key"])] {
			return true
		}
		s, _ := doc["session"].(string)
		if _, event := doc["event_id"]; event && sessions[s] {
			return true
		}
		id, _ := doc["session_id"].(string)
		_, event := doc["event_id"]
		return !event && sessions[id]
	}
	removed := 0
	for id, doc := range before {
		now, kept := after[id]
		switch {
		case kept && ofContact(doc):
			t.Errorf("%s of the forgotten contact remains", id)
		case !kept && !ofContact(doc):
			t.Errorf("%s, not of the contact, was removed", id)
		case kept && !reflect.DeepEqual(doc, now):
			t.Errorf("%s, not of the contact, changed", id)
		case !kept:
			removed++
		}
	}
	if len(after) != len(before)-removed {
		t.Errorf("%d documents appeared during forget", len(after)-(len(before)-removed))
	}
	if removed == 0 {
		t.Error("forget removed nothing")
	}
}
