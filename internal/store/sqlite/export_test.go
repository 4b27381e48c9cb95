package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// idEncoder writes each session's id and event count, a line each.
type idEncoder struct{}

func (idEncoder) Append(dst []byte, d *report.StoredDetail) ([]byte, error) {
	return fmt.Appendf(dst, "%s %d\n", d.Session.ID, len(d.Events)), nil
}

// TestExportOrderAndStop: an export of many chunks, read on several
// goroutines, emits every session once in Search's order, chunk by chunk;
// one that emit stops (the client went away) or whose context ends returns
// at once, with its goroutines stopped and its connections and
// transactions given back, with their usual page cache.
func TestExportOrderAndStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 7*report.ExportChunk + 13
	policy := pipeline.MustDefault().PolicyFor("whatsapp")
	var ch session.Changes
	for i := range n {
		b := storetest.B{Contact: fmt.Sprintf("55119%08d", i)}
		e := b.Msg(fmt.Sprintf("e%05d", i), time.Duration(i)*time.Minute, event.RoleCustomer, "oi")
		id := session.DeriveID(&e)
		ch.Sessions = append(ch.Sessions, session.Summarize(id, session.KeyOf(&e), policy, []*event.Event{&e}))
		ch.Events = append(ch.Events, session.Stored{Event: &e, SessionID: id})
	}
	if err := s.Update(ctx, func(context.Context, session.Reader) (session.Changes, error) { return ch, nil }); err != nil {
		t.Fatal(err)
	}
	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(n * time.Minute)}
	var want []string
	for _, id := range searchIDs(t, s, f) {
		want = append(want, id+" 1")
	}
	inUse := s.db.Stats().InUse
	newEncoder := func() report.Encoder { return idEncoder{} }

	var got []string
	chunks := 0
	err = s.Export(ctx, f, newEncoder, func(chunk []byte, ends []int) error {
		lines := strings.Split(strings.TrimSuffix(string(chunk), "\n"), "\n")
		if len(lines) != len(ends) || len(ends) > report.ExportChunk || ends[len(ends)-1] != len(chunk) {
			return fmt.Errorf("a chunk of %d sessions holds %d lines", len(ends), len(lines))
		}
		start := 0
		for i, end := range ends {
			if string(chunk[start:end]) != lines[i]+"\n" {
				return fmt.Errorf("session %d of a chunk ends at %d", i, end)
			}
			start = end
		}
		got = append(got, lines...)
		chunks++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != n || !slices.Equal(got, want) || chunks != 8 {
		t.Fatalf("exported %d sessions in %d chunks, want the %d of Search in 8", len(got), chunks, len(want))
	}

	stop := errors.New("client went away")
	calls := 0
	if err := s.Export(ctx, f, newEncoder, func([]byte, []int) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("export after emit failed: %v after %d chunks", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	err = s.Export(cctx, f, newEncoder, func([]byte, []int) error { calls++; cancel(); return nil })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("export whose context ended: %v after %d chunks", err, calls)
	}
	// A context that ends at any moment: an export that says it is
	// complete emitted every session (one that ended between emitting a
	// chunk and the readers choosing the next returned nil once).
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 60 {
		cctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(time.Duration(rng.IntN(3000))*time.Microsecond, cancel)
		sessions := 0
		err := s.Export(cctx, f, newEncoder, func(_ []byte, ends []int) error { sessions += len(ends); return nil })
		timer.Stop()
		cancel()
		if err == nil && sessions != n {
			t.Fatalf("run %d: the export returned no error after %d of %d sessions", i, sessions, n)
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if got := s.db.Stats().InUse; got != inUse {
		t.Fatalf("%d connections in use after the exports, %d before", got, inUse)
	}
	// The readers' connections went back to the pool with the cache every
	// connection opens with.
	for range exportReaders() {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var pages int
		if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&pages); err != nil || pages != -65536 {
			t.Fatalf("a pooled connection's cache_size is %d (%v)", pages, err)
		}
	}
}

// recorder keeps a copy of every session an export encodes (its readers
// encode at once), and writes its id as its line.
type recorder struct {
	got *sync.Map // session id: report.StoredDetail
}

func (r recorder) Append(dst []byte, d *report.StoredDetail) ([]byte, error) {
	c := report.StoredDetail{Session: d.Session}
	for _, body := range d.Events {
		c.Events = append(c.Events, bytes.Clone(body))
	}
	if _, dup := r.got.LoadOrStore(d.Session.ID, c); dup {
		return dst, fmt.Errorf("session %s encoded twice", d.Session.ID)
	}
	return append(append(dst, d.Session.ID...), '\n'), nil
}

// TestExportMatchesSession: the sessions an export hands its encoder,
// chosen on the report order's index and read chunk by chunk on several
// readers, are those Search finds, each exactly as Session's read gives it
// (document and stored events, byte for byte), on random sessions of
// several chunks, for filters that choose every way of reading the
// sessions (where.source): those that read the sessions table, whose
// documents are read by rowid, and those that read a driver's rows alone,
// whose documents are read by id.
func TestExportMatchesSession(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	rng := rand.New(rand.NewPCG(1, 2))
	policy := pipeline.MustDefault().PolicyFor("whatsapp")
	const n = 3*report.ExportChunk + 57
	var ch session.Changes
	for i := range n {
		b := storetest.B{Contact: fmt.Sprintf("55119%08d", i), Name: fmt.Sprintf("Cliente %d", i)}
		// Several sessions may start in the same millisecond: the
		// cursor between chunks must keep them apart by id.
		at := time.Duration(i/3) * time.Minute
		var events []*event.Event
		for k := range 1 + rng.IntN(6) {
			// Events two by two in one millisecond, their ids in the
			// other order: the events' order is time, then id.
			id := fmt.Sprintf("e%05d-%d", i, 9-k)
			step := at + time.Duration(k/2)*time.Second
			var e event.Event
			switch rng.IntN(4) {
			case 0:
				e = b.Tag(id, step, []string{"Negociação", "Segunda Via Sucesso"}[rng.IntN(2)])
			case 1:
				e = b.Info(id, step, "PLANO", fmt.Sprintf("Fibra %d", rng.IntN(900)))
			default:
				e = b.Msg(id, step, event.RoleCustomer, fmt.Sprintf("mensagem \"%d\" ção", rng.Int()))
			}
			events = append(events, &e)
		}
		id := session.DeriveID(events[0])
		ch.Sessions = append(ch.Sessions, session.Summarize(id, session.KeyOf(events[0]), policy, events))
		for _, e := range events {
			ch.Events = append(ch.Events, session.Stored{Event: e, SessionID: id})
		}
	}
	if err := s.Update(ctx, func(context.Context, session.Reader) (session.Changes, error) { return ch, nil }); err != nil {
		t.Fatal(err)
	}
	// The stored bodies of a session's events, by a statement of their own
	// that names the session and sorts them.
	bodies, err := s.db.PrepareContext(ctx, `SELECT body FROM events WHERE tenant = ? AND session_id = ? ORDER BY occurred_at, event_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer bodies.Close()
	kinds := map[sourceKind]bool{}
	// Every filter's export, first with the events read from events, then
	// with every session packed (none is settled: packEvery packs them
	// as the packer packs settled ones), each session then compared with
	// its export without packs (unpacked: the statement per session above
	// reads the whole table, too slow to run twice under -race).
	unpacked := map[string]report.StoredDetail{}
	for _, packed := range []bool{false, true} {
		if packed {
			if n := packEvery(t, s); n != len(ch.Sessions) {
				t.Fatalf("%d sessions packed of %d", n, len(ch.Sessions))
			}
		}
		compared := map[bool]map[string]bool{false: {}, true: {}}
		// A filter for each way the choosing statement reads its sessions
		// (where.source), as the plan it names chooses; the documents are read
		// by the rowids that statement read where it reads the sessions table
		// (its index holds them), by id where it reads a driver's rows alone.
		both := []string{"Negociação", "Segunda Via Sucesso"}
		for _, tc := range []struct {
			name   string
			plan   int
			f      report.Filter
			kind   sourceKind
			rowids bool
		}{
			{"no filter", planAuto, report.Filter{}, fromScan, true},
			{"a tag", planAuto, report.Filter{Tags: both[:1]}, fromDriverRows, false},
			{"a contact", planAuto, report.Filter{Contact: "cliente 1"}, fromDriverRows, false},
			{"a tag and a channel", planAuto, report.Filter{Channels: []string{"whatsapp"}, Tags: both[:1]}, fromDriverRows, false},
			{"two tags, all of", planAuto, report.Filter{Tags: both, TagMode: report.TagsAll}, fromCompound, false},
			{"an information negation", planAuto, report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpNotContain, Value: "1"}}}, fromCompound, false},
			{"a contact and a channel", planAuto, report.Filter{Contact: "cliente 1", Channels: []string{"whatsapp"}}, fromOrderedJoin, true},
			{"a tag and a contact", planOneRange, report.Filter{Tags: both[:1], Contact: "cliente", HandedOff: new(bool)}, fromOrderedJoin, true},
			{"two tags, any of", planUnordered, report.Filter{Tags: both}, fromUnorderedJoin, true},
			{"a tag, scanned", planScan, report.Filter{Tags: both[:1]}, fromScan, true},
		} {
			f := tc.f
			f.Tenant, f.From, f.To = "acme", storetest.Base.Add(-time.Hour), storetest.Base.Add(n*time.Minute)
			s.planner = planner{mode: tc.plan}
			want := searchIDs(t, s, f)
			if kind, rowids := exportSource(t, s, f); kind != tc.kind || rowids != tc.rowids {
				t.Errorf("%s: the export chose its sessions from %s, documents by rowid %v; want %s, %v", tc.name, kind, rowids, tc.kind, tc.rowids)
			}
			kinds[tc.kind] = true
			var (
				got sync.Map
				ids []string
			)
			err := s.Export(ctx, f, func() report.Encoder { return recorder{&got} }, func(chunk []byte, _ []int) error {
				ids = append(ids, strings.Fields(string(chunk))...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				v, _ := got.Load(id)
				d := v.(report.StoredDetail)
				if packed {
					u, ok := unpacked[id]
					if !ok || !reflect.DeepEqual(d.Session, u.Session) || !slices.EqualFunc(d.Events, u.Events, bytes.Equal) {
						t.Fatalf("%s: session %s exported with packs (%d events) otherwise than without (%d)", tc.name, id, len(d.Events), len(u.Events))
					}
					continue
				}
				unpacked[id] = d
				// A session read the same way (by rowid or by id) was
				// compared already, under another filter.
				if compared[tc.rowids][id] {
					continue
				}
				compared[tc.rowids][id] = true
				rows, err := bodies.QueryContext(ctx, f.Tenant, id)
				if err != nil {
					t.Fatal(err)
				}
				var stored [][]byte
				for rows.Next() {
					var body []byte
					if err := rows.Scan(&body); err != nil {
						t.Fatal(err)
					}
					stored = append(stored, body)
				}
				rows.Close()
				if len(stored) == 0 || !slices.EqualFunc(d.Events, stored, bytes.Equal) {
					t.Fatalf("session %s: exported %d events, %d stored (or other bytes, another order)", id, len(d.Events), len(stored))
				}
				w := &where{tenant: f.Tenant}
				w.add("s.tenant = ? AND s.session_id = ?", f.Tenant, d.Session.ID)
				var c chunk
				if err := s.read(ctx, w, 1, &c); err != nil || len(c.list) != 1 {
					t.Fatalf("read %s: %v", d.Session.ID, err)
				}
				one := &c.list[0]
				if !reflect.DeepEqual(d.Session, one.Session) || !slices.EqualFunc(d.Events, one.Events, bytes.Equal) {
					t.Fatalf("session %s: exported %+v with %d events, read %+v with %d", d.Session.ID, d.Session, len(d.Events), one.Session, len(one.Events))
				}
			}
			if len(want) < 50 || !slices.Equal(ids, want) {
				t.Fatalf("%s (packed %v): exported %d sessions, Search found %d (or another order)", tc.name, packed, len(ids), len(want))
			}
		}
	}
	for k := fromScan; k <= fromUnorderedJoin; k++ {
		if !kinds[k] {
			t.Errorf("no filter chooses its sessions from %s", k)
		}
	}
}

// exportSource is how an export's first chunk of f reads its sessions (in
// s's plan) and whether it reads their documents by rowid.
func exportSource(t *testing.T, s *Store, f report.Filter) (sourceKind, bool) {
	t.Helper()
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var c exportChunk
	w := translate(&f, nil)
	tx, err := c.choose(ctx, conn, w, s.planner)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	if len(c.chosen) == 0 {
		t.Fatalf("filter %+v: nothing chosen", f)
	}
	return w.source().kind, c.rowids
}
