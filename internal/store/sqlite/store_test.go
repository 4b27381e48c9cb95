package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, _ := openStore(context.Background(), t)
		return s
	})
}

// oldLayout turns a database of today's layout into one of an older schema
// version: events WITHOUT ROWID keyed by (tenant, event_id), indexed by key and
// by session; from version 1 the full-text index through message_rows, filled
// by a trigger; before version 2 times in nanoseconds; before version 4
// contact names lowered, not folded; before version 5 phone digits not
// reversed and no started_at in the side tables; before version 9 no ref;
// before version 10 sessions WITHOUT ROWID, keyed by (tenant, session_id);
// before version 11 no side-table indexes keyed by channel and handoff;
// before version 12 no session_words, session_buckets or shared_buckets;
// before version 13 no event_packs and its triggers.
func oldLayout(version int) []string {
	// Before version 13 there were no packs.
	qs := []string{`DROP TRIGGER sessions_unpack_update`, `DROP TRIGGER sessions_unpack_delete`,
		`DROP TRIGGER events_unpack_move`, `DROP TRIGGER events_unpack_delete`, `DROP TABLE event_packs`}
	if version == 12 {
		return append(qs, `PRAGMA user_version = 12`)
	}
	// Before version 12 there were no words by session and no buckets.
	qs = append(qs, `DROP TABLE session_words`, `DROP TABLE session_buckets`, `DROP TABLE shared_buckets`)
	if version == 11 {
		return append(qs, `PRAGMA user_version = 11`)
	}
	// Before version 11 the side tables had no indexes keyed by channel
	// and handoff.
	qs = append(qs, `DROP INDEX session_tags_by_value_filters`, `DROP INDEX session_info_by_key_filters`)
	if version == 10 {
		return append(qs, `PRAGMA user_version = 10`)
	}
	qs = append(qs, `CREATE TABLE sessions_x (
			tenant TEXT NOT NULL, session_id TEXT NOT NULL, session_key TEXT NOT NULL, started_at INTEGER NOT NULL,
			channel TEXT NOT NULL, contact_id TEXT NOT NULL, contact_phone_rev TEXT NOT NULL,
			contact_name_folded TEXT NOT NULL, handed_off INTEGER NOT NULL, doc BLOB NOT NULL,
			PRIMARY KEY (tenant, session_id)) WITHOUT ROWID`,
		`INSERT INTO sessions_x SELECT * FROM sessions`, `DROP TABLE sessions`, `ALTER TABLE sessions_x RENAME TO sessions`,
		`CREATE INDEX sessions_by_start_filters ON sessions (tenant, started_at, session_id,
			channel, handed_off, contact_id, contact_phone_rev, contact_name_folded)`,
		`CREATE INDEX sessions_by_key ON sessions (tenant, session_key, started_at)`,
		`CREATE INDEX sessions_by_contact ON sessions (tenant, contact_id, started_at)`,
		`CREATE INDEX sessions_by_phone ON sessions (tenant, contact_phone_rev, started_at)`,
		`CREATE INDEX sessions_by_name ON sessions (tenant, contact_name_folded, started_at)`)
	if version == 9 {
		return append(qs, `PRAGMA user_version = 9`)
	}
	return append(qs, olderLayout(version)...)
}

// olderLayout is what oldLayout does to a database before version 9 after
// it has made its sessions WITHOUT ROWID.
func olderLayout(version int) []string {
	times, nanos := "occurred_at", "UPDATE sessions SET started_at = started_at"
	if version < 2 {
		times, nanos = "occurred_at * 1000000", "UPDATE sessions SET started_at = started_at * 1000000"
	}
	qs := []string{`CREATE TABLE events_x (
			tenant TEXT NOT NULL, event_id TEXT NOT NULL, session_key TEXT NOT NULL, session_id TEXT NOT NULL,
			occurred_at INTEGER NOT NULL, type TEXT NOT NULL, body BLOB NOT NULL,
			PRIMARY KEY (tenant, event_id)) WITHOUT ROWID`,
		`INSERT INTO events_x SELECT tenant, event_id, session_key, session_id, ` + times + `, type, body FROM events`,
		`DROP TABLE events`, `ALTER TABLE events_x RENAME TO events`,
		`CREATE INDEX events_by_key ON events (tenant, session_key, occurred_at)`,
		`CREATE INDEX events_by_session ON events (tenant, session_id, occurred_at, event_id)`,
		nanos,
		`INSERT INTO message_words (message_words) VALUES ('delete-all')`,
	}
	if version >= 3 {
		// Version 3 is today's layout but for contact names, phones,
		// side tables and, before version 9, events found by (tenant,
		// event_id) in a unique index instead of by a hash of them.
		qs = []string{`DROP INDEX events_by_ref_hash`, `ALTER TABLE events DROP COLUMN ref`,
			`CREATE UNIQUE INDEX events_by_ref ON events (tenant, event_id)`}
	}
	if version == 8 {
		return append(qs, `PRAGMA user_version = 8`)
	}
	// Before version 7 the side tables carried no channel and handed_off.
	qs = append(qs, `DROP INDEX session_tags_by_value`, `DROP INDEX session_protocols_by_value`,
		`DROP INDEX session_info_by_value`, `DROP INDEX session_info_by_key`)
	for _, t := range []string{"session_tags", "session_protocols", "session_info"} {
		qs = append(qs, `ALTER TABLE `+t+` DROP COLUMN channel`, `ALTER TABLE `+t+` DROP COLUMN handed_off`)
	}
	qs = append(qs, `CREATE INDEX session_tags_by_value ON session_tags (tenant, tag, started_at, session_id)`,
		`CREATE INDEX session_protocols_by_value ON session_protocols (tenant, protocol, started_at, session_id)`,
		`CREATE INDEX session_info_by_value ON session_info (tenant, key, value_lower, started_at, session_id)`,
		`CREATE INDEX session_info_by_key ON session_info (tenant, key, started_at, session_id, value_lower)`)
	if version < 4 {
		// Contact names were only lowered.
		qs = append(qs, `ALTER TABLE sessions RENAME COLUMN contact_name_folded TO contact_name_lower`,
			`UPDATE sessions SET contact_name_lower = 'cláudia'`)
	}
	// Before version 7 there were no contact_names.
	qs = append(qs, `DROP TABLE contact_names`)
	if version == 6 {
		return append(qs, `PRAGMA user_version = 6`)
	}
	// Before version 6 there were no session_marks.
	qs = append(qs, `DROP TABLE session_marks`)
	if version == 5 {
		return append(qs, `PRAGMA user_version = 5`)
	}
	// Before version 5 phone digits were kept as they are, and the side
	// tables had no started_at.
	qs = append(qs, `ALTER TABLE sessions RENAME COLUMN contact_phone_rev TO contact_phone_digits`,
		`UPDATE sessions SET contact_phone_digits = '5511987654321'`)
	qs = append(qs, `DROP INDEX session_info_by_key`)
	for _, t := range []string{"session_tags", "session_protocols", "session_info"} {
		qs = append(qs, `DROP INDEX `+t+`_by_value`, `ALTER TABLE `+t+` DROP COLUMN started_at`)
	}
	qs = append(qs, `CREATE INDEX session_info_by_key ON session_info (tenant, key, value_lower)`,
		`CREATE INDEX session_tags_by_tag ON session_tags (tenant, tag)`)
	if version == 1 || version == 2 {
		qs = append(qs, `CREATE TABLE message_rows (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, event_id TEXT NOT NULL, UNIQUE (tenant, event_id))`,
			`INSERT INTO message_rows (tenant, event_id) SELECT tenant, event_id FROM events WHERE type = 'message'`,
			`INSERT INTO message_words (rowid, text) SELECT r.id, json_extract(CAST(e.body AS TEXT), '$.text')
				FROM message_rows r JOIN events e USING (tenant, event_id)`,
			`CREATE TRIGGER events_index_words AFTER INSERT ON events
				WHEN new.type = 'message' AND coalesce(json_extract(CAST(new.body AS TEXT), '$.text'), '') <> ''
				BEGIN
					INSERT INTO message_rows (tenant, event_id) VALUES (new.tenant, new.event_id);
					INSERT INTO message_words (rowid, text) VALUES (last_insert_rowid(), json_extract(CAST(new.body AS TEXT), '$.text'));
				END`)
	}
	return append(qs, fmt.Sprintf(`PRAGMA user_version = %d`, version))
}

// TestMigrate: a database of every older schema version opens into today's
// layout with its sessions, events, times and full-text index intact, and
// what is ingested afterwards is indexed once.
func TestMigrate(t *testing.T) {
	for _, version := range []int{0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12} {
		t.Run(fmt.Sprint("version ", version), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "old.db")
			s, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			b := storetest.B{Contact: "c1", Name: "CLÁUDIA", Phone: "+55 11 98765-4321"}
			e := b.Msg("e1", 0, event.RoleCustomer, "NÃO recebi a fatura")
			e.Protocol = "20251007092633646" // an attendance, open: an outcome
			// A session of another tenant that starts in the same millisecond:
			// the upgrade to version 12 finds the bucket shared.
			g := storetest.B{Tenant: "globex", Contact: "c2"}
			if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, []event.Event{e, b.Tag("e2", time.Second, "x"), g.Tag("g1", 0, "x")}); err != nil {
				t.Fatal(err)
			}
			want, err := s.Session(ctx, "acme", session.DeriveID(&e))
			if err != nil {
				t.Fatal(err)
			}
			s.Close()

			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range oldLayout(version) {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(q, err)
				}
			}

			for reopen := range 2 { // migrating twice changes nothing
				s, err = sqlite.Open(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				f := report.Filter{Tenant: "acme", From: storetest.Base, To: storetest.Base.Add(time.Hour), Query: "nao fatura"}
				res, err := s.Search(ctx, f, report.Page{Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if res.Total != 1 || len(res.Items) != 1 || res.Items[0].ID != want.Session.ID {
					t.Fatalf("open %d: full text after migration: %+v", reopen, res)
				}
				// One word: read from session_words.
				f.Query = "NAO"
				if res, err = s.Search(ctx, f, report.Page{Limit: 10}); err != nil || res.Total != 1 || res.Items[0].ID != want.Session.ID {
					t.Fatalf("open %d: one word after migration: %+v, %v", reopen, res, err)
				}
				for _, f := range []report.Filter{{Contact: "Claudia"}, {Contact: "98765-4321"}, {Tags: []string{"x"}},
					{Tags: []string{"x"}, Contact: "(11) 98765-4321"}, {Outcomes: []string{session.OutcomeOpen}, Now: storetest.Base},
					{Tags: []string{"x"}, Channels: []string{"whatsapp"}, HandedOff: new(bool)}} {
					f.Tenant, f.From, f.To = "acme", storetest.Base, storetest.Base.Add(time.Hour)
					if res, err = s.Search(ctx, f, report.Page{Limit: 10}); err != nil || res.Total != 1 {
						t.Fatalf("open %d: %+v after migration: %+v, %v", reopen, f, res, err)
					}
				}
				var buckets, shared int
				db.QueryRow(`SELECT count(*) FROM session_buckets`).Scan(&buckets)
				db.QueryRow(`SELECT count(*) FROM shared_buckets`).Scan(&shared)
				if buckets != 2 || shared != 1 {
					t.Fatalf("open %d: %d session buckets, %d shared; want 2 sessions' buckets, 1 shared", reopen, buckets, shared)
				}
				got, err := s.Session(ctx, "acme", want.Session.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("open %d: session after migration\n got %+v\nwant %+v", reopen, got, want)
				}
				s.Close()
			}

			// New messages are indexed once, without the old trigger.
			s, err = sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			batch := []event.Event{b.Msg("e3", 2*time.Second, event.RoleBot, "segunda via"), b.Msg("e4", 3*time.Second, event.RoleCustomer, "boleto")}
			if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, batch); err != nil {
				t.Fatal(err)
			}
			var triggers, tables, words, sessionWords int
			// No trigger but event_packs' four (pack_test.go).
			db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name NOT IN
				('sessions_unpack_update', 'sessions_unpack_delete', 'events_unpack_move', 'events_unpack_delete')`).Scan(&triggers)
			db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name IN ('message_rows', 'events_old', 'events_by_session')`).Scan(&tables)
			db.QueryRow(`SELECT count(*) FROM message_words WHERE message_words MATCH 'fatura OR segunda OR boleto'`).Scan(&words)
			// The migrated message in one row, the two new ones in another.
			db.QueryRow(`SELECT count(*) FROM session_words WHERE session_words MATCH 'fatura OR segunda OR boleto'`).Scan(&sessionWords)
			if triggers != 0 || tables != 0 || words != 3 || sessionWords != 2 {
				t.Fatalf("triggers %d, old tables %d, indexed messages %d, session rows %d; want 0, 0, 3, 2", triggers, tables, words, sessionWords)
			}

			// The migrated events are found by their identity: a
			// redelivery and an id stored under another key are not
			// stored again.
			s.Close()
			if s, err = sqlite.Open(ctx, path); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			other := storetest.B{Contact: "c2"}.Tag("e2", time.Minute, "y")
			if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, []event.Event{e, other}); err != nil {
				t.Fatal(err)
			}
			var events, unhashed, oldIndex int
			db.QueryRow(`SELECT count(*) FILTER (WHERE tenant = 'acme'), count(*) FILTER (WHERE ref = 0) FROM events`).Scan(&events, &unhashed)
			db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'events_by_ref'`).Scan(&oldIndex)
			if events != 4 || unhashed != 0 || oldIndex != 0 {
				t.Fatalf("%d events, %d without ref, old index %d; want 4, 0, 0", events, unhashed, oldIndex)
			}

			// The sessions are a rowid table keyed by a unique index
			// of (tenant, session_id); the later batches updated the
			// one session's row in place.
			var withoutRowid, sessions, unique int
			db.QueryRow(`SELECT wr FROM pragma_table_list WHERE name = 'sessions'`).Scan(&withoutRowid)
			db.QueryRow(`SELECT count(*) FROM sessions WHERE tenant = 'acme'`).Scan(&sessions)
			db.QueryRow(`SELECT count(*) FROM pragma_index_list('sessions') WHERE name = 'sessions_by_id' AND "unique"`).Scan(&unique)
			if withoutRowid != 0 || sessions != 1 || unique != 1 {
				t.Fatalf("sessions WITHOUT ROWID %d, %d sessions, unique key %d; want 0, 1, 1", withoutRowid, sessions, unique)
			}

			// The side tables have their indexes keyed by channel and
			// handoff, with the migrated rows in them.
			var keyed int
			db.QueryRow(`SELECT count(*) FROM session_tags INDEXED BY session_tags_by_value_filters
				WHERE tenant = 'acme' AND tag = 'x' AND channel = 'whatsapp' AND handed_off = 0`).Scan(&keyed)
			if keyed != 1 {
				t.Fatalf("%d rows of tag x, whatsapp, not handed off in session_tags_by_value_filters; want 1", keyed)
			}
		})
	}
}

// TestFullTextClampedStarts: sessions that started outside the years the
// full-text rowids keep to the millisecond (1691 to 2248) share one bucket
// at each end, and are still found in report order within the interval.
func TestFullTextClampedStarts(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(ctx, t)
	for _, base := range []time.Time{time.Date(1600, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2300, 3, 1, 0, 0, 0, 0, time.UTC)} {
		var events []event.Event
		var want []string
		for i := range 4 {
			b := storetest.B{Contact: fmt.Sprint("c", i)}
			e := b.Msg(fmt.Sprint("e", base.Year(), i), 0, event.RoleCustomer, "alfa")
			e.OccurredAt = base.Add(time.Duration(i) * time.Hour)
			events = append(events, e)
			want = append([]string{session.DeriveID(&e)}, want...)
		}
		if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, events); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			from, to time.Duration
			want     []string
		}{
			{0, 24 * time.Hour, want},
			{time.Hour, 3 * time.Hour, want[1:3]},
		} {
			f := report.Filter{Tenant: "acme", Query: "alfa", From: base.Add(tc.from), To: base.Add(tc.to)}
			for _, limit := range []int{1, 10} {
				var got []string
				page := report.Page{Limit: limit}
				for {
					res, err := s.Search(ctx, f, page)
					if err != nil {
						t.Fatal(err)
					}
					if res.Total != len(tc.want) {
						t.Fatalf("%v: total %d, want %d", f.From, res.Total, len(tc.want))
					}
					for _, ss := range res.Items {
						got = append(got, ss.ID)
					}
					if res.Next == nil {
						break
					}
					page.After = res.Next
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("%v, limit %d: got %v, want %v", f.From, limit, got, tc.want)
				}
			}
		}
	}
}
