package esfake

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// multi-field (info_kv.wc) has the values of its parent.
func values(doc map[string]any, field string) []any {
	if !strings.Contains(field, ".") {
		switch v := doc[field].(type) {
		case nil:
			return nil
		case []any:
			return v
		default:
			return []any{v}
		}
	}
	var out []any
	var walk func(v any, rest []string)
	walk = func(v any, rest []string) {
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				walk(e, rest)
			}
			return
		}
		if len(rest) == 0 {
			if v != nil {
				out = append(out, v)
			}
			return
		}
		if m, ok := v.(map[string]any); ok {
			walk(m[rest[0]], rest[1:])
		}
	}
	walk(doc, strings.Split(field, "."))
	if len(out) == 0 && strings.HasSuffix(field, ".wc") {
		return values(doc, strings.TrimSuffix(field, ".wc"))
	}
	return out
}

func equalValues(a, b any) bool {
	if as, ok := a.(string); ok {
		bs, ok := b.(string)
		return ok && as == bs
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func firstValue(doc map[string]any, field string) any {
	if vs := values(doc, field); len(vs) > 0 {
		return vs[0]
	}
	return nil
}

func compareValues(a, b any) int {
	as, aok := a.(string)
	bs, bok := b.(string)
	if !aok || !bok {
		as, bs = fmt.Sprint(a), fmt.Sprint(b)
	}
	if len(as) < 20 || len(bs) < 20 || as[4] != '-' || bs[4] != '-' {
		return strings.Compare(as, bs)
	}
	ta, errA := time.Parse(time.RFC3339Nano, as)
	tb, errB := time.Parse(time.RFC3339Nano, bs)
	if errA == nil && errB == nil {
		return ta.Compare(tb)
	}
	return strings.Compare(as, bs)
}

// matches evaluates q against d, decoding d's source only when q looks at
// its fields.
func matches(q map[string]any, d *fakeDoc, id string, mapping map[string]any) (bool, error) {
	if q == nil {
		return true, nil
	}
	fields, err := d.fields()
	if err != nil {
		return false, err
	}
	return evalQuery(q, fields, id, mapping)
}

func evalQuery(q map[string]any, doc map[string]any, id string, mapping map[string]any) (bool, error) {
	if q == nil {
		return true, nil
	}
	if len(q) != 1 {
		return false, bad("fake: query with %d kinds", len(q))
	}
	for kind, body := range q {
		b, _ := body.(map[string]any)
		switch kind {
		case "bool":
			return evalBool(b, doc, id, mapping)
		case "match_none":
			return false, nil
		case "ids":
			vals, _ := b["values"].([]any)
			return slices.Contains(vals, any(id)), nil
		case "nested":
			p, _ := b["path"].(string)
			sub, _ := b["query"].(map[string]any)
			elems, _ := doc[p].([]any)
			for _, e := range elems {
				ok, err := evalQuery(sub, map[string]any{p: e}, id, mapping)
				if err != nil || ok {
					return ok, err
				}
			}
			return false, nil
		}
		if len(b) != 1 {
			return false, bad("fake: %s on %d fields", kind, len(b))
		}
		for field, spec := range b {
			vals := values(doc, field)
			switch kind {
			case "term":
				want := spec.(map[string]any)["value"]
				return slices.ContainsFunc(vals, func(v any) bool { return equalValues(v, want) }), nil
			case "terms":
				wants, _ := spec.([]any)
				return slices.ContainsFunc(vals, func(v any) bool {
					return slices.ContainsFunc(wants, func(w any) bool { return equalValues(v, w) })
				}), nil
			case "prefix":
				want := spec.(map[string]any)["value"].(string)
				return slices.ContainsFunc(vals, func(v any) bool { return strings.HasPrefix(fmt.Sprint(v), want) }), nil
			case "wildcard":
				re, err := wildcardRegexp(spec.(map[string]any)["value"].(string))
				if err != nil {
					return false, err
				}
				return slices.ContainsFunc(vals, func(v any) bool { return re.MatchString(fmt.Sprint(v)) }), nil
			case "regexp":
				sp := spec.(map[string]any)
				if flags, _ := sp["flags"].(string); flags != "NONE" {
					return false, bad("fake: regexp flags %q (only NONE is modelled)", flags)
				}
				re, err := luceneRegexp(sp["value"].(string))
				if err != nil {
					return false, err
				}
				return slices.ContainsFunc(vals, func(v any) bool { return re.MatchString(fmt.Sprint(v)) }), nil
			case "range":
				r := spec.(map[string]any)
				return slices.ContainsFunc(vals, func(v any) bool {
					for op, bound := range r {
						c := compareValues(v, bound)
						switch op {
						case "gte":
							if c < 0 {
								return false
							}
						case "gt":
							if c <= 0 {
								return false
							}
						case "lte":
							if c > 0 {
								return false
							}
						case "lt":
							if c >= 0 {
								return false
							}
						}
					}
					return true
				}), nil
			case "match_phrase":
				want := words(spec.(map[string]any)["query"].(string))
				return slices.ContainsFunc(vals, func(v any) bool { return containsRun(words(fmt.Sprint(v)), want) }), nil
			}
		}
		return false, bad("fake: unsupported query %s", kind)
	}
	return false, nil
}

func evalBool(b map[string]any, doc map[string]any, id string, mapping map[string]any) (bool, error) {
	list := func(key string) []map[string]any {
		arr, _ := b[key].([]any)
		out := make([]map[string]any, len(arr))
		for i, q := range arr {
			out[i], _ = q.(map[string]any)
		}
		return out
	}
	for k := range b {
		switch k {
		case "filter", "must", "must_not", "should", "minimum_should_match":
		default:
			return false, bad("fake: bool.%s", k)
		}
	}
	for _, key := range []string{"filter", "must"} {
		for _, q := range list(key) {
			if ok, err := evalQuery(q, doc, id, mapping); err != nil || !ok {
				return false, err
			}
		}
	}
	for _, q := range list("must_not") {
		if ok, err := evalQuery(q, doc, id, mapping); err != nil || ok {
			return false, err
		}
	}
	if should := list("should"); len(should) > 0 {
		n := 0
		for _, q := range should {
			ok, err := evalQuery(q, doc, id, mapping)
			if err != nil {
				return false, err
			}
			if ok {
				n++
			}
		}
		msm := 1
		if v, ok := b["minimum_should_match"].(float64); ok {
			msm = int(v)
		}
		return n >= msm, nil
	}
	return true, nil
}

func wildcardRegexp(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	esc := false
	for _, r := range pattern {
		switch {
		case esc:
			b.WriteString(regexp.QuoteMeta(string(r)))
			esc = false
		case r == '\\':
			esc = true
		case r == '*':
			b.WriteString("(?s:.*)")
		case r == '?':
			b.WriteString("(?s:.)")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// luceneRegexp translates a Lucene regular expression without optional
// operators (flags NONE) into a Go one matching the whole value: ., *, +, ?,
// |, groups, repeats and classes mean what they mean in Go, and a backslash
// makes the next character literal. Quoted strings are not modelled.
func luceneRegexp(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	inClass, esc := false, false
	for _, r := range pattern {
		switch {
		case esc:
			b.WriteString(regexp.QuoteMeta(string(r)))
			esc = false
		case r == '\\':
			esc = true
		case r == '"':
			return nil, bad("fake: quoted strings in a regexp are not modelled")
		case inClass:
			if r == ']' {
				inClass = false
			}
			if r == '[' {
				b.WriteString(`\[`)
				continue
			}
			b.WriteRune(r)
		case r == '[':
			inClass = true
			b.WriteRune(r)
		case strings.ContainsRune(".*+?|(){},", r) || unicode.IsLetter(r) || unicode.IsNumber(r):
			b.WriteRune(r)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, bad("fake: regexp %q: %v", pattern, err)
	}
	return re, nil
}

// words is the fake's chatreport_words analyzer: split on what is not a
// letter or digit, lowercase, fold diacritics.
func words(s string) []string {
	if w, ok := analyzed.Load(s); ok {
		return w.([]string)
	}
	w := analyze(s)
	analyzed.Store(s, w)
	return w
}

var analyzed sync.Map // text → words: the fake analyses each text once

func analyze(s string) []string {
	fold := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	folded, _, _ := transform.String(fold, strings.ToLower(s))
	return strings.FieldsFunc(folded, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
}

func containsRun(tokens, run []string) bool {
	if len(run) == 0 {
		return false
	}
	for i := 0; i+len(run) <= len(tokens); i++ {
		if slices.Equal(tokens[i:i+len(run)], run) {
			return true
		}
	}
	return false
}
