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

// testControlCharacters: NUL and other control characters in the text of a
// filter (full text, contact, tags, info values) are text like any other:
// no store fails on them (the SQLite store used to cut its full-text query
// short at a NUL and fail with a syntax error). The API refuses them before
// a store sees them; this holds the stores to it anyway, for filters built
// elsewhere. In full text a control character separates words, as
// punctuation does.
func testControlCharacters(t *testing.T, s Store) {
	c := B{Contact: "c-1", Name: "Ma\x00ria"}
	e := []event.Event{
		c.Msg("m1", 0, event.RoleCustomer, "boleto\x00vencido"),
		c.Tag("m2", time.Minute, "x\x01y"),
		c.Info("m3", 2*time.Minute, "K", "v\x00w"),
	}
	Ingest(t, s, e...)
	sid := session.DeriveID(&e[0])
	var none []string
	one := []string{sid}
	tests := []struct {
		name string
		f    report.Filter
		want []string // nil: only no error
	}{
		{"q NUL after", report.Filter{Query: "boleto\x00"}, one},
		{"q NUL before", report.Filter{Query: "\x00boleto"}, one},
		{"q NUL inside", report.Filter{Query: "boleto\x00vencido"}, one},
		{"q NUL and quote", report.Filter{Query: "bo\"leto\x00\""}, nil},
		{"q SOH", report.Filter{Query: "boleto\x01"}, one},
		{"q DEL", report.Filter{Query: "\x7fboleto"}, one},
		{"q C1", report.Filter{Query: "boleto\u0085x"}, nil},
		{"contact NUL", report.Filter{Contact: "ma\x00ria"}, one},
		{"contact NUL only", report.Filter{Contact: "\x00"}, nil},
		{"tag SOH", report.Filter{Tags: []string{"x\x01y"}}, one},
		{"tag NUL", report.Filter{Tags: []string{"\x00"}}, none},
		{"info equals NUL", report.Filter{Info: []report.Condition{{Key: "K", Op: report.OpEquals, Value: "v\x00w"}}}, one},
		{"info contains NUL", report.Filter{Info: []report.Condition{{Key: "K", Op: report.OpContains, Value: "\x00"}}}, nil},
		{"info starts_with NUL", report.Filter{Info: []report.Condition{{Key: "K", Op: report.OpStartsWith, Value: "v\x00"}}}, one},
		{"info not_contains NUL", report.Filter{Info: []report.Condition{{Key: "K", Op: report.OpNotContain, Value: "\x00\x01"}}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := search(t, s, tc.f)
			if tc.want != nil && !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			f := tc.f
			f.Tenant, f.From, f.To = "acme", Base.Add(-24*time.Hour), Base.Add(29*24*time.Hour)
			if err := ExportDetails(context.Background(), s, f, func(report.Detail) error { return nil }); err != nil {
				t.Errorf("export: %v", err)
			}
		})
	}
}
