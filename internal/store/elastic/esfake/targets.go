package esfake

import (
	"path"
	"slices"
	"strconv"
	"strings"
)

func (f *Server) catIndices(patterns string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []any{}
	for name, ix := range f.indices {
		if matchAny(patterns, name) {
			out = append(out, map[string]any{"index": name, "health": "green", "status": "open", "docs.count": strconv.Itoa(len(ix.docs))})
		}
	}
	return out
}

func (f *Server) aliases(patterns string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]any{}
	for name, ix := range f.indices {
		if matchAny(patterns, name) {
			as := map[string]any{}
			for a := range ix.aliases {
				as[a] = map[string]any{}
			}
			out[name] = map[string]any{"aliases": as}
		}
	}
	return out
}

func matchAny(patterns, name string) bool {
	for _, p := range strings.Split(patterns, ",") {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// designates.
func (f *Server) resolve(target string) []string {
	var out []string
	for _, t := range strings.Split(target, ",") {
		if _, ok := f.indices[t]; ok {
			out = append(out, t)
			continue
		}
		for name, ix := range f.indices {
			if ix.aliases[t] {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
