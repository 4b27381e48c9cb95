package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/session"
)

// TestDashboardMatchesMetrics: every chatreport metric the Grafana
// dashboard queries is one the registry exports, and every metric the
// registry exports has a panel.
func TestDashboardMatchesMetrics(t *testing.T) {
	r := New()
	// Vectors appear once they have a series.
	r.ObserveBatch(ingest.BatchStats{Topics: map[string]ingest.TopicStats{"chat.events.bot": {Consumed: 1, DeadLettered: 2, Truncated: 1, Lost: 1}},
		Lag: []ingest.PartitionLag{{Topic: "chat.events.bot", Partition: 0, Lag: 1}}})
	r.ObserveRetry("store events")
	r.ObserveRequest("GET", "/api/v1/sessions", 200, time.Millisecond)
	r.ObserveBulk(time.Millisecond, 2, 1)
	r.ObserveConflict()
	r.WatchAssembler(fixedWatch{})
	families, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "chatreport_") {
			exported = append(exported, f.GetName())
		}
	}

	raw, err := os.ReadFile("../../deploy/grafana/chatreport.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	name := regexp.MustCompile(`chatreport_[a-z_]+`)
	queried := map[string]bool{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				m = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				if !slices.Contains(exported, m) {
					t.Errorf("panel %q queries %s, which no code exports", p.Title, m)
				}
				queried[m] = true
			}
		}
	}
	for _, m := range exported {
		if !queried[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

type fixedWatch struct{}

func (fixedWatch) Stats() session.AssemblerStats { return session.AssemblerStats{Keys: 1, Reread: 2} }
