package esfake

import (
	"maps"
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
			out = append(out, map[string]any{"index": name, "health": "green", "status": "open", "docs.count": strconv.Itoa(len(ix.view))})
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

// refreshAPI serves POST /_refresh and POST /<target>/_refresh.
func (f *Server) refreshAPI(target string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := f.resolve(target)
	if target == "" {
		names = slices.Sorted(maps.Keys(f.indices))
	}
	for _, name := range names {
		f.refreshIndex(f.indices[name])
	}
	n := len(names)
	return map[string]any{"_shards": map[string]any{"total": n, "successful": n, "failed": 0}}, nil
}
