package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
)

// ParamError is one invalid request parameter.
type ParamError struct {
	Param   string `json:"param"`
	Message string `json:"message"`
}

// Paging limits of the list.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// query is the parsed list request: the filter and the page.
type query struct {
	filter report.Filter
	page   report.Page
}

// parser turns request parameters into the neutral filter, collecting every
// error rather than stopping at the first.
type parser struct {
	loc    *time.Location
	now    time.Time
	cursor *report.CursorCodec
	errs   []ParamError
}

func (p *parser) fail(param, format string, args ...any) {
	p.errs = append(p.errs, ParamError{Param: param, Message: fmt.Sprintf(format, args...)})
}

// parseQuery reads the list parameters of q.
func (p *parser) parseQuery(q url.Values) query {
	var out query
	f := &out.filter
	f.From, f.To = p.interval(q.Get("from"), q.Get("to"), q.Has("from"), q.Has("to"))
	if s := q.Get("session"); q.Has("session") {
		if !event.IsUUID(s) {
			p.fail("session", "must be a session id (UUID), e.g. c639c747-4637-4ff5-99c0-9f0e86d3c21b")
		}
		f.SessionID = strings.ToLower(s)
	}
	if s := q.Get("protocol"); q.Has("protocol") {
		if !event.IsProtocol(s) {
			p.fail("protocol", "must be 17 digits starting with a date YYYYMMDD, e.g. 20251007092633646")
		}
		f.Protocol = s
	}
	for _, t := range q["tag"] {
		if strings.TrimSpace(t) == "" {
			p.fail("tag", "must not be empty")
			continue
		}
		f.Tags = append(f.Tags, t)
	}
	f.TagMode = report.TagsAny
	if m := q.Get("tag_mode"); q.Has("tag_mode") {
		switch report.TagMode(m) {
		case report.TagsAny, report.TagsAll:
			f.TagMode = report.TagMode(m)
		default:
			p.fail("tag_mode", "must be any or all")
		}
	}
	for _, c := range q["info"] {
		if cond, ok := p.condition(c); ok {
			f.Info = append(f.Info, cond)
		}
	}
	for _, c := range q["channel"] {
		if !event.IsToken(c, 32, false) {
			p.fail("channel", "%q is not a channel (a lowercase token such as whatsapp)", c)
			continue
		}
		f.Channels = append(f.Channels, c)
	}
	if c := q.Get("contact"); q.Has("contact") {
		if strings.TrimSpace(c) == "" {
			p.fail("contact", "must not be empty")
		}
		f.Contact = strings.TrimSpace(c)
	}
	if h := q.Get("handed_off"); q.Has("handed_off") {
		switch h {
		case "true", "false":
			v := h == "true"
			f.HandedOff = &v
		default:
			p.fail("handed_off", "must be true or false")
		}
	}
	f.Query = strings.TrimSpace(q.Get("q"))
	out.page.Limit = defaultLimit
	if l := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			p.fail("limit", "must be a whole number from 1 to %d", maxLimit)
		} else {
			out.page.Limit = n
		}
	}
	if c := q.Get("cursor"); q.Has("cursor") {
		cur, err := p.cursor.Decode(c)
		if err != nil {
			p.fail("cursor", "is not a cursor this API issued; use next_cursor of a previous page")
		} else {
			out.page.After = &cur
		}
	}
	return out
}

// condition parses KEY:OP:VALUE, or KEY:OP for exists and not_exists.
func (p *parser) condition(s string) (report.Condition, bool) {
	key, rest, ok := strings.Cut(s, ":")
	if !ok {
		p.fail("info", "%q: expected KEY:OP:VALUE or KEY:OP", s)
		return report.Condition{}, false
	}
	opText, value, hasValue := strings.Cut(rest, ":")
	c := report.Condition{Key: key, Op: report.Op(opText), Value: value}
	return c, p.checkCondition(c, hasValue)
}

func (p *parser) checkCondition(c report.Condition, hasValue bool) bool {
	ok := true
	if !event.IsInfoKey(c.Key) {
		p.fail("info", "%q is not an information key ([A-Za-z0-9_.-], 1 to 128 characters)", c.Key)
		ok = false
	}
	switch {
	case !c.Op.Valid():
		p.fail("info", "unknown operation %q; use one of %s", c.Op, opList())
		ok = false
	case c.Op.TakesValue() && (!hasValue || c.Value == ""):
		p.fail("info", "%s needs a value: %s:%s:VALUE", c.Op, c.Key, c.Op)
		ok = false
	case !c.Op.TakesValue() && hasValue:
		p.fail("info", "%s takes no value: %s:%s", c.Op, c.Key, c.Op)
		ok = false
	}
	return ok
}

func opList() string {
	names := make([]string, len(report.Ops))
	for i, o := range report.Ops {
		names[i] = string(o)
	}
	return strings.Join(names, ", ")
}

// interval parses from/to: RFC 3339, or a date in the report time zone (a date
// "to" includes that whole day). Neither means the last 31 days up to now.
func (p *parser) interval(from, to string, hasFrom, hasTo bool) (time.Time, time.Time) {
	if !hasFrom && !hasTo {
		return p.now.Add(-report.MaxInterval), p.now
	}
	if hasFrom != hasTo {
		missing := "to"
		if !hasFrom {
			missing = "from"
		}
		p.fail(missing, "from and to go together: give both or neither")
		return time.Time{}, time.Time{}
	}
	f, okF := p.instant("from", from, false)
	t, okT := p.instant("to", to, true)
	if !okF || !okT {
		return f, t
	}
	switch {
	case !t.After(f):
		p.fail("to", "must be after from")
	case t.Sub(f) > report.MaxInterval:
		p.fail("to", "the interval may not exceed 31 days")
	}
	return f, t
}

func (p *parser) instant(param, s string, endOfDay bool) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	d, err := time.ParseInLocation(time.DateOnly, s, p.loc)
	if err != nil {
		p.fail(param, "must be RFC 3339 (2025-10-07T09:26:33-03:00) or a date (2025-10-07)")
		return time.Time{}, false
	}
	if endOfDay {
		d = d.AddDate(0, 0, 1)
	}
	return d.UTC(), true
}
