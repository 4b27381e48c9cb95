package esfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"time"
)

// Validate checks doc against the properties of a strict mapping, as
// Elasticsearch would.
func Validate(props map[string]any, doc map[string]any) error {
	if err := validate(props, doc, ""); err != nil {
		return err
	}
	return nil
}

func validate(props map[string]any, doc map[string]any, prefix string) *fakeError {
	for k, v := range doc {
		p, ok := props[k].(map[string]any)
		if !ok {
			return &fakeError{status: 400, typ: "strict_dynamic_mapping_exception", reason: fmt.Sprintf("[1:2] mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed", k, cmpOr(prefix, "_doc"))}
		}
		if err := validateValue(p, v, prefix+k); err != nil {
			return err
		}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return strings.TrimSuffix(a, ".")
	}
	return b
}

func validateValue(p map[string]any, v any, field string) *fakeError {
	if v == nil {
		return nil
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if err := validateValue(p, e, field); err != nil {
				return err
			}
		}
		return nil
	}
	typ, _ := p["type"].(string)
	if enabled, ok := p["enabled"].(bool); ok && !enabled {
		return nil
	}
	parseErr := func(why string) *fakeError {
		return &fakeError{status: 400, typ: "document_parsing_exception", reason: fmt.Sprintf("[1:2] failed to parse field [%s] of type [%s]: %s. Preview of field's value: '%v'", field, typ, why, v)}
	}
	switch typ {
	case "", "object", "nested":
		obj, ok := v.(map[string]any)
		if !ok {
			return parseErr("not an object")
		}
		sub, _ := p["properties"].(map[string]any)
		return validate(sub, obj, field+".")
	case "keyword", "wildcard", "text":
		if _, ok := v.(string); !ok {
			return parseErr("not a string")
		}
	case "date_nanos":
		s, ok := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil || t.Before(time.Unix(0, 0)) || t.Year() > 2262 {
			return parseErr("date out of the range of date_nanos")
		}
	case "binary":
		str, ok := v.(string)
		if _, err := base64.StdEncoding.DecodeString(str); !ok || err != nil {
			return parseErr("not base64")
		}
	case "integer", "long":
		if n, ok := v.(float64); !ok || n != float64(int64(n)) {
			return parseErr("not a whole number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return parseErr("not a boolean")
		}
	default:
		return parseErr("type unknown to the fake")
	}
	return nil
}

// putMapping serves PUT <target>/_mapping: it adds the body's properties
// to the mapping of every index target designates. Elasticsearch adds new
// fields (and new properties of object fields) to existing indices, and
// refuses to change the type of a field that exists — the whole request,
// nothing applied.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-put-mapping.html
// ("Change the mapping of an existing field": not possible, a new field: yes).
func (f *Server) putMapping(target string, q url.Values, body []byte) (any, error) {
	if err := checkParams("_mapping", q, "ignore_unavailable", "allow_no_indices", "expand_wildcards"); err != nil {
		return nil, err
	}
	var req struct {
		Dynamic    string         `json:"dynamic"`
		Meta       map[string]any `json:"_meta"`
		Properties map[string]any `json:"properties"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, bad("put mapping: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	names, err := f.resolveIndices(target, q)
	if err != nil {
		return nil, err
	}
	merged := make(map[string]map[string]any, len(names))
	for _, name := range names {
		m := maps.Clone(f.indices[name].mapping)
		if err := mergeProperties(m, req.Properties, ""); err != nil {
			return nil, err
		}
		merged[name] = m
	}
	for name, m := range merged {
		f.indices[name].mapping = m
	}
	return map[string]any{"acknowledged": true}, nil
}

// mergeProperties adds add's fields to props (a copy of an index's mapping;
// object fields are copied before they are changed).
func mergeProperties(props, add map[string]any, prefix string) error {
	for name, v := range add {
		field := prefix + name
		nv, _ := v.(map[string]any)
		old, exists := props[name].(map[string]any)
		if !exists {
			props[name] = v
			continue
		}
		if cmpOr(str(old["type"]), "object") != cmpOr(str(nv["type"]), "object") {
			return &fakeError{status: 400, typ: "illegal_argument_exception",
				reason: fmt.Sprintf("mapper [%s] cannot be changed from type [%v] to [%v]", field, old["type"], nv["type"])}
		}
		oldSub, _ := old["properties"].(map[string]any)
		newSub, _ := nv["properties"].(map[string]any)
		if len(newSub) == 0 {
			continue
		}
		sub := maps.Clone(oldSub)
		if sub == nil {
			sub = map[string]any{}
		}
		if err := mergeProperties(sub, newSub, field+"."); err != nil {
			return err
		}
		copied := maps.Clone(old)
		copied["properties"] = sub
		props[name] = copied
	}
	return nil
}

func str(v any) string { s, _ := v.(string); return s }
