package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestPageChosenOnIndexes: sessions is a rowid table (schema.sql), whose
// indexes carry the rowid and not the key, so they end with session_id.
// Choosing a page, by a scan of the interval or a contact's ranges, reads
// the covering indexes alone (EXPLAIN QUERY PLAN says COVERING INDEX), and a
// session is looked up by its key through sessions_by_id.
func TestPageChosenOnIndexes(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	var events []event.Event
	for i := range 40 {
		b := storetest.B{Contact: fmt.Sprintf("c%03d", i), Name: fmt.Sprintf("Maria %d", i), Phone: fmt.Sprintf("+55 11 98765-%04d", i)}
		events = append(events, b.Msg(fmt.Sprintf("m%03d", i), time.Duration(i)*time.Minute, event.RoleCustomer, "oi"))
	}
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	plan := func(q string, args ...any) string { return queryPlan(t, tx, q, args...) }
	for _, tc := range []struct {
		name  string
		f     report.Filter
		index string
	}{
		{"scan", report.Filter{Channels: []string{"whatsapp"}}, "sessions_by_start_filters"},
		{"contact id", report.Filter{Contact: "c007"}, "sessions_by_contact"},
		{"name", report.Filter{Contact: "maria"}, "sessions_by_name"},
		{"phone", report.Filter{Contact: "98765-0007"}, "sessions_by_phone"},
	} {
		tc.f.Tenant, tc.f.From, tc.f.To = "acme", storetest.Base, storetest.Base.Add(24*time.Hour)
		w := translate(&tc.f, nil)
		if err := w.drive(ctx, tx, report.DefaultTotalBound, planner{}); err != nil {
			t.Fatal(err)
		}
		// As the export chooses a chunk: with the rowid where s is the
		// sessions table (the scan), which the index holds.
		list := "s.started_at, s.session_id"
		if w.sessionRows() {
			list += ", s.rowid"
		}
		if w.sessionRows() != (tc.name == "scan") {
			t.Errorf("%s: the rowid selected %v", tc.name, w.sessionRows())
		}
		q, args := w.query(list, true, " LIMIT ?", 10)
		p := plan(q, args...)
		if !strings.Contains(p, "COVERING INDEX "+tc.index) {
			t.Errorf("%s: the page is not chosen through %s alone:\n%s\n%s", tc.name, tc.index, p, q)
		}
		for _, line := range strings.Split(p, "\n") {
			if strings.Contains(line, "sessions") && !strings.Contains(line, "COVERING INDEX") {
				t.Errorf("%s: a session row is read to choose the page: %s\n%s", tc.name, line, p)
			}
		}
	}
	if p := plan(`SELECT doc FROM sessions WHERE tenant = ? AND session_id = ?`, "acme", "x"); !strings.Contains(p, "INDEX sessions_by_id (tenant=? AND session_id=?)") {
		t.Errorf("a session by its key: %s", p)
	}
	// The export's documents: a seek of the table per session by rowid,
	// no index; by id, through the key.
	if p := plan(docsByRowid, "[1,2]", "acme"); !strings.Contains(p, "SEARCH d USING INTEGER PRIMARY KEY (rowid=?)") || strings.Contains(p, "sessions_by_id") {
		t.Errorf("documents by rowid: %s", p)
	}
	if p := plan(docsByID, `["a","b"]`, "acme"); !strings.Contains(p, "SEARCH d USING INDEX sessions_by_id (tenant=? AND session_id=?)") {
		t.Errorf("documents by id: %s", p)
	}
}

// queryPlan is what EXPLAIN QUERY PLAN says of q, a line per step, in a
// transaction or on a pool.
func queryPlan(t *testing.T, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, q string, args ...any) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(q, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

// TestKeyedRanges: with one channel and a handoff asked for, a tag's and an
// information key's ranges are read in the indexes keyed by both
// (session_tags_by_value_filters, session_info_by_key_filters), which seek
// them; with two channels, or without a handoff, in the indexes by value
// and key, which test them on each entry.
func TestKeyedRanges(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	tx, err := s.readTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	yes := true
	exists := []report.Condition{{Key: "PLANO", Op: report.OpExists}}
	contains := []report.Condition{{Key: "PLANO", Op: report.OpContains, Value: "fibra"}}
	for _, tc := range []struct {
		name string
		f    report.Filter
		want []string // in the driver's plan
	}{
		{"tag, channel, handoff", report.Filter{Tags: []string{"T"}, Channels: []string{"whatsapp"}, HandedOff: &yes},
			[]string{"session_tags_by_value_filters (tenant=? AND tag=? AND channel=? AND handed_off=? AND started_at>? AND started_at<?)"}},
		{"info exists, channel, handoff", report.Filter{Info: exists, Channels: []string{"whatsapp"}, HandedOff: &yes},
			[]string{"session_info_by_key_filters (tenant=? AND key=? AND channel=? AND handed_off=? AND started_at>? AND started_at<?)"}},
		{"info contains, channel, not handed off", report.Filter{Info: contains, Channels: []string{"webchat"}, HandedOff: new(bool)},
			[]string{"session_info_by_key_filters (tenant=? AND key=? AND channel=? AND handed_off=? AND started_at>? AND started_at<?)"}},
		{"tag, two channels, handoff", report.Filter{Tags: []string{"T"}, Channels: []string{"whatsapp", "webchat"}, HandedOff: &yes},
			[]string{"session_tags_by_value (tenant=? AND tag=? AND started_at>? AND started_at<?)"}},
		{"info exists, channel", report.Filter{Info: exists, Channels: []string{"whatsapp"}},
			[]string{"session_info_by_key (tenant=? AND key=? AND started_at>? AND started_at<?)"}},
	} {
		tc.f.Tenant, tc.f.From, tc.f.To = "acme", storetest.Base, storetest.Base.Add(24*time.Hour)
		w := translate(&tc.f, nil)
		if err := w.drive(ctx, tx, report.DefaultTotalBound, planner{mode: planAuto}); err != nil {
			t.Fatal(err)
		}
		q, args := w.query("1", true, " LIMIT ?", 10)
		p := queryPlan(t, tx, q, args...)
		for _, want := range tc.want {
			if !strings.Contains(p, want) {
				t.Errorf("%s: the plan reads no %s:\n%s\n%s", tc.name, want, p, q)
			}
		}
	}
}
