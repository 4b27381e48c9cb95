package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/chatreport/chatreport/internal/report"
)

// openTemp opens a new store in a temporary directory, closed when the test
// ends. Its packer does not run (no WithPacker): a test packs with packAll
// when it means to.
func openTemp(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// searchIDs follows Search's cursors to the end and returns the ids of the
// sessions f matches, in the report's order.
func searchIDs(t *testing.T, s *Store, f report.Filter) []string {
	t.Helper()
	var ids []string
	page := report.Page{Limit: report.MaxPageLimit}
	for {
		res, err := s.Search(t.Context(), f, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, ss := range res.Items {
			ids = append(ids, ss.ID)
		}
		if res.Next == nil {
			return ids
		}
		page.After = res.Next
	}
}
