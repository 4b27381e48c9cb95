package report

import "testing"

// TestPageBound: a page's own bound wins; otherwise a filter with full text
// is counted up to QueryTotalBound and any other up to DefaultTotalBound.
func TestPageBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		page Page
		f    Filter
		want int
	}{
		{"no text", Page{Limit: 20}, Filter{Tags: []string{"a"}}, DefaultTotalBound},
		{"text", Page{Limit: 20}, Filter{Query: "boleto"}, QueryTotalBound},
		{"text and a tag", Page{Limit: 20}, Filter{Query: "boleto", Tags: []string{"a"}}, QueryTotalBound},
		{"the page's own", Page{Limit: 20, TotalBound: 50}, Filter{Query: "boleto"}, 50},
		{"the page's own, no text", Page{Limit: 20, TotalBound: 20_000}, Filter{}, 20_000},
	} {
		if got := tc.page.Bound(&tc.f); got != tc.want {
			t.Errorf("%s: bound %d, want %d", tc.name, got, tc.want)
		}
	}
}
