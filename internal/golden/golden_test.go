package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that records whether the test failed.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.txt")
	r := &recorder{TB: t}
	Check(r, path, []byte("a"), nil)
	if !r.failed {
		t.Fatal("a missing file passed")
	}
	*update = true
	Check(t, path, []byte("a"), nil)
	*update = false
	if data, _ := os.ReadFile(path); string(data) != "a" {
		t.Fatalf("-update wrote %q", data)
	}
	Check(t, path, []byte("a"), nil)
	r = &recorder{TB: t}
	Check(r, path, []byte("b"), nil)
	if !r.failed {
		t.Fatal("a different answer passed")
	}
	upper := func(_ testing.TB, b []byte) []byte { return bytes.ToUpper(b) }
	Check(t, path, []byte("A"), upper)
}
