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

	"github.com/chatreport/chatreport/internal/report"
)

// Export formats.
const (
	formatJSONL = "jsonl"
	formatCSV   = "csv"
)

// The query parameters each route accepts; anything else is a 400, so a
// misspelt filter (channels=webchat) never silently widens a report.
var (
	filterParams = []string{"from", "to", "session", "protocol", "tag", "tag_mode", "info", "channel", "contact", "handed_off",
		"outcome", "agent", "queue", "q"}
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
	searchFields = []string{"from", "to", "session", "protocol", "tags", "tag_mode", "info", "channels", "contact", "handed_off",
		"outcomes", "agents", "queues", "q", "limit", "cursor"}
	// conditionFields are the fields of one info condition in a JSON body.
	conditionFields = []string{"key", "op", "value"}
	// repeatable query parameters.
	repeatable = []string{"tag", "info", "channel", "outcome", "agent", "queue"}
)

// source is where a request's filter came from, so errors name what the
// client sent: a query parameter (tag) or a JSON field (tags[2]).
type source int

const (
	fromQuery source = iota
	fromJSON
)

// request is a report request as sent, decoded from query parameters or a
// JSON body but not checked: report.ParseFilter and report.ParsePage check
// both forms, and fieldErrors names their errors as the client sent them.
type request struct {
	src    source
	filter report.Input
	format *string
	// infoText are the info values of a query string (KEY:OP:VALUE) by
	// position, which the query form's messages quote.
	infoText []string
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
	"contact", "handed_off", "outcome", "outcomes", "agent", "agents", "queue", "queues", "q", "limit", "cursor", "format",
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
func (p *parser) decodeQuery(q url.Values, allowed []string) request {
	r := request{src: fromQuery}
	for _, k := range sortedKeys(q) {
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
	in := &r.filter
	in.From, in.To = one("from"), one("to")
	in.Session, in.Protocol = one("session"), one("protocol")
	in.Tags, in.TagMode = many("tag"), one("tag_mode")
	in.Channels = many("channel")
	in.Outcomes, in.Agents, in.Queues = many("outcome"), many("agent"), many("queue")
	in.Contact, in.HandedOff, in.Query = one("contact"), one("handed_off"), one("q")
	in.Limit, in.Cursor = one("limit"), one("cursor")
	r.format = one("format")
	r.infoText = many("info")
	for i, s := range r.infoText {
		key, rest, ok := strings.Cut(s, ":")
		if !ok {
			p.add(ParamError{Param: "info", Code: CodeInvalidCondition, Index: index(i)}, "%q: expected KEY:OP:VALUE, or KEY:OP for exists and not_exists", s)
			continue
		}
		// The value is everything after the second colon: it may hold colons.
		op, value, _ := strings.Cut(rest, ":")
		in.Info = append(in.Info, report.ConditionInput{Key: key, Op: op, Value: value, Pos: i})
	}
	return r
}

// decodeJSON reads the body of POST /sessions/search: an object with the
// fields searchFields lists. Unknown fields are errors; null is absent.
func (p *parser) decodeJSON(body []byte) request {
	r := request{src: fromJSON}
	if len(bytes.TrimSpace(body)) == 0 {
		return r // no body: no filter, like GET without parameters
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		p.reject("body", CodeInvalidBody, "must be a JSON object with the filter's fields (%s)", strings.Join(searchFields, ", "))
		return r
	}
	for _, k := range sortedKeys(fields) {
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
	// strs keeps an element that is not a string as "", so that the
	// others keep their index; its error is already recorded.
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
		out := make([]string, len(items))
		for i, item := range items {
			if err := json.Unmarshal(item, &out[i]); err != nil {
				p.add(ParamError{Param: fmt.Sprintf("%s[%d]", k, i), Code: CodeInvalidType, Index: index(i)}, "must be a string")
			}
		}
		return out
	}
	// token is a value's JSON text as written, which report parses.
	token := func(k string) *string {
		raw, ok := present(k)
		if !ok {
			return nil
		}
		s := string(raw)
		return &s
	}
	in := &r.filter
	in.From, in.To = str("from"), str("to")
	in.Session, in.Protocol = str("session"), str("protocol")
	in.Tags, in.TagMode = strs("tags"), str("tag_mode")
	in.Channels = strs("channels")
	in.Outcomes, in.Agents, in.Queues = strs("outcomes"), strs("agents"), strs("queues")
	in.Contact, in.HandedOff, in.Query = str("contact"), token("handed_off"), str("q")
	in.Limit, in.Cursor = token("limit"), str("cursor")
	if raw, ok := present("info"); ok {
		in.Info = p.jsonConditions(raw)
	}
	return r
}

// jsonConditions reads info: an array of {key, op, value} objects. A value
// may be a string, number or boolean, like the info events' values.
func (p *parser) jsonConditions(raw json.RawMessage) []report.ConditionInput {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		p.reject("info", CodeInvalidType, "must be an array of conditions {key, op, value}")
		return nil
	}
	out := make([]report.ConditionInput, 0, len(items))
	for i, item := range items {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(item, &obj); err != nil || obj == nil {
			p.add(ParamError{Param: fmt.Sprintf("info[%d]", i), Code: CodeInvalidCondition, Index: index(i)}, "must be an object {key, op, value}")
			continue
		}
		c := report.ConditionInput{Pos: i}
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
		}{{"key", &c.Key}, {"op", &c.Op}} {
			v, has := obj[part.name]
			if !has || string(v) == "null" {
				continue // report says it is missing
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
			c.Value = value
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

// validate checks a request's filter and page: report's rules, for GET
// parameters and POST bodies alike.
func (p *parser) validate(r *request) (report.Filter, report.Page) {
	f, ferrs := report.ParseFilter(&r.filter, p.loc, p.now)
	page, perrs := report.ParsePage(&r.filter, p.cursor)
	p.fieldErrors(r, append(ferrs, perrs...))
	return f, page
}

// queryNames are the query parameters of the list fields, which repeat
// under a singular name.
var queryNames = map[string]string{report.FieldTags: "tag", report.FieldChannels: "channel",
	report.FieldOutcomes: "outcome", report.FieldAgents: "agent", report.FieldQueues: "queue"}

// fieldErrors records report's errors, each named as the client sent the
// value: the query parameter (tag, info) or the JSON field (tags[1],
// info[0].op). A value the decoder could not read has its error already;
// the rules say no more about it.
func (p *parser) fieldErrors(r *request, errs []report.FieldError) {
	unread := make(map[string]bool, len(p.errs))
	key := func(e ParamError) string {
		if e.Index == nil {
			return e.Param
		}
		return fmt.Sprintf("%s#%d", e.Param, *e.Index)
	}
	for _, e := range p.errs {
		unread[key(e)] = true
	}
	for _, fe := range errs {
		e := ParamError{Param: fe.Field, Code: ErrorCode(fe.Code), Limit: fe.Limit, Message: fe.Message}
		if fe.Index >= 0 {
			e.Index = index(fe.Index)
		}
		switch {
		case r.src == fromQuery && fe.Field == report.FieldInfo && fe.Index >= 0:
			e.Message = r.conditionMessage(fe)
		case r.src == fromQuery:
			if name, ok := queryNames[fe.Field]; ok {
				e.Param = name
			}
		case fe.Part != "":
			e.Param = fmt.Sprintf("%s[%d].%s", fe.Field, fe.Index, fe.Part)
		case fe.Index >= 0:
			e.Param = fmt.Sprintf("%s[%d]", fe.Field, fe.Index)
		}
		if !unread[key(e)] {
			p.errs = append(p.errs, e)
		}
	}
}

// conditionMessage quotes the info value of the query string an error is
// about, and shows the form its operation takes.
func (r *request) conditionMessage(fe report.FieldError) string {
	var op string
	for _, c := range r.filter.Info {
		if c.Pos == fe.Index {
			op = c.Op
		}
	}
	msg := fmt.Sprintf("%q: %s", r.infoText[fe.Index], fe.Message)
	switch fe.Code {
	case report.CodeValueRequired:
		msg += fmt.Sprintf(": KEY:%s:VALUE", op)
	case report.CodeValueNotAllowed:
		msg += ": KEY:" + op
	}
	return msg
}

// exportFormat checks the export format; jsonl when absent.
func (p *parser) exportFormat(r *request) string {
	if r.format == nil {
		return formatJSONL
	}
	switch *r.format {
	case formatJSONL, formatCSV:
		return *r.format
	}
	p.reject("format", CodeInvalidFormat, "must be jsonl or csv")
	return ""
}
