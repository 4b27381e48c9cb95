package report

import (
	"strconv"
	"strings"
	"time"
)

// Input is the filter and page of a report request as the client sent them,
// before any check: what the API decodes from a query string or a JSON body.
// Nil (or an empty list) means absent. ParseFilter and ParsePage are the one
// place that checks it.
//
// A new filter field is a field here, its rule in rules.go, a line in
// ParseFilter (and Filter.Validate), and one line in each of the API's two
// decoders.
type Input struct {
	// From and To are RFC 3339 instants or dates YYYY-MM-DD.
	From, To          *string
	Session, Protocol *string
	Tags              []string
	TagMode           *string
	Info              []ConditionInput
	Channels          []string
	Contact           *string
	// HandedOff and Limit are the values' text: a query parameter's
	// value, or the JSON token as written (so the JSON string "true" is
	// not the boolean true, and "20" is not the number 20).
	HandedOff *string
	Outcomes  []string
	Agents    []string
	Queues    []string
	Query     *string
	Limit     *string
	Cursor    *string
}

// ConditionInput is one info condition as sent.
type ConditionInput struct {
	Key, Op, Value string
	// Pos is the condition's place among the conditions sent, counting
	// those that could not be read at all; errors report it as their
	// index.
	Pos int
}

// ParseFilter checks in's filter fields and returns the filter they make,
// with every rule they break. The filter is meaningful only without errors.
// Dates are days in loc; without from and to, the filter covers the
// MaxInterval up to now.
func ParseFilter(in *Input, loc *time.Location, now time.Time) (Filter, []FieldError) {
	es := fieldErrors{limits: true}
	f := Filter{TagMode: TagsAny}
	f.From, f.To = es.parseInterval(in.From, in.To, loc, now)
	if in.Session != nil {
		es.sessionID(*in.Session)
		f.SessionID = strings.ToLower(*in.Session)
	}
	if in.Protocol != nil {
		es.protocol(*in.Protocol)
		f.Protocol = *in.Protocol
	}
	if len(in.Tags) > 0 {
		es.tags(in.Tags)
		f.Tags = in.Tags
	}
	if in.TagMode != nil {
		f.TagMode = TagMode(*in.TagMode)
		es.tagMode(f.TagMode)
	}
	if len(in.Info) > 0 {
		pos := make([]int, len(in.Info))
		f.Info = make([]Condition, len(in.Info))
		for i, c := range in.Info {
			f.Info[i] = Condition{Key: c.Key, Op: Op(c.Op), Value: c.Value}
			pos[i] = c.Pos
		}
		es.conditions(f.Info, pos)
	}
	if len(in.Channels) > 0 {
		es.channels(in.Channels)
		f.Channels = in.Channels
	}
	if in.Contact != nil {
		f.Contact = strings.TrimSpace(*in.Contact)
		es.contact(f.Contact)
	}
	if in.HandedOff != nil {
		switch *in.HandedOff {
		case "true", "false":
			v := *in.HandedOff == "true"
			f.HandedOff = &v
		default:
			es.field(FieldHandedOff, CodeInvalidBoolean, 0, "must be true or false")
		}
	}
	if len(in.Outcomes) > 0 {
		es.outcomes(in.Outcomes)
		f.Outcomes = in.Outcomes
	}
	if len(in.Agents) > 0 {
		es.names(FieldAgents, in.Agents)
		f.Agents = in.Agents
	}
	if len(in.Queues) > 0 {
		es.names(FieldQueues, in.Queues)
		f.Queues = in.Queues
	}
	if in.Query != nil {
		f.Query = strings.TrimSpace(*in.Query)
		es.query(f.Query)
	}
	f.Now = now
	return f, es.errs
}

// ParsePage checks in's page fields: DefaultPageLimit sessions from the
// start when absent; a cursor must be one codec issued.
func ParsePage(in *Input, codec *CursorCodec) (Page, []FieldError) {
	es := fieldErrors{limits: true}
	p := Page{Limit: DefaultPageLimit}
	if in.Limit != nil {
		n, err := strconv.Atoi(*in.Limit)
		es.pageLimit(n, err == nil)
		p.Limit = n
	}
	if in.Cursor != nil {
		cur, err := codec.Decode(*in.Cursor)
		if err != nil {
			es.field(FieldCursor, CodeInvalidCursor, 0, "is not a cursor this API issued; use next_cursor of a previous page")
		} else {
			p.After = &cur
		}
	}
	return p, es.errs
}

// parseInterval reads from and to: RFC 3339, or dates in loc (a date to
// includes that whole day). Neither means the MaxInterval up to now.
func (es *fieldErrors) parseInterval(from, to *string, loc *time.Location, now time.Time) (time.Time, time.Time) {
	if from == nil && to == nil {
		return now.Add(-MaxInterval), now
	}
	if (from == nil) != (to == nil) {
		missing := FieldTo
		if from == nil {
			missing = FieldFrom
		}
		es.field(missing, CodeIncompleteRange, 0, "from and to go together: give both or neither")
		return time.Time{}, time.Time{}
	}
	f, fromDate, okF := es.instant(FieldFrom, *from, loc, false)
	t, _, okT := es.instant(FieldTo, *to, loc, true)
	if !okF || !okT {
		return f, t
	}
	// The days are calendar days when from is a date, so that a month
	// across a daylight-saving change still fits.
	limit := f.Add(MaxInterval)
	if fromDate {
		limit = f.In(loc).AddDate(0, 0, MaxIntervalDays)
	}
	es.interval(f, t, limit)
	return f, t
}

// instant parses one bound; isDate reports a date without a time.
func (es *fieldErrors) instant(field, s string, loc *time.Location, endOfDay bool) (t time.Time, isDate, ok bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), false, true
	}
	d, err := time.ParseInLocation(time.DateOnly, s, loc)
	if err != nil {
		es.field(field, CodeInvalidTime, 0, "must be RFC 3339 (2025-10-07T09:26:33-03:00) or a date (2025-10-07)")
		return time.Time{}, false, false
	}
	if endOfDay {
		d = d.AddDate(0, 0, 1)
	}
	return d.UTC(), true, true
}
