package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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

// TestGroupSorts: rows that came out of events_by_key_time's order are put
// back in it, session by session: time to the millisecond, then event id.
func TestGroupSorts(t *testing.T) {
	c := chunk{list: make([]report.StoredDetail, 2)}
	for _, r := range []struct {
		session int
		at      int64
		id      string
	}{{1, 5, "a"}, {0, 7, "b"}, {0, 3, "c"}, {1, 5, "0"}, {0, 7, "a"}} {
		row := eventRow{session: r.session, at: r.at, id: len(c.bytes)}
		c.bytes = append(c.bytes, r.id...)
		row.body = len(c.bytes)
		c.bytes = append(c.bytes, `{"event_id":"`+r.id+`"}`...)
		row.end = len(c.bytes)
		c.rows = append(c.rows, row)
	}
	c.group()
	var got [2][]string
	for i := range c.list {
		for _, body := range c.list[i].Events {
			got[i] = append(got[i], string(body))
		}
	}
	want := [2][]string{{`{"event_id":"c"}`, `{"event_id":"a"}`, `{"event_id":"b"}`}, {`{"event_id":"0"}`, `{"event_id":"a"}`}}
	if !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
		t.Fatalf("grouped %q, want %q", got, want)
	}
}
