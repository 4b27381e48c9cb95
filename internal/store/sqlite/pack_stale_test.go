package sqlite

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
)

// TestPacksNeverStale: generated traffic (late events, duplicates, moves
// between sessions) written by two stores on one file, with a Forget
// partway through; after every batch every session without a pack is
// packed, settled or not (so the next batches change packed sessions), and
// every pack must be eventsStatement's row of its session, with no pack
// left of a deleted session. The stores' own packers run meanwhile.
func TestPacksNeverStale(t *testing.T) {
	seeds := uint64(4)
	if testing.Short() {
		seeds = 1
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ctx := t.Context()
			rng := rand.New(rand.NewPCG(seed, seed+1))
			events := sessiontest.Generate(rng, sessiontest.Options{Tenants: []string{"acme", "globex"}, Conversations: 150,
				MaxEvents: 12, Start: sessiontest.Base, Spread: 5 * 24 * time.Hour})
			arrival := sessiontest.Arrange(rng, sessiontest.Duplicate(rng, events, 0.05), sessiontest.Late)
			path := filepath.Join(t.TempDir(), "packs.db")
			var stores []*Store
			for range 2 {
				s, err := Open(ctx, path, WithPacker())
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				stores = append(stores, s)
			}
			batches, checked, forgotten := 0, 0, int64(0)
			for len(arrival) > 0 {
				n := min(len(arrival), 1+rng.IntN(80))
				batch := arrival[:n]
				arrival = arrival[n:]
				w := stores[batches%2]
				if err := session.NewAssembler(sessiontest.Definition(), w).Ingest(ctx, batch); err != nil {
					t.Fatal(err)
				}
				if batches == 8 {
					f, err := w.Forget(ctx, "acme", "5511900000001")
					if err != nil {
						t.Fatal(err)
					}
					forgotten = f.Events
				}
				packUnpacked(t, stores[(batches+1)%2])
				checked += checkPacks(t, stores[0], fmt.Sprint("batch ", batches))
				batches++
			}
			if batches <= 8 || forgotten == 0 || checked < 10*batches {
				t.Fatalf("%d batches, %d events forgotten, %d packs checked: the traffic tests too little", batches, forgotten, checked)
			}
		})
	}
}

// checkPacks fails unless every pack of s is eventsStatement's row of the
// session it names (rowid and owner) and no pack names no session; it
// returns how many packs it checked.
func checkPacks(t *testing.T, s *Store, what string) int {
	t.Helper()
	ctx := t.Context()
	var orphans int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM event_packs p WHERE NOT EXISTS (SELECT 1 FROM sessions d
		WHERE d.rowid = p.session AND d.tenant = p.tenant AND d.session_id = p.session_id)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Fatalf("%s: %d packs of no session", what, orphans)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT p.tenant, d.doc, p.events FROM event_packs p JOIN sessions d ON d.rowid = p.session`)
	if err != nil {
		t.Fatal(err)
	}
	type packed struct {
		tenant    string
		doc, pack []byte
	}
	var all []packed
	for rows.Next() {
		var x packed
		if err := rows.Scan(&x.tenant, &x.doc, &x.pack); err != nil {
			t.Fatal(err)
		}
		all = append(all, x)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for _, x := range all {
		var c chunk
		c.list = append(c.list, report.StoredDetail{})
		if err := (&docReader{}).decode(x.doc, &c.list[0].Session); err != nil {
			t.Fatal(err)
		}
		var joined *string
		if err := s.db.QueryRowContext(ctx, eventsStatement, c.boundSpans(nil), x.tenant).Scan(new(int), &joined); err != nil {
			t.Fatal(err)
		}
		if joined == nil || *joined != string(x.pack) {
			t.Fatalf("%s: stale pack of session %s/%s", what, x.tenant, c.list[0].Session.ID)
		}
	}
	return len(all)
}

// packUnpacked packs every session of s without a pack, settled or not,
// in a write transaction taken as the packer takes it.
func packUnpacked(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	for {
		select {
		case s.writer <- struct{}{}:
		case <-time.After(time.Millisecond):
			continue
		}
		break
	}
	defer s.unlock()
	tx, err := s.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := s.checkWriters(ctx, tx); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT s.rowid, s.tenant, s.session_id, s.doc FROM sessions s WHERE NOT EXISTS (SELECT 1
		FROM event_packs p WHERE p.session = s.rowid AND p.tenant = s.tenant AND p.session_id = s.session_id) ORDER BY s.rowid`)
	if err != nil {
		t.Fatal(err)
	}
	byTenant := packChunksOf(t, rows)
	for tenant, c := range byTenant {
		if _, err := writePacks(ctx, tx, tenant, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
