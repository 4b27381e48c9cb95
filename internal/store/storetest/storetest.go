// Package storetest is the conformance suite every store passes: the same
// events, the same filters, the same answers.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// Store is what the suite exercises: the write side the assembler needs and
// the read side the API needs.
type Store interface {
	session.Store
	Search(ctx context.Context, f report.Filter, p report.Page) (report.Result, error)
	Session(ctx context.Context, tenant, id string) (report.Detail, error)
	Export(ctx context.Context, f report.Filter, newEncoder func() report.Encoder, emit report.Emit) error
	Facets(ctx context.Context, tenant string, from, to time.Time) (report.Facets, error)
}

// Refresher is a store whose writes become visible to its queries only
// after a refresh, as Elasticsearch's near-real-time search: the suite
// refreshes after writing, as a user reading a second later would see.
type Refresher interface {
	Refresh(ctx context.Context) error
}

// Visible makes what s accepted visible to its queries.
func Visible(t testing.TB, s any) {
	t.Helper()
	if r, ok := s.(Refresher); ok {
		if err := r.Refresh(context.Background()); err != nil {
			t.Fatalf("refresh: %v", err)
		}
	}
}

// Run runs every scenario against fresh stores made by open.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Run("MatchedManyWays", func(t *testing.T) { testMatchedManyWays(t, open(t)) })
	t.Run("ContactName", func(t *testing.T) { testContactName(t, open(t)) })
	t.Run("Intersections", func(t *testing.T) { testIntersections(t, open(t)) })
	t.Run("OutcomesAgentsQueues", func(t *testing.T) { testOutcomesAgentsQueues(t, open(t)) })
	t.Run("Filters", func(t *testing.T) { testFilters(t, open(t)) })
	t.Run("Detail", func(t *testing.T) { testDetail(t, open(t)) })
	t.Run("Idempotent", func(t *testing.T) { testIdempotent(t, open(t)) })
	t.Run("Paging", func(t *testing.T) { testPaging(t, open(t)) })
	t.Run("LateEventMovesWindows", func(t *testing.T) { testLateEvent(t, open(t)) })
	t.Run("ContactPhone", func(t *testing.T) { testContactPhone(t, open(t)) })
	t.Run("FullText", func(t *testing.T) { testFullText(t, open(t)) })
	t.Run("FullTextSessionStartMoves", func(t *testing.T) { testFullTextSessionStartMoves(t, open(t)) })
	t.Run("Export", func(t *testing.T) { testExport(t, open(t)) })
	t.Run("ExportDuringIngest", func(t *testing.T) { testExportDuringIngest(t, open(t)) })
	t.Run("Facets", func(t *testing.T) { testFacets(t, open(t)) })
	t.Run("ControlCharacters", func(t *testing.T) { testControlCharacters(t, open(t)) })
}

// Base is the time of the fixtures: 2025-10-07 09:00 UTC.
var Base = time.Date(2025, 10, 7, 9, 0, 0, 0, time.UTC)

// Ingest assembles events into s and makes them visible to searches.
func Ingest(t *testing.T, s Store, events ...event.Event) {
	t.Helper()
	a := session.NewAssembler(pipeline.MustDefault(), s)
	if err := a.Ingest(context.Background(), events); err != nil {
		t.Fatalf("ingest: %v", err)
	}
	Visible(t, s)
}

// B builds fixture events.
type B struct {
	Tenant, Channel, Contact, Phone, Name, SessionID, Protocol string
}

func (b B) base(id string, at time.Duration, typ event.Type) event.Event {
	tenant := b.Tenant
	if tenant == "" {
		tenant = "acme"
	}
	channel := b.Channel
	if channel == "" {
		channel = "whatsapp"
	}
	return event.Event{
		EventID: id, Type: typ, OccurredAt: Base.Add(at), Tenant: tenant, Channel: channel,
		Contact:   event.Contact{ID: b.Contact, Phone: b.Phone, Name: b.Name},
		SessionID: b.SessionID, Protocol: b.Protocol,
	}
}

// Msg is a message.
func (b B) Msg(id string, at time.Duration, role, text string) event.Event {
	e := b.base(id, at, event.TypeMessage)
	e.Author = &event.Author{Role: role}
	if role == event.RoleAgent {
		e.Author = &event.Author{Role: role, ID: "ag-1", Name: "Carla"}
	}
	e.Text, e.ContentType = text, "text"
	return e
}

// Tag is a tag event.
func (b B) Tag(id string, at time.Duration, tag string) event.Event {
	e := b.base(id, at, event.TypeTag)
	e.Tag = tag
	return e
}

// Info is an info event.
func (b B) Info(id string, at time.Duration, key, value string) event.Event {
	e := b.base(id, at, event.TypeInfo)
	e.Info = &event.Info{Key: key, Value: value}
	return e
}

// Handoff is a handoff event.
func (b B) Handoff(id string, at time.Duration, action, status string) event.Event {
	e := b.base(id, at, event.TypeHandoff)
	e.Handoff = &event.Handoff{Action: action, Queue: "Financeiro", Status: status}
	if action == event.ActionAssigned {
		e.Handoff.Agent = &event.Agent{ID: "ag-1", Name: "Carla"}
	}
	return e
}

const (
	sidExplicit = "c639c747-4637-4ff5-99c0-9f0e86d3c21b"
	protocolA   = "20251007092633646"
)

// fixture: four sessions of acme and one of globex.
//
//	maria   whatsapp explicit session, protocol A, handed off, tags, info
//	joao    webchat derived, NAO_TRANSBORDADA
//	ana     telegram derived, two fixed windows (day 1, day 2)
//	globex  same contact id as maria, another tenant
func fixture() []event.Event {
	maria := B{Contact: "5511987654321", Phone: "+55 11 98765-4321", Name: "Maria Souza", SessionID: sidExplicit, Protocol: protocolA}
	joao := B{Channel: "webchat", Contact: "web-77", Name: "João"}
	ana := B{Channel: "telegram", Contact: "tg-5", Name: "Ana Lima"}
	globex := B{Tenant: "globex", Contact: "5511987654321", Name: "Maria Souza"}
	h := time.Hour
	return []event.Event{
		maria.Msg("m1", 0, event.RoleCustomer, "Olá, preciso da segunda via do boleto"),
		maria.Msg("m2", time.Minute, event.RoleBot, "Claro! Informe seu CPF"),
		maria.Tag("m3", 2*time.Minute, "Segunda Via Sucesso"),
		maria.Info("m4", 3*time.Minute, "PLANO", "Fibra 500 Mega"),
		maria.Handoff("m5", 4*time.Minute, event.ActionRequested, ""),
		maria.Handoff("m6", 5*time.Minute, event.ActionAssigned, ""),
		maria.Msg("m7", 6*time.Minute, event.RoleAgent, "Oi Maria, sou a Carla"),
		maria.Handoff("m8", 7*time.Minute, event.ActionClosed, "resolved"),
		joao.Msg("j1", 2*h, event.RoleCustomer, "quero negociar uma fatura"),
		joao.Info("j2", 2*h+time.Minute, "NAO_TRANSBORDADA", "true"),
		joao.Tag("j3", 2*h+2*time.Minute, "Negociação"),
		joao.Tag("j4", 2*h+3*time.Minute, "Menu Principal"),
		ana.Msg("a1", 3*h, event.RoleCustomer, "bom dia"),
		ana.Info("a2", 3*h+time.Minute, "NPS", "9"),
		ana.Msg("a3", 27*h, event.RoleCustomer, "voltei, a internet caiu"),
		ana.Tag("a4", 27*h+time.Minute, "Falha Conexão"),
		globex.Msg("g1", 4*h, event.RoleCustomer, "segunda via"),
		joao.Info("j5", 2*h+4*time.Minute, "CIDADE", "São Paulo"),
	}
}

func ids(items []session.Session) []string {
	out := make([]string, len(items))
	for i := range items {
		out[i] = items[i].ID
	}
	return out
}

func search(t *testing.T, s Store, f report.Filter) []string {
	t.Helper()
	if f.Tenant == "" {
		f.Tenant = "acme"
	}
	if f.From.IsZero() {
		f.From, f.To = Base.Add(-24*time.Hour), Base.Add(29*24*time.Hour)
	}
	res, err := s.Search(context.Background(), f, report.Page{Limit: 100})
	if err != nil {
		t.Fatalf("search %+v: %v", f, err)
	}
	if res.Total != len(res.Items) {
		t.Errorf("search %+v: total %d, %d items", f, res.Total, len(res.Items))
	}
	return ids(res.Items)
}

func testFilters(t *testing.T, s Store) {
	Ingest(t, s, fixture()...)
	all := search(t, s, report.Filter{})
	if len(all) != 4 {
		t.Fatalf("acme has %d sessions, want 4: %v", len(all), all)
	}
	// Newest first: ana day 2, ana day 1, joao, maria.
	maria := sidExplicit
	joao, ana1, ana2 := all[2], all[1], all[0]
	yes, no := true, false
	tests := []struct {
		name string
		f    report.Filter
		want []string
	}{
		{"interval", report.Filter{From: Base.Add(time.Hour), To: Base.Add(4 * time.Hour)}, []string{ana1, joao}},
		{"session", report.Filter{SessionID: maria}, []string{maria}},
		{"protocol", report.Filter{Protocol: protocolA}, []string{maria}},
		{"protocol none", report.Filter{Protocol: "20251007000000000"}, []string{}},
		{"tag", report.Filter{Tags: []string{"Segunda Via Sucesso"}}, []string{maria}},
		{"tags any", report.Filter{Tags: []string{"Negociação", "Falha Conexão"}, TagMode: report.TagsAny}, []string{ana2, joao}},
		{"tags all", report.Filter{Tags: []string{"Negociação", "Menu Principal"}, TagMode: report.TagsAll}, []string{joao}},
		{"tags all none", report.Filter{Tags: []string{"Negociação", "Falha Conexão"}, TagMode: report.TagsAll}, []string{}},
		{"info equals ignores case", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpEquals, Value: "fibra 500 mega"}}}, []string{maria}},
		{"info not_equals includes missing", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpNotEquals, Value: "fibra 500 mega"}}}, []string{ana2, ana1, joao}},
		{"info contains", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpContains, Value: "500"}}}, []string{maria}},
		{"info not_contains", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpNotContain, Value: "500"}}}, []string{ana2, ana1, joao}},
		{"info starts_with", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpStartsWith, Value: "FIBRA"}}}, []string{maria}},
		{"info exists", report.Filter{Info: []report.Condition{{Key: "NAO_TRANSBORDADA", Op: report.OpExists}}}, []string{joao}},
		{"info not_exists", report.Filter{Info: []report.Condition{{Key: "NAO_TRANSBORDADA", Op: report.OpNotExists}}}, []string{ana2, ana1, maria}},
		{"info two conditions", report.Filter{Info: []report.Condition{
			{Key: "NPS", Op: report.OpEquals, Value: "9"}, {Key: "PLANO", Op: report.OpNotExists}}}, []string{ana1}},
		{"channel", report.Filter{Channels: []string{"webchat", "telegram"}}, []string{ana2, ana1, joao}},
		{"contact id", report.Filter{Contact: "web-77"}, []string{joao}},
		{"contact phone formatted", report.Filter{Contact: "(11) 98765-4321"}, []string{maria}},
		{"contact name", report.Filter{Contact: "lima"}, []string{ana2, ana1}},
		{"handed off", report.Filter{HandedOff: &yes}, []string{maria}},
		{"not handed off", report.Filter{HandedOff: &no}, []string{ana2, ana1, joao}},
		{"full text", report.Filter{Query: "SEGUNDA via"}, []string{maria}},
		{"full text all words", report.Filter{Query: "segunda fatura"}, []string{}},
		{"combined", report.Filter{Channels: []string{"telegram"}, Info: []report.Condition{{Key: "NPS", Op: report.OpExists}}}, []string{ana1}},
		{"interval excludes to", report.Filter{From: Base, To: Base.Add(3 * time.Hour)}, []string{joao, maria}},
		{"interval includes from", report.Filter{From: Base.Add(2 * time.Hour), To: Base.Add(2*time.Hour + time.Nanosecond)}, []string{joao}},
		{"session upper case", report.Filter{SessionID: strings.ToUpper(maria)}, []string{maria}},
		{"session unknown", report.Filter{SessionID: "00000000-0000-0000-0000-000000000000"}, []string{}},
		{"tag none", report.Filter{Tags: []string{"Nope"}}, []string{}},
		{"tag is exact", report.Filter{Tags: []string{"segunda via sucesso"}}, []string{}},
		{"tags all one tag", report.Filter{Tags: []string{"Menu Principal"}, TagMode: report.TagsAll}, []string{joao}},
		{"tags all repeated tag", report.Filter{Tags: []string{"Negociação", "Negociação"}, TagMode: report.TagsAll}, []string{joao}},
		{"tags all three", report.Filter{Tags: []string{"Negociação", "Menu Principal", "Segunda Via Sucesso"}, TagMode: report.TagsAll}, []string{}},
		{"info equals is whole value", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpEquals, Value: "fibra"}}}, []string{}},
		{"info equals non-ASCII case", report.Filter{Info: []report.Condition{{Key: "CIDADE", Op: report.OpEquals, Value: "SÃO PAULO"}}}, []string{joao}},
		{"info contains non-ASCII case", report.Filter{Info: []report.Condition{{Key: "CIDADE", Op: report.OpContains, Value: "SÃO"}}}, []string{joao}},
		{"info starts_with not a prefix", report.Filter{Info: []report.Condition{{Key: "PLANO", Op: report.OpStartsWith, Value: "500"}}}, []string{}},
		{"info key is exact", report.Filter{Info: []report.Condition{{Key: "plano", Op: report.OpExists}}}, []string{}},
		{"info not_equals present and different", report.Filter{Info: []report.Condition{{Key: "NPS", Op: report.OpNotEquals, Value: "9"}}}, []string{ana2, joao, maria}},
		{"info not_contains present and containing", report.Filter{Info: []report.Condition{{Key: "CIDADE", Op: report.OpNotContain, Value: "paulo"}}}, []string{ana2, ana1, maria}},
		{"info exists and not_equals", report.Filter{Info: []report.Condition{
			{Key: "NAO_TRANSBORDADA", Op: report.OpExists}, {Key: "NAO_TRANSBORDADA", Op: report.OpNotEquals, Value: "false"}}}, []string{joao}},
		{"info same key twice", report.Filter{Info: []report.Condition{
			{Key: "PLANO", Op: report.OpContains, Value: "fibra"}, {Key: "PLANO", Op: report.OpNotContain, Value: "1000"}}}, []string{maria}},
		{"info three conditions", report.Filter{Info: []report.Condition{
			{Key: "NAO_TRANSBORDADA", Op: report.OpEquals, Value: "TRUE"}, {Key: "CIDADE", Op: report.OpStartsWith, Value: "são"},
			{Key: "PLANO", Op: report.OpNotExists}}}, []string{joao}},
		{"info three conditions none", report.Filter{Info: []report.Condition{
			{Key: "NAO_TRANSBORDADA", Op: report.OpEquals, Value: "TRUE"}, {Key: "CIDADE", Op: report.OpStartsWith, Value: "são"},
			{Key: "PLANO", Op: report.OpExists}}}, []string{}},
		{"channel one", report.Filter{Channels: []string{"whatsapp"}}, []string{maria}},
		{"channel none", report.Filter{Channels: []string{"sms"}}, []string{}},
		{"contact name non-ASCII case", report.Filter{Contact: "JOÃO"}, []string{joao}},
		{"contact phone last 8 digits", report.Filter{Contact: "8765-4321"}, []string{maria}},
		{"contact phone without country code", report.Filter{Contact: "11987654321"}, []string{maria}},
		{"contact phone 7 digits", report.Filter{Contact: "765-4321"}, []string{}},
		{"contact id is exact", report.Filter{Contact: "web-7"}, []string{}},
		{"combined bot handoff", report.Filter{Tags: []string{"Segunda Via Sucesso"}, HandedOff: &yes, Channels: []string{"whatsapp"},
			Protocol: protocolA, Contact: "maria", Query: "boleto"}, []string{maria}},
		{"combined not handed off", report.Filter{HandedOff: &no, Channels: []string{"webchat", "whatsapp"},
			Info: []report.Condition{{Key: "NAO_TRANSBORDADA", Op: report.OpContains, Value: "TRU"}}, Query: "fatura"}, []string{joao}},
		{"combined contradicting", report.Filter{HandedOff: &yes, Channels: []string{"webchat"}}, []string{}},
		{"combined interval and tag", report.Filter{From: Base.Add(24 * time.Hour), To: Base.Add(48 * time.Hour),
			Tags: []string{"Falha Conexão", "Negociação"}}, []string{ana2}},
		{"other tenant", report.Filter{Tenant: "globex"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := search(t, s, tc.f)
			if tc.want == nil {
				if len(got) != 1 || slices.Contains(all, got[0]) {
					t.Fatalf("globex sees %v", got)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func testDetail(t *testing.T, s Store) {
	Ingest(t, s, fixture()...)
	d, err := s.Session(context.Background(), "acme", sidExplicit)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(d.Events))
	for i, e := range d.Events {
		got[i] = e.EventID
	}
	if want := []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	ss := d.Session
	if !ss.HandedOff || ss.MessageCounts != (session.Counts{Customer: 1, Bot: 1, Agent: 1}) ||
		ss.Contact.Name != "Maria Souza" || len(ss.Attendances) != 1 || ss.Attendances[0].Status != "resolved" ||
		len(ss.Agents) != 1 || ss.Agents[0].Name != "Carla" || ss.Info["PLANO"] != "Fibra 500 Mega" {
		t.Fatalf("session summary wrong: %+v", ss)
	}
	if _, err := s.Session(context.Background(), "globex", sidExplicit); !errors.Is(err, report.ErrNotFound) {
		t.Fatalf("another tenant's session: err %v, want ErrNotFound", err)
	}
	if _, err := s.Session(context.Background(), "acme", "00000000-0000-0000-0000-000000000000"); !errors.Is(err, report.ErrNotFound) {
		t.Fatalf("unknown session: err %v, want ErrNotFound", err)
	}
}

func testIdempotent(t *testing.T, s Store) {
	events := fixture()
	Ingest(t, s, events...)
	before := search(t, s, report.Filter{})
	Ingest(t, s, events...)
	Ingest(t, s, events[3], events[3], events[10])
	if after := search(t, s, report.Filter{}); !slices.Equal(before, after) {
		t.Fatalf("re-ingest changed sessions: %v → %v", before, after)
	}
	d, err := s.Session(context.Background(), "acme", sidExplicit)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Events) != 8 || d.Session.Events != 8 {
		t.Fatalf("duplicates stored: %d events, summary counts %d", len(d.Events), d.Session.Events)
	}
}

func testPaging(t *testing.T, s Store) {
	const n = 1050
	var events []event.Event
	thirds := map[string]bool{}
	for i := range n {
		b := B{Contact: fmt.Sprintf("c%04d", i)}
		text := "oi"
		if i%3 == 0 {
			text = "oi, terceira vez"
		}
		// Every three sessions share a start time: the tiebreak matters.
		e := b.Msg(fmt.Sprintf("p%04d", i), time.Duration(i/3)*time.Minute, event.RoleCustomer, text)
		events = append(events, e)
		if i%3 == 0 {
			thirds[session.DeriveID(&e)] = true
		}
	}
	Ingest(t, s, events...)
	var order []string
	f := report.Filter{Tenant: "acme", From: Base, To: Base.Add(30 * 24 * time.Hour)}
	seen := map[string]bool{}
	var prev *session.Session
	page := report.Page{Limit: 100}
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		res, err := s.Search(context.Background(), f, page)
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != n {
			t.Fatalf("total %d, want %d", res.Total, n)
		}
		for i := range res.Items {
			it := &res.Items[i]
			if seen[it.ID] {
				t.Fatalf("session %s on two pages", it.ID)
			}
			seen[it.ID] = true
			order = append(order, it.ID)
			if prev != nil && (it.StartedAt.After(prev.StartedAt) || it.StartedAt.Equal(prev.StartedAt) && it.ID > prev.ID) {
				t.Fatalf("order broken: %s %s after %s %s", it.StartedAt, it.ID, prev.StartedAt, prev.ID)
			}
			prev = it
		}
		if res.Next == nil {
			break
		}
		page.After = res.Next
	}
	if len(seen) != n {
		t.Fatalf("paged through %d sessions, want %d", len(seen), n)
	}
	// Export walks the same sessions in the same order, complete, across
	// several chunks.
	var exported []string
	if err := ExportDetails(context.Background(), s, f, func(d report.Detail) error {
		if len(d.Events) != 1 || d.Events[0].SessionID != "" && d.Events[0].SessionID != d.Session.ID {
			return fmt.Errorf("session %s exported with %d events", d.Session.ID, len(d.Events))
		}
		exported = append(exported, d.Session.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(exported, order) {
		t.Fatalf("export (%d sessions) differs from paging (%d sessions)", len(exported), len(order))
	}
	// Paging a filtered list: every third session of the fixture matches.
	fq := f
	fq.Channels = []string{"whatsapp"}
	fq.Query = "terceira"
	var filtered []string
	page = report.Page{Limit: 7}
	for {
		res, err := s.Search(context.Background(), fq, page)
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != n/3 {
			t.Fatalf("filtered total %d, want %d", res.Total, n/3)
		}
		filtered = append(filtered, ids(res.Items)...)
		if res.Next == nil {
			break
		}
		page.After = res.Next
	}
	var want []string
	for _, id := range order {
		if thirds[id] {
			want = append(want, id)
		}
	}
	// Totals past the page's bound say "more than the bound", on every
	// page; up to it they are exact. Without a bound of the page's own,
	// a filter with full text is counted up to report.QueryTotalBound
	// (all n sessions have "oi"), any other up to DefaultTotalBound (a
	// bound of the page's own with full text: fq's cases).
	fo := f
	fo.Query = "oi"
	for _, tc := range []struct {
		f           report.Filter
		bound, want int
		more        bool
	}{
		{f, 100, 100, true}, {fq, 10, 10, true}, {fq, 349, 349, true}, {fq, 350, 350, false}, {fq, 351, 350, false},
		{f, 0, n, false}, {fo, 0, report.QueryTotalBound, true},
	} {
		page := report.Page{Limit: 20, TotalBound: tc.bound}
		for range 2 {
			res, err := s.Search(context.Background(), tc.f, page)
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != tc.want || res.TotalMore != tc.more || len(res.Items) != 20 {
				t.Fatalf("bound %d: total %d, more %v, %d items; want %d, %v, 20", tc.bound, res.Total, res.TotalMore, len(res.Items), tc.want, tc.more)
			}
			page.After = res.Next
		}
	}
	if !slices.Equal(filtered, want) {
		t.Fatalf("filtered paging gave %d sessions, want %d", len(filtered), len(want))
	}
}

// testLateEvent: an event that arrives late opens an earlier window and
// shifts the boundaries of the windows after it; sessions that no longer exist
// are deleted and the events move.
func testLateEvent(t *testing.T, s Store) {
	c := B{Channel: "whatsapp", Contact: "5511900000001"}
	h := time.Hour
	e0, e1 := c.Msg("e0", 0, event.RoleCustomer, "alfa"), c.Msg("e1", 10*h, event.RoleCustomer, "bravo")
	e2, mid := c.Msg("e2", 36*h, event.RoleCustomer, "charlie"), c.Msg("mid", 25*h, event.RoleCustomer, "delta")
	f := report.Filter{Contact: "5511900000001"}
	check := func(step string, want map[string][]string) {
		t.Helper()
		got := search(t, s, f)
		if len(got) != len(want) {
			t.Fatalf("%s: sessions %v, want %d", step, got, len(want))
		}
		for sid, events := range want {
			d, err := s.Session(context.Background(), "acme", sid)
			if err != nil {
				t.Fatalf("%s: session %s: %v", step, sid, err)
			}
			var ids []string
			for _, e := range d.Events {
				ids = append(ids, e.EventID)
			}
			if !slices.Equal(ids, events) {
				t.Fatalf("%s: session %s has %v, want %v", step, sid, ids, events)
			}
		}
	}
	// Full text follows the events: a message that moved is found in its
	// new session only.
	text := func(step, q string, want ...string) {
		t.Helper()
		if got := search(t, s, report.Filter{Contact: "5511900000001", Query: q}); !slices.Equal(got, want) {
			t.Fatalf("%s: q=%s finds %v, want %v", step, q, got, want)
		}
	}
	Ingest(t, s, e1, e2)
	check("in order", map[string][]string{session.DeriveID(&e1): {"e1"}, session.DeriveID(&e2): {"e2"}})
	text("in order", "bravo", session.DeriveID(&e1))
	Ingest(t, s, e0)
	check("late e0", map[string][]string{session.DeriveID(&e0): {"e0", "e1"}, session.DeriveID(&e2): {"e2"}})
	text("late e0", "bravo", session.DeriveID(&e0))
	text("late e0", "charlie", session.DeriveID(&e2))
	Ingest(t, s, mid)
	check("late mid", map[string][]string{session.DeriveID(&e0): {"e0", "e1"}, session.DeriveID(&mid): {"mid", "e2"}})
	text("late mid", "charlie", session.DeriveID(&mid))
	text("late mid", "delta", session.DeriveID(&mid))
	text("late mid", "alfa", session.DeriveID(&e0))
	for _, gone := range []*event.Event{&e1, &e2} {
		if _, err := s.Session(context.Background(), "acme", session.DeriveID(gone)); !errors.Is(err, report.ErrNotFound) {
			t.Fatalf("session opened by %s still exists: %v", gone.EventID, err)
		}
	}
}
