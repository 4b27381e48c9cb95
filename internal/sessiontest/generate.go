package sessiontest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
)

// Definition is the pipeline the generated scenarios are meant for: WhatsApp
// fixed 24 h, webchat sliding 30 min, every other channel (telegram) the
// default fixed 24 h.
func Definition() *pipeline.Definition {
	return &pipeline.Definition{
		Topics:        pipeline.Topics{Events: []string{"chat.events.bot", "chat.events.handoff", "chat.events.agent"}, DeadLetter: "chat.events.dlq", Partitions: 3},
		ConsumerGroup: "chatreport-ingest",
		Sessions: pipeline.Sessions{
			Default: pipeline.Policy{Mode: pipeline.Fixed, Duration: 24 * time.Hour},
			Channels: map[string]pipeline.Policy{
				"whatsapp": {Mode: pipeline.Fixed, Duration: 24 * time.Hour},
				"webchat":  {Mode: pipeline.Sliding, Duration: 30 * time.Minute},
			},
		},
	}
}

// Options shape a generated scenario.
type Options struct {
	// Tenants to spread conversations over; they share contact ids,
	// session ids and event ids, which must not make them meet.
	Tenants []string
	// Conversations is how many runs of events of one tenant, contact and
	// channel (or explicit session) to generate.
	Conversations int
	// MaxEvents is the most events of one conversation.
	MaxEvents int
	// Start and Spread: conversations start in [Start, Start+Spread).
	Start  time.Time
	Spread time.Duration
}

// Base is the start of generated scenarios.
var Base = time.Date(2025, 10, 7, 0, 0, 0, 0, time.UTC)

// Pools small enough that conversations collide: the same contact on several
// channels and tenants, an explicit session id reused by every tenant.
var (
	channels = []string{"whatsapp", "webchat", "telegram"}
	// "ig/7" with event "x" and "ig" with event "7/x" would hash the same
	// derived name if '/' were not escaped.
	contacts   = []string{"5511900000001", "5511900000002", "web-7", "tg-3", "ig/7", "ig"}
	sessionIDs = []string{
		"c639c747-4637-4ff5-99c0-9f0e86d3c21b",
		"0b7e4f0e-3a51-4c4e-9d0b-7f1f3e7c2a10",
		"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
	}
	protocols = []string{"20251007092633646", "20251008101010101", "20251009000000001"}
	phones    = []string{"+55 11 90000-0001", "5511900000002", "+5511987654321"}
	names     = []string{"Maria Souza", "João", "Ana Lima", "maria"}
	tags      = []string{"Segunda Via Sucesso", "Menu Principal", "Negociação"}
	infoKeys  = []string{"NAO_TRANSBORDADA", "PLANO", "NPS"}
	infoVals  = []string{"true", "Fibra 500 Mega", "9", "10", ""}
	// Message authors of role agent: with and without id or name, and one
	// agent whose name changes.
	agentAuthors = []event.Author{
		{Role: event.RoleAgent, ID: "ag-1", Name: "Carla"},
		{Role: event.RoleAgent, ID: "ag-1", Name: "Carla Souza"},
		{Role: event.RoleAgent, ID: "ag-1"},
		{Role: event.RoleAgent, ID: "ag-2", Name: "Bruno"},
		{Role: event.RoleAgent, Name: "Dani"},
		{Role: event.RoleAgent},
	}
	// Handoff agents always have an id (the contract requires it).
	handoffAgents = []event.Agent{{ID: "ag-1", Name: "Carla"}, {ID: "ag-2"}, {ID: "ag-3", Name: "Eva"}, {ID: "Dani"}}
	// Steps between a conversation's events: zero (ties), around the
	// sliding 30 minutes and the fixed 24 hours, exactly on them, and
	// beyond.
	steps = []time.Duration{0, 0, time.Second, 7 * time.Second, 5 * time.Minute, 29*time.Minute + 59*time.Second,
		30 * time.Minute, 30 * time.Minute, 31 * time.Minute, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour,
		23*time.Hour + 59*time.Minute, 24 * time.Hour, 24 * time.Hour, 25 * time.Hour}
)

// Generate returns a random set of distinct, valid events: every field the
// session rules read varies, and event.Decode accepts their JSON unchanged.
func Generate(rng *rand.Rand, o Options) []event.Event {
	g := &generator{rng: rng, ids: map[string]map[string]bool{}}
	var out []event.Event
	for range o.Conversations {
		out = append(out, g.conversation(o)...)
	}
	return out
}

type generator struct {
	rng *rand.Rand
	// ids: the event ids used, per tenant.
	ids     map[string]map[string]bool
	allIDs  []string
	counter int
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func (g *generator) chance(p float64) bool { return g.rng.Float64() < p }

// eventID returns an id unused in tenant. Ids sort in no relation to time,
// and a fifth of them are ids another tenant uses too.
func (g *generator) eventID(tenant string) string {
	used := g.ids[tenant]
	if used == nil {
		used = map[string]bool{}
		g.ids[tenant] = used
	}
	if len(g.allIDs) > 0 && g.chance(0.2) {
		if id := pick(g.rng, g.allIDs); !used[id] {
			used[id] = true
			return id
		}
	}
	for {
		g.counter++
		id := fmt.Sprintf("%c%c-%d", 'a'+g.rng.IntN(6), 'a'+g.rng.IntN(6), g.counter)
		if g.chance(0.05) {
			id = fmt.Sprintf("7/%c%%%d", 'a'+g.rng.IntN(6), g.counter)
		}
		if !used[id] {
			used[id] = true
			g.allIDs = append(g.allIDs, id)
			return id
		}
	}
}

func (g *generator) conversation(o Options) []event.Event {
	rng := g.rng
	tenant := pick(rng, o.Tenants)
	channel := pick(rng, channels)
	contact := pick(rng, contacts)
	sessionID := ""
	if g.chance(0.3) {
		sessionID = pick(rng, sessionIDs)
	}
	var protos []string
	if g.chance(0.6) {
		protos = append(protos, pick(rng, protocols))
		if g.chance(0.3) {
			protos = append(protos, pick(rng, protocols))
		}
	}
	// Start on a half-hour grid mostly, so that windows of different
	// conversations end exactly where others begin.
	at := o.Start.Add(time.Duration(rng.Int64N(int64(o.Spread/(30*time.Minute)))) * 30 * time.Minute)
	// Times have milliseconds, as event.Decode keeps them.
	if g.chance(0.3) {
		at = at.Add(time.Duration(rng.Int64N(int64(30*time.Minute/time.Millisecond))) * time.Millisecond)
	}
	n := 1 + rng.IntN(o.MaxEvents)
	evs := make([]event.Event, 0, n)
	for range n {
		e := event.Event{
			EventID:    g.eventID(tenant),
			OccurredAt: at,
			Tenant:     tenant,
			Channel:    channel,
			Contact:    event.Contact{ID: contact},
			SessionID:  sessionID,
		}
		// An explicit session may span channels and contacts: its
		// channel and contact id are those of its earliest event.
		if sessionID != "" && g.chance(0.15) {
			e.Channel, e.Contact.ID = pick(rng, channels), pick(rng, contacts)
		}
		if g.chance(0.4) {
			e.Contact.Phone = pick(rng, phones)
		}
		if g.chance(0.4) {
			e.Contact.Name = pick(rng, names)
		}
		if len(protos) > 0 && g.chance(0.7) {
			e.Protocol = pick(rng, protos)
		}
		g.fill(&e)
		evs = append(evs, e)
		at = at.Add(pick(rng, steps))
		if g.chance(0.1) {
			at = at.Add(time.Duration(rng.Int64N(60_000)) * time.Millisecond)
		}
	}
	return evs
}

// fill gives e a type and the fields of that type.
func (g *generator) fill(e *event.Event) {
	rng := g.rng
	switch r := rng.IntN(100); {
	case r < 50:
		e.Type = event.TypeMessage
		e.ContentType = "text"
		e.Text = "oi"
		switch r := rng.IntN(100); {
		case r < 45:
			e.Author = &event.Author{Role: event.RoleCustomer}
		case r < 75:
			e.Author = &event.Author{Role: event.RoleBot, ID: "flow-billing", Name: "Assistente"}
		default:
			a := pick(rng, agentAuthors)
			e.Author = &a
		}
	case r < 72:
		e.Type = event.TypeHandoff
		h := &event.Handoff{Queue: "financeiro"}
		switch r := rng.IntN(4); r {
		case 0:
			h.Action = event.ActionRequested
			if g.chance(0.2) { // an agent on a request is not an assignment
				a := pick(rng, handoffAgents)
				h.Agent = &a
			}
		case 1, 2:
			h.Action = []string{event.ActionAssigned, event.ActionTransferred}[r-1]
			if g.chance(0.85) {
				a := pick(rng, handoffAgents)
				h.Agent = &a
			}
		default:
			h.Action = event.ActionClosed
			h.Status = pick(rng, []string{"", "resolved", "abandoned"})
		}
		e.Handoff = h
	case r < 86:
		e.Type = event.TypeTag
		e.Tag = pick(rng, tags)
	default:
		e.Type = event.TypeInfo
		e.Info = &event.Info{Key: pick(rng, infoKeys), Value: pick(rng, infoVals)}
	}
}

// Duplicate returns events with a share p of them delivered twice more,
// as a retrying producer would.
func Duplicate(rng *rand.Rand, events []event.Event, p float64) []event.Event {
	out := slices.Clone(events)
	for _, e := range events {
		if rng.Float64() < p {
			out = append(out, e)
		}
	}
	return out
}

// Order is an arrival order of events.
type Order int

// Arrival orders.
const (
	// Shuffled: any order.
	Shuffled Order = iota
	// Ordered: by occurred_at.
	Ordered
	// Reversed: latest first.
	Reversed
	// Late: by occurred_at, except that a quarter of the events arrive
	// from an hour to three days late.
	Late
)

// Orders lists every arrival order.
var Orders = []Order{Shuffled, Ordered, Reversed, Late}

func (o Order) String() string {
	return [...]string{"shuffled", "ordered", "reversed", "late"}[o]
}

// Arrange returns events in arrival order o.
func Arrange(rng *rand.Rand, events []event.Event, o Order) []event.Event {
	out := slices.Clone(events)
	switch o {
	case Shuffled:
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	case Ordered, Reversed:
		// Stable, so that events of equal times keep a random order.
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		slices.SortStableFunc(out, func(a, b event.Event) int { return a.OccurredAt.Compare(b.OccurredAt) })
		if o == Reversed {
			slices.Reverse(out)
		}
	case Late:
		type arriving struct {
			e  event.Event
			at time.Time
		}
		arr := make([]arriving, len(out))
		for i, e := range out {
			delay := time.Duration(rng.Int64N(int64(time.Minute)))
			if rng.IntN(4) == 0 {
				delay = time.Hour + time.Duration(rng.Int64N(int64(72*time.Hour)))
			}
			arr[i] = arriving{e, e.OccurredAt.Add(delay)}
		}
		slices.SortStableFunc(arr, func(a, b arriving) int { return a.at.Compare(b.at) })
		for i := range arr {
			out[i] = arr[i].e
		}
	}
	return out
}
