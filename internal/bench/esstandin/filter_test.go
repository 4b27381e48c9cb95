package esstandin

import (
	"net/url"
	"testing"
)

// TestSourceIncludes: reads keep only the top-level fields asked for, and
// refuse what source filtering they do not model.
func TestSourceIncludes(t *testing.T) {
	src := []byte(`{"a":1,"event_refs":["2025.10/e1","2025.10/e2"],"messages":[{"text":"oi"}],"b":{"c":2}}`)
	for _, tt := range []struct {
		fields []string
		want   string
	}{
		{[]string{"event_refs"}, `{"event_refs":["2025.10/e1","2025.10/e2"]}`},
		{[]string{"b", "a"}, `{"a":1,"b":{"c":2}}`},
		{[]string{"none"}, `{}`},
	} {
		if got := string(filterSource(nil, src, tt.fields)); got != tt.want {
			t.Errorf("%v: %s, want %s", tt.fields, got, tt.want)
		}
	}
	for _, bad := range []string{"event_*", "b.c", "a,,b"} {
		if _, err := sourceIncludes(url.Values{"_source_includes": {bad}}); err == nil {
			t.Errorf("_source_includes=%s accepted", bad)
		}
	}
}
