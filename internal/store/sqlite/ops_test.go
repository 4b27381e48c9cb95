package sqlite_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestForget: a contact's sessions, events and indexed words go, in its own
// derived sessions and in an explicit session it shares; nothing of another
// contact or tenant changes.
func TestForget(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(ctx, t)
	maria := storetest.B{Contact: "maria", Name: "Maria"}
	joao := storetest.B{Contact: "joao"}
	shared := storetest.B{Contact: "maria", SessionID: "c639c747-4637-4ff5-99c0-9f0e86d3c21b"}
	other := storetest.B{Tenant: "globex", Contact: "maria"}
	events := []event.Event{
		maria.Msg("m1", 0, event.RoleCustomer, "segredo da maria"),
		maria.Msg("m2", 30*time.Hour, event.RoleCustomer, "outra conversa"),
		maria.Tag("m3", time.Minute, "Segunda Via Sucesso"),
		maria.Info("m4", 2*time.Minute, "PLANO", "Fibra"),
		maria.Handoff("m5", 3*time.Minute, event.ActionAssigned, ""),
		maria.Handoff("m6", 4*time.Minute, event.ActionClosed, "resolved"),
		shared.Msg("s1", time.Hour, event.RoleCustomer, "sessão explícita"),
		joao.Msg("j1", time.Hour, event.RoleCustomer, "oi do joão"),
		other.Msg("g1", time.Hour, event.RoleCustomer, "segredo de outro tenant"),
	}
	a := session.NewAssembler(pipeline.MustDefault(), s)
	if err := a.Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	// A late event before m2 moves the start of m2's session: the session
	// of the old start is deleted, and with it every row of it.
	if err := a.Ingest(ctx, []event.Event{maria.Msg("m0", 29*time.Hour, event.RoleCustomer, "antes")}); err != nil {
		t.Fatal(err)
	}
	f, err := s.Forget(ctx, "acme", "maria")
	if err != nil {
		t.Fatal(err)
	}
	if f.Sessions != 3 || f.Events != 8 {
		t.Fatalf("forgot %+v, want 3 sessions and 8 events", f)
	}
	c, _ := s.Counts(ctx)
	if c.Sessions != 2 || c.Events != 2 {
		t.Fatalf("left %+v, want joão's and globex's", c)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var words, rows int
	db.QueryRow(`SELECT count(*) FROM message_words WHERE message_words MATCH 'segredo'`).Scan(&words)
	db.QueryRow(`SELECT count(*) FROM message_words JOIN message_sessions m ON m.mn = ~message_words.rowid JOIN events e ON e.id = m.event WHERE e.tenant = 'acme'`).Scan(&rows)
	var sessionWords int
	db.QueryRow(`SELECT count(*) FROM session_words WHERE session_words MATCH 'segredo'`).Scan(&sessionWords)
	if words != 1 || rows != 1 || sessionWords != 1 {
		t.Fatalf("indexed words left: %d matches of 'segredo' (want globex's only), %d acme messages indexed (want joão's), %d session rows with 'segredo' (want 1)",
			words, rows, sessionWords)
	}
	// No table keeps a row of a forgotten session, nor the contact's name.
	for _, table := range []string{"session_tags", "session_info", "session_protocols", "session_marks", "session_buckets", "message_sessions"} {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM ` + table + ` WHERE tenant = 'acme' AND session_id NOT IN (SELECT session_id FROM sessions WHERE tenant = 'acme')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s keeps %d rows of forgotten sessions", table, n)
		}
	}
	var names int
	db.QueryRow(`SELECT count(*) FROM contact_names WHERE tenant = 'acme' AND name = 'maria'`).Scan(&names)
	if names != 0 {
		t.Errorf("contact_names keeps the forgotten contact's name")
	}
}
