package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTestToolsLinked: the production binary links none of the bench's
// stand-ins, the test fakes or net/http/httptest; chatreport-bench does.
func TestNoTestToolsLinked(t *testing.T) {
	for _, tt := range []struct {
		pkg  string
		want bool
	}{
		{".", false},
		{"../chatreport-bench", true},
	} {
		out, err := exec.Command("go", "list", "-deps", tt.pkg).Output()
		if err != nil {
			t.Skipf("go list: %v (no Go toolchain here?)", err)
		}
		deps := strings.Fields(string(out))
		for _, tool := range []string{
			"net/http/httptest",
			"github.com/chatreport/chatreport/internal/bench",
			"github.com/chatreport/chatreport/internal/store/elastic/esfake",
		} {
			linked := false
			for _, d := range deps {
				linked = linked || d == tool
			}
			if linked != tt.want {
				t.Errorf("%s links %s: %t, want %t", tt.pkg, tool, linked, tt.want)
			}
		}
	}
}
