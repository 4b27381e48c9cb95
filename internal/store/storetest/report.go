package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// testContactPhone: a phone matches ignoring formatting, and a number without
// country (or area) code matches by its last digits, at least MinPhoneDigits.
func testContactPhone(t *testing.T, s Store) {
	full := B{Contact: "5521999991234", Phone: "+55 (21) 99999-1234"}
	local := B{Channel: "webchat", Contact: "web-1", Phone: "21 98888-0000"}
	us := B{Channel: "webchat", Contact: "web-2", Phone: "+1 415-555-0100"}
	nophone := B{Channel: "telegram", Contact: "tg-1", Name: "Zé 12345678"}
	e := []event.Event{
		full.Msg("f1", 0, event.RoleCustomer, "oi"),
		local.Msg("l1", time.Hour, event.RoleCustomer, "oi"),
		us.Msg("u1", 2*time.Hour, event.RoleCustomer, "hi"),
		nophone.Msg("n1", 3*time.Hour, event.RoleCustomer, "oi"),
	}
	Ingest(t, s, e...)
	sid := func(i int) string { return session.DeriveID(&e[i]) }
	tests := []struct {
		contact string
		want    []string
	}{
		{"5521999991234", []string{sid(0)}},        // contact id, and digits
		{"+55 21 99999 1234", []string{sid(0)}},    // formatting ignored
		{"21 99999-1234", []string{sid(0)}},        // no country code
		{"999991234", []string{sid(0)}},            // no area code
		{"9999-1234", []string{sid(0)}},            // last 8 digits
		{"999-1234", []string{}},                   // 7 digits are too few
		{"+55 21 98888-0000", []string{sid(1)}},    // the stored number lacks the country code
		{"(21) 98888-0000", []string{sid(1)}},      // formatted differently
		{"415.555.0100", []string{sid(2)}},         // dots
		{"+1 (415) 555-0100", []string{sid(2)}},    // parentheses
		{"12345678", []string{sid(3)}},             // a name containing digits
		{"zé", []string{sid(3)}},                   // name, ignoring case
		{"web-1", []string{sid(1)}},                // id
		{"99999-12345", []string{}},                // more digits than the number
		{"5521999991234x", []string{}},             // not a phone, not an id
		{"55 21 99999-1234 5", []string{}},         // a suffix of nothing
		{"0000", []string{}},                       // too short
		{"+55 21 99999-1234", []string{sid(0)}},    // E.164 as typed
		{"021 99999 1234", []string{}},             // trunk prefix: neither ends with the other
		{"5521 99999-1234", []string{sid(0)}},      // odd grouping
		{"(11) 99999-1234", []string{}},            // another area code
		{"+", []string{}},                          // nothing
		{"WEB-1", []string{}},                      // ids are exact
		{"Zé 12345678", []string{sid(3)}},          // the whole name
		{"55-21-99999-1234", []string{sid(0)}},     // dashes
		{"(55) (21) 99999-1234", []string{sid(0)}}, // more parentheses
	}
	for _, tc := range tests {
		t.Run(tc.contact, func(t *testing.T) {
			got := search(t, s, report.Filter{Contact: tc.contact})
			if !slices.Equal(got, tc.want) {
				t.Fatalf("contact %q: got %v, want %v", tc.contact, got, tc.want)
			}
		})
	}
}

// testFullText: q finds sessions with one message that has every word, as
// words, ignoring case and diacritics, within the tenant.
func testFullText(t *testing.T, s Store) {
	a := B{Contact: "c-a"}
	b := B{Contact: "c-b"}
	c := B{Contact: "c-c"}
	other := B{Tenant: "globex", Contact: "c-a"}
	e := []event.Event{
		a.Msg("a1", 0, event.RoleCustomer, "NÃO consigo acessar minha conta"),
		a.Msg("a2", time.Minute, event.RoleBot, "Entendi. Qual o seu CPF?"),
		b.Msg("b1", time.Hour, event.RoleCustomer, "não recebi o boleto de outubro"),
		b.Msg("b2", time.Hour+time.Minute, event.RoleAgent, "AÇÃO CONCLUÍDA: segunda-via enviada"),
		c.Msg("c1", 2*time.Hour, event.RoleCustomer, "boleto"),
		c.Msg("c2", 2*time.Hour+time.Minute, event.RoleCustomer, "vencido\nmultilinha"),
		c.Tag("c3", 2*time.Hour+2*time.Minute, "acessar"),
		other.Msg("o1", 0, event.RoleCustomer, "não consigo acessar"),
	}
	Ingest(t, s, e...)
	sa, sb, sc := session.DeriveID(&e[0]), session.DeriveID(&e[2]), session.DeriveID(&e[4])
	tests := []struct {
		q    string
		want []string
	}{
		{"não", []string{sb, sa}},
		{"NAO", []string{sb, sa}},
		{"Não", []string{sb, sa}},
		{"nao conta", []string{sa}},
		{"ação", []string{sb}},
		{"AÇÃO concluída", []string{sb}},
		{"acao concluida", []string{sb}},
		{"boleto", []string{sc, sb}},
		{"boleto vencido", []string{}},    // the words are in two messages
		{"conta cpf", []string{}},         // likewise
		{"consig", []string{}},            // words, not substrings
		{"qual o seu cpf?", []string{sa}}, // punctuation is not part of a word
		{"segunda-via", []string{sb}},
		{"multilinha", []string{sc}},
		{"acessar", []string{sa}}, // tags are not message text
		{"outubro ENVIADA", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.q, func(t *testing.T) {
			got := search(t, s, report.Filter{Query: tc.q})
			if !slices.Equal(got, tc.want) {
				t.Fatalf("q=%q: got %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	if got := search(t, s, report.Filter{Tenant: "globex", Query: "boleto"}); len(got) != 0 {
		t.Fatalf("globex finds acme's messages: %v", got)
	}
	// A word of both tenants: each finds its own session only.
	so := session.DeriveID(&e[7])
	if got := search(t, s, report.Filter{Tenant: "globex", Query: "consigo acessar"}); !slices.Equal(got, []string{so}) {
		t.Fatalf("globex: q=consigo acessar finds %v, want %v", got, []string{so})
	}
	if got := search(t, s, report.Filter{Query: "consigo acessar"}); !slices.Equal(got, []string{sa}) {
		t.Fatalf("acme: q=consigo acessar finds %v, want %v", got, []string{sa})
	}
	// The interval holds the sessions that started in [From, To), whatever
	// the time of the message: sc starts at Base+2h, its "vencido" a
	// minute later.
	h := time.Hour
	for _, tc := range []struct {
		from, to time.Duration
		want     []string
	}{
		{2 * h, 2*h + time.Millisecond, []string{sc}},
		{2*h - time.Millisecond, 2 * h, []string{}},
		{2*h + time.Millisecond, 3 * h, []string{}},
		{2*h + time.Minute, 3 * h, []string{}}, // the message's time is not the session's
		{0, 2*h + time.Millisecond, []string{sc}},
	} {
		f := report.Filter{Query: "vencido", From: Base.Add(tc.from), To: Base.Add(tc.to)}
		if got := search(t, s, f); !slices.Equal(got, tc.want) {
			t.Fatalf("q=vencido in [%v, %v): got %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
	if got := search(t, s, report.Filter{Query: "boleto", From: Base.Add(time.Hour), To: Base.Add(2 * h)}); !slices.Equal(got, []string{sb}) {
		t.Fatalf("q=boleto in [1h, 2h): got %v, want %v", got, []string{sb})
	}
}

// testFullTextSessionStartMoves: a late event before the first of an
// explicit session moves the session's start; its messages are found in
// the intervals of the new start only, and a derived window that a late
// event merges finds its messages under the merged session.
func testFullTextSessionStartMoves(t *testing.T, s Store) {
	x := B{Contact: "c-x", SessionID: "0f0e0d0c-0000-4000-8000-000000000001"}
	h := time.Hour
	Ingest(t, s, x.Msg("x1", 5*h, event.RoleCustomer, "pedido atrasado"), x.Msg("x2", 5*h+time.Minute, event.RoleBot, "rastreio enviado"))
	before := report.Filter{Query: "atrasado", From: Base.Add(5 * h), To: Base.Add(6 * h)}
	if got := search(t, s, before); !slices.Equal(got, []string{x.SessionID}) {
		t.Fatalf("before the late event: got %v, want %v", got, []string{x.SessionID})
	}
	Ingest(t, s, x.Msg("x0", h, event.RoleCustomer, "oi"))
	for _, tc := range []struct {
		q        string
		from, to time.Duration
		want     []string
	}{
		{"atrasado", 5 * h, 6 * h, []string{}},
		{"atrasado", h, h + time.Millisecond, []string{x.SessionID}},
		{"rastreio", 0, 2 * h, []string{x.SessionID}},
		{"oi", h, 6 * h, []string{x.SessionID}},
	} {
		f := report.Filter{Query: tc.q, From: Base.Add(tc.from), To: Base.Add(tc.to)}
		if got := search(t, s, f); !slices.Equal(got, tc.want) {
			t.Fatalf("after the late event: q=%s in [%v, %v): got %v, want %v", tc.q, tc.from, tc.to, got, tc.want)
		}
	}
}

// testExport: Export yields the sessions of Search, in its order, each with
// the events Session returns; it stops at fn's first error and when ctx ends.
func testExport(t *testing.T, s Store) {
	Ingest(t, s, fixture()...)
	ctx := context.Background()
	for _, f := range []report.Filter{
		{},
		{Channels: []string{"telegram"}},
		{Tags: []string{"Negociação", "Segunda Via Sucesso"}},
		{Query: "nada disso"},
		{Tenant: "globex"},
	} {
		want := search(t, s, f)
		if f.Tenant == "" {
			f.Tenant = "acme"
		}
		f.From, f.To = Base.Add(-24*time.Hour), Base.Add(29*24*time.Hour)
		var got []string
		err := ExportDetails(ctx, s, f, func(d report.Detail) error {
			got = append(got, d.Session.ID)
			if d.Session.Tenant != f.Tenant {
				return fmt.Errorf("exported a session of %s", d.Session.Tenant)
			}
			one, err := s.Session(ctx, f.Tenant, d.Session.ID)
			if err != nil {
				return err
			}
			if !slices.EqualFunc(d.Events, one.Events, func(a, b event.Event) bool { return a.EventID == b.EventID }) ||
				d.Session.Events != len(d.Events) || d.Session.StartedAt != one.Session.StartedAt {
				return fmt.Errorf("session %s: export has %d events, Session %d", d.Session.ID, len(d.Events), len(one.Events))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("export %+v: %v", f, err)
		}
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("export %+v: %v, search %v", f, got, want)
		}
	}
	f := report.Filter{Tenant: "acme", From: Base.Add(-24 * time.Hour), To: Base.Add(29 * 24 * time.Hour)}
	stop := errors.New("client went away")
	calls := 0
	if err := ExportDetails(ctx, s, f, func(report.Detail) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("export after fn failed: err %v after %d calls, want %v after 1", err, calls, stop)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	calls = 0
	if err := ExportDetails(cancelled, s, f, func(report.Detail) error { calls++; return nil }); !errors.Is(err, context.Canceled) || calls != 0 {
		t.Fatalf("export with a cancelled context: err %v after %d calls", err, calls)
	}
	if err := ExportDetails(ctx, s, report.Filter{Tenant: "acme"}, func(report.Detail) error { return nil }); err == nil {
		t.Fatal("export without an interval: no error")
	}
}

// testExportDuringIngest: events ingested while an export runs — here while
// its client reads the first chunk, into a session of a later chunk —
// leave every exported session whole: its document counts the events
// exported with it, whichever state of it the store shows (the one before
// the write on Elasticsearch, either on SQLite: docs/api.md, "Export").
func testExportDuringIngest(t *testing.T, s Store) {
	n := report.ExportChunk + 10
	Ingest(t, s, ManySessions(n)...)
	got := 0
	err := ExportDetails(context.Background(), s, ExportFilter, func(d report.Detail) error {
		if got == 0 {
			Ingest(t, s, ManyContact(0).Msg("late", 30*time.Second, event.RoleCustomer, "mais uma"))
		}
		got++
		if d.Session.Events != len(d.Events) {
			return fmt.Errorf("session %s: its document counts %d events, the export has %d", d.Session.ID, d.Session.Events, len(d.Events))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("exported %d sessions, want %d", got, n)
	}
}

// testFacets: counts of sessions per tag, info key and channel, in the
// interval and the tenant only, by count then value.
func testFacets(t *testing.T, s Store) {
	var e []event.Event
	add := func(b B, at time.Duration, tags []string, info ...string) {
		n := len(e)
		e = append(e, b.Msg(fmt.Sprintf("x%d", n), at, event.RoleCustomer, "oi"))
		for i, tag := range tags {
			e = append(e, b.Tag(fmt.Sprintf("x%d-t%d", n, i), at+time.Second, tag))
		}
		for i, key := range info {
			e = append(e, b.Info(fmt.Sprintf("x%d-i%d", n, i), at+2*time.Second, key, "v"))
		}
	}
	wa := func(c string) B { return B{Contact: c} }
	web := func(c string) B { return B{Channel: "webchat", Contact: c} }
	add(wa("1"), 0, []string{"Boleto", "Menu"}, "PLANO", "NPS")
	add(wa("2"), time.Hour, []string{"Boleto", "Boleto"}, "PLANO")
	add(wa("3"), 2*time.Hour, []string{"Atendimento", "Menu", "Ção"})
	add(web("4"), 3*time.Hour, []string{"Boleto"}, "PLANO", "CPF")
	add(web("5"), 4*time.Hour, nil)
	add(wa("6"), 72*time.Hour, []string{"Depois"}, "DEPOIS") // after the interval
	add(wa("7"), -time.Hour, []string{"Antes"})              // before it
	add(B{Tenant: "globex", Contact: "1"}, 0, []string{"Boleto", "Globex"}, "GLOBEX")
	Ingest(t, s, e...)
	got, err := s.Facets(context.Background(), "acme", Base, Base.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := report.Facets{
		Tags:     []report.FacetValue{fv("Boleto", 3), fv("Menu", 2), fv("Atendimento", 1), fv("Ção", 1)},
		InfoKeys: []report.FacetValue{fv("PLANO", 3), fv("CPF", 1), fv("NPS", 1)},
		Channels: []report.FacetValue{fv("whatsapp", 3), fv("webchat", 2)},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("facets\n got %v\nwant %v", got, want)
	}
	empty, err := s.Facets(context.Background(), "acme", Base.Add(-72*time.Hour), Base.Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if empty.Tags == nil || empty.InfoKeys == nil || empty.Channels == nil ||
		len(empty.Tags)+len(empty.InfoKeys)+len(empty.Channels) != 0 {
		t.Fatalf("facets of an empty interval: %+v, want empty lists", empty)
	}
	g, err := s.Facets(context.Background(), "globex", Base.Add(-time.Hour), Base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.Tags) != "[{Boleto 1} {Globex 1}]" || fmt.Sprint(g.InfoKeys) != "[{GLOBEX 1}]" {
		t.Fatalf("globex facets: %+v", g)
	}
	if _, err := s.Facets(context.Background(), "acme", Base, Base.Add(40*24*time.Hour)); err == nil {
		t.Fatal("facets over 40 days: no error")
	}
}

func fv(value string, count int) report.FacetValue {
	return report.FacetValue{Value: value, Count: count}
}
