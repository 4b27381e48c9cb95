package api

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/simulate"
)

// TestSourceExampleNotHandedOff is the source's own filter example, end to
// end on simulated traffic through the SQLite store and the API:
// "additional information NAO_TRANSBORDADA, operation Contains, finds every
// conversation that was not handed off". A session whose later attendance
// was handed off is listed for its earlier one, and the list says which
// attendance matched: every matched attendance is one that set
// NAO_TRANSBORDADA itself and was never handed off, and every such
// attendance of the interval is in the list, matched.
func TestSourceExampleNotHandedOff(t *testing.T) {
	start := time.Date(2025, 10, 6, 12, 0, 0, 0, time.UTC)
	g := simulate.NewGenerator(simulate.Options{Seed: 7, Tenants: []string{"acme"}, Sessions: 1500, Start: start, Spread: 5 * 24 * time.Hour})
	var events []event.Event
	for {
		evs, ok := g.Next()
		if !ok {
			break
		}
		events = append(events, evs...)
	}
	// The attendances that set NAO_TRANSBORDADA and were never handed off,
	// from the events themselves.
	type attendance struct{ info, handoff bool }
	byProtocol := map[string]*attendance{}
	for _, e := range events {
		if e.Protocol == "" {
			continue
		}
		a := byProtocol[e.Protocol]
		if a == nil {
			a = &attendance{}
			byProtocol[e.Protocol] = a
		}
		a.info = a.info || e.Type == event.TypeInfo && e.Info.Key == "NAO_TRANSBORDADA"
		a.handoff = a.handoff || e.Type == event.TypeHandoff
	}
	want := map[string]bool{}
	for p, a := range byProtocol {
		if a.info && !a.handoff {
			want[p] = true
		}
	}

	st := openSQLite(t)
	ingest(t, st, events...)
	h := newServer(t, testConfig(t), st)
	q := url.Values{"info": {"NAO_TRANSBORDADA:contains:true"}, "from": {"2025-10-06"}, "to": {"2025-10-13"}, "limit": {"100"}}
	matched := map[string]bool{}
	laterHandedOff := 0
	for cursor := ""; ; {
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items []struct {
				SessionID   string `json:"session_id"`
				Attendances []struct {
					Protocol  string            `json:"protocol"`
					HandedOff bool              `json:"handed_off"`
					Info      map[string]string `json:"info"`
					Matched   *bool             `json:"matched"`
				} `json:"attendances"`
			} `json:"items"`
			Next *string `json:"next_cursor"`
		}
		if rec := getJSON(t, h, "/api/v1/sessions?"+q.Encode(), acmeKey, &page); rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		for _, it := range page.Items {
			handedOff := false
			for _, a := range it.Attendances {
				if a.Matched == nil {
					t.Fatalf("session %s: attendance %s does not say whether it matched", it.SessionID, a.Protocol)
				}
				if *a.Matched {
					if a.HandedOff || a.Info["NAO_TRANSBORDADA"] == "" {
						t.Errorf("session %s: attendance %s matched, handed off %t, info %v", it.SessionID, a.Protocol, a.HandedOff, a.Info)
					}
					matched[a.Protocol] = true
				}
				handedOff = handedOff || a.HandedOff
			}
			if handedOff {
				laterHandedOff++
			}
		}
		if page.Next == nil {
			break
		}
		cursor = *page.Next
	}
	for p := range want {
		if !matched[p] {
			t.Errorf("attendance %s set NAO_TRANSBORDADA and was not handed off, but the list does not name it", p)
		}
	}
	if len(matched) != len(want) {
		t.Errorf("%d attendances matched, want %d", len(matched), len(want))
	}
	if len(want) == 0 || laterHandedOff == 0 {
		t.Fatalf("the traffic proves nothing: %d attendances not handed off, %d listed sessions with a handed-off attendance", len(want), laterHandedOff)
	}
	t.Logf("%d attendances matched; %d listed sessions also have a handed-off attendance, which is not the one named", len(matched), laterHandedOff)
}
