package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
)

// Limits of a request.
const (
	defaultLimit  = 20
	maxLimit      = 100
	maxTags       = 50
	maxChannels   = 50
	maxConditions = 20
	maxTagLen     = 128
	maxValueLen   = 4096
	maxContactLen = 256
	maxQueryLen   = 1000
)

// Export formats.
const (
	formatJSONL = "jsonl"
	formatCSV   = "csv"
)

// The query parameters each route accepts; anything else is a 400, so a
// misspelt filter (channels=webchat) never silently widens a report.
var (
	filterParams = []string{"from", "to", "session", "protocol", "tag", "tag_mode", "info", "channel", "contact", "handed_off", "q"}
	listParams   = append(slices.Clip(filterParams), "limit", "cursor")
	exportParams = append(slices.Clip(filterParams), "format")
	facetParams  = []string{"from", "to"}
	// queryParams are the query parameters of each route ("METHOD path"
	// as Gin routes it); routes not listed take none.
	queryParams = map[string][]string{
		"GET /api/v1/sessions": listParams,
		"GET /api/v1/export":   exportParams,
		"GET /api/v1/facets":   facetParams,
	}
	// searchFields are the fields of the POST /sessions/search body.
	searchFields = []string{"from", "to", "session", "protocol", "tags", "tag_mode", "info", "channels", "contact", "handed_off", "q", "limit", "cursor"}
	// conditionFields are the fields of one info condition in a JSON body.
	conditionFields = []string{"key", "op", "value"}
	// repeatable query parameters.
	repeatable = []string{"tag", "info", "channel"}
)

// source is where a request's filter came from, so errors name what the
// client sent: a query parameter (tag) or a JSON field (tags[2]).
type source int

const (
	fromQuery source = iota
	fromJSON
)

// filterInput is a report request as sent, decoded from query parameters or
// a JSON body but not validated: parser.validate is the one validation path
// of both. Nil means absent.
type filterInput struct {
	src                                  source
	from, to, session, protocol, tagMode *string
	contact, q, cursor, format           *string
	tags, channels                       []string
	info                                 []conditionInput
	handedOff                            *bool
	limit                                *int
	// badInterval: from or to was sent but not as a string; the interval
	// is not checked further.
	badInterval bool
}

// conditionInput is one info condition as sent.
type conditionInput struct {
	key, op, value string
	// text is the condition as a query parameter (KEY:OP:VALUE).
	text string
	// pos is the condition's place among the info values sent, which
	// errors report as their index.
	pos int
}

// name is what errors call the i-th element (i < 0: the whole list) of the
// list field ("tags", "channels", "info").
func (in *filterInput) name(field string, i int) string {
	if in.src == fromQuery {
		switch field {
		case "tags":
			return "tag"
		case "channels":
			return "channel"
		}
		return field
	}
	if i < 0 {
		return field
	}
	return fmt.Sprintf("%s[%d]", field, i)
}

// conditionName names a part ("key", "op", "value") of the i-th condition.
func (in *filterInput) conditionName(i int, part string) string {
	if in.src == fromQuery {
		return "info"
	}
	return fmt.Sprintf("info[%d].%s", i, part)
}

// parser turns request input into the neutral filter, collecting every error
// rather than stopping at the first.
type parser struct {
	loc    *time.Location
	now    time.Time
	cursor *report.CursorCodec
	errs   []ParamError
}

// paramOrder is the order errors are listed in: unknown parameters first,
// then the documented ones in the order of the documentation.
var paramOrder = []string{
	"body", "id", "from", "to", "session", "protocol", "tag", "tags", "tag_mode", "info", "channel", "channels",
	"contact", "handed_off", "q", "limit", "cursor", "format",
}

// sorted returns the errors in paramOrder, keeping the order of errors of one
// parameter (tags[0] before tags[3]).
func (p *parser) sorted() []ParamError {
	rank := func(e ParamError) int {
		base, _, _ := strings.Cut(e.Param, "[")
		base, _, _ = strings.Cut(base, ".")
		return slices.Index(paramOrder, base) // unknown: -1, first
	}
	out := slices.Clone(p.errs)
	slices.SortStableFunc(out, func(a, b ParamError) int { return rank(a) - rank(b) })
	return out
}

// decodeQuery reads the parameters of q that allowed lists.
func (p *parser) decodeQuery(q url.Values, allowed []string) filterInput {
	in := filterInput{src: fromQuery}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		switch {
		case !slices.Contains(allowed, k):
			if len(allowed) == 0 {
				p.reject(k, CodeUnknownParameter, "unknown parameter; this route takes none")
			} else {
				p.reject(k, CodeUnknownParameter, "unknown parameter; this route takes %s", strings.Join(allowed, ", "))
			}
		case len(q[k]) > 1 && !slices.Contains(repeatable, k):
			p.reject(k, CodeRepeated, "given %d times; give it once", len(q[k]))
		}
	}
	one := func(k string) *string {
		if !q.Has(k) || !slices.Contains(allowed, k) {
			return nil
		}
		v := q.Get(k)
		return &v
	}
	many := func(k string) []string {
		if !slices.Contains(allowed, k) {
			return nil
		}
		return q[k]
	}
	in.from, in.to = one("from"), one("to")
	in.session, in.protocol = one("session"), one("protocol")
	in.tags, in.channels = many("tag"), many("channel")
	in.tagMode = one("tag_mode")
	in.contact, in.q, in.cursor = one("contact"), one("q"), one("cursor")
	in.format = one("format")
	for i, s := range many("info") {
		key, rest, ok := strings.Cut(s, ":")
		if !ok {
			p.add(ParamError{Param: "info", Code: CodeInvalidCondition, Index: index(i)}, "%q: expected KEY:OP:VALUE, or KEY:OP for exists and not_exists", s)
			continue
		}
		// The value is everything after the second colon: it may hold colons.
		op, value, _ := strings.Cut(rest, ":")
		in.info = append(in.info, conditionInput{key: key, op: op, value: value, text: s, pos: i})
	}
	if h := one("handed_off"); h != nil {
		switch *h {
		case "true", "false":
			v := *h == "true"
			in.handedOff = &v
		default:
			p.reject("handed_off", CodeInvalidBoolean, "must be true or false")
		}
	}
	if l := one("limit"); l != nil {
		n, err := strconv.Atoi(*l)
		if err != nil {
			p.add(ParamError{Param: "limit", Code: CodeInvalidLimit, Limit: maxLimit}, "must be a whole number from 1 to %d", maxLimit)
		} else {
			in.limit = &n
		}
	}
	return in
}

// decodeJSON reads the body of POST /sessions/search: an object with the
// fields searchFields lists. Unknown fields are errors; null is absent.
func (p *parser) decodeJSON(body []byte) filterInput {
	in := filterInput{src: fromJSON}
	if len(bytes.TrimSpace(body)) == 0 {
		return in // no body: no filter, like GET without parameters
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		p.reject("body", CodeInvalidBody, "must be a JSON object with the filter's fields (%s)", strings.Join(searchFields, ", "))
		return in
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !slices.Contains(searchFields, k) {
			p.reject(k, CodeUnknownParameter, "unknown field; the fields are %s", strings.Join(searchFields, ", "))
		}
	}
	present := func(k string) (json.RawMessage, bool) {
		raw, ok := fields[k]
		if !ok || string(raw) == "null" {
			return nil, false
		}
		return raw, true
	}
	str := func(k string) *string {
		raw, ok := present(k)
		if !ok {
			return nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			p.reject(k, CodeInvalidType, "must be a string")
			return nil
		}
		return &s
	}
	strs := func(k string) []string {
		raw, ok := present(k)
		if !ok {
			return nil
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			p.reject(k, CodeInvalidType, "must be an array of strings")
			return nil
		}
		out := make([]string, 0, len(items))
		for i, item := range items {
			var s string
			if err := json.Unmarshal(item, &s); err != nil {
				p.add(ParamError{Param: fmt.Sprintf("%s[%d]", k, i), Code: CodeInvalidType, Index: index(i)}, "must be a string")
				continue
			}
			out = append(out, s)
		}
		return out
	}
	in.from, in.to = str("from"), str("to")
	_, hasFrom := present("from")
	_, hasTo := present("to")
	in.badInterval = hasFrom && in.from == nil || hasTo && in.to == nil
	in.session, in.protocol = str("session"), str("protocol")
	in.tags = strs("tags")
	in.tagMode = str("tag_mode")
	in.channels = strs("channels")
	in.contact, in.q, in.cursor = str("contact"), str("q"), str("cursor")
	if raw, ok := present("info"); ok {
		in.info = p.jsonConditions(raw)
	}
	if raw, ok := present("handed_off"); ok {
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			p.reject("handed_off", CodeInvalidBoolean, "must be true or false")
		} else {
			in.handedOff = &b
		}
	}
	if raw, ok := present("limit"); ok {
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			p.add(ParamError{Param: "limit", Code: CodeInvalidLimit, Limit: maxLimit}, "must be a whole number from 1 to %d", maxLimit)
		} else {
			in.limit = &n
		}
	}
	return in
}

// jsonConditions reads info: an array of {key, op, value} objects. A value
// may be a string, number or boolean, like the info events' values.
func (p *parser) jsonConditions(raw json.RawMessage) []conditionInput {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		p.reject("info", CodeInvalidType, "must be an array of conditions {key, op, value}")
		return nil
	}
	out := make([]conditionInput, 0, len(items))
	for i, item := range items {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(item, &obj); err != nil || obj == nil {
			p.add(ParamError{Param: fmt.Sprintf("info[%d]", i), Code: CodeInvalidCondition, Index: index(i)}, "must be an object {key, op, value}")
			continue
		}
		c := conditionInput{pos: i}
		ok := true
		for _, k := range sortedKeys(obj) {
			if !slices.Contains(conditionFields, k) {
				p.add(ParamError{Param: fmt.Sprintf("info[%d].%s", i, k), Code: CodeUnknownParameter, Index: index(i)}, "unknown field; a condition has key, op and value")
				ok = false
			}
		}
		for _, part := range []struct {
			name string
			into *string
		}{{"key", &c.key}, {"op", &c.op}} {
			v, has := obj[part.name]
			if !has || string(v) == "null" {
				continue // validate reports it missing
			}
			if err := json.Unmarshal(v, part.into); err != nil {
				p.add(ParamError{Param: fmt.Sprintf("info[%d].%s", i, part.name), Code: CodeInvalidType, Index: index(i)}, "must be a string")
				ok = false
			}
		}
		if v, has := obj["value"]; has && string(v) != "null" {
			value, valid := scalar(v)
			if !valid {
				p.add(ParamError{Param: fmt.Sprintf("info[%d].value", i), Code: CodeInvalidType, Index: index(i)}, "must be a string, number or boolean")
				ok = false
			}
			c.value = value
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// scalar is the string form of a JSON string, number or boolean.
func scalar(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), true
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return strconv.FormatBool(b), true
	}
	return "", false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// validate checks a request's filter and page: the one validation path of
// GET parameters and POST bodies.
func (p *parser) validate(in *filterInput) (report.Filter, report.Page) {
	var f report.Filter
	if !in.badInterval {
		f.From, f.To = p.interval(in.from, in.to)
	}
	if in.session != nil {
		if !event.IsUUID(*in.session) {
			p.reject("session", CodeInvalidSessionID, "must be a session id (UUID), e.g. c639c747-4637-4ff5-99c0-9f0e86d3c21b")
		}
		f.SessionID = strings.ToLower(*in.session)
	}
	if in.protocol != nil {
		if !event.IsProtocol(*in.protocol) {
			p.reject("protocol", CodeInvalidProtocol, "must be 17 digits starting with a date YYYYMMDD, e.g. 20251007092633646")
		}
		f.Protocol = *in.protocol
	}
	if len(in.tags) > maxTags {
		p.add(ParamError{Param: in.name("tags", -1), Code: CodeTooMany, Limit: maxTags}, "at most %d tags", maxTags)
	}
	for i, t := range in.tags {
		switch {
		case strings.TrimSpace(t) == "":
			p.add(ParamError{Param: in.name("tags", i), Code: CodeEmpty, Index: index(i)}, "must not be empty")
		case len(t) > maxTagLen || !utf8.ValidString(t):
			p.add(ParamError{Param: in.name("tags", i), Code: CodeTooLong, Index: index(i), Limit: maxTagLen}, "must be at most %d bytes of UTF-8", maxTagLen)
		case hasControl(t):
			p.add(ParamError{Param: in.name("tags", i), Code: CodeControlCharacter, Index: index(i)}, noControl)
		default:
			f.Tags = append(f.Tags, t)
		}
	}
	f.TagMode = report.TagsAny
	if in.tagMode != nil {
		switch m := report.TagMode(*in.tagMode); m {
		case report.TagsAny, report.TagsAll:
			f.TagMode = m
		default:
			p.reject("tag_mode", CodeInvalidTagMode, "must be any or all")
		}
	}
	if len(in.info) > maxConditions {
		p.add(ParamError{Param: in.name("info", -1), Code: CodeTooMany, Limit: maxConditions}, "at most %d conditions", maxConditions)
	}
	for _, c := range in.info {
		if cond, ok := p.condition(in, c); ok {
			f.Info = append(f.Info, cond)
		}
	}
	if len(in.channels) > maxChannels {
		p.add(ParamError{Param: in.name("channels", -1), Code: CodeTooMany, Limit: maxChannels}, "at most %d channels", maxChannels)
	}
	for i, c := range in.channels {
		if !event.IsToken(c, 32, false) {
			p.add(ParamError{Param: in.name("channels", i), Code: CodeInvalidChannel, Index: index(i)}, "%q is not a channel (a lowercase token such as whatsapp)", c)
			continue
		}
		f.Channels = append(f.Channels, c)
	}
	if in.contact != nil {
		c := strings.TrimSpace(*in.contact)
		switch {
		case c == "":
			p.reject("contact", CodeEmpty, "must not be empty: a contact id, a phone number or part of a name")
		case len(c) > maxContactLen || !utf8.ValidString(c):
			p.add(ParamError{Param: "contact", Code: CodeTooLong, Limit: maxContactLen}, "must be at most %d bytes of UTF-8", maxContactLen)
		case hasControl(c):
			p.reject("contact", CodeControlCharacter, noControl)
		}
		f.Contact = c
	}
	f.HandedOff = in.handedOff
	if in.q != nil {
		q := strings.TrimSpace(*in.q)
		switch {
		case q == "":
			p.reject("q", CodeEmpty, "must not be empty")
		case len(q) > maxQueryLen || !utf8.ValidString(q):
			p.add(ParamError{Param: "q", Code: CodeTooLong, Limit: maxQueryLen}, "must be at most %d bytes of UTF-8", maxQueryLen)
		case hasControl(q):
			p.reject("q", CodeControlCharacter, noControl)
		case len(report.Words(q)) == 0:
			p.reject("q", CodeNoWord, "must have a word (letters or digits)")
		}
		f.Query = q
	}
	page := report.Page{Limit: defaultLimit}
	if in.limit != nil {
		if *in.limit < 1 || *in.limit > maxLimit {
			p.add(ParamError{Param: "limit", Code: CodeInvalidLimit, Limit: maxLimit}, "must be a whole number from 1 to %d", maxLimit)
		} else {
			page.Limit = *in.limit
		}
	}
	if in.cursor != nil {
		cur, err := p.cursor.Decode(*in.cursor)
		if err != nil {
			p.reject("cursor", CodeInvalidCursor, "is not a cursor this API issued; use next_cursor of a previous page")
		} else {
			page.After = &cur
		}
	}
	return f, page
}

// condition checks one info condition.
func (p *parser) condition(in *filterInput, ci conditionInput) (report.Condition, bool) {
	c := report.Condition{Key: ci.key, Op: report.Op(ci.op), Value: ci.value}
	quoted := func() string {
		if in.src == fromQuery {
			return fmt.Sprintf("%q: ", ci.text)
		}
		return ""
	}
	bad := func(part string, code ErrorCode, format string, args ...any) {
		p.add(ParamError{Param: in.conditionName(ci.pos, part), Code: code, Index: index(ci.pos)}, format, args...)
	}
	ok := true
	if !event.IsInfoKey(c.Key) {
		bad("key", CodeInvalidInfoKey, "%s%q is not an information key ([A-Za-z0-9_.-], 1 to 128 characters)", quoted(), c.Key)
		ok = false
	}
	switch {
	case !c.Op.Valid():
		bad("op", CodeUnknownOperation, "%sunknown operation %q; use one of %s", quoted(), c.Op, opList())
		ok = false
	case c.Op.TakesValue() && c.Value == "":
		if in.src == fromQuery {
			bad("value", CodeValueRequired, "%s%s needs a value: KEY:%s:VALUE", quoted(), c.Op, c.Op)
		} else {
			bad("value", CodeValueRequired, "%s needs a value", c.Op)
		}
		ok = false
	case !c.Op.TakesValue() && c.Value != "":
		if in.src == fromQuery {
			bad("value", CodeValueNotAllowed, "%s%s takes no value: KEY:%s", quoted(), c.Op, c.Op)
		} else {
			bad("value", CodeValueNotAllowed, "%s takes no value", c.Op)
		}
		ok = false
	case len(c.Value) > maxValueLen || !utf8.ValidString(c.Value):
		p.add(ParamError{Param: in.conditionName(ci.pos, "value"), Code: CodeTooLong, Index: index(ci.pos), Limit: maxValueLen},
			"%smust be at most %d bytes of UTF-8", quoted(), maxValueLen)
		ok = false
	case hasControl(c.Value):
		bad("value", CodeControlCharacter, "%s%s", quoted(), noControl)
		ok = false
	}
	return c, ok
}

func opList() string {
	names := make([]string, len(report.Ops))
	for i, o := range report.Ops {
		names[i] = string(o)
	}
	return strings.Join(names, ", ")
}

// exportFormat checks the export format; jsonl when absent.
func (p *parser) exportFormat(in *filterInput) string {
	if in.format == nil {
		return formatJSONL
	}
	switch *in.format {
	case formatJSONL, formatCSV:
		return *in.format
	}
	p.reject("format", CodeInvalidFormat, "must be jsonl or csv")
	return ""
}
