// Package report holds the report's neutral query model: the filter every
// store translates (SQL, Elasticsearch DSL) with its rules, which parse a
// filter as a client sent it (ParseFilter) and guard the stores
// (Filter.Validate) alike, the cursor, and the result shapes.
package report

import (
	"errors"
	"strings"
	"time"
	"unicode"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// TagMode says whether a session needs any or all of the filter's tags.
type TagMode string

// Tag modes.
const (
	TagsAny TagMode = "any"
	TagsAll TagMode = "all"
)

// Op is an additional-information operator.
type Op string

// Operators on additional information. Text comparisons ignore case; the
// negative ones also match sessions without the key.
const (
	OpEquals     Op = "equals"
	OpNotEquals  Op = "not_equals"
	OpContains   Op = "contains"
	OpNotContain Op = "not_contains"
	OpStartsWith Op = "starts_with"
	OpExists     Op = "exists"
	OpNotExists  Op = "not_exists"
)

// Ops lists every operator, in the order the API documents them.
var Ops = []Op{OpEquals, OpNotEquals, OpContains, OpNotContain, OpStartsWith, OpExists, OpNotExists}

// TakesValue reports whether the operator compares with a value.
func (o Op) TakesValue() bool { return o != OpExists && o != OpNotExists }

// Valid reports whether o is a known operator.
func (o Op) Valid() bool {
	for _, k := range Ops {
		if o == k {
			return true
		}
	}
	return false
}

// Condition is one additional-information condition.
type Condition struct {
	Key   string `json:"key"`
	Op    Op     `json:"op"`
	Value string `json:"value,omitempty"`
}

// Filter selects sessions of one tenant. Every set field narrows the result
// (AND); zero fields do not filter.
type Filter struct {
	Tenant string
	// From and To bound started_at: [From, To).
	From, To  time.Time
	SessionID string
	Protocol  string
	Tags      []string
	TagMode   TagMode
	Info      []Condition
	Channels  []string
	// Contact matches contact.id exactly, the phone ignoring formatting (by
	// its last digits, at least MinPhoneDigits), or the name as a
	// case-insensitive substring.
	Contact   string
	HandedOff *bool
	// Outcomes selects sessions with an attendance whose outcome at Now
	// is one of them (session.Outcomes); Agents, sessions with one of
	// these agents (by id); Queues, sessions handed off to one of these
	// queues.
	Outcomes []string
	Agents   []string
	Queues   []string
	// Now is the moment outcomes are evaluated at: an open attendance is
	// over when its session's window ends. Zero means the store's clock.
	Now time.Time
	// Query is full text: sessions with a message containing every word of
	// Query (see Words) as a word, ignoring case and diacritics ("nao"
	// finds "NÃO").
	Query string
}

// MinPhoneDigits is how many trailing digits a contact filter needs to match a
// phone number by suffix.
const MinPhoneDigits = 8

// Validate checks the filter with ParseFilter's rules, for the stores, which
// may get a filter built elsewhere: all but the limits of what a client may
// send (counts, sizes, empty values, control characters), which a store
// copes with. Its interval may be an hour longer than MaxInterval (31
// calendar days across a daylight-saving change): Validate has instants,
// not the dates they came from. The errors are FieldErrors, but for a
// missing tenant.
func (f *Filter) Validate() error {
	var es fieldErrors
	es.interval(f.From, f.To, f.From.Add(MaxInterval+dstSlack))
	if f.SessionID != "" {
		es.sessionID(f.SessionID)
	}
	if f.Protocol != "" {
		es.protocol(f.Protocol)
	}
	es.tags(f.Tags)
	if f.TagMode != "" {
		es.tagMode(f.TagMode)
	}
	es.conditions(f.Info, nil)
	es.channels(f.Channels)
	if f.Contact != "" {
		es.contact(f.Contact)
	}
	if f.Query != "" {
		es.query(f.Query)
	}
	es.outcomes(f.Outcomes)
	es.names(FieldAgents, f.Agents)
	es.names(FieldQueues, f.Queues)
	errs := make([]error, 0, len(es.errs)+1)
	if f.Tenant == "" {
		errs = append(errs, errors.New("filter: no tenant"))
	}
	for _, e := range es.errs {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// Words splits a full-text query into the words a message must all contain:
// the whitespace-separated parts that have at least one letter or digit.
// Stores match each word as a word of the message text, ignoring case and
// diacritics; punctuation inside a word separates sub-words that must follow
// each other ("segunda-via").
func Words(q string) []string {
	var out []string
	for _, w := range strings.Fields(q) {
		if strings.IndexFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }) >= 0 {
			out = append(out, w)
		}
	}
	return out
}

// Page asks for one page of results.
type Page struct {
	// Limit is the most sessions on the page, at least 1.
	Limit int
	// After continues after the last session of the previous page.
	After *Cursor
	// TotalBound is how far the total is counted exactly; 0 means the
	// filter's default (Bound).
	TotalBound int
}

// DefaultTotalBound is how many matches a search counts exactly: past it, the
// total says "more than DefaultTotalBound", as Elasticsearch's
// track_total_hits does, so that a count never has to visit every session of
// a month.
const DefaultTotalBound = 10_000

// QueryTotalBound is DefaultTotalBound for a filter with full text (Query):
// past it the total says "more than 1,000". A full-text count is dearer per
// session than any other (each session's words are read, not an index entry
// of a value), and with a tag whose sessions nearly all hold a common word it
// read every session of the tag in the month to count up to 10,000
// (docs/performance.md, "Full text on SQLite: a smaller bound for full-text
// totals").
const QueryTotalBound = 1_000

// Bound is the page's TotalBound or, when it sets none, the default for f:
// QueryTotalBound when f has full text, DefaultTotalBound otherwise.
func (p Page) Bound(f *Filter) int {
	switch {
	case p.TotalBound > 0:
		return p.TotalBound
	case f.Query != "":
		return QueryTotalBound
	}
	return DefaultTotalBound
}

// Validate checks the page's limit with the rule ParsePage applies.
func (p Page) Validate() error {
	var es fieldErrors
	es.pageLimit(p.Limit, true)
	if len(es.errs) > 0 {
		return es.errs[0]
	}
	if p.TotalBound < 0 {
		return errors.New("page: negative total bound")
	}
	return nil
}

// BoundTotal turns a count of matches made up to bound+1 into a Result's
// total: the count itself, or bound and TotalMore when it went past.
func (r *Result) BoundTotal(counted, bound int) {
	r.Total, r.TotalMore = min(counted, bound), counted > bound
}

// Result is one page of sessions, newest first.
type Result struct {
	Items []session.Session
	// Next continues after Items' last session; nil on the last page.
	Next *Cursor
	// Total counts every session the filter matches, up to the page's
	// bound (Page.Bound).
	Total int
	// TotalMore says that more than Total sessions match: Total is the
	// bound.
	TotalMore bool
}

// Detail is a session with its whole timeline in event order.
type Detail struct {
	Session session.Session
	Events  []event.Event
}

// Facets are the values the filter dropdowns offer, each with the number of
// sessions of the interval that have it, sorted by count descending, then by
// value (byte order). Each list holds at most MaxFacetValues entries.
type Facets struct {
	Tags     []FacetValue `json:"tags"`
	InfoKeys []FacetValue `json:"info_keys"`
	Channels []FacetValue `json:"channels"`
}

// FacetValue is one value of a facet and how many sessions have it.
type FacetValue struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// MaxFacetValues caps each facet list: a dropdown offers the most common
// values.
const MaxFacetValues = 1000

// ExportChunk is how many sessions a store reads at once while exporting:
// memory stays proportional to it, not to the number of sessions exported.
const ExportChunk = 200

// ErrNotFound is returned for an unknown session, or another tenant's.
var ErrNotFound = errors.New("session not found")

// PhoneDigits keeps the digits of a phone number: "+55 (11) 98765-4321" →
// "5511987654321". Stores index it so the contact filter ignores formatting.
// Only ASCII digits count (ReversedPhoneDigits keeps the same ones).
func PhoneDigits(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if isPhoneDigit(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// ReversedPhoneDigits is PhoneDigits(s), last digit first, in one
// allocation: what both stores keep of a contact's phone
// (contact_phone_rev), so that "one number ends with the other" is a
// prefix match. Stored values are compared with it as they are: it must
// keep giving the same bytes.
func ReversedPhoneDigits(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if isPhoneDigit(s[i]) {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(n)
	for i := len(s) - 1; i >= 0; i-- {
		if isPhoneDigit(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func isPhoneDigit(c byte) bool { return c >= '0' && c <= '9' }

// PhoneQuery returns the digits of a contact filter that looks like a phone
// number: only digits, spaces and the formatting characters + - ( ) ., with
// at least MinPhoneDigits digits. Stores match it against phone numbers
// ignoring formatting, one number ending with the other, so a number without
// country (or area) code finds the full one.
func PhoneQuery(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == ' ', c == '+', c == '-', c == '(', c == ')', c == '.':
		default:
			return "", false
		}
	}
	d := PhoneDigits(s)
	return d, len(d) >= MinPhoneDigits
}

// At is the moment outcomes are evaluated at: Now, or the clock.
func (f *Filter) At() time.Time {
	if f.Now.IsZero() {
		return time.Now()
	}
	return f.Now
}
