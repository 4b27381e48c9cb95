package simulate_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/simulate"
)

var testStart = time.Date(2026, time.January, 5, 11, 30, 0, 0, time.UTC)

// generate returns every conversation of o.
func generate(t testing.TB, o simulate.Options) [][]event.Event {
	t.Helper()
	g := simulate.NewGenerator(o)
	var convs [][]event.Event
	for {
		evs, ok := g.Next()
		if !ok {
			return convs
		}
		convs = append(convs, evs)
	}
}

func TestGeneratorIsDeterministic(t *testing.T) {
	o := simulate.Options{Seed: 42, Tenants: []string{"acme", "banco-sol"}, Sessions: 500, Start: testStart, Spread: 72 * time.Hour}
	a, b := generate(t, o), generate(t, o)
	if len(a) != 500 {
		t.Fatalf("got %d conversations, want 500", len(a))
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two generators with the same options gave different events")
	}
	o.Seed = 43
	if c := generate(t, o); reflect.DeepEqual(a, c) {
		t.Fatal("a different seed gave the same events")
	}
}

// Every event must survive the wire unchanged: the generator only produces
// events the pipeline accepts, already in their normalised form.
func TestGeneratedEventsDecodeUnchanged(t *testing.T) {
	o := simulate.Options{Seed: 7, Tenants: []string{"acme", "banco-sol", "loja_x"}, Sessions: 3000, Start: testStart, Spread: 7 * 24 * time.Hour}
	end := o.Start.Add(o.Spread)
	ids := map[event.Ref]bool{}
	var prevStart time.Time
	n := 0
	for _, conv := range generate(t, o) {
		if len(conv) < 4 {
			t.Fatalf("conversation of %d events", len(conv))
		}
		first := conv[0].OccurredAt
		if first.Before(o.Start) || !first.Before(end) {
			t.Errorf("conversation starts at %s, outside [%s, %s)", first, o.Start, end)
		}
		if first.Before(prevStart) {
			t.Errorf("conversation starts at %s, before the previous one (%s)", first, prevStart)
		}
		prevStart = first
		for i, ev := range conv {
			n++
			raw, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := event.Decode(raw)
			if err != nil {
				t.Fatalf("event %s rejected: %v\n%s", ev.EventID, err, raw)
			}
			if !reflect.DeepEqual(got, ev) {
				t.Fatalf("event changed on the wire:\n sent %+v\n got  %+v", ev, got)
			}
			if ids[ev.Ref()] {
				t.Fatalf("duplicate event id %v", ev.Ref())
			}
			ids[ev.Ref()] = true
			if i > 0 && !conv[i-1].Before(&ev) || i > 0 && !ev.OccurredAt.After(conv[i-1].OccurredAt) {
				t.Fatalf("event %d of a conversation is not after the previous one", i)
			}
			if ev.Tenant != conv[0].Tenant || ev.Contact != conv[0].Contact || ev.SessionID != conv[0].SessionID {
				t.Fatalf("tenant, contact or session changes within a conversation")
			}
		}
	}
	if n < 30000 {
		t.Errorf("only %d events checked", n)
	}
}

// convStats summarises one conversation for the distribution checks.
type convStats struct {
	handoff, nao, explicit bool
	protocols              map[string]bool
	tags                   map[string]bool
	agentMsgs, closes      int
	assignedBeforeAgent    bool
}

func stats(conv []event.Event) convStats {
	s := convStats{protocols: map[string]bool{}, tags: map[string]bool{}, assignedBeforeAgent: true, explicit: conv[0].SessionID != ""}
	assigned := false
	for _, ev := range conv {
		if ev.Protocol != "" {
			s.protocols[ev.Protocol] = true
		}
		switch ev.Type {
		case event.TypeHandoff:
			s.handoff = true
			switch ev.Handoff.Action {
			case event.ActionAssigned:
				assigned = true
			case event.ActionClosed:
				s.closes++
			}
		case event.TypeTag:
			s.tags[ev.Tag] = true
		case event.TypeInfo:
			if ev.Info.Key == "NAO_TRANSBORDADA" && ev.Info.Value == "true" {
				s.nao = true
			}
		case event.TypeMessage:
			if ev.Author.Role == event.RoleAgent {
				s.agentMsgs++
				s.assignedBeforeAgent = s.assignedBeforeAgent && assigned
			}
		}
	}
	return s
}

func TestGeneratorDistribution(t *testing.T) {
	o := simulate.Options{Seed: 2026, Tenants: []string{"acme", "banco-sol"}, Sessions: 5000, Start: testStart, Spread: 10 * 24 * time.Hour}
	convs := generate(t, o)
	var handoffs, nao, whatsapp, explicit, withProtocol, agentConvs int
	channels := map[string]int{}
	tenants := map[string]int{}
	tags := map[string]int{}
	type visit struct{ start, end time.Time }
	visits := map[string][]visit{}
	sessionOpened := map[string]time.Time{}
	sessionKey := map[string]string{}
	sharedSessions := 0
	for _, conv := range convs {
		s := stats(conv)
		first := conv[0]
		channels[first.Channel]++
		tenants[first.Tenant]++
		for tag := range s.tags {
			tags[tag]++
		}
		if s.handoff {
			handoffs++
			if s.nao {
				t.Error("a handed-off conversation sets NAO_TRANSBORDADA")
			}
			if s.closes != 1 {
				t.Errorf("a handoff closes %d times", s.closes)
			}
			if len(s.protocols) != 1 {
				t.Error("a handed-off conversation has no protocol")
			}
		}
		if s.nao {
			nao++
		}
		if s.agentMsgs > 0 {
			agentConvs++
			if !s.assignedBeforeAgent {
				t.Error("an agent writes before being assigned")
			}
		}
		if len(s.protocols) > 1 {
			t.Errorf("a conversation has %d protocols", len(s.protocols))
		}
		for p := range s.protocols {
			withProtocol++
			if !event.IsProtocol(p) {
				t.Errorf("invalid protocol %q", p)
			}
			if day := first.OccurredAt.In(time.FixedZone("BRT", -3*60*60)).Format("20060102"); p[:8] < day {
				t.Errorf("protocol %s predates the conversation (%s)", p, day)
			}
		}
		if first.Channel == simulate.ChannelWhatsApp {
			whatsapp++
			if s.explicit {
				explicit++
			}
		} else if s.explicit {
			t.Errorf("a %s conversation has an explicit session id", first.Channel)
		}
		if first.Channel == simulate.ChannelWhatsApp && first.Contact.Phone == "" && strings.HasPrefix(first.Contact.ID, "55") {
			t.Errorf("WhatsApp contact %q has no phone", first.Contact.ID)
		}
		key := first.RecommendedKey()
		if id := first.SessionID; id != "" {
			// A platform session id names one WhatsApp 24-hour window of one contact.
			if opened, seen := sessionOpened[id]; !seen {
				sessionOpened[id] = first.OccurredAt
			} else {
				sharedSessions++
				if first.OccurredAt.Sub(opened) >= 24*time.Hour {
					t.Errorf("session %s reused %s after it opened", id, first.OccurredAt.Sub(opened))
				}
				if sessionKey[id] != key {
					t.Errorf("session %s used by two contacts", id)
				}
			}
			sessionKey[id] = key
		}
		visits[key] = append(visits[key], visit{first.OccurredAt, conv[len(conv)-1].OccurredAt})
	}

	n := float64(len(convs))
	between := func(what string, got int, lo, hi float64) {
		t.Helper()
		if share := float64(got) / n; share < lo || share > hi {
			t.Errorf("%s: %.3f of conversations, want between %.2f and %.2f", what, share, lo, hi)
		}
	}
	between("handoffs", handoffs, 0.28, 0.42)
	between("NAO_TRANSBORDADA", nao, 0.45, 0.65)
	between("agent messages", agentConvs, 0.25, 0.40)
	between("protocols", withProtocol, 0.70, 0.90)
	between("whatsapp", channels[simulate.ChannelWhatsApp], 0.55, 0.65)
	between("webchat", channels[simulate.ChannelWebchat], 0.21, 0.29)
	between("telegram", channels[simulate.ChannelTelegram], 0.12, 0.18)
	if share := float64(explicit) / float64(whatsapp); share < 0.22 || share > 0.40 {
		t.Errorf("explicit session ids on %.3f of WhatsApp conversations, want about 0.30", share)
	}
	for _, tenant := range o.Tenants {
		if tenants[tenant] < len(convs)/4 {
			t.Errorf("tenant %s has %d of %d conversations", tenant, tenants[tenant], len(convs))
		}
	}
	for _, tag := range []string{"Menu Principal", "Segunda Via Sucesso", "Negociação", "Falha Pagamento", "Transbordo Humano", "Pesquisa Respondida"} {
		if tags[tag] == 0 {
			t.Errorf("no conversation has tag %q", tag)
		}
	}

	var within, beyond, returning int
	for _, vs := range visits {
		for i := 1; i < len(vs); i++ {
			returning++
			if !vs[i].start.After(vs[i-1].end) {
				t.Errorf("a contact's conversations overlap")
			}
			if vs[i].start.Sub(vs[i-1].start) < 24*time.Hour {
				within++
			} else {
				beyond++
			}
		}
	}
	between("returning", returning, 0.06, 0.14)
	if sharedSessions == 0 {
		t.Error("no contact came back within the window of an explicit session")
	}
	if within == 0 || beyond == 0 {
		t.Errorf("returning contacts: %d within 24 h, %d beyond; want both", within, beyond)
	}
}

func TestGeneratorEdges(t *testing.T) {
	if convs := generate(t, simulate.Options{Sessions: 0}); len(convs) != 0 {
		t.Errorf("Sessions 0 gave %d conversations", len(convs))
	}
	convs := generate(t, simulate.Options{Seed: 1, Sessions: 50, Start: testStart})
	for _, conv := range convs {
		if !conv[0].OccurredAt.Equal(testStart) {
			t.Fatalf("with no spread a conversation starts at %s", conv[0].OccurredAt)
		}
		if conv[0].Tenant != "acme" {
			t.Fatalf("default tenant is %q", conv[0].Tenant)
		}
	}
	// A zero Start falls back to DefaultStart, not the year 1.
	convs = generate(t, simulate.Options{Seed: 1, Sessions: 1})
	if !convs[0][0].OccurredAt.Equal(simulate.DefaultStart) {
		t.Errorf("zero Start: first event at %s", convs[0][0].OccurredAt)
	}
}

func TestTopicFor(t *testing.T) {
	three := []string{"bot", "handoff", "agent"}
	msg := func(role string) event.Event {
		return event.Event{Type: event.TypeMessage, Author: &event.Author{Role: role}}
	}
	handoff := event.Event{Type: event.TypeHandoff, Handoff: &event.Handoff{Action: event.ActionRequested}}
	tests := []struct {
		name   string
		ev     event.Event
		topics []string
		want   string
	}{
		{"customer message", msg(event.RoleCustomer), three, "bot"},
		{"bot message", msg(event.RoleBot), three, "bot"},
		{"agent message", msg(event.RoleAgent), three, "agent"},
		{"handoff", handoff, three, "handoff"},
		{"tag", event.Event{Type: event.TypeTag, Tag: "x"}, three, "bot"},
		{"info", event.Event{Type: event.TypeInfo, Info: &event.Info{Key: "K", Value: "v"}}, three, "bot"},
		{"agent message, two topics", msg(event.RoleAgent), three[:2], "handoff"},
		{"handoff, two topics", handoff, three[:2], "handoff"},
		{"agent message, one topic", msg(event.RoleAgent), three[:1], "bot"},
		{"handoff, one topic", handoff, three[:1], "bot"},
		{"no topics", msg(event.RoleBot), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := simulate.TopicFor(tt.ev, tt.topics); got != tt.want {
				t.Errorf("TopicFor = %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkGenerate(b *testing.B) {
	o := simulate.Options{Seed: 1, Tenants: []string{"acme", "banco-sol"}, Sessions: 100_000, Start: testStart, Spread: 24 * time.Hour}
	g := simulate.NewGenerator(o)
	events := 0
	b.ReportAllocs()
	for b.Loop() {
		evs, ok := g.Next()
		if !ok {
			g = simulate.NewGenerator(o)
			continue
		}
		events += len(evs)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
}
