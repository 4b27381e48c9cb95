package api

import (
	"strings"
	"time"
	"unicode"

	"github.com/chatreport/chatreport/internal/report"
)

// noControl is the error of a text with a control character.
const noControl = "must not contain control characters (U+0000 to U+001F, U+007F to U+009F) other than tab, line and page breaks"

// hasControl reports whether s has a control character other than white
// space (tab, line feed, vertical tab, form feed, carriage return, U+0085).
// A NUL, an escape or a backspace is never part of what an operator
// searches for, and a NUL ends strings in parts of some stores (SQLite's
// full-text queries).
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && !unicode.IsSpace(r) }) >= 0
}

// interval parses from/to: RFC 3339, or a date in the report time zone (a date
// "to" includes that whole day). Neither means the last 31 days up to now.
func (p *parser) interval(from, to *string) (time.Time, time.Time) {
	if from == nil && to == nil {
		return p.now.Add(-report.MaxInterval), p.now
	}
	if (from == nil) != (to == nil) {
		missing := "to"
		if from == nil {
			missing = "from"
		}
		p.reject(missing, CodeIncompleteRange, "from and to go together: give both or neither")
		return time.Time{}, time.Time{}
	}
	f, fromDate, okF := p.instant("from", *from, false)
	t, _, okT := p.instant("to", *to, true)
	if !okF || !okT {
		return f, t
	}
	// 31 days are calendar days when from is a date, so that a month
	// across a daylight-saving change still fits.
	limit := f.Add(report.MaxInterval)
	if fromDate {
		limit = f.In(p.loc).AddDate(0, 0, 31)
	}
	switch {
	case !t.After(f):
		p.reject("to", CodeIntervalOrder, "must be after from")
	case t.After(limit):
		p.add(ParamError{Param: "to", Code: CodeIntervalTooLong, Limit: 31}, "the interval may not exceed 31 days")
	}
	return f, t
}

// instant parses one bound; isDate reports a date without a time.
func (p *parser) instant(param, s string, endOfDay bool) (t time.Time, isDate, ok bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), false, true
	}
	d, err := time.ParseInLocation(time.DateOnly, s, p.loc)
	if err != nil {
		p.reject(param, CodeInvalidTime, "must be RFC 3339 (2025-10-07T09:26:33-03:00) or a date (2025-10-07)")
		return time.Time{}, false, false
	}
	if endOfDay {
		d = d.AddDate(0, 0, 1)
	}
	return d.UTC(), true, true
}
