package esfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (f *Server) putTemplate(into map[string]map[string]any, name string, body []byte) error {
	var t map[string]any
	if err := json.Unmarshal(body, &t); err != nil {
		return bad("template %s: %v", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	into[name] = t
	return nil
}

func (f *Server) getTemplates(from map[string]map[string]any, pattern, listKey, itemKey string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []any{}
	for name, t := range from {
		if ok, _ := path.Match(pattern, name); ok {
			list = append(list, map[string]any{"name": name, itemKey: t})
		}
	}
	if len(list) == 0 && !strings.Contains(pattern, "*") {
		return nil, &fakeError{status: 404, typ: "resource_not_found_exception", reason: pattern}
	}
	return map[string]any{listKey: list}, nil
}

// createIndex applies the matching index template, as auto-creation does.
// The fake refuses an index no template matches: the store must never
// write one.
func (f *Server) createIndex(name string) (*fakeIndex, error) { return f.createIndexWith(name, nil) }

// createIndexWith creates an index as PUT /<name> does: with the settings,
// mappings and aliases of the body, on top of those of the matching index
// template; without a body, an index no template matches is refused.
func (f *Server) createIndexWith(name string, body []byte) (*fakeIndex, error) {
	var req struct {
		Settings map[string]any `json:"settings"`
		Mappings struct {
			Dynamic    string         `json:"dynamic"`
			Meta       map[string]any `json:"_meta"`
			Properties map[string]any `json:"properties"`
		} `json:"mappings"`
		Aliases map[string]any `json:"aliases"`
	}
	if len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, bad("create index %s: %v", name, err)
		}
	}
	ix, err := f.fromTemplate(name)
	if err != nil && len(req.Mappings.Properties) == 0 {
		return nil, err
	}
	if ix == nil {
		ix = newIndex(name)
	}
	maps.Copy(ix.mapping, req.Mappings.Properties)
	flattenSettings(ix.settings, "", req.Settings)
	for a := range req.Aliases {
		ix.aliases[a] = true
	}
	if err := ix.applySettings(); err != nil {
		return nil, err
	}
	f.indices[name] = ix
	f.wakeScheduler()
	return ix, nil
}

func newIndex(name string) *fakeIndex {
	return &fakeIndex{
		name: name, mapping: map[string]any{}, aliases: map[string]bool{}, settings: map[string]string{},
		docs: map[string]*fakeDoc{}, view: map[string]*fakeDoc{}, tombs: map[string]tombstone{},
		refreshed: make(chan struct{}), anchor: time.Now(),
		seq: -1, // the first write has _seq_no 0
	}
}

// flattenSettings adds settings, nested ({"index": {"refresh_interval":
// "1s"}}) or dotted ({"index.refresh_interval": "1s"}), to into by full
// name ("index.refresh_interval"); Elasticsearch takes both forms, and
// names without the "index." prefix.
func flattenSettings(into map[string]string, prefix string, settings map[string]any) {
	for k, v := range settings {
		key := prefix + k
		if prefix == "" && !strings.HasPrefix(key, "index.") && key != "index" {
			key = "index." + key
		}
		switch v := v.(type) {
		case map[string]any:
			flattenSettings(into, key+".", v)
		case string:
			into[key] = v
		default:
			into[key] = fmt.Sprint(v)
		}
	}
}

// applySettings reads the settings the fake models: index.refresh_interval
// (1s by default, -1 disables periodic refreshes) and index.gc_deletes (60s
// by default).
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/index-modules.html#index-refresh-interval-setting
func (ix *fakeIndex) applySettings() error {
	ix.interval, ix.gcDeletes = defaultRefreshInterval, defaultGCDeletes
	for key, dst := range map[string]*time.Duration{"index.refresh_interval": &ix.interval, "index.gc_deletes": &ix.gcDeletes} {
		if v, ok := ix.settings[key]; ok {
			d, err := parseTimeValue(v)
			if err != nil {
				return bad("failed to parse setting [%s] with value [%s]", key, v)
			}
			*dst = d
		}
	}
	return nil
}

// parseTimeValue parses an Elasticsearch time value: a number with a unit
// (d, h, m, s, ms, micros, nanos), or -1 (disabled).
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/api-conventions.html#time-units
func parseTimeValue(s string) (time.Duration, error) {
	if s == "-1" {
		return -1, nil
	}
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"nanos", time.Nanosecond}, {"micros", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("time value %q", s)
			}
			return time.Duration(v) * u.unit, nil
		}
	}
	return 0, fmt.Errorf("time value %q: no unit", s)
}

// fromTemplate builds an index from the matching index template of highest
// priority: the settings, mappings and aliases of its component templates
// in order, then of its own template section.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/index-templates.html
func (f *Server) fromTemplate(name string) (*fakeIndex, error) {
	var best map[string]any
	bestPriority := -1.0
	for _, t := range f.templates {
		patterns, _ := t["index_patterns"].([]any)
		if !slices.ContainsFunc(patterns, func(p any) bool { ok, _ := path.Match(p.(string), name); return ok }) {
			continue
		}
		if p, _ := t["priority"].(float64); p > bestPriority {
			best, bestPriority = t, p
		}
	}
	if best == nil {
		return nil, &fakeError{status: 404, typ: "index_not_found_exception", reason: "no such index [" + name + "] and no template matches"}
	}
	ix := newIndex(name)
	section := func(tmpl map[string]any) {
		settings, _ := tmpl["settings"].(map[string]any)
		flattenSettings(ix.settings, "", settings)
		mappings, _ := tmpl["mappings"].(map[string]any)
		props, _ := mappings["properties"].(map[string]any)
		maps.Copy(ix.mapping, props)
		as, _ := tmpl["aliases"].(map[string]any)
		for a := range as {
			ix.aliases[a] = true
		}
	}
	ignore, _ := best["ignore_missing_component_templates"].([]any)
	composed, _ := best["composed_of"].([]any)
	for _, c := range composed {
		ct, ok := f.components[c.(string)]
		if !ok {
			if slices.Contains(ignore, c) {
				continue
			}
			return nil, bad("index template composed of missing component template %s", c)
		}
		tmpl, _ := ct["template"].(map[string]any)
		section(tmpl)
	}
	tmpl, _ := best["template"].(map[string]any)
	section(tmpl)
	if len(ix.mapping) == 0 {
		return nil, bad("index %s: template without mappings", name)
	}
	return ix, nil
}
