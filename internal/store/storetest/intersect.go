package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// testIntersections: conditions that each hold for many sessions and
// together for few, or for one common and one rare value, with channel and
// handoff, listed in order across pages and counted exactly up to the bound
// and as "more" past it. A store may intersect the conditions' sessions
// rather than test each (the SQLite store does, by size): every shape must
// give the same answer.
func testIntersections(t *testing.T, s Store) {
	const n = 60
	var events []event.Event
	type fact struct {
		i         int
		tags      []string
		handedOff bool
		channel   string
		plano     bool
	}
	facts := map[string]fact{}
	for i := range n {
		b := B{Contact: fmt.Sprintf("i%03d", i), Channel: []string{"whatsapp", "webchat", "telegram"}[i%3]}
		at := time.Duration(i/2) * time.Minute // pairs share a start: the tiebreak matters
		text := "oi"
		if i%4 != 1 {
			text = "oi, o boleto"
		}
		e := b.Msg(fmt.Sprintf("x%03d-0", i), at, event.RoleCustomer, text)
		events = append(events, e)
		if i%6 == 0 {
			// A second message with the word, in a start shared with
			// another session.
			events = append(events, b.Msg(fmt.Sprintf("x%03d-7", i), at+7*time.Second, event.RoleBot, "segunda via do boleto"))
		}
		id := session.DeriveID(&e)
		f := fact{i: i, tags: []string{"Comum"}, channel: b.Channel}
		events = append(events, b.Tag(fmt.Sprintf("x%03d-1", i), at+time.Second, "Comum"))
		if i%2 == 0 {
			f.tags = append(f.tags, "Meio")
			events = append(events, b.Tag(fmt.Sprintf("x%03d-2", i), at+2*time.Second, "Meio"))
		}
		if i%20 == 7 {
			f.tags = append(f.tags, "Raro")
			events = append(events, b.Tag(fmt.Sprintf("x%03d-3", i), at+3*time.Second, "Raro"))
		}
		if i%4 != 3 {
			// Set twice: one row, the latest value.
			f.plano = true
			events = append(events, b.Info(fmt.Sprintf("x%03d-4", i), at+4*time.Second, "PLANO", "Fibra"),
				b.Info(fmt.Sprintf("x%03d-5", i), at+5*time.Second, "PLANO", fmt.Sprintf("Fibra %d", i%5)))
		}
		if i%5 == 0 {
			f.handedOff = true
			events = append(events, b.Handoff(fmt.Sprintf("x%03d-6", i), at+6*time.Second, event.ActionRequested, ""))
		}
		facts[id] = f
	}
	Ingest(t, s, events...)
	yes, no := true, false
	info := []report.Condition{{Key: "PLANO", Op: report.OpExists}}
	tests := []struct {
		name string
		f    report.Filter
		keep func(f fact) bool
	}{
		{"common and rare", report.Filter{Tags: []string{"Comum", "Raro"}, TagMode: report.TagsAll},
			func(f fact) bool { return slices.Contains(f.tags, "Raro") }},
		{"rare and common", report.Filter{Tags: []string{"Raro", "Comum"}, TagMode: report.TagsAll},
			func(f fact) bool { return slices.Contains(f.tags, "Raro") }},
		{"common and half", report.Filter{Tags: []string{"Comum", "Meio"}, TagMode: report.TagsAll},
			func(f fact) bool { return slices.Contains(f.tags, "Meio") }},
		{"three tags", report.Filter{Tags: []string{"Meio", "Comum", "Raro"}, TagMode: report.TagsAll},
			func(f fact) bool { return slices.Contains(f.tags, "Meio") && slices.Contains(f.tags, "Raro") }},
		{"tag and channel", report.Filter{Tags: []string{"Meio"}, Channels: []string{"webchat"}},
			func(f fact) bool { return slices.Contains(f.tags, "Meio") && f.channel == "webchat" }},
		{"tag and handed off", report.Filter{Tags: []string{"Comum"}, HandedOff: &yes},
			func(f fact) bool { return f.handedOff }},
		{"tag and info", report.Filter{Tags: []string{"Meio"}, Info: info},
			func(f fact) bool { return slices.Contains(f.tags, "Meio") && f.plano }},
		{"tag, info, channel, handed off", report.Filter{Tags: []string{"Comum"}, Info: info, Channels: []string{"whatsapp", "telegram"}, HandedOff: &yes},
			func(f fact) bool { return f.plano && f.channel != "webchat" && f.handedOff }},
		{"tag, info, one channel, handed off", report.Filter{Tags: []string{"Comum"}, Info: info, Channels: []string{"whatsapp"}, HandedOff: &yes},
			func(f fact) bool { return f.plano && f.channel == "whatsapp" && f.handedOff }},
		{"tag, one channel, handed off", report.Filter{Tags: []string{"Meio"}, Channels: []string{"webchat"}, HandedOff: &yes},
			func(f fact) bool { return slices.Contains(f.tags, "Meio") && f.channel == "webchat" && f.handedOff }},
		{"info contains, one channel, not handed off", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpContains, Value: "bra 1"}}, Channels: []string{"telegram"}, HandedOff: &no},
			func(f fact) bool { return f.plano && f.i%5 == 1 && f.channel == "telegram" && !f.handedOff }},
		{"tags all, channel, not handed off", report.Filter{Tags: []string{"Comum", "Meio"}, TagMode: report.TagsAll, Channels: []string{"webchat"}, HandedOff: &no},
			func(f fact) bool { return slices.Contains(f.tags, "Meio") && f.channel == "webchat" && !f.handedOff }},
		{"info value and tag", report.Filter{Tags: []string{"Comum"}, Info: []report.Condition{{Key: "PLANO", Op: report.OpEquals, Value: "fibra 2"}}},
			func(f fact) bool { return f.plano && f.i%5 == 2 }},
		{"info starts_with and tags", report.Filter{Tags: []string{"Comum", "Meio"}, TagMode: report.TagsAll, Info: []report.Condition{{Key: "PLANO", Op: report.OpStartsWith, Value: "fibra"}}},
			func(f fact) bool { return slices.Contains(f.tags, "Meio") && f.plano }},
		{"info starts_with alone", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpStartsWith, Value: "FIBRA 1"}}},
			func(f fact) bool { return f.plano && f.i%5 == 1 }},
		{"info not_exists alone", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpNotExists}}},
			func(f fact) bool { return !f.plano }},
		{"info not_equals and channel", report.Filter{Channels: []string{"whatsapp", "telegram"}, Info: []report.Condition{{Key: "PLANO", Op: report.OpNotEquals, Value: "fibra 2"}}},
			func(f fact) bool { return f.channel != "webchat" && !(f.plano && f.i%5 == 2) }},
		{"info not_contains and not handed off", report.Filter{HandedOff: &no, Info: []report.Condition{{Key: "PLANO", Op: report.OpNotContain, Value: "A 3"}}},
			func(f fact) bool { return !f.handedOff && !(f.plano && f.i%5 == 3) }},
		{"two negations", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpNotEquals, Value: "fibra 4"}, {Key: "PLANO", Op: report.OpNotContain, Value: "bra 0"}}},
			func(f fact) bool { return !(f.plano && (f.i%5 == 4 || f.i%5 == 0)) }},
		{"word, tag and channels", report.Filter{Query: "boleto", Tags: []string{"Comum"}, Channels: []string{"whatsapp", "telegram"}},
			func(f fact) bool { return f.i%4 != 1 && f.channel != "webchat" }},
		{"word and rare tag", report.Filter{Query: "BOLETO", Tags: []string{"Raro"}},
			func(f fact) bool { return f.i%4 != 1 && slices.Contains(f.tags, "Raro") }},
		{"word, tags all and not handed off", report.Filter{Query: "boleto", Tags: []string{"Comum", "Meio"}, TagMode: report.TagsAll, HandedOff: &no},
			func(f fact) bool { return f.i%4 != 1 && slices.Contains(f.tags, "Meio") && !f.handedOff }},
		{"word, tag and info", report.Filter{Query: "oi", Tags: []string{"Meio"}, Info: info},
			func(f fact) bool { return slices.Contains(f.tags, "Meio") && f.plano }},
		{"two words, tag and info value", report.Filter{Query: "via boleto", Tags: []string{"Comum"}, Info: []report.Condition{{Key: "PLANO", Op: report.OpStartsWith, Value: "fibra"}}},
			func(f fact) bool { return f.i%6 == 0 && f.plano }},
		{"tags and info not_exists", report.Filter{Tags: []string{"Comum", "Meio"}, TagMode: report.TagsAll, Info: []report.Condition{{Key: "PLANO", Op: report.OpNotExists}}},
			func(f fact) bool { return slices.Contains(f.tags, "Meio") && !f.plano }},
	}
	all := search(t, s, report.Filter{})
	if len(all) != n {
		t.Fatalf("%d sessions, want %d", len(all), n)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, id := range all {
				if tc.keep(facts[id]) {
					want = append(want, id)
				}
			}
			got := search(t, s, tc.f)
			if !slices.Equal(got, want) {
				t.Fatalf("got %d sessions %v, want %d %v", len(got), got, len(want), want)
			}
			// Pages of 3 follow the same order, each counting all.
			f := tc.f
			f.Tenant, f.From, f.To = "acme", Base.Add(-24*time.Hour), Base.Add(29*24*time.Hour)
			var paged []string
			page := report.Page{Limit: 3}
			for range n {
				res, err := s.Search(context.Background(), f, page)
				if err != nil {
					t.Fatal(err)
				}
				if res.Total != len(want) || res.TotalMore {
					t.Fatalf("page %d: total %d (more %v), want %d", len(paged)/3, res.Total, res.TotalMore, len(want))
				}
				paged = append(paged, ids(res.Items)...)
				if res.Next == nil {
					break
				}
				page.After = res.Next
			}
			if !slices.Equal(paged, want) {
				t.Fatalf("pages of 3: %v, want %v", paged, want)
			}
			// At, below and above the bound.
			for _, bound := range []int{len(want) - 1, len(want), len(want) + 1} {
				if bound < 1 {
					continue
				}
				page := report.Page{Limit: 2, TotalBound: bound}
				for range 2 {
					res, err := s.Search(context.Background(), f, page)
					if err != nil {
						t.Fatal(err)
					}
					wantTotal, more := len(want), false
					if len(want) > bound {
						wantTotal, more = bound, true
					}
					if res.Total != wantTotal || res.TotalMore != more {
						t.Fatalf("bound %d: total %d, more %v; want %d, %v", bound, res.Total, res.TotalMore, wantTotal, more)
					}
					if res.Next == nil {
						break
					}
					page.After = res.Next
				}
			}
		})
	}
}
