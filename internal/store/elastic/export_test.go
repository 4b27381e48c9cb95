package elastic

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// exportSessions is how many sessions the export tests write: a page of the
// export and some, so that the export reads a second page after its first
// emit.
const exportSessions = report.ExportChunk + 10

// TestExportSnapshot: an export reads one snapshot of the sessions and one
// of the events, opened when it starts. Events and sessions written while
// it runs — here while the client reads its first page — are not in it,
// though its later pages are read after them; a client slower than the
// keep-alive of the points in time still gets the whole export, which
// renews them while it waits; and the points in time are closed however
// the export ends.
func TestExportSnapshot(t *testing.T) {
	t.Run("writes during the export", func(t *testing.T) {
		f := esfake.New(t)
		s := fakeStore(t, f)
		storetest.Ingest(t, s, storetest.ManySessions(exportSessions)...)
		oldest := storetest.ManyContact(0)
		emits, n := 0, 0
		var first report.Detail // the first session's, as the export has it
		err := storetest.ExportDetails(t.Context(), s, storetest.ExportFilter, func(d report.Detail) error {
			if n == 0 {
				// While the client reads the first session: another
				// message of the oldest session (on the last page),
				// and a new session, newer than every other.
				emits++
				storetest.Ingest(t, s,
					oldest.Msg("late", 30*time.Second, event.RoleCustomer, "mais uma"),
					storetest.ManyContact(exportSessions).Msg("new", time.Duration(exportSessions)*time.Minute, event.RoleCustomer, "oi"))
			}
			n++
			if d.Session.Contact.ID == oldest.Contact {
				first = d
			}
			if d.Session.Contact.ID == storetest.ManyContact(exportSessions).Contact {
				return fmt.Errorf("the session written during the export is in it")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != exportSessions || emits != 1 {
			t.Fatalf("exported %d sessions, want %d", n, exportSessions)
		}
		if len(first.Events) != 1 || first.Session.Events != 1 {
			t.Fatalf("the oldest session: exported with %d events (its document says %d), want the 1 it had when the export began",
				len(first.Events), first.Session.Events)
		}
		// The late message was written and is visible to reads since.
		now, err := s.Session(t.Context(), "acme", first.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(now.Events) != 2 {
			t.Fatalf("the oldest session has %d events after the export, want 2", len(now.Events))
		}
		if open := f.PointsInTime(); open != 0 {
			t.Fatalf("%d points in time left open", open)
		}
	})

	t.Run("slow client", func(t *testing.T) {
		f := esfake.New(t)
		const keepAlive = 1500 * time.Millisecond // renewed every 500 ms: a second of slack on a loaded machine
		s := fakeStore(t, f, func(c *Config) { c.ExportKeepAlive = keepAlive })
		storetest.Ingest(t, s, storetest.ManySessions(exportSessions)...)
		n := 0
		err := storetest.ExportDetails(t.Context(), s, storetest.ExportFilter, func(report.Detail) error {
			if n == 0 {
				// Longer than the keep-alive after the export's last
				// search through either point in time.
				time.Sleep(3 * keepAlive)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatalf("export with a slow client: %v", err)
		}
		if n != exportSessions {
			t.Fatalf("exported %d sessions, want %d", n, exportSessions)
		}
		if open := f.PointsInTime(); open != 0 {
			t.Fatalf("%d points in time left open", open)
		}
	})

	t.Run("closed when the export fails or is cancelled", func(t *testing.T) {
		f := esfake.New(t)
		s := fakeStore(t, f)
		storetest.Ingest(t, s, storetest.ManySessions(exportSessions)...)
		stop := errors.New("client went away")
		if err := storetest.ExportDetails(t.Context(), s, storetest.ExportFilter, func(report.Detail) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("export: %v, want %v", err, stop)
		}
		if open := f.PointsInTime(); open != 0 {
			t.Fatalf("after emit failed: %d points in time left open", open)
		}
		ctx, cancel := context.WithCancel(t.Context())
		err := storetest.ExportDetails(ctx, s, storetest.ExportFilter, func(report.Detail) error { cancel(); return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled export: %v", err)
		}
		if open := f.PointsInTime(); open != 0 {
			t.Fatalf("after the export was cancelled: %d points in time left open", open)
		}
	})
}
