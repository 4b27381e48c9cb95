package sessiontest_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
)

// The reference is checked here against hand-worked cases, so that the
// property tests compare the assembler with something known to be right.

var t0 = time.Date(2025, 10, 7, 10, 0, 0, 0, time.UTC)

type ev struct {
	tenant, channel, contact, sid string
}

func (b ev) at(id string, d time.Duration) event.Event {
	tenant, channel, contact := b.tenant, b.channel, b.contact
	if tenant == "" {
		tenant = "acme"
	}
	if channel == "" {
		channel = "whatsapp"
	}
	if contact == "" {
		contact = "5511900000001"
	}
	return event.Event{EventID: id, Type: event.TypeTag, Tag: "t", OccurredAt: t0.Add(d),
		Tenant: tenant, Channel: channel, Contact: event.Contact{ID: contact}, SessionID: b.sid}
}

func (b ev) msg(id string, d time.Duration, role string) event.Event {
	e := b.at(id, d)
	e.Type, e.Tag, e.Author, e.Text, e.ContentType = event.TypeMessage, "", &event.Author{Role: role}, "oi", "text"
	return e
}

func derivedID(tenant, channel, contact, eventID string) string {
	ns := uuid.MustParse(sessiontest.NamespaceText)
	return uuid.NewSHA1(ns, []byte(tenant+"/"+channel+"/"+contact+"/"+eventID)).String()
}

func TestDerivedIDEscapesSlash(t *testing.T) {
	// Without '%' and '/', the name is the plain concatenation.
	if got, want := sessiontest.DerivedID("acme", "whatsapp", "5511", "e1"), derivedID("acme", "whatsapp", "5511", "e1"); got != want {
		t.Fatalf("plain ids: %s, want %s", got, want)
	}
	if got, want := sessiontest.DerivedID("acme", "whatsapp", "a/b", "x%"), derivedID("acme", "whatsapp", "a%2Fb", "x%25"); got != want {
		t.Fatalf("escaped ids: %s, want %s", got, want)
	}
	if sessiontest.DerivedID("acme", "whatsapp", "a/b", "x") == sessiontest.DerivedID("acme", "whatsapp", "a", "b/x") {
		t.Fatal("contact a/b event x and contact a event b/x share an id")
	}
}

// membership returns session id → event ids.
func membership(got map[session.Ref]sessiontest.Expected) map[string][]string {
	out := map[string][]string{}
	for ref, x := range got {
		for _, e := range x.Events {
			out[ref.Tenant+"/"+ref.ID] = append(out[ref.Tenant+"/"+ref.ID], e.EventID)
		}
	}
	return out
}

func TestReferenceFixedWindows(t *testing.T) {
	c := ev{}
	h := time.Hour
	// e3 and a2 both happen exactly 24 h after e1: the window is
	// [t, t+24h), so both open the next one, a2 first by event id.
	events := []event.Event{c.at("e1", 0), c.at("e2", 23*h+59*time.Minute), c.at("e3", 24*h), c.at("a2", 24*h), c.at("e4", 47*h)}
	got := membership(sessiontest.Reference(sessiontest.Definition(), events))
	want := map[string][]string{
		"acme/" + derivedID("acme", "whatsapp", "5511900000001", "e1"): {"e1", "e2"},
		"acme/" + derivedID("acme", "whatsapp", "5511900000001", "a2"): {"a2", "e3", "e4"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestReferenceSlidingWindows(t *testing.T) {
	c := ev{channel: "webchat", contact: "web-7"}
	m := time.Minute
	events := []event.Event{
		c.msg("c1", 0, event.RoleCustomer),
		c.msg("b1", 29*m, event.RoleBot),   // before 10:30: in
		c.msg("g1", 45*m, event.RoleAgent), // 10:45 ≥ 10:30: agents do not extend, a new window
		c.msg("c2", 50*m, event.RoleCustomer),
		c.msg("b2", 79*m, event.RoleBot), // 11:19 < 10:50+30m
		c.msg("b3", 80*m, event.RoleBot), // 11:20: the next window
	}
	got := sessiontest.Reference(sessiontest.Definition(), events)
	id := func(e string) string { return "acme/" + derivedID("acme", "webchat", "web-7", e) }
	want := map[string][]string{id("c1"): {"c1", "b1"}, id("g1"): {"g1", "c2", "b2"}, id("b3"): {"b3"}}
	if m := membership(got); !reflect.DeepEqual(m, want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	ends := map[string]time.Time{}
	for ref, x := range got {
		ends["acme/"+ref.ID] = x.Session.WindowEndsAt
	}
	if ends[id("c1")] != t0.Add(30*m) || ends[id("g1")] != t0.Add(80*m) || ends[id("b3")] != t0.Add(110*m) {
		t.Fatalf("window ends %v", ends)
	}
}

func TestReferenceExplicitSessions(t *testing.T) {
	sid := "c639c747-4637-4ff5-99c0-9f0e86d3c21b"
	web := ev{channel: "webchat", contact: "web-7", sid: sid}
	wa := ev{channel: "whatsapp", contact: "5511900000001", sid: sid}
	other := ev{tenant: "globex", sid: sid}
	h := time.Hour
	events := []event.Event{
		web.msg("e1", 0, event.RoleCustomer),
		wa.msg("e2", 2*h, event.RoleCustomer),
		wa.msg("e3", 30*h, event.RoleBot), // an explicit session has no window to leave
		other.at("e1", h),                 // same event id, another tenant
	}
	got := sessiontest.Reference(sessiontest.Definition(), events)
	acme := got[session.Ref{Tenant: "acme", ID: sid}]
	if ids := membership(got)["acme/"+sid]; !slices.Equal(ids, []string{"e1", "e2", "e3"}) {
		t.Fatalf("acme session has %v", ids)
	}
	s := acme.Session
	// Channel and contact of the earliest event; the window by the webchat
	// policy: 30 minutes after the last customer message.
	if s.Channel != "webchat" || s.Contact.ID != "web-7" || s.Key != "s:"+sid || !s.WindowEndsAt.Equal(t0.Add(2*h+30*time.Minute)) {
		t.Fatalf("session %+v", s)
	}
	if g := got[session.Ref{Tenant: "globex", ID: sid}]; g.Session.Events != 1 || len(got) != 2 {
		t.Fatalf("globex: %+v; %d sessions", g.Session, len(got))
	}
}

func TestReferenceSummary(t *testing.T) {
	c := ev{}
	p1, p2 := "20251007092633646", "20251008101010101"
	m := time.Minute
	e := func(id string, d time.Duration, f func(*event.Event)) event.Event {
		x := c.at(id, d)
		f(&x)
		return x
	}
	handoff := func(action, status string, agent *event.Agent, protocol string) func(*event.Event) {
		return func(x *event.Event) {
			x.Type, x.Tag, x.Protocol = event.TypeHandoff, "", protocol
			x.Handoff = &event.Handoff{Action: action, Status: status, Agent: agent}
		}
	}
	agentMsg := func(id, name string) func(*event.Event) {
		return func(x *event.Event) {
			x.Type, x.Tag, x.Text, x.ContentType = event.TypeMessage, "", "oi", "text"
			x.Author = &event.Author{Role: event.RoleAgent, ID: id, Name: name}
		}
	}
	info := func(k, v string) func(*event.Event) {
		return func(x *event.Event) { x.Type, x.Tag, x.Info = event.TypeInfo, "", &event.Info{Key: k, Value: v} }
	}
	events := []event.Event{
		e("e01", 0, func(x *event.Event) { x.Contact.Phone, x.Contact.Name = "+55 1", "Maria"; x.Tag = "b" }),
		e("e02", m, func(x *event.Event) { x.Contact.Name = "Maria Souza"; x.Tag = "a"; x.Protocol = p1 }),
		e("e03", 2*m, info("PLANO", "x")),
		e("e04", 3*m, info("PLANO", "y")),
		e("e05", 4*m, handoff(event.ActionRequested, "", &event.Agent{ID: "ag-9"}, p1)), // not an assignment
		e("e06", 5*m, handoff(event.ActionAssigned, "", &event.Agent{ID: "ag-1"}, p1)),
		e("e07", 6*m, agentMsg("ag-1", "Carla")),
		e("e08", 7*m, agentMsg("", "Dani")),
		e("e09", 8*m, agentMsg("", "")),
		e("e10", 9*m, handoff(event.ActionClosed, "resolved", nil, p1)),
		e("e11", 10*m, handoff(event.ActionClosed, "", nil, p1)), // the latest close: no status is "closed"
		e("e12", 11*m, func(x *event.Event) { x.Protocol = p2; x.Tag = "b" }),
		e("e13", 11*m, handoff(event.ActionClosed, "abandoned", nil, "")), // no protocol: no attendance
	}
	got := sessiontest.Reference(sessiontest.Definition(), append(events, events[3], events[0]))
	if len(got) != 1 {
		t.Fatalf("%d sessions", len(got))
	}
	var s session.Session
	for _, x := range got {
		s = x.Session
	}
	want := session.Session{
		Tenant: "acme", ID: derivedID("acme", "whatsapp", "5511900000001", "e01"), Key: "d:whatsapp/5511900000001",
		Channel: "whatsapp", Contact: event.Contact{ID: "5511900000001", Phone: "+55 1", Name: "Maria Souza"},
		StartedAt: t0, LastActivityAt: t0.Add(11 * m), WindowEndsAt: t0.Add(24 * time.Hour),
		Protocols: []string{p1, p2}, Tags: []string{"a", "b"}, Info: map[string]string{"PLANO": "y"},
		HandedOff: true, Agents: []event.Agent{{ID: "Dani", Name: "Dani"}, {ID: "ag-1", Name: "Carla"}}, Queues: []string{},
		MessageCounts: session.Counts{Agent: 3},
		Attendances: []session.Attendance{
			{Protocol: p1, StartedAt: t0.Add(m), EndedAt: t0.Add(10 * m), Status: session.StatusClosed, HandedOff: true,
				Tags: []string{"a"}, Info: map[string]string{}},
			{Protocol: p2, StartedAt: t0.Add(11 * m), EndedAt: t0.Add(11 * m), Status: session.StatusOpen,
				Tags: []string{"b"}, Info: map[string]string{}},
		},
		Events: 13,
	}
	if !reflect.DeepEqual(s, want) {
		g, _ := json.Marshal(s)
		w, _ := json.Marshal(want)
		t.Fatalf("got  %s\nwant %s", g, w)
	}
	// The first attendance was closed; the second, with the bot and the
	// latest, is open until the window ends, and then finished by the bot
	// (never handed off: nothing was cancelled).
	for _, c := range []struct {
		i    int
		now  time.Time
		want string
	}{
		{0, t0.Add(12 * m), session.OutcomeResolved},
		{1, t0.Add(12 * m), session.OutcomeOpen},
		{1, s.WindowEndsAt, session.OutcomeBotFinished},
	} {
		if got := sessiontest.AttendanceOutcomeAt(&s, c.i, c.now); got != c.want {
			t.Errorf("attendance %d at %s: %s, want %s", c.i, c.now, got, c.want)
		}
	}
}

// TestGeneratedEventsDecodeUnchanged: generated events survive the wire (JSON
// and event.Decode) unchanged, so the integration test can compute the
// reference from what it produced.
func TestGeneratedEventsDecodeUnchanged(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	events := sessiontest.Generate(rng, sessiontest.Options{
		Tenants: []string{"acme", "globex"}, Conversations: 300, MaxEvents: 12,
		Start: sessiontest.Base, Spread: 72 * time.Hour,
	})
	types := map[event.Type]int{}
	for _, e := range events {
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := event.Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("decoded differently:\n%+v\n%+v", got, e)
		}
		types[e.Type]++
	}
	if len(types) != 4 {
		t.Fatalf("types %v", types)
	}
}
