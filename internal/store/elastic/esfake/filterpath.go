package esfake

import (
	"net/url"
	"slices"
	"strings"
)

// filterPath is the filter_path parameter, which every REST API of
// Elasticsearch takes: the answer keeps only the members whose path (names
// joined by dots; an array adds no name) matches one of the patterns, where
// * in a name matches any characters and a name ** any number of names; an
// object or array left empty is left out, and a member kept keeps all that
// is under it.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/common-options.html#common-options-response-filtering
// The fake models it on _bulk, the answer the write path asks to be
// filtered, for inclusions only: exclusions (a leading -) are refused, and
// error answers are left whole. The reference describes filter_path as a
// comma-separated list of filters in dot notation and says nothing of an
// empty one (filter_path=, a, left empty between commas, or an empty name
// as in a..b): the fake refuses those with a 400 rather than guess (it
// answered {} to filter_path=, keeping nothing, which Elasticsearch is not
// known to do). A nil *filterPath keeps everything.
type filterPath struct {
	patterns [][]string
	// memo holds what match found, by path (names joined by NUL): a bulk
	// answer asks the same of every item.
	memo map[string]matched
}

type matched struct{ whole, under bool }

// parseFilterPath reads filter_path: comma-separated patterns, possibly
// in several parameters. No parameter is nil: everything is kept; an
// empty filter or name is refused (see filterPath).
func parseFilterPath(q url.Values) (*filterPath, error) {
	if len(q["filter_path"]) == 0 {
		return nil, nil
	}
	f := &filterPath{memo: map[string]matched{}}
	for _, v := range q["filter_path"] {
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			if strings.HasPrefix(p, "-") {
				return nil, bad("fake: filter_path exclusions (%s) are not modelled", p)
			}
			names := strings.Split(p, ".")
			if slices.Contains(names, "") {
				return nil, bad("fake: filter_path %q: an empty filter or name is not modelled (Elasticsearch's reference does not say what it does)", v)
			}
			f.patterns = append(f.patterns, names)
		}
	}
	return f, nil
}

// match tells whether a member at names is kept with all that is under it
// (whole), or may keep some of what is under it (under).
func (f *filterPath) match(names []string) (whole, under bool) {
	if f == nil {
		return true, false
	}
	var buf [128]byte
	key := buf[:0]
	for _, n := range names {
		key = append(append(key, n...), 0)
	}
	if m, ok := f.memo[string(key)]; ok {
		return m.whole, m.under
	}
	for _, p := range f.patterns {
		w, u := matchNames(p, names)
		whole = whole || w
		under = under || u
	}
	f.memo[string(key)] = matched{whole, under}
	return whole, under
}

func matchNames(pat, names []string) (whole, under bool) {
	switch {
	case len(pat) == 0:
		return true, false // the pattern ended above or at names
	case len(names) == 0:
		return false, true
	case pat[0] == "**":
		w1, u1 := matchNames(pat[1:], names) // ** as no name
		w2, u2 := matchNames(pat, names[1:]) // ** as one name or more
		return w1 || w2, u1 || u2 || len(pat) == 1
	}
	if !simpleMatch(pat[0], names[0]) {
		return false, false
	}
	return matchNames(pat[1:], names[1:])
}

// simpleMatch matches s against a pattern whose only special character is
// *, any characters (Elasticsearch's Regex.simpleMatch).
func simpleMatch(pat, s string) bool {
	before, after, wild := strings.Cut(pat, "*")
	if !wild {
		return pat == s
	}
	if !strings.HasPrefix(s, before) {
		return false
	}
	s = s[len(before):]
	for i := len(s); i >= 0; i-- {
		if simpleMatch(after, s[i:]) {
			return true
		}
	}
	return false
}

// object writes the members of a JSON object that a filter keeps.
type object struct {
	b      []byte
	start  int // len(b) before the '{'
	n      int // members written
	f      *filterPath
	prefix []string // the object's path
}

func openObject(b []byte, f *filterPath, prefix ...string) object {
	return object{b: append(b, '{'), start: len(b), f: f, prefix: prefix}
}

// member writes the name of a member the filter keeps whole, and tells
// whether it did: the caller then appends the value.
func (o *object) member(name string) bool {
	if o.f != nil {
		var buf [8]string
		if whole, _ := o.f.match(append(append(buf[:0], o.prefix...), name)); !whole {
			return false
		}
	}
	o.name(name)
	return true
}

func (o *object) name(name string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = append(o.b, '"')
	o.b = append(o.b, name...)
	o.b = append(o.b, '"', ':')
}

// nested writes a member whose value is an object, by write on an object of
// its own: whole, or the part of it the filter keeps, or nothing.
func (o *object) nested(name string, write func(*object)) {
	if o.f == nil {
		o.name(name)
		sub := openObject(o.b, nil)
		write(&sub)
		o.b = sub.close()
		return
	}
	var buf [8]string
	whole, under := o.f.match(append(append(buf[:0], o.prefix...), name))
	if !whole && !under {
		return // asked without building the path: most are left out
	}
	path := append(o.prefix[:len(o.prefix):len(o.prefix)], name)
	mark, n := len(o.b), o.n
	o.name(name)
	sub := openObject(o.b, o.f, path...)
	if whole {
		sub.f = nil
	}
	write(&sub)
	if sub.n == 0 && !whole {
		o.b, o.n = o.b[:mark], n // left empty: left out
		return
	}
	o.b = sub.close()
}

// close ends the object; an object a filter left empty stays "{}" (an
// answer's top level).
func (o *object) close() []byte { return append(o.b, '}') }
