package session_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
)

// TestExtendMatchesSummarize: on random streams, a summary extended batch by
// batch with each session's later events equals the summary of all its
// events made from scratch, and extending never changes the summary it
// starts from.
func TestExtendMatchesSummarize(t *testing.T) {
	def := sessiontest.Definition()
	seeds := 400
	if testing.Short() {
		seeds = 100
	}
	windows, extended := 0, 0
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 0xe7e4d))
		evs := sessiontest.Generate(rng, sessiontest.Options{
			Tenants:       []string{"acme", "globex"},
			Conversations: 1 + rng.IntN(8),
			MaxEvents:     1 + rng.IntN(30),
			Start:         sessiontest.Base,
			Spread:        time.Duration(1+rng.IntN(3)) * 24 * time.Hour,
		})
		for key, all := range byKey(evs) {
			policy := def.PolicyFor(all[0].Channel)
			starts := []int{0}
			if session.IsDerivedKey(key.key) {
				starts = session.Split(policy, all)
			}
			for w, from := range starts {
				to := len(all)
				if w+1 < len(starts) {
					to = starts[w+1]
				}
				events := all[from:to]
				id := "s-" + events[0].EventID
				want := session.Summarize(id, key.key, policy, events)
				// Cut the session's events into random batches.
				n := 1 + rng.IntN(len(events))
				got := session.Summarize(id, key.key, policy, events[:n])
				for n < len(events) {
					m := n + 1 + rng.IntN(len(events)-n)
					before := asJSON(t, got)
					next := got.Extend(policy, events[n:m])
					if after := asJSON(t, got); after != before {
						t.Fatalf("seed %d: Extend changed the summary it extends:\n%s\n%s", seed, before, after)
					}
					got, n = next, m
					extended++
				}
				windows++
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d, key %s, %d events: extended\n%s\nfrom scratch\n%s", seed, key.key, len(events), asJSON(t, got), asJSON(t, want))
				}
			}
		}
	}
	if extended < windows/3 {
		t.Fatalf("only %d extensions over %d sessions: the streams prove little", extended, windows)
	}
}

type tenantKey struct{ tenant, key string }

// byKey groups events by tenant and key, each group sorted in event order.
func byKey(evs []event.Event) map[tenantKey][]*event.Event {
	out := map[tenantKey][]*event.Event{}
	for i := range evs {
		k := tenantKey{evs[i].Tenant, session.KeyOf(&evs[i])}
		out[k] = append(out[k], &evs[i])
	}
	for _, g := range out {
		slices.SortFunc(g, event.Compare)
	}
	return out
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
