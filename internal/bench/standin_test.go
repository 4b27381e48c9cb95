package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/simulate"
	"github.com/chatreport/chatreport/internal/store/elastic"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
)

// TestStandInHoldsWhatTheCheckedFakeHolds runs the same batches through
// the Elasticsearch store on the bench's stand-in (esfake without mapping
// checks) and on esfake as the store's tests run it, with a restart of the
// store (nothing in memory: every key read back by id) and late events,
// and compares the sources of the session and event documents byte for
// byte: skipping the checks changes nothing the write path sees.
func TestStandInHoldsWhatTheCheckedFakeHolds(t *testing.T) {
	ctx := context.Background()
	g := simulate.NewGenerator(simulate.Options{Seed: 3, Tenants: []string{"acme"}, Sessions: 60,
		Start: time.Now().Add(-30 * time.Hour).Truncate(time.Second), Spread: 24 * time.Hour})
	var evs []event.Event
	for {
		c, ok := g.Next()
		if !ok {
			break
		}
		evs = append(evs, c...)
	}
	// Every key's events in three parts (the last part with every fifth
	// event of the first two, late), each part in time order.
	byKey := map[string][]event.Event{}
	for _, e := range evs {
		byKey[e.RecommendedKey()] = append(byKey[e.RecommendedKey()], e)
	}
	parts := make([][]event.Event, 3)
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		list := byKey[k]
		slices.SortFunc(list, func(a, b event.Event) int { return event.Compare(&a, &b) })
		for i, e := range list {
			p := min(3*i/len(list), 2)
			if p < 2 && i%5 == 4 {
				p = 2
			}
			parts[p] = append(parts[p], e)
		}
	}
	def := pipeline.MustDefault()
	run := func(url string) {
		for i, part := range parts {
			// A new store for each part: the second starts cold.
			st, err := elastic.New(elastic.Config{Addresses: []string{url}}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Init(ctx); err != nil {
				t.Fatal(err)
			}
			a := session.NewAssembler(def, st)
			for b := range slices.Chunk(part, 97) {
				if err := a.Ingest(ctx, b); err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
			}
			st.Close()
		}
	}
	standIn := esfake.New(t, esfake.WithoutMappingChecks())
	run(standIn.URL())
	checked := esfake.New(t)
	run(checked.URL())
	for _, pattern := range []string{"chatreport-sessions-v1-*", "chatreport-events-v1-*"} {
		want, got := checked.Sources(pattern), standIn.Sources(pattern)
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%s: %d documents on the stand-in, %d on the checked fake", pattern, len(got), len(want))
		}
		for id, w := range want {
			if !bytes.Equal(got[id], w) {
				t.Errorf("%s differs:\nstand-in %s\n checked %s", id, got[id], w)
			}
		}
	}
	// Key documents name their writer and when it wrote: the rest is the
	// same.
	keys, want := standIn.Docs("chatreport-keys-v1"), checked.Docs("chatreport-keys-v1")
	if len(keys) != len(byKey) || len(want) != len(byKey) {
		t.Errorf("%d key documents on the stand-in, %d on the checked fake, want %d", len(keys), len(want), len(byKey))
	}
	for id, w := range want {
		k := keys[id]
		for _, d := range []map[string]any{k, w} {
			delete(d, "updated_at")
			delete(d, "writer")
		}
		if fmt.Sprint(k) != fmt.Sprint(w) {
			t.Errorf("%s differs:\nstand-in %v\n checked %v", id, k, w)
		}
	}
}
