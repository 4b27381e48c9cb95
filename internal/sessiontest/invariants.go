package sessiontest

import (
	"fmt"
	"slices"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// Invariants cross-checks a reference result against the rules from another
// angle than Reference computes them: every distinct event is in exactly one
// session; every event of a session lies in [started_at, window_ends_at);
// the derived sessions of a key follow each other without overlap, each
// starting at or after the previous one's end. A derived chain with these
// properties is the only one the rules allow.
func Invariants(events []event.Event, got map[session.Ref]Expected) error {
	where := map[event.Ref]string{}
	byKey := map[string][]session.Session{}
	for ref, x := range got {
		if len(x.Events) != x.Session.Events {
			return fmt.Errorf("session %s: %d events, summary says %d", ref.ID, len(x.Events), x.Session.Events)
		}
		for _, e := range x.Events {
			if prev, dup := where[e.Ref()]; dup {
				return fmt.Errorf("event %s/%s in sessions %s and %s", e.Tenant, e.EventID, prev, ref.ID)
			}
			where[e.Ref()] = ref.ID
			if e.OccurredAt.Before(x.Session.StartedAt) || !e.OccurredAt.Before(x.Session.WindowEndsAt) && x.Session.Key[0] == 'd' {
				return fmt.Errorf("event %s at %s outside session %s [%s, %s)", e.EventID, e.OccurredAt, ref.ID, x.Session.StartedAt, x.Session.WindowEndsAt)
			}
		}
		if x.Session.Key[0] == 'd' {
			k := ref.Tenant + "|" + x.Session.Key
			byKey[k] = append(byKey[k], x.Session)
		}
	}
	for _, e := range events {
		if _, ok := where[e.Ref()]; !ok {
			return fmt.Errorf("event %s/%s in no session", e.Tenant, e.EventID)
		}
	}
	for k, chain := range byKey {
		slices.SortFunc(chain, func(a, b session.Session) int { return a.StartedAt.Compare(b.StartedAt) })
		for i := 1; i < len(chain); i++ {
			if chain[i].StartedAt.Before(chain[i-1].WindowEndsAt) {
				return fmt.Errorf("key %s: session %s starts at %s, before %s ends at %s",
					k, chain[i].ID, chain[i].StartedAt, chain[i-1].ID, chain[i-1].WindowEndsAt)
			}
		}
	}
	return nil
}
