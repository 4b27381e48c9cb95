package esfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Realtime reads. GET /<index>/_doc/<id> and _mget read the live documents
// (realtime=true, the default): a write is visible to them as soon as it
// is acknowledged, refreshed or not. realtime=false reads the searchable
// view instead, and refresh=true refreshes the index first.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-get.html#realtime
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-multi-get.html

// readParams are the parameters of get and mget.
var readParams = []string{"realtime", "refresh", "_source", "_source_includes", "_source_excludes"}

// appendRead writes one document of a get or mget: its answer, found or
// not, or the error of its index. The source is the bytes written unless
// it is filtered. f.mu is held.
func (f *Server) appendRead(b []byte, index, id string, src sourceFilter, realtime bool) (out []byte, found bool, err error) {
	b = append(b, `{"_index":`...)
	ix, ferr := f.single(index)
	if ferr != nil {
		b = appendString(b, index)
		b = append(b, `,"_id":`...)
		b = appendString(b, id)
		e, _ := json.Marshal(ferr.(*fakeError).body())
		b = append(b, `,"error":`...)
		b = append(b, e...)
		return append(b, '}'), false, nil
	}
	b = appendString(b, ix.name)
	b = append(b, `,"_id":`...)
	b = appendString(b, id)
	docs := ix.docs
	if !realtime {
		docs = ix.view
	}
	d, ok := docs[id]
	if !ok {
		return append(b, `,"found":false}`...), false, nil
	}
	b = append(b, `,"_version":`...)
	b = strconv.AppendInt(b, d.ver, 10)
	b = append(b, `,"_seq_no":`...)
	b = strconv.AppendInt(b, d.seqNo, 10)
	b = append(b, `,"_primary_term":1,"found":true`...)
	switch {
	case src.off:
	case src.all():
		b = append(b, `,"_source":`...)
		b = append(b, d.source...)
	case src.topLevel():
		b = append(b, `,"_source":`...)
		if b, err = src.appendTopLevel(b, d.source); err != nil {
			return nil, false, err
		}
	default:
		fields, err := d.fields()
		if err != nil {
			return nil, false, err
		}
		filtered, err := json.Marshal(src.apply(fields))
		if err != nil {
			return nil, false, err
		}
		b = append(b, `,"_source":`...)
		b = append(b, filtered...)
	}
	return append(b, '}'), true, nil
}

// readOptions parses the parameters of get and mget.
func readOptions(q url.Values) (src sourceFilter, realtime, refresh bool, err error) {
	src, err = sourceFromParams(q)
	if err != nil {
		return src, false, false, err
	}
	for key, dst := range map[string]*bool{"realtime": &realtime, "refresh": &refresh} {
		switch v, set := q.Get(key), q.Has(key); {
		case !set:
			*dst = key == "realtime"
		case v == "" || v == "true":
			*dst = true
		case v == "false":
		default:
			return src, false, false, bad("Failed to parse value [%s] as only [true] or [false] are allowed.", v)
		}
	}
	return src, realtime, refresh, nil
}

// get serves GET /<index>/_doc/<id>.
func (f *Server) get(index, id string, q url.Values) (any, error) {
	if err := checkParams("get", q, readParams...); err != nil {
		return nil, err
	}
	src, realtime, refresh, err := readOptions(q)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ix, err := f.single(index)
	if err != nil {
		return nil, err
	}
	if refresh {
		f.refreshIndex(ix)
	}
	out, found, err := f.appendRead(nil, index, id, src, realtime)
	if err != nil {
		return nil, err
	}
	if !found {
		return statusBody{404, rawJSON(out)}, nil
	}
	return rawJSON(out), nil
}

// mget serves POST /<index>/_mget and POST /_mget, with either form of
// body: {"ids": [...]} (of the index of the path) or {"docs": [{"_index",
// "_id", "_source"}, ...]} (_index defaulting to the path's). A document
// whose index is missing has an error entry; the request does not fail.
func (f *Server) mget(index string, q url.Values, body []byte) (any, error) {
	if err := checkParams("_mget", q, readParams...); err != nil {
		return nil, err
	}
	src, realtime, refresh, err := readOptions(q)
	if err != nil {
		return nil, err
	}
	var req struct {
		IDs  []string `json:"ids"`
		Docs []struct {
			Index  string          `json:"_index"`
			ID     *string         `json:"_id"`
			Source json.RawMessage `json:"_source"`
		} `json:"docs"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, bad("fake mget: %v", err)
	}
	type want struct {
		index, id string
		src       sourceFilter
	}
	var wants []want
	var invalid []string
	for _, d := range req.Docs {
		w := want{index: cmpOr(d.Index, index), src: src}
		switch {
		case w.index == "":
			invalid = append(invalid, fmt.Sprintf("index is missing for doc %d", len(wants)))
		case d.ID == nil:
			invalid = append(invalid, fmt.Sprintf("id is missing for doc %d", len(wants)))
		default:
			w.id = *d.ID
		}
		if len(d.Source) > 0 {
			if w.src, err = parseSourceSpec(d.Source); err != nil {
				return nil, err
			}
		}
		wants = append(wants, w)
	}
	for _, id := range req.IDs {
		if index == "" {
			invalid = append(invalid, fmt.Sprintf("index is missing for doc %d", len(wants)))
		}
		wants = append(wants, want{index: index, id: id, src: src})
	}
	if len(wants) == 0 {
		invalid = append(invalid, "no documents to get")
	}
	if len(invalid) > 0 {
		return nil, validationFailed(invalid)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if refresh {
		for _, w := range wants {
			if ix, err := f.single(w.index); err == nil {
				f.refreshIndex(ix)
			}
		}
	}
	out := make([]byte, 0, 64+1024*len(wants))
	out = append(out, `{"docs":[`...)
	for i, w := range wants {
		if i > 0 {
			out = append(out, ',')
		}
		if out, _, err = f.appendRead(out, w.index, w.id, w.src, realtime); err != nil {
			return nil, err
		}
	}
	return rawJSON(append(out, "]}"...)), nil
}

// validationFailed is the 400 of a request that fails validation: its
// errors numbered in one reason.
func validationFailed(errs []string) *fakeError {
	var b strings.Builder
	b.WriteString("Validation Failed: ")
	for i, e := range errs {
		fmt.Fprintf(&b, "%d: %s;", i+1, e)
	}
	return &fakeError{status: 400, typ: "action_request_validation_exception", reason: b.String()}
}

// sourceFilter is _source filtering: off, or the fields to include (all
// when empty) and to exclude, as paths that may hold * wildcards. A path
// takes the fields under it: "contact" includes "contact.id".
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/search-fields.html#source-filtering
type sourceFilter struct {
	off                bool
	includes, excludes []string
}

// parseSourceSpec reads a _source of a request body: a boolean, a path, a
// list of paths, or {"includes": [...], "excludes": [...]}.
func parseSourceSpec(raw json.RawMessage) (sourceFilter, error) {
	var s sourceFilter
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return s, nil
	}
	var err error
	switch raw[0] {
	case 't', 'f':
		var on bool
		err = json.Unmarshal(raw, &on)
		s.off = !on
	case '"':
		var p string
		err = json.Unmarshal(raw, &p)
		s.includes = []string{p}
	case '[':
		err = json.Unmarshal(raw, &s.includes)
	case '{':
		var o struct{ Includes, Excludes []string }
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err = dec.Decode(&o)
		s.includes, s.excludes = o.Includes, o.Excludes
	default:
		err = fmt.Errorf("not a source filter")
	}
	if err != nil {
		return s, bad("fake: _source %s: %v", raw, err)
	}
	return s, nil
}

// sourceFromParams reads the _source, _source_includes and
// _source_excludes parameters of get and mget.
func sourceFromParams(q url.Values) (sourceFilter, error) {
	var s sourceFilter
	split := func(v string) []string {
		if v == "" {
			return nil
		}
		return strings.Split(v, ",")
	}
	switch v := q.Get("_source"); v {
	case "", "true":
	case "false":
		s.off = true
	default:
		s.includes = split(v)
	}
	if v := q.Get("_source_includes"); v != "" {
		s.includes = split(v)
	}
	s.excludes = split(q.Get("_source_excludes"))
	return s, nil
}

// all tells whether s keeps the whole source.
func (s sourceFilter) all() bool {
	return !s.off && len(s.includes) == 0 && len(s.excludes) == 0
}

// topLevel tells whether s only includes fields by their top-level names
// (no wildcard, no path) and excludes none: such a filter is applied to
// the source's bytes, without decoding it (the write path reads session
// documents back with _source_includes=event_refs).
func (s sourceFilter) topLevel() bool {
	if s.off || len(s.includes) == 0 || len(s.excludes) > 0 {
		return false
	}
	for _, p := range s.includes {
		if p == "" || strings.ContainsAny(p, "*.") {
			return false
		}
	}
	return true
}

// appendTopLevel writes the members of the object src that s includes, as
// they were written; an object with none of them is {}.
func (s sourceFilter) appendTopLevel(b, src []byte) ([]byte, error) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(src), jsontext.AllowDuplicateNames(true))
	fail := func(err error) ([]byte, error) {
		return nil, &fakeError{status: 500, typ: "document_parsing_exception",
			reason: fmt.Sprintf("fake: a document written without mapping checks is not a JSON object: %v", err)}
	}
	if err := readDelim(dec, '{'); err != nil {
		return fail(err)
	}
	b = append(b, '{')
	n := 0
	for dec.PeekKind() == '"' {
		k, err := dec.ReadValue()
		if err != nil {
			return fail(err)
		}
		// The name is compared before the next read, which voids k.
		name := k[1 : len(k)-1]
		if bytes.IndexByte(k, '\\') >= 0 {
			unquoted, _ := stringValue(k)
			name = []byte(unquoted)
		}
		keep := -1
		for i, p := range s.includes {
			if string(name) == p {
				keep = i
				break
			}
		}
		v, err := dec.ReadValue()
		if err != nil {
			return fail(err)
		}
		if keep < 0 {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendString(b, s.includes[keep])
		b = append(b, ':')
		b = append(b, v...)
	}
	if err := readDelim(dec, '}'); err != nil {
		return fail(err)
	}
	return append(b, '}'), nil
}

// apply returns the filtered source of doc.
func (s sourceFilter) apply(doc map[string]any) map[string]any {
	if s.all() {
		return doc
	}
	includes := s.includes
	if len(includes) == 0 {
		includes = nil // all
	}
	return filterObject(doc, "", includes, s.excludes)
}

// filterObject keeps the fields of m (at path prefix) that includes (all
// when nil) and not excludes designate.
func filterObject(m map[string]any, prefix string, includes, excludes []string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		p := prefix + k
		if matchesPath(excludes, p) {
			continue
		}
		in := includes
		if includes == nil || matchesPath(includes, p) {
			in = nil // everything under p
		} else if !mayMatchUnder(includes, p) {
			continue
		}
		if fv, ok := filterValue(v, p, in, excludes); ok {
			out[k] = fv
		}
	}
	return out
}

// filterValue filters v at path p; ok is false when nothing of it is kept.
func filterValue(v any, p string, includes, excludes []string) (any, bool) {
	switch v := v.(type) {
	case map[string]any:
		sub := filterObject(v, p+".", includes, excludes)
		return sub, includes == nil || len(sub) > 0
	case []any:
		out := make([]any, 0, len(v))
		for _, e := range v {
			if fe, ok := filterValue(e, p, includes, excludes); ok {
				out = append(out, fe)
			}
		}
		return out, includes == nil || len(out) > 0
	default:
		return v, includes == nil
	}
}

func matchesPath(patterns []string, p string) bool {
	for _, pat := range patterns {
		if globMatch(pat, p) {
			return true
		}
	}
	return false
}

// mayMatchUnder tells whether a pattern may designate a field under p.
func mayMatchUnder(patterns []string, p string) bool {
	for _, pat := range patterns {
		if strings.HasPrefix(pat, p+".") || strings.Contains(pat, "*") {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern, where * stands for any run of
// characters, dots included.
func globMatch(pattern, s string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == s
	}
	if !strings.HasPrefix(s, pattern[:star]) {
		return false
	}
	rest := pattern[star+1:]
	for i := star; i <= len(s); i++ {
		if globMatch(rest, s[i:]) {
			return true
		}
	}
	return false
}
