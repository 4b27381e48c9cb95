package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestConformancePlans runs the conformance suite in each plan but the
// automatic one (TestConformance): scanning the interval, as when every
// condition matches many sessions, and driven by unordered drivers where a
// condition has one (any of several tags, starts_with by value), which the
// automatic plan only picks when they beat an ordered one.
func TestConformancePlans(t *testing.T) {
	for name, p := range map[string]int{"scanning": planScan, "unordered": planUnordered} {
		t.Run(name, func(t *testing.T) {
			defer func(p int) { plan = p }(plan)
			plan = p
			storetest.Run(t, func(t *testing.T) storetest.Store {
				s, err := Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}
