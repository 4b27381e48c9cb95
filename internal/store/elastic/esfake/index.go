package esfake

import (
	"bytes"
	"encoding/json"
	"maps"
	"path"
	"slices"
	"strings"
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
		return nil, &fakeError{404, "resource_not_found_exception", pattern}
	}
	return map[string]any{listKey: list}, nil
}

// createIndex applies the matching index template, as auto-creation does.
// The fake refuses an index no template matches: the store must never
// write one.
func (f *Server) createIndex(name string) (*fakeIndex, error) { return f.createIndexWith(name, nil) }

// createIndexWith creates an index as PUT /<name> does: with the mappings
// and aliases of the body, on top of those of the matching index template;
// without a body, an index no template matches is refused.
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
		ix = &fakeIndex{mapping: map[string]any{}, aliases: map[string]bool{}, docs: map[string]*fakeDoc{}}
	}
	maps.Copy(ix.mapping, req.Mappings.Properties)
	for a := range req.Aliases {
		ix.aliases[a] = true
	}
	f.indices[name] = ix
	return ix, nil
}

// fromTemplate builds an index from the matching index template.
func (f *Server) fromTemplate(name string) (*fakeIndex, error) {
	for _, t := range f.templates {
		patterns, _ := t["index_patterns"].([]any)
		if !slices.ContainsFunc(patterns, func(p any) bool { ok, _ := path.Match(p.(string), name); return ok }) {
			continue
		}
		ix := &fakeIndex{mapping: map[string]any{}, aliases: map[string]bool{}, docs: map[string]*fakeDoc{}}
		ignore, _ := t["ignore_missing_component_templates"].([]any)
		composed, _ := t["composed_of"].([]any)
		for _, c := range composed {
			ct, ok := f.components[c.(string)]
			if !ok {
				if slices.Contains(ignore, c) {
					continue
				}
				return nil, bad("index template composed of missing component template %s", c)
			}
			tmpl, _ := ct["template"].(map[string]any)
			mappings, _ := tmpl["mappings"].(map[string]any)
			props, _ := mappings["properties"].(map[string]any)
			for k, v := range props {
				ix.mapping[k] = v
			}
		}
		if tmpl, ok := t["template"].(map[string]any); ok {
			as, _ := tmpl["aliases"].(map[string]any)
			for a := range as {
				ix.aliases[a] = true
			}
		}
		if len(ix.mapping) == 0 {
			return nil, bad("index %s: template without mappings", name)
		}
		return ix, nil
	}
	return nil, &fakeError{404, "index_not_found_exception", "no such index [" + name + "] and no template matches"}
}

// resolve returns the indices a target (names, aliases, comma-separated)
