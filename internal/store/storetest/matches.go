package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// testMatchedManyWays: a session that meets one condition in more than one
// way (several of the tags asked for, several info rows, several protocols,
// a contact whose id, phone and name all match) is counted and listed once,
// on one page only.
func testMatchedManyWays(t *testing.T, s Store) {
	const (
		p1 = "20251007092633646"
		p2 = "20251007101500001"
	)
	many := B{Contact: "5511987654321", Phone: "+55 11 98765-4321", Name: "Cliente 98765-4321", Protocol: p1}
	many2 := many
	many2.Protocol = p2
	one := B{Contact: "5511911112222", Phone: "+55 11 91111-2222", Name: "Outro", Protocol: p1}
	none := B{Channel: "webchat", Contact: "web-9", Name: "Sem Nada"}
	h := time.Hour
	e := []event.Event{
		many.Msg("k1", 0, event.RoleCustomer, "boleto boleto"),
		many.Tag("k2", time.Minute, "Boleto"),
		many.Tag("k3", 2*time.Minute, "Menu"),
		many.Tag("k4", 3*time.Minute, "Financeiro"),
		many.Info("k5", 4*time.Minute, "PLANO", "Fibra 100"),
		many.Info("k6", 5*time.Minute, "PLANO", "Fibra 500"),
		many.Info("k7", 6*time.Minute, "CIDADE", "Fibra City"),
		many2.Msg("k8", 7*time.Minute, event.RoleCustomer, "boleto de novo"),
		many2.Tag("k9", 8*time.Minute, "Boleto"), // the same tag again
		one.Msg("o1", h, event.RoleCustomer, "boleto"),
		one.Tag("o2", h+time.Minute, "Menu"),
		one.Info("o3", h+2*time.Minute, "PLANO", "Fibra 300"),
		none.Msg("n1", 2*h, event.RoleCustomer, "oi"),
	}
	Ingest(t, s, e...)
	m, o, n := session.DeriveID(&e[0]), session.DeriveID(&e[9]), session.DeriveID(&e[12])
	if m == o || o == n {
		t.Fatal("fixture: sessions not distinct")
	}
	info := func(cs ...report.Condition) []report.Condition { return cs }
	tests := []struct {
		name string
		f    report.Filter
		want []string
	}{
		{"tags any, all held", report.Filter{Tags: []string{"Boleto", "Menu", "Financeiro"}}, []string{o, m}},
		{"tags any, two held", report.Filter{Tags: []string{"Menu", "Financeiro"}, TagMode: report.TagsAny}, []string{o, m}},
		{"tags any, repeated", report.Filter{Tags: []string{"Financeiro", "Boleto", "Financeiro"}}, []string{m}},
		{"tags all", report.Filter{Tags: []string{"Boleto", "Menu"}, TagMode: report.TagsAll}, []string{m}},
		{"protocol of two", report.Filter{Protocol: p1}, []string{o, m}},
		{"second protocol", report.Filter{Protocol: p2}, []string{m}},
		{"info set twice", report.Filter{Info: info(report.Condition{Key: "PLANO", Op: report.OpContains, Value: "fibra"})}, []string{o, m}},
		{"info latest value", report.Filter{Info: info(report.Condition{Key: "PLANO", Op: report.OpEquals, Value: "fibra 500"})}, []string{m}},
		{"info overwritten value", report.Filter{Info: info(report.Condition{Key: "PLANO", Op: report.OpEquals, Value: "fibra 100"})}, []string{}},
		{"info exists", report.Filter{Info: info(report.Condition{Key: "PLANO", Op: report.OpExists})}, []string{o, m}},
		{"info two keys", report.Filter{Info: info(
			report.Condition{Key: "PLANO", Op: report.OpStartsWith, Value: "fibra"},
			report.Condition{Key: "CIDADE", Op: report.OpStartsWith, Value: "fibra"})}, []string{m}},
		{"info not_exists", report.Filter{Info: info(report.Condition{Key: "CIDADE", Op: report.OpNotExists})}, []string{n, o}},
		{"contact id, phone and name", report.Filter{Contact: "5511987654321"}, []string{m}},
		{"contact phone and name", report.Filter{Contact: "98765-4321"}, []string{m}},
		{"full text in two messages", report.Filter{Query: "boleto"}, []string{o, m}},
		{"combined", report.Filter{Tags: []string{"Boleto", "Menu"}, Protocol: p1, Contact: "98765-4321",
			Info: info(report.Condition{Key: "PLANO", Op: report.OpExists}), Query: "boleto"}, []string{m}},
		{"combined two sessions", report.Filter{Tags: []string{"Boleto", "Menu", "Financeiro"}, Protocol: p1,
			Info: info(report.Condition{Key: "PLANO", Op: report.OpContains, Value: "fibra"}), Query: "boleto"}, []string{o, m}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := search(t, s, tc.f); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			// One session a page: each page's total counts the
			// sessions, and no session is on two pages.
			f := tc.f
			f.Tenant, f.From, f.To = "acme", Base.Add(-24*time.Hour), Base.Add(29*24*time.Hour)
			var paged []string
			page := report.Page{Limit: 1}
			for range 10 {
				res, err := s.Search(context.Background(), f, page)
				if err != nil {
					t.Fatal(err)
				}
				if res.Total != len(tc.want) {
					t.Fatalf("page %d: total %d, want %d", len(paged), res.Total, len(tc.want))
				}
				paged = append(paged, ids(res.Items)...)
				if res.Next == nil {
					break
				}
				page.After = res.Next
			}
			if !slices.Equal(paged, tc.want) && len(paged)+len(tc.want) > 0 {
				t.Fatalf("pages of one: %v, want %v", paged, tc.want)
			}
			var exported []string
			if err := ExportDetails(context.Background(), s, f, func(d report.Detail) error {
				exported = append(exported, d.Session.ID)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(exported, tc.want) && len(exported)+len(tc.want) > 0 {
				t.Fatalf("export: %v, want %v", exported, tc.want)
			}
		})
	}
}

// testContactName: the contact filter matches the captured name ignoring
// case and diacritics, as full text matches message text.
func testContactName(t *testing.T, s Store) {
	claudia := B{Contact: "c-1", Name: "CLÁUDIA Simões"}
	claudio := B{Contact: "c-2", Name: "Claudio Simoes"}
	joao := B{Channel: "webchat", Contact: "c-3", Name: "joão d'ávila"}
	plain := B{Channel: "telegram", Contact: "c-4", Name: "Ana*Lu?"}
	e := []event.Event{
		claudia.Msg("n1", 0, event.RoleCustomer, "oi"),
		claudio.Msg("n2", time.Hour, event.RoleCustomer, "oi"),
		joao.Msg("n3", 2*time.Hour, event.RoleCustomer, "oi"),
		plain.Msg("n4", 3*time.Hour, event.RoleCustomer, "oi"),
	}
	Ingest(t, s, e...)
	ca, co, jo, an := session.DeriveID(&e[0]), session.DeriveID(&e[1]), session.DeriveID(&e[2]), session.DeriveID(&e[3])
	tests := []struct {
		contact string
		want    []string
	}{
		{"claudia", []string{ca}},
		{"CLAUDIA", []string{ca}},
		{"Cláudia", []string{ca}},
		{"cláudio", []string{co}},
		{"claud", []string{co, ca}},
		{"simoes", []string{co, ca}},
		{"SIMÕES", []string{co, ca}},
		{"ia simo", []string{ca}},
		{"joao", []string{jo}},
		{"JOÃO D'AVILA", []string{jo}},
		{"d'ávila", []string{jo}},
		{"davila", []string{}},
		{"ana*lu?", []string{an}},
		{"ana*", []string{an}},
		{"a*u", []string{}},       // * and ? are literal
		{"cláudiã", []string{ca}}, // diacritics typed are ignored too
	}
	for _, tc := range tests {
		t.Run(tc.contact, func(t *testing.T) {
			if got := search(t, s, report.Filter{Contact: tc.contact}); !slices.Equal(got, tc.want) {
				t.Fatalf("contact %q: got %v, want %v", tc.contact, got, tc.want)
			}
		})
	}
}
