package esfake

import (
	"net/http"
	"testing"
)

// TestPutMapping: new fields join existing indices' mappings, also inside an
// object; a change of a field's type is refused whole, nothing applied; a
// missing concrete index is a 404, a wildcard matching nothing is not.
func TestPutMapping(t *testing.T) {
	f := New(t)
	for _, name := range []string{"m-1", "m-2"} {
		if st, body := call(t, f, http.MethodPut, "/"+name,
			`{"mappings":{"dynamic":"strict","properties":{"a":{"type":"keyword"},"o":{"properties":{"x":{"type":"keyword"}}}}}}`); st != http.StatusOK {
			t.Fatalf("create %s: %d %v", name, st, body)
		}
	}
	if st, body := call(t, f, http.MethodPost, "/m-1/_doc/1", `{"a":"x","b":"y"}`); st != http.StatusBadRequest {
		t.Fatalf("a field the mapping lacks: %d %v", st, body)
	}
	tests := []struct {
		name, path, body string
		status           int
	}{
		{"a type changed, beside a new field", "/m-*/_mapping", `{"properties":{"c":{"type":"keyword"},"a":{"type":"long"}}}`, http.StatusBadRequest},
		{"new fields", "/m-*/_mapping", `{"_meta":{"v":2},"properties":{"b":{"type":"keyword"},"o":{"properties":{"y":{"type":"keyword"}}}}}`, http.StatusOK},
		{"missing concrete index", "/nope/_mapping", `{"properties":{"b":{"type":"keyword"}}}`, http.StatusNotFound},
		{"wildcard matching nothing", "/none-*/_mapping", `{"properties":{"b":{"type":"keyword"}}}`, http.StatusOK},
	}
	for _, tt := range tests {
		if st, body := call(t, f, http.MethodPut, tt.path, tt.body); st != tt.status {
			t.Errorf("%s: %d %v, want %d", tt.name, st, body, tt.status)
		}
	}
	for _, name := range []string{"m-1", "m-2"} {
		if st, body := call(t, f, http.MethodPost, "/"+name+"/_doc/1", `{"a":"x","b":"y","o":{"x":"1","y":"2"}}`); st != http.StatusCreated {
			t.Errorf("%s after the update: %d %v", name, st, body)
		}
		if st, _ := call(t, f, http.MethodPost, "/"+name+"/_doc/2", `{"c":"z"}`); st != http.StatusBadRequest {
			t.Errorf("%s: the refused request added c: %d", name, st)
		}
	}
}
