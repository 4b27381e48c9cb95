package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestConformanceScanning runs the conformance suite with no condition
// driving the search: every query scans the sessions of its interval, the
// plan chosen when every selective condition matches many sessions. (The
// sessions of the suite are few, so TestConformance drives by them.)
func TestConformanceScanning(t *testing.T) {
	defer func(n int) { driveLimit = n }(driveLimit)
	driveLimit = 0
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
