package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
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
	page := report.Page{Limit: report.MaxPageLimit}
	for {
		res, err := s.Search(ctx, f, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, ss := range res.Items {
			want = append(want, ss.ID+" 1")
		}
		if res.Next == nil {
			break
		}
		page.After = res.Next
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
