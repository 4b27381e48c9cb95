package esfake

import (
	"encoding/base64"
	"fmt"
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
