package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// TestDetailEventsMatchPerSessionReads: the events readEvents reads for a
// chunk in one statement are, session by session, those a statement per
// session reads in the order of events_by_key_time: sessions of one key one
// after another, sessions of one key whose spans overlap, events of one millisecond, events that arrived out of order.
func TestDetailEventsMatchPerSessionReads(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	rng := rand.New(rand.NewPCG(3, 4))
	var events []event.Event
	for c := range 30 {
		b := storetest.B{Contact: fmt.Sprintf("55119%08d", c)}
		own := b
		own.SessionID = fmt.Sprintf("c639c747-4637-4ff5-99c0-%012d", c)
		for day := range 3 { // windows of 24 hours: a session each day
			for i := range 1 + rng.IntN(6) {
				at := time.Duration(day*48)*time.Hour + time.Duration(rng.IntN(4))*time.Millisecond
				id := fmt.Sprintf("e%02d-%d-%02d-%d", c, day, i, rng.IntN(10))
				switch {
				case c%3 == 0 && i%2 == 1:
					events = append(events, own.Msg(id, at, event.RoleAgent, "own session"))
				case i%4 == 3:
					events = append(events, b.Tag(id, at, "tag"))
				default:
					events = append(events, b.Msg(id, at, event.RoleCustomer, "olá"))
				}
			}
		}
	}
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	a := session.NewAssembler(pipeline.MustDefault(), s)
	for batch := range slices.Chunk(events, 17) {
		if err := a.Ingest(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// Two sessions of one key whose spans overlap (an update moving
	// events between sessions leaves such pairs): each has only its own.
	b := storetest.B{Contact: "5511999999999"}
	policy := pipeline.MustDefault().PolicyFor("whatsapp")
	var ch session.Changes
	for n, ids := range [][]string{{"x1", "x3", "x5"}, {"x2", "x4"}} {
		var own []*event.Event
		for _, id := range ids {
			e := b.Msg(id, 5*24*time.Hour+time.Duration(id[1]-'0')*time.Minute, event.RoleCustomer, id)
			own = append(own, &e)
		}
		id := fmt.Sprintf("c639c747-4637-4ff5-99c0-99999999999%d", n)
		ch.Sessions = append(ch.Sessions, session.Summarize(id, session.KeyOf(own[0]), policy, own))
		for _, e := range own {
			ch.Events = append(ch.Events, session.Stored{Event: e, SessionID: id})
		}
		for _, e := range own {
			events = append(events, *e)
		}
	}
	if err := s.Update(ctx, func(context.Context, session.Reader) (session.Changes, error) { return ch, nil }); err != nil {
		t.Fatal(err)
	}

	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(10 * 24 * time.Hour)}
	var got []report.Detail
	if err := storetest.ExportDetails(ctx, s, f, func(d report.Detail) error { got = append(got, d); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) < 92 {
		t.Fatalf("%d sessions exported, want at least 92", len(got))
	}
	perSession, err := s.db.PrepareContext(ctx, `SELECT body FROM events
		WHERE tenant = ? AND session_key = ? AND occurred_at BETWEEN ? AND ? AND session_id = ?
		ORDER BY occurred_at, event_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer perSession.Close()
	total := 0
	for _, d := range got {
		ss := &d.Session
		rows, err := perSession.QueryContext(ctx, ss.Tenant, ss.Key, ss.StartedAt.UnixMilli(), ss.LastActivityAt.UnixMilli(), ss.ID)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for rows.Next() {
			var body []byte
			if err := rows.Scan(&body); err != nil {
				t.Fatal(err)
			}
			e, err := report.DecodeEvent(body)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, e.EventID)
		}
		rows.Close()
		ids := make([]string, len(d.Events))
		for i := range d.Events {
			ids[i] = d.Events[i].EventID
		}
		if !slices.Equal(ids, want) || len(ids) != ss.Events {
			t.Fatalf("session %s: events %v, one statement per session reads %v (summary: %d)", ss.ID, ids, want, ss.Events)
		}
		total += len(ids)
	}
	if total != len(events) {
		t.Fatalf("%d events exported, %d ingested", total, len(events))
	}
}

// TestSplit: each session's row (its count and bodies joined by eventSep,
// or NULL without events) becomes that session's events, whatever order the
// rows came in; a row whose bodies are not as many as its count, a session
// read twice or not at all, fails the read.
func TestSplit(t *testing.T) {
	const sep = string(rune(eventSep))
	type row struct {
		session int
		joined  any // what the driver gives: a string or nil
	}
	for _, tc := range []struct {
		name    string
		rows    []row
		want    [][]string
		wantErr string
	}{
		{"in order", []row{{0, "2" + sep + `{"a":1}` + sep + `{"b":2}`}, {1, nil}, {2, "1" + sep + `{"c":"x"}`}},
			[][]string{{`{"a":1}`, `{"b":2}`}, nil, {`{"c":"x"}`}}, ""},
		{"rows out of order", []row{{2, "1" + sep + `{"c":3}`}, {0, "1" + sep + `{"a":1}`}, {1, "3" + sep + "{}" + sep + "[]" + sep + `""`}},
			[][]string{{`{"a":1}`}, {"{}", "[]", `""`}, {`{"c":3}`}}, ""},
		{"an empty body", []row{{0, "2" + sep + sep + "{}"}}, [][]string{{"", "{}"}}, ""},
		{"a body holding the separator", []row{{0, "1" + sep + `{"a":1}` + sep + `{"b":2}`}}, nil, "has 1 events, 2 bodies"},
		{"fewer bodies than counted", []row{{0, "3" + sep + `{"a":1}` + sep + `{"b":2}`}}, nil, "has 3 events, 2 bodies"},
		{"no count", []row{{0, `{"a":1}`}}, nil, "no count"},
		{"a session twice", []row{{0, nil}, {0, nil}}, nil, "session 0 read, 1 expected"},
		{"a session missing", []row{{1, nil}}, nil, "1 rows for 2 sessions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(tc.want)
			if tc.wantErr != "" {
				n = max(len(tc.rows), 1)
				if tc.name == "a session missing" {
					n = 2
				}
			}
			c := chunk{list: make([]report.StoredDetail, n)}
			j := joinedEvents{c: &c}
			var err error
			for _, r := range tc.rows {
				if err = j.Scan(r.joined); err != nil {
					break
				}
				c.spans[len(c.spans)-1].session = r.session
			}
			if err == nil {
				err = c.split()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range c.list {
				var got []string
				for _, body := range c.list[i].Events {
					got = append(got, string(body))
				}
				if !slices.Equal(got, tc.want[i]) {
					t.Fatalf("session %d: events %q, want %q", i, got, tc.want[i])
				}
			}
		})
	}
}

// TestEventsStatementPlan: the events of a chunk's sessions are read a range
// of events_by_key_time per session, in the order the subquery's ORDER BY
// asks for, with no sorting (no temporary B-tree): the order costs nothing.
func TestEventsStatementPlan(t *testing.T) {
	s := openTemp(t)
	plan := queryPlan(t, s.db, eventsStatement, `[["k",1,2,"s"]]`, "acme")
	if !strings.Contains(plan, "SEARCH e USING INDEX events_by_key_time (tenant=? AND session_key=? AND occurred_at>? AND occurred_at<?)") ||
		strings.Contains(plan, "TEMP B-TREE") {
		t.Fatalf("plan of the events statement:\n%s", plan)
	}
}

// TestSessionEventsSplitChecked: a stored body holding the separator the
// events statement joins bodies with (no valid JSON does) fails the read
// of its session, instead of being taken for two events.
func TestSessionEventsSplitChecked(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	b := storetest.B{Contact: "5511988887777"}
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, []event.Event{
		b.Msg("m1", 0, event.RoleCustomer, "oi"), b.Msg("m2", time.Second, event.RoleAgent, "olá"),
	}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Session(ctx, "acme", searchIDs(t, s, report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(time.Hour)})[0])
	if err != nil || len(d.Events) != 2 {
		t.Fatalf("session before: %d events, %v", len(d.Events), err)
	}
	var body []byte
	if err := s.db.QueryRowContext(ctx, "SELECT body FROM events WHERE event_id = 'm2'").Scan(&body); err != nil {
		t.Fatal(err)
	}
	// Two whole events in one body: split at the separator, each part
	// would decode.
	joined := append(append(slices.Clip(body), eventSep), body...)
	if _, err := s.db.ExecContext(ctx, "UPDATE events SET body = ? WHERE event_id = 'm2'", joined); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Session(ctx, "acme", d.Session.ID); err == nil || !strings.Contains(err.Error(), "has 2 events, 3 bodies") {
		t.Fatalf("session with a body holding the separator: %d events, error %v", len(d.Events), err)
	}
}
