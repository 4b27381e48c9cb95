// Package golden compares what a test produced with a file kept in the
// package's testdata, and rewrites the file when the tests run with
// -update. Only tests import it.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Check compares got with the file at path, or writes got there with
// -update. With canon set, both sides are compared as canon makes them
// (a file written by hand need not be in canonical form).
func Check(t testing.TB, path string, got []byte, canon func(testing.TB, []byte) []byte) {
	t.Helper()
	if canon != nil {
		got = canon(t, got)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if canon != nil {
		want = canon(t, want)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it; review the diff)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
