package bench

import (
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// TestSplitPhases: every event is sent once; a key of a phase was in every
// phase before it (so the cold phase reads back every key, and steady
// state holds them); each phase but the last is in time order; the late
// events are of earlier phases.
func TestSplitPhases(t *testing.T) {
	tr := trafficFor(7, 20_000, time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), 24*time.Hour, benchTenants)
	phases := splitPhases(tr, 0.05)
	if len(phases) != 4 || phases[1].name != PhaseCold || phases[3].name != PhaseLate {
		t.Fatalf("phases %v", phases)
	}
	seen := map[event.Ref]int{}
	keysIn := make([]map[string]bool, len(phases))
	total := 0
	for i, p := range phases {
		keysIn[i] = map[string]bool{}
		for j := range p.events {
			e := &p.events[j]
			if _, dup := seen[e.Ref()]; dup {
				t.Fatalf("event %s sent twice", e.EventID)
			}
			seen[e.Ref()] = i
			keysIn[i][e.Tenant+"\x00"+session.KeyOf(e)] = true
			if i < len(phases)-1 && j > 0 && event.Compare(&p.events[j-1], e) > 0 {
				t.Fatalf("phase %s out of time order at %d", p.name, j)
			}
		}
		total += len(p.events)
	}
	if total != tr.events {
		t.Errorf("%d events in the phases, %d generated", total, tr.events)
	}
	for i := 1; i < len(phases)-1; i++ {
		for k := range keysIn[i] {
			if !keysIn[i-1][k] {
				t.Fatalf("key %q of phase %s is not in phase %s", k, phases[i].name, phases[i-1].name)
			}
		}
	}
	late := phases[3]
	if share := float64(late.late) / float64(total-len(late.events)+late.late); late.late == 0 || share > 0.06 {
		t.Errorf("%d late events, %.3f of the first phases", late.late, share)
	}
	// A late event is older than the last event of its key in the phases
	// before: it comes after it was written.
	lastBefore := map[string]time.Time{}
	for _, p := range phases[:3] {
		for _, e := range p.events {
			k := e.Tenant + "\x00" + session.KeyOf(&e)
			if e.OccurredAt.After(lastBefore[k]) {
				lastBefore[k] = e.OccurredAt
			}
		}
	}
	older := 0
	for _, e := range late.events {
		if e.OccurredAt.Before(lastBefore[e.Tenant+"\x00"+session.KeyOf(&e)]) {
			older++
		}
	}
	if older < late.late*9/10 {
		t.Errorf("%d of %d late events are older than what their key stored before", older, late.late)
	}
}
