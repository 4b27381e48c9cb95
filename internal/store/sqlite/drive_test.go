package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestConformancePlans runs the conformance suite in each plan but the
// automatic one (TestConformance): scanning the interval, as when every
// condition matches many sessions; driven by unordered drivers where a
// condition has one (any of several tags, starts_with by value), which the
// automatic plan only picks when they beat an ordered one; and driven by
// one range with every other condition tested per session, where the
// automatic plan intersects ranges of like sizes; and with the full-text
// words read in step with the range that drives, where the automatic plan
// lets the words' few sessions drive. (A walk still drives where nothing
// else can, as in the automatic plan.) And the automatic plan with samples
// of two entries, so that the ranges' sizes are estimates (the suite's
// ranges are smaller than a sample otherwise, which counts them); that one
// not with -short.
func TestConformancePlans(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plan   int
		sample int
	}{
		{"scanning", planScan, 0},
		{"unordered", planUnordered, 0},
		{"one range", planOneRange, 0},
		{"words in step", planInStep, 0},
		{"small samples", planAuto, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sample != 0 && testing.Short() {
				// The race detector's run (-short) took over its ten
				// minutes with it; TestEstimateIsNoTotal and
				// TestSampleCountsTests still run.
				t.Skip("the suite with small samples runs without -short")
			}
			storetest.Run(t, func(t *testing.T) storetest.Store {
				s := openTemp(t)
				s.planner = planner{mode: tc.plan, sample: tc.sample}
				return s
			})
		})
	}
}

// TestDriveShapes: the automatic plan intersects ranges of like sizes,
// drives a rare value's range with a common one tested per session, and
// reads a driver's rows without the sessions table when nothing else needs
// it.
func TestDriveShapes(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	var events []event.Event
	for i := range 100 {
		b := storetest.B{Contact: fmt.Sprintf("c%03d", i)}
		at := time.Duration(i) * time.Minute
		events = append(events, b.Msg(fmt.Sprintf("m%03d", i), at, event.RoleCustomer, "oi"), b.Tag(fmt.Sprintf("t%03d", i), at+time.Second, "Comum"))
		if i%2 == 0 {
			events = append(events, b.Tag(fmt.Sprintf("h%03d", i), at+2*time.Second, "Meio"))
		}
		if i == 50 {
			events = append(events, b.Tag(fmt.Sprintf("r%03d", i), at+3*time.Second, "Raro"))
		}
	}
	tx := ingestRead(ctx, t, s, events)
	for _, tc := range []struct {
		tags       []string
		handedOff  bool
		ranges     int
		noSessions bool
	}{
		{[]string{"Comum", "Meio"}, false, 2, true},
		{[]string{"Comum", "Raro"}, false, 1, true},
		{[]string{"Meio"}, true, 1, true}, // the side tables carry handed_off
	} {
		f := report.Filter{Tenant: "acme", From: storetest.Base, To: storetest.Base.Add(24 * time.Hour), Tags: tc.tags, TagMode: report.TagsAll}
		if tc.handedOff {
			f.HandedOff = &tc.handedOff
		}
		w := translate(&f, nil)
		if err := w.drive(ctx, tx, report.DefaultTotalBound, planner{}); err != nil {
			t.Fatal(err)
		}
		q, _ := w.query("1", true, "")
		if len(w.choice) != tc.ranges || w.sideOnly() != tc.noSessions {
			t.Errorf("%v: %d ranges, without sessions %v; want %d, %v: %s", tc.tags, len(w.choice), w.sideOnly(), tc.ranges, tc.noSessions, q)
		}
	}
}

// TestNegationsSubtract: a scan with negations is merged with the ranges
// they exclude in the automatic plan, and tests each session in the plans
// that neither drive nor merge.
func TestNegationsSubtract(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	tx, err := s.readTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	f := report.Filter{Tenant: "acme", From: storetest.Base, To: storetest.Base.Add(24 * time.Hour), Channels: []string{"webchat"},
		Info: []report.Condition{{Key: "PLANO", Op: report.OpNotExists}, {Key: "CIDADE", Op: report.OpNotContain, Value: "a"}}}
	for _, tc := range []struct {
		plan     int
		subtract bool
	}{{planAuto, true}, {planUnordered, true}, {planScan, false}, {planOneRange, false}} {
		w := translate(&f, nil)
		if err := w.drive(ctx, tx, report.DefaultTotalBound, planner{mode: tc.plan}); err != nil {
			t.Fatal(err)
		}
		q, _ := w.query("1", true, "")
		if got := strings.Count(q, " EXCEPT ") == 2; got != tc.subtract {
			t.Errorf("plan %d: subtracts %v, want %v: %s", tc.plan, got, tc.subtract, q)
		}
	}
}

// TestWalkCountsPastAPage: the total of a page after the first is counted
// past the sessions a full-text walk keeps for a page, whether the words
// drive or are read in step with a tag's range.
func TestWalkCountsPastAPage(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	const n = report.ExportChunk + 50
	var events []event.Event
	for i := range n {
		b := storetest.B{Contact: fmt.Sprintf("c%05d", i)}
		at := time.Duration(i/2) * time.Second // pairs share a start bucket
		events = append(events, b.Msg(fmt.Sprintf("m%05d", i), at, event.RoleCustomer, "alfa"), b.Tag(fmt.Sprintf("t%05d", i), at+time.Millisecond, "T"))
	}
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		plan int
		f    report.Filter
	}{
		{"walk", planAuto, report.Filter{Query: "alfa"}},
		{"in step", planInStep, report.Filter{Query: "alfa", Tags: []string{"T"}, Channels: []string{"whatsapp"}}},
	} {
		s.planner = planner{mode: tc.plan}
		f := tc.f
		f.Tenant, f.From, f.To = "acme", storetest.Base, storetest.Base.Add(24*time.Hour)
		page := report.Page{Limit: 5}
		for p := range 3 {
			res, err := s.Search(ctx, f, page)
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != n || res.TotalMore || len(res.Items) != 5 {
				t.Fatalf("%s, page %d: total %d (more %v), %d items; want %d, 5", tc.name, p, res.Total, res.TotalMore, len(res.Items), n)
			}
			page.After = res.Next
		}
	}
}

// TestContactUnionDrives: a contact name part that many sessions share
// (more than an unordered driver may hold) drives the search as a sorted
// union met through the covering index, and the page and the total are
// the scan's; past the total's bound the union does not drive.
func TestContactUnionDrives(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	const n = driveLimit + 50
	var events []event.Event
	for i := range n {
		b := storetest.B{Contact: fmt.Sprintf("c%05d", i), Name: fmt.Sprintf("Maria %d", i%7)}
		if i%3 == 0 {
			b.Name = "José"
		}
		events = append(events, b.Msg(fmt.Sprintf("m%05d", i), time.Duration(i)*time.Second, event.RoleCustomer, "oi"))
	}
	f := report.Filter{Tenant: "acme", From: storetest.Base, To: storetest.Base.Add(24 * time.Hour), Contact: "maria"}
	want := n - (n+2)/3
	tx := ingestRead(ctx, t, s, events)
	for _, tc := range []struct {
		bound int
		union bool
	}{{report.DefaultTotalBound, true}, {want - 1, false}} {
		w := translate(&f, nil)
		if err := w.drive(ctx, tx, tc.bound, planner{}); err != nil {
			t.Fatal(err)
		}
		if got := w.driver != nil && w.driver.sorted; got != tc.union {
			q, _ := w.query("1", true, "")
			t.Errorf("bound %d: the union drives: %v, want %v: %s", tc.bound, got, tc.union, q)
		}
	}
	res, err := s.Search(ctx, f, report.Page{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	newest := n - 1
	for newest%3 == 0 {
		newest--
	}
	if res.Total != want || len(res.Items) != 5 || res.Items[0].Contact.ID != fmt.Sprintf("c%05d", newest) {
		t.Fatalf("total %d, %d items, first %+v; want %d, 5, the newest", res.Total, len(res.Items), res.Items[0].Contact, want)
	}
}

// TestEstimateIsNoTotal: a range that drives alone, estimated by a sample
// that did not read it whole, is counted for the total, never given its
// estimate. The key's range of a prefix that more sessions than the bound
// share drives (the prefix's range is not read past the bound); its two
// newest sessions are half an hour apart and the others a second apart
// before them, so its sample of two estimates 4 sessions.
func TestEstimateIsNoTotal(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	const n, bound = 60, 50
	var events []event.Event
	for i := range n {
		b := storetest.B{Contact: fmt.Sprintf("c%03d", i)}
		at := time.Duration(i) * time.Second
		if i >= n-2 {
			at = time.Duration(i-n+3) * 30 * time.Minute
		}
		events = append(events, b.Msg(fmt.Sprintf("m%03d", i), at, event.RoleCustomer, "oi"), b.Info(fmt.Sprintf("i%03d", i), at+time.Millisecond, "PLANO", fmt.Sprintf("abc%d", i)))
	}
	s.planner = planner{sample: 2}
	f := report.Filter{Tenant: "acme", From: storetest.Base, To: storetest.Base.Add(24 * time.Hour),
		Info: []report.Condition{{Key: "PLANO", Op: report.OpStartsWith, Value: "ab"}}}
	tx := ingestRead(ctx, t, s, events)
	w := translate(&f, nil)
	if err := w.drive(ctx, tx, bound, s.planner); err != nil {
		t.Fatal(err)
	}
	d := w.driver
	if d == nil || d.sample == nil {
		t.Fatalf("the key's range does not drive: %+v", d)
	}
	if e, err := d.sample.estimate(ctx, tx, s.planner.sampleSize()); err != nil || e.exact || e.passes >= bound {
		t.Fatalf("estimate %+v (%v); want fewer than %d, not exact", e, err, bound)
	}
	res, err := s.Search(ctx, f, report.Page{Limit: 5, TotalBound: bound})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != bound || !res.TotalMore || len(res.Items) != 5 {
		t.Fatalf("total %d (more %v), %d items; want %d and more, 5", res.Total, res.TotalMore, len(res.Items), bound)
	}
}

// TestSampleCountsTests: a range's sample read whole counts the sessions
// that pass its own test (a prefix) and the carried channel, and the total
// of a search it drives alone is that count.
func TestSampleCountsTests(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	var events []event.Event
	for i := range 40 {
		b := storetest.B{Contact: fmt.Sprintf("c%03d", i), Channel: "whatsapp"}
		if i%2 == 0 {
			b.Channel = "webchat"
		}
		value := fmt.Sprintf("fibra %d", i)
		if i%4 == 0 {
			value = fmt.Sprintf("cobre %d", i)
		}
		at := time.Duration(i) * time.Minute
		events = append(events, b.Msg(fmt.Sprintf("m%03d", i), at, event.RoleCustomer, "oi"), b.Info(fmt.Sprintf("i%03d", i), at+time.Second, "PLANO", value))
	}
	f := report.Filter{Tenant: "acme", From: storetest.Base, To: storetest.Base.Add(24 * time.Hour), Channels: []string{"webchat"},
		Info: []report.Condition{{Key: "PLANO", Op: report.OpStartsWith, Value: "Fibra"}}}
	const want = 10 // webchat (even) and fibra (not a multiple of 4)
	tx := ingestRead(ctx, t, s, events)
	w := translate(&f, nil)
	var key *driver
	for _, c := range w.conds {
		for i := range c.drivers {
			if c.drivers[i].sample != nil {
				key = &c.drivers[i]
			}
		}
	}
	if key == nil {
		t.Fatal("no sampled range")
	}
	if e, err := key.sample.estimate(ctx, tx, sampleSize); err != nil || e != (estimate{entries: 40, passes: want, exact: true}) {
		t.Fatalf("estimate %+v (%v); want 40 entries, %d passing, exact", e, err, want)
	}
	for _, bound := range []int{report.DefaultTotalBound, 3} {
		res, err := s.Search(ctx, f, report.Page{Limit: 2, TotalBound: bound})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != min(want, bound) || res.TotalMore != (want > bound) {
			t.Errorf("bound %d: total %d (more %v), want %d", bound, res.Total, res.TotalMore, min(want, bound))
		}
	}
}

// TestInStepSharedBuckets: read in step with a tag, a word's messages are
// told to a session by their start bucket alone except in buckets that
// more than one session has had (shared_buckets). A session without
// messages that started in the same millisecond as one with the word, of
// the same tenant or another, is not found; one alone in its millisecond
// is, by its bucket.
func TestInStepSharedBuckets(t *testing.T) {
	s := openTemp(t)
	s.planner = planner{mode: planInStep}
	ctx := context.Background()
	h := time.Hour
	a, b := storetest.B{Contact: "c-a"}, storetest.B{Contact: "c-b"}
	c, d := storetest.B{Tenant: "globex", Contact: "c-c"}, storetest.B{Contact: "c-d"}
	e := storetest.B{Contact: "c-e"}
	events := []event.Event{
		a.Msg("a1", h, event.RoleCustomer, "segunda via do boleto"), a.Tag("a2", h+time.Second, "t"),
		b.Tag("b1", h, "t"), // the same millisecond as a, no message
		c.Msg("c1", 2*h, event.RoleCustomer, "boleto"), c.Tag("c2", 2*h+time.Second, "t"),
		d.Tag("d1", 2*h, "t"), // the same millisecond as globex's c
		e.Msg("e1", 3*h, event.RoleCustomer, "boleto pago"), e.Tag("e2", 3*h+time.Second, "t"),
	}
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	var shared int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM shared_buckets`).Scan(&shared); err != nil {
		t.Fatal(err)
	}
	if shared != 2 {
		t.Errorf("%d shared buckets, want 2", shared)
	}
	for _, q := range []string{"boleto", "segunda boleto"} { // session_words, message_words
		f := report.Filter{Tenant: "acme", From: storetest.Base, To: storetest.Base.Add(4 * h), Query: q, Tags: []string{"t"}}
		got := searchIDs(t, s, f)
		want := []string{session.DeriveID(&events[6]), session.DeriveID(&events[0])}
		if q != "boleto" {
			want = want[1:]
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("q=%s with tag t: %v, want %v", q, got, want)
		}
	}
}

// TestInStepChunks: read in step, a word's rowids come in chunks (an hour
// of starts, then sized by the density); across the chunks' ends every session is found once,
// in report order, the same sessions as the scan finds, for a word of
// every session and one of every third, with half the sessions sharing a
// start bucket in pairs.
func TestInStepChunks(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	chunk, n := 64.0, 1200 // ~20 chunks, some spans of a 64th of an hour
	if testing.Short() {
		// The race detector's run: ~20 chunks still.
		chunk, n = 16, 300
	}
	var events []event.Event
	for i := range n {
		b := storetest.B{Contact: fmt.Sprintf("c%05d", i)}
		at := time.Duration(i) * time.Minute
		if i < n/2 {
			at = time.Duration(i/2) * time.Minute // pairs share a start bucket
		}
		text := "alfa"
		if i%3 == 0 {
			text = "alfa bravo"
		}
		events = append(events, b.Msg(fmt.Sprintf("m%05d", i), at, event.RoleCustomer, text), b.Tag(fmt.Sprintf("t%05d", i), at+time.Millisecond, "T"))
	}
	a := session.NewAssembler(pipeline.MustDefault(), s)
	for len(events) > 0 {
		k := min(len(events), 1000)
		if err := a.Ingest(ctx, events[:k]); err != nil {
			t.Fatal(err)
		}
		events = events[k:]
	}
	for _, q := range []string{"alfa", "bravo"} {
		f := report.Filter{Tenant: "acme", From: storetest.Base, To: storetest.Base.Add(time.Duration(2*n) * time.Minute), Query: q, Tags: []string{"T"}, Channels: []string{"whatsapp"}}
		s.planner = planner{mode: planScan, chunk: chunk}
		want := searchIDs(t, s, f)
		s.planner = planner{mode: planInStep, chunk: chunk}
		got := searchIDs(t, s, f)
		if len(want) != n && q == "alfa" || len(want) != (n+2)/3 && q == "bravo" {
			t.Fatalf("q=%s: the scan finds %d sessions", q, len(want))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("q=%s: in step %d sessions, the scan %d, or another order", q, len(got), len(want))
		}
		// Counted through every chunk: past QueryTotalBound (1,000).
		res, err := s.Search(ctx, f, report.Page{Limit: 5, TotalBound: 2 * n})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != len(want) || res.TotalMore {
			t.Fatalf("q=%s: in step total %d (more %v), want %d", q, res.Total, res.TotalMore, len(want))
		}
	}
}

// TestLongWalkYieldsToInStep: a word in every session with a tag on most of
// them, counted to a small bound. The walk's sample says it would reach the
// bound after fewer sessions than the tag's range holds, but a session a
// walk reads on costs walkEntries entries of a range: the tag's range
// drives and the words are read in step with it. Without the weight the
// walk drove, reading on and testing the tag on each session it read.
func TestLongWalkYieldsToInStep(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	const n = 600
	var events []event.Event
	for i := range n {
		b := storetest.B{Contact: fmt.Sprintf("c%05d", i)}
		at := time.Duration(i) * time.Second
		events = append(events, b.Msg(fmt.Sprintf("m%05d", i), at, event.RoleCustomer, "alfa"))
		if i%10 < 7 {
			events = append(events, b.Tag(fmt.Sprintf("t%05d", i), at+time.Millisecond, "T"))
		}
	}
	tx := ingestRead(ctx, t, s, events)
	f := report.Filter{Tenant: "acme", From: storetest.Base, To: storetest.Base.Add(24 * time.Hour), Query: "alfa", Tags: []string{"T"}}
	w := translate(&f, nil)
	// A bound of 100 counts to ExportChunk+1 (201): the sample of 100
	// sessions (70 pass) guesses ~360 sessions to read, fewer than the
	// tag's 420 entries, more than 420/walkEntries.
	if err := w.drive(ctx, tx, 100, planner{walk: 100}); err != nil {
		t.Fatal(err)
	}
	ci := slices.IndexFunc(w.conds, func(c *cond) bool { return c.walk != nil })
	ww := w.conds[ci].walk
	if len(w.choice) != 1 || w.choice[0][0] != ci || ww.partner == nil {
		q, _ := w.query("1", true, "")
		t.Fatalf("the words drive alone (in step: %v), want them in step with the tag's range: %s", ww.partner != nil, q)
	}
	if ww.sampled != 100 || ww.passed != 70 {
		t.Fatalf("sample: %d sessions, %d passed; want 100, 70", ww.sampled, ww.passed)
	}
}

// TestInStepReadsBounded: a statement of the read in step reads at most
// its bound of rowids, however many its span holds (here every match is in
// the first span, an hour of starts), and the statements together read
// every match once, in order; a search in step with that bound finds what
// the scan finds.
func TestInStepReadsBounded(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	const n, reads = 300, 32
	var events []event.Event
	for i := range n {
		b := storetest.B{Contact: fmt.Sprintf("c%05d", i)}
		at := time.Duration(i) * time.Second // all in the first hour
		events = append(events, b.Msg(fmt.Sprintf("m%05d", i), at, event.RoleCustomer, "alfa"), b.Tag(fmt.Sprintf("t%05d", i), at+time.Millisecond, "T"))
	}
	lower, upper := storetest.Base.Add(-time.Hour).UnixMilli(), storetest.Base.Add(2*time.Hour).UnixMilli()
	lo, hi := wordRange(lower, upper)
	tx := ingestRead(ctx, t, s, events)
	var want []int64
	rows, err := tx.QueryContext(ctx, `SELECT rowid FROM session_words WHERE session_words MATCH 'alfa' ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r int64
		rows.Scan(&r)
		want = append(want, r)
	}
	rows.Close()
	if len(want) != n {
		t.Fatalf("%d rows of the word, want %d", len(want), n)
	}
	st := &inStep{ww: &wordWalk{table: "session_words", match: `"alfa"`, lo: lo, hi: hi, reads: reads}, ctx: ctx, tx: tx, from: lo}
	var got []int64
	for statements := 0; !st.last; statements++ {
		if statements > n {
			t.Fatal("the read does not end")
		}
		if err := st.readWords(); err != nil {
			t.Fatal(err)
		}
		if len(st.words) > reads {
			t.Fatalf("a statement read %d rowids, more than its bound %d", len(st.words), reads)
		}
		got = append(got, st.words...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read %d rowids %v…, want the %d matches in order", len(got), got[:min(len(got), 5)], len(want))
	}
	tx.Rollback()

	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(2 * time.Hour), Query: "alfa", Tags: []string{"T"}, Channels: []string{"whatsapp"}}
	s.planner = planner{mode: planScan}
	scan := searchIDs(t, s, f)
	s.planner = planner{mode: planInStep, reads: reads}
	if inStep := searchIDs(t, s, f); len(scan) != n || !slices.Equal(inStep, scan) {
		t.Fatalf("in step with a bound of %d: %d sessions, the scan %d, or another order", reads, len(inStep), len(scan))
	}
}

// TestInStepGivesUpOnOtherTenantsWords: the words tables hold every
// tenant's words, so a word common in another tenant makes a read in step
// read rowids that are none of the partner's. Past its budget (here 100
// rowids, then 50 a session of the partner) the walk gives up: the tag's
// range drives and the word is tested on each of its sessions, with the
// same sessions as the scan; within it the walk reads in step. (The plan
// that always reads in step is the one asked for, so that the walk reads
// in step at all with a tag this small; it gives up only with a budget.)
func TestInStepGivesUpOnOtherTenantsWords(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	var events []event.Event
	for i := range 3000 {
		b := storetest.B{Tenant: "other", Contact: fmt.Sprintf("o%05d", i)}
		events = append(events, b.Msg(fmt.Sprintf("o%05d", i), time.Duration(i)*time.Second, event.RoleCustomer, "alfa"))
	}
	for i := range 200 {
		b := storetest.B{Contact: fmt.Sprintf("a%05d", i)}
		at := time.Duration(i*15) * time.Second
		events = append(events, b.Msg(fmt.Sprintf("a%05d", i), at, event.RoleCustomer, "alfa"))
		if i%40 == 0 {
			events = append(events, b.Tag(fmt.Sprintf("t%05d", i), at+time.Millisecond, "T"))
		}
	}
	a := session.NewAssembler(pipeline.MustDefault(), s)
	for batch := range slices.Chunk(events, 1000) {
		if err := a.Ingest(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(2 * time.Hour), Query: "alfa", Tags: []string{"T"}, Channels: []string{"whatsapp"}}
	s.planner = planner{mode: planScan}
	scan := searchIDs(t, s, f)
	if len(scan) != 5 {
		t.Fatalf("the scan finds %d sessions, want the 5 tagged", len(scan))
	}
	inStep := func(p planner) bool {
		tx, err := s.readTx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		w := translate(&f, nil)
		if err := w.drive(ctx, tx, report.DefaultTotalBound, p); err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(w.owners, func(c *cond) bool { return c.walk != nil && c.walk.partner != nil })
	}
	for _, c := range []struct {
		budget int
		step   bool
	}{{0, true}, {1 << 20, true}, {100, false}} {
		p := planner{mode: planInStep, budget: c.budget}
		if got := inStep(p); got != c.step {
			t.Errorf("budget %d: read in step %v, want %v", c.budget, got, c.step)
		}
		s.planner = p
		if got := searchIDs(t, s, f); !slices.Equal(got, scan) {
			t.Errorf("budget %d: %v, the scan %v", c.budget, got, scan)
		}
	}
}

// ingestRead stores events through the assembler and opens a read
// transaction on what they left, rolled back when the test ends.
func ingestRead(ctx context.Context, t *testing.T, s *Store, events []event.Event) *sql.Tx {
	t.Helper()
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() }) //nolint:errcheck // read-only
	return tx
}
