package elastic

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/childscoremode"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// filterQuery translates a validated filter. Every clause is a filter (no
// scoring: the order is by time). The tenant term comes first, always.
func filterQuery(f *report.Filter) *types.Query {
	b := &types.BoolQuery{}
	b.Filter = append(b.Filter,
		termQuery("tenant", f.Tenant),
		dateRange("started_at", f.From, f.To, false))
	if f.SessionID != "" {
		b.Filter = append(b.Filter, termQuery("session_id", strings.ToLower(f.SessionID)))
	}
	if f.Protocol != "" {
		b.Filter = append(b.Filter, termQuery("protocols", f.Protocol))
	}
	if len(f.Tags) > 0 {
		tags := dedupe(f.Tags)
		if f.TagMode == report.TagsAll {
			for _, t := range tags {
				b.Filter = append(b.Filter, termQuery("tags", t))
			}
		} else {
			b.Filter = append(b.Filter, termsQuery("tags", tags))
		}
	}
	for _, c := range f.Info {
		infoClause(b, c)
	}
	if len(f.Channels) > 0 {
		b.Filter = append(b.Filter, termsQuery("channel", dedupe(f.Channels)))
	}
	if f.Contact != "" {
		b.Filter = append(b.Filter, contactClause(f.Contact))
	}
	if f.HandedOff != nil {
		b.Filter = append(b.Filter, termQuery("handed_off", *f.HandedOff))
	}
	if len(f.Agents) > 0 {
		b.Filter = append(b.Filter, termsQuery("agents.id", dedupe(f.Agents)))
	}
	if len(f.Queues) > 0 {
		b.Filter = append(b.Filter, termsQuery("queues", dedupe(f.Queues)))
	}
	if len(f.Outcomes) > 0 {
		b.Filter = append(b.Filter, outcomeClause(dedupe(f.Outcomes), f.At()))
	}
	if words := report.Words(f.Query); len(words) > 0 {
		b.Filter = append(b.Filter, textClause(words))
	}
	return &types.Query{Bool: b}
}

// infoClause: every operator is a query on info_kv ("KEY=value", value
// lowercased) or info_keys. A negative operator is a must_not of the
// positive one, so sessions without the key match it.
func infoClause(b *types.BoolQuery, c report.Condition) {
	pair := infoPair(c.Key, c.Value)
	var q types.Query
	switch c.Op {
	case report.OpEquals, report.OpNotEquals:
		q = termQuery("info_kv", pair)
	case report.OpContains, report.OpNotContain:
		// A wildcard field: n-gram candidates then verification, no
		// scan of the key's terms.
		q = wildcardQuery("info_kv.wc", c.Key+"=*"+escapeWildcard(strings.ToLower(c.Value))+"*")
	case report.OpStartsWith:
		q = types.Query{Prefix: map[string]types.PrefixQuery{"info_kv": {Value: pair}}}
	case report.OpExists, report.OpNotExists:
		q = termQuery("info_keys", c.Key)
	default:
		// Validate rejects unknown operators; match nothing if one slips by.
		b.Filter = append(b.Filter, types.Query{MatchNone: &types.MatchNoneQuery{}})
		return
	}
	switch c.Op {
	case report.OpNotEquals, report.OpNotContain, report.OpNotExists:
		b.MustNot = append(b.MustNot, q)
	default:
		b.Filter = append(b.Filter, q)
	}
}

// contactClause matches contact.id exactly, the captured name as a
// substring ignoring case and diacritics, and, for a filter that looks like a
// phone number, the phone's digits when one number ends with the other.
func contactClause(contact string) types.Query {
	none := "NONE"
	should := []types.Query{
		termQuery("contact.id", contact),
		{Regexp: map[string]types.RegexpQuery{"contact_name": {Value: foldedRegexp(contact), Flags: &none}}},
	}
	if d, ok := report.PhoneQuery(contact); ok {
		rev := report.ReversedPhoneDigits(d)
		// The stored number ends with the typed one: a prefix of the
		// reversed digits.
		should = append(should, types.Query{Prefix: map[string]types.PrefixQuery{"contact_phone_rev": {Value: rev}}})
		// The typed number ends with the stored one (which lacks the
		// country code): the stored number is one of the typed number's
		// suffixes of at least MinPhoneDigits digits.
		var suffixes []string
		for n := report.MinPhoneDigits; n < len(rev); n++ {
			suffixes = append(suffixes, rev[:n])
		}
		if len(suffixes) > 0 {
			should = append(should, termsQuery("contact_phone_rev", suffixes))
		}
	}
	return types.Query{Bool: &types.BoolQuery{Should: should, MinimumShouldMatch: 1}}
}

// textClause: one message (a nested document) must have every word; a word
// that the analyzer splits ("segunda-via") must have its parts in a row.
func textClause(words []string) types.Query {
	must := make([]types.Query, len(words))
	for i, w := range words {
		must[i] = types.Query{MatchPhrase: map[string]types.MatchPhraseQuery{"messages.text": {Query: w}}}
	}
	return types.Query{Nested: &types.NestedQuery{
		Path:      "messages",
		Query:     types.Query{Bool: &types.BoolQuery{Filter: must}},
		ScoreMode: &childscoremode.None,
	}}
}

// foldedRegexp is a Lucene regular expression matching the values that
// contain s, ignoring diacritics, in contact_name: the name as Go lowers it
// (docs.go), diacritics kept. Each letter of s folded (report.Fold) becomes
// the class of the lower-case letters that fold to it ("a" → "[aáàâãä…]"),
// so names indexed before folding existed match too and no reindex is
// needed; every other character is escaped, so no input is regexp syntax.
func foldedRegexp(s string) string {
	variants := foldVariants()
	var b strings.Builder
	b.WriteString(".*")
	for _, r := range report.Fold(s) {
		switch {
		case len(variants[r]) > 0:
			b.WriteByte('[')
			b.WriteRune(r)
			b.WriteString(variants[r])
			b.WriteByte(']')
		case unicode.IsLetter(r) || unicode.IsNumber(r):
			b.WriteRune(r)
		default:
			b.WriteByte('\\')
			b.WriteRune(r)
		}
	}
	b.WriteString(".*")
	return b.String()
}

// foldVariants maps a folded letter to the lower-case letters with
// diacritics that report.Fold turns into it, in code point order, over the
// Latin, Greek and Cyrillic blocks.
var foldVariants = sync.OnceValue(func() map[rune]string {
	out := map[rune]string{}
	for _, block := range [][2]rune{{0xC0, 0x24F}, {0x370, 0x4FF}, {0x1E00, 0x1FFF}} {
		for r := block[0]; r <= block[1]; r++ {
			if !unicode.IsLower(r) {
				continue
			}
			f := []rune(report.Fold(string(r)))
			if len(f) == 1 && f[0] != r {
				out[f[0]] += string(r)
			}
		}
	}
	return out
})

func wildcardQuery(field, pattern string) types.Query {
	return types.Query{Wildcard: map[string]types.WildcardQuery{field: {Value: &pattern}}}
}

// escapeWildcard makes s literal in a wildcard pattern.
func escapeWildcard(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '*' || r == '?' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// newestFirst is the report's order; session ids are unique per tenant, so
// it is total and search_after never skips or repeats a session.
func newestFirst() []types.SortCombinations {
	return sortBy(desc("started_at"), desc("session_id"))
}

func cursorValues(c *report.Cursor) []types.FieldValue {
	return []types.FieldValue{formatTime(c.StartedAt), c.SessionID}
}

// sessionSource leaves the fields that only exist for queries out of
// answers.
func sessionSource() types.SourceConfig {
	return types.SourceFilter{Excludes: derivedFields}
}

// searchRequest is the request of one page of Search.
func searchRequest(f *report.Filter, page report.Page) *search.Request {
	size := page.Limit + 1 // one more tells whether a next page exists
	req := &search.Request{
		Query: filterQuery(f),
		Sort:  newestFirst(),
		Size:  &size,
		// Counted exactly up to one past the bound: then "more than".
		TrackTotalHits: page.Bound(f) + 1,
		Source_:        sessionSource(),
	}
	if page.After != nil {
		req.SearchAfter = cursorValues(page.After)
	}
	return req
}

// maxPage is the most sessions a page may hold: index.max_result_window
// caps size.
const maxPage = 10000 - 1

// Search returns one page of the sessions f matches, newest first, and the
// number of matches, exact up to the page's bound.
func (s *Store) Search(ctx context.Context, f report.Filter, page report.Page) (report.Result, error) {
	if err := errors.Join(f.Validate(), page.Validate()); err != nil {
		return report.Result{}, err
	}
	if page.Limit > maxPage {
		return report.Result{}, fmt.Errorf("page: limit must be at most %d", maxPage)
	}
	res, err := s.search(ctx, s.names.sessionsRead(), searchRequest(&f, page))
	if err != nil {
		return report.Result{}, fmt.Errorf("search sessions: %w", err)
	}
	out, err := s.pageResult(res, page.Limit)
	if err != nil {
		return out, err
	}
	if res.Hits.Total != nil {
		// relation "gte" comes with the value bound+1.
		out.BoundTotal(res.Hits.Total.Value, page.Bound(&f))
	}
	return out, nil
}

func (s *Store) pageResult(res *searchResponse, limit int) (report.Result, error) {
	out := report.Result{Items: make([]session.Session, 0, min(len(res.Hits.Hits), limit))}
	for i := range res.Hits.Hits {
		var ss session.Session
		if err := json.Unmarshal(res.Hits.Hits[i].Source, &ss); err != nil {
			return report.Result{}, fmt.Errorf("decode session %s: %w", s.docRef(res.Hits.Hits[i].Index, res.Hits.Hits[i].ID), err)
		}
		out.Items = append(out.Items, ss)
	}
	if len(out.Items) > limit {
		out.Items = out.Items[:limit]
		last := &out.Items[limit-1]
		out.Next = &report.Cursor{StartedAt: last.StartedAt, SessionID: last.ID}
	}
	return out, nil
}

// Session returns a session of tenant with its events in order.
func (s *Store) Session(ctx context.Context, tenant, id string) (report.Detail, error) {
	two := 2
	req := &search.Request{
		Query:          boolFilter(termQuery("tenant", tenant), termQuery("session_id", strings.ToLower(id))),
		Sort:           newestFirst(),
		Size:           &two,
		TrackTotalHits: false,
		Source_:        sessionSource(),
	}
	res, err := s.search(ctx, s.names.sessionsRead(), req)
	if err != nil {
		return report.Detail{}, fmt.Errorf("read session: %w", err)
	}
	if len(res.Hits.Hits) == 0 {
		return report.Detail{}, report.ErrNotFound
	}
	var d report.Detail
	if err := json.Unmarshal(res.Hits.Hits[0].Source, &d.Session); err != nil {
		return report.Detail{}, fmt.Errorf("decode session: %w", err)
	}
	events, err := s.eventsOf(ctx, tenant, []session.Session{d.Session})
	if err != nil {
		return report.Detail{}, err
	}
	d.Events = events[d.Session.ID]
	return d, nil
}

// eventsOf reads the events of sessions (of one tenant), by session, in event
// order.
func (s *Store) eventsOf(ctx context.Context, tenant string, sessions []session.Session) (map[string][]event.Event, error) {
	sources, err := s.eventSources(ctx, nil, tenant, sessions)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]event.Event, len(sources))
	for id, list := range sources {
		events := make([]event.Event, len(list))
		for i, src := range list {
			var doc eventDoc
			if err := json.Unmarshal(src, &doc); err != nil || doc.Event == nil {
				return nil, fmt.Errorf("decode event of session %s: %w", s.docRef("", docID(tenant, id)), cmp.Or(err, errNoEvent))
			}
			events[i] = *doc.Event
		}
		out[id] = events
	}
	return out, nil
}

// eventSources reads the event documents of sessions (of one tenant) as
// stored, by session, in event order: an event document is the event's
// JSON with members of its own, which report.StoredDetail allows. The
// session of each is its first sort value: a sorted search returns each
// hit's sort values with it, which search_after pages by too
// (https://www.elastic.co/guide/en/elasticsearch/reference/8.19/sort-search-results.html,
// esfake does the same). It is a search, so it sees what the last refresh
// made visible, as every read of the report does: through pit when set
// (the export's snapshot of the events), else the events alias. Events
// never precede their session's start, which bounds the monthly indices
// searched.
func (s *Store) eventSources(ctx context.Context, pit *pointInTime, tenant string, sessions []session.Session) (map[string][][]byte, error) {
	out := make(map[string][][]byte, len(sessions))
	if len(sessions) == 0 {
		return out, nil
	}
	ids := make([]string, len(sessions))
	from := sessions[0].StartedAt
	for i := range sessions {
		ids[i] = sessions[i].ID
		if sessions[i].StartedAt.Before(from) {
			from = sessions[i].StartedAt
		}
	}
	req := eventsRequest(tenant, ids, from)
	err := s.scanThrough(ctx, s.names.eventsRead(), pit, req, func(h *hit) error {
		var id string
		if len(h.Sort) == 0 || json.Unmarshal(h.Sort[0], &id) != nil {
			return fmt.Errorf("event %s: no session among its sort values", s.docRef(h.Index, h.ID))
		}
		out[id] = append(out[id], h.Source)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read session events: %w", err)
	}
	return out, nil
}

func eventsRequest(tenant string, sessionIDs []string, from time.Time) *search.Request {
	return &search.Request{
		Query: boolFilter(termQuery("tenant", tenant), termsQuery("session", sessionIDs),
			dateRange("occurred_at", from, time.Time{}, false)),
		Sort:           sortBy(asc("session"), asc("occurred_at"), asc("event_id")),
		TrackTotalHits: false,
	}
}

// Export encodes every session f matches, complete with its events, in the
// order of Search, and passes them to emit a page at a time. It reads
// through two points in time, one on the sessions opened first and one on
// the events opened right after, so that however long the client takes to
// read, the export sees one snapshot of the sessions and one of the
// events, with no cap on the number of sessions: a session's events are
// those of the events snapshot, not events written since. The two are
// opened one after the other, not at once: a write that became visible
// between the two openings is in the events snapshot and not in the
// sessions one (docs/elasticsearch.md, "Export"). Both are renewed while
// the export waits for emit (keepPointsInTime) and closed when it ends,
// however it ends. It pages with search_after; each page's events are read
// in one scan, and their documents handed to the encoder as they came.
// Export stops at emit's first error, or when ctx ends.
func (s *Store) Export(ctx context.Context, f report.Filter, newEncoder func() report.Encoder, emit report.Emit) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sessions, err := s.openPointInTime(ctx, s.names.sessionsRead())
	if err != nil || sessions == nil { // nil: nothing indexed yet
		return err
	}
	defer s.closePointInTime(ctx, sessions)
	events, err := s.openPointInTime(ctx, s.names.eventsRead())
	if err != nil {
		return err
	}
	pits := []*pointInTime{sessions}
	if events != nil {
		defer s.closePointInTime(ctx, events)
		pits = append(pits, events)
	}
	// The keeper stops (deferred last, run first) before the points in
	// time close.
	kctx, stop := context.WithCancel(ctx)
	var keeper sync.WaitGroup
	keeper.Go(func() { s.keepPointsInTime(kctx, pits...) })
	defer func() {
		stop()
		keeper.Wait()
	}()
	size := report.ExportChunk
	req := &search.Request{
		Query:          filterQuery(&f),
		Sort:           newestFirst(),
		Size:           &size,
		TrackTotalHits: false,
		Source_:        sessionSource(),
	}
	enc := newEncoder()
	var (
		out  []byte
		ends []int
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := s.pitSearch(ctx, sessions, req)
		if err != nil {
			return fmt.Errorf("export sessions: %w", err)
		}
		page, err := s.pageResult(res, size)
		if err != nil {
			return err
		}
		var sources map[string][][]byte // none when no events index existed
		if events != nil {
			if sources, err = s.eventSources(ctx, events, f.Tenant, page.Items); err != nil {
				return err
			}
		}
		out, ends = out[:0], ends[:0]
		for i := range page.Items {
			d := report.StoredDetail{Session: page.Items[i], Events: sources[page.Items[i].ID]}
			if out, err = enc.Append(out, &d); err != nil {
				return err
			}
			ends = append(ends, len(out))
		}
		if len(page.Items) > 0 {
			if err := emit(out, ends); err != nil {
				return err
			}
		}
		if len(res.Hits.Hits) < size {
			return nil
		}
		req.SearchAfter = res.Hits.Hits[len(res.Hits.Hits)-1].searchAfter()
	}
}

// facetFields are the facets and the field each counts.
var facetFields = []struct {
	name, field string
}{
	{"tags", "tags"},
	{"info_keys", "info_keys"},
	{"channels", "channel"},
}

// facetsRequest counts every value of each facet with composite
// aggregations (exact, paged by after), not terms aggregations (approximate
// once a field has more values than a shard returns). after holds the
// position of each facet still paging; a facet absent from after and not in
// first is done.
func facetsRequest(f *report.Filter, after map[string]types.CompositeAggregateKey, first bool) *search.Request {
	zero, size := 0, report.MaxFacetValues
	req := &search.Request{
		Query:          boolFilter(termQuery("tenant", f.Tenant), dateRange("started_at", f.From, f.To, false)),
		Size:           &zero,
		TrackTotalHits: false,
		Aggregations:   map[string]types.Aggregations{},
	}
	for _, ff := range facetFields {
		a, paging := after[ff.name]
		if !first && !paging {
			continue
		}
		field := ff.field
		req.Aggregations[ff.name] = types.Aggregations{Composite: &types.CompositeAggregation{
			Size:    &size,
			After:   a,
			Sources: []map[string]types.CompositeAggregationSource{{"v": {Terms: &types.CompositeTermsAggregation{Field: &field}}}},
		}}
	}
	return req
}

type compositeAgg struct {
	AfterKey types.CompositeAggregateKey `json:"after_key"`
	Buckets  []struct {
		Key struct {
			V string `json:"v"`
		} `json:"key"`
		DocCount int `json:"doc_count"`
	} `json:"buckets"`
}

// Facets counts the tags, information keys and channels of the sessions of
// tenant that started in [from, to): by count descending, then value (byte
// order), at most report.MaxFacetValues each.
func (s *Store) Facets(ctx context.Context, tenant string, from, to time.Time) (report.Facets, error) {
	f := report.Filter{Tenant: tenant, From: from, To: to}
	if err := f.Validate(); err != nil {
		return report.Facets{}, err
	}
	all := map[string][]report.FacetValue{}
	after := map[string]types.CompositeAggregateKey{}
	for first := true; first || len(after) > 0; first = false {
		res, err := s.search(ctx, s.names.sessionsRead(), facetsRequest(&f, after, first))
		if err != nil {
			return report.Facets{}, fmt.Errorf("count facets: %w", err)
		}
		next := map[string]types.CompositeAggregateKey{}
		for name, raw := range res.Aggregations {
			var agg compositeAgg
			if err := json.Unmarshal(raw, &agg); err != nil {
				return report.Facets{}, fmt.Errorf("decode facet %s: %w", name, err)
			}
			for _, b := range agg.Buckets {
				all[name] = append(all[name], report.FacetValue{Value: b.Key.V, Count: b.DocCount})
			}
			if len(agg.Buckets) == report.MaxFacetValues && agg.AfterKey != nil {
				next[name] = agg.AfterKey
			}
		}
		after = next
	}
	top := func(name string) []report.FacetValue {
		vs := all[name]
		slices.SortFunc(vs, func(a, b report.FacetValue) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Value, b.Value))
		})
		if len(vs) > report.MaxFacetValues {
			vs = vs[:report.MaxFacetValues]
		}
		if vs == nil {
			vs = []report.FacetValue{}
		}
		return vs
	}
	return report.Facets{Tags: top("tags"), InfoKeys: top("info_keys"), Channels: top("channels")}, nil
}

// outcomeClause: an attendance whose outcome at now is one of outcomes —
// one that ended with it (outcomes), or one still open whose session's
// window has ended and that takes it at the end (outcomes_at_end); open is
// one still open in a window that has not ended (session.OutcomeMarks).
func outcomeClause(outcomes []string, now time.Time) types.Query {
	should := []types.Query{
		termsQuery("outcomes", outcomes),
		*boolFilter(termsQuery("outcomes_at_end", outcomes), dateRange("window_ends_at", time.Time{}, now, true)),
	}
	if slices.Contains(outcomes, session.OutcomeOpen) {
		after := now.Add(time.Nanosecond) // window_ends_at > now
		// An open attendance has an outcome at the end, one of these two.
		atEnd := termsQuery("outcomes_at_end", []string{session.OutcomeBotFinished, session.OutcomeCancelledInactivity})
		should = append(should, *boolFilter(atEnd, dateRange("window_ends_at", after, time.Time{}, false)))
	}
	one := "1"
	return types.Query{Bool: &types.BoolQuery{Should: should, MinimumShouldMatch: one}}
}
