package elastic

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestInitUpdatesOldMappings: a monthly index made from an older template
// (without the fields a release added) takes the new fields after Init, so
// the sessions the new code writes there are not refused by its strict
// mapping (and their events dead-lettered).
func TestInitUpdatesOldMappings(t *testing.T) {
	f := esfake.New(t)
	// The sessions index of October 2025 as the template before queues and
	// outcomes made it.
	comps, err := testStore(t).componentTemplates()
	if err != nil {
		t.Fatal(err)
	}
	props, settings := mappingOf(t, comps[0])
	for _, added := range []string{"queues", "outcomes", "outcomes_at_end"} {
		if _, ok := props[added]; !ok {
			t.Fatalf("the sessions template has no %s", added)
		}
		delete(props, added)
	}
	old, _ := json.Marshal(map[string]any{"settings": settings, "mappings": map[string]any{"dynamic": "strict", "properties": props}})
	req, _ := http.NewRequest(http.MethodPut, f.URL()+"/test-sessions-v1-2025.10", bytes.NewReader(old))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("create the old index: %v %v", res, err)
	}
	res.Body.Close()

	s := fakeStore(t, f) // Init
	c := storetest.B{Contact: "5511900000201", Protocol: "20251007090000201"}
	events := []event.Event{
		c.Msg("m1", 0, event.RoleCustomer, "atendente"),
		c.Handoff("m2", time.Minute, event.ActionRequested, ""),
	}
	if err := assembler(s).Ingest(t.Context(), events); err != nil {
		t.Fatalf("a session with a queue in the old index: %v", err)
	}
	docs := f.Docs("test-sessions-v1-2025.10")
	if len(docs) != 1 {
		t.Fatalf("%d sessions in the old index", len(docs))
	}
	for _, d := range docs {
		if q, _ := d["queues"].([]any); len(q) != 1 || q[0] != "Financeiro" {
			t.Fatalf("queues %v", d["queues"])
		}
	}
}
