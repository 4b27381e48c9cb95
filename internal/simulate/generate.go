// Package simulate generates realistic chatbot traffic — pt-BR bot flows,
// handoffs to human agents, returning contacts — and produces it to Kafka.
//
// The generator is pure: the same Options give the same events, byte for byte,
// on every run and machine, so benchmarks and end-to-end tests are repeatable
// and a replayed simulation deduplicates on event ids.
package simulate

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

// Options shape the simulated traffic.
type Options struct {
	Seed    int64
	Tenants []string // default []string{"acme"}; each must be a valid tenant token
	// Sessions is the number of conversations to generate.
	Sessions int
	// Start is when the first conversation starts; the zero value means
	// DefaultStart, so that a forgotten Start still gives a plausible date.
	Start time.Time
	// Spread: conversations start spread over [Start, Start+Spread). Contacts
	// only come back (returning sessions) when Spread leaves room for it.
	Spread time.Duration
}

// DefaultStart is the Start used when Options.Start is zero: a Monday morning
// in São Paulo.
var DefaultStart = time.Date(2026, time.March, 2, 12, 0, 0, 0, time.UTC)

// Channels the generator uses, with their share of conversations.
const (
	ChannelWhatsApp = "whatsapp"
	ChannelWebchat  = "webchat"
	ChannelTelegram = "telegram"
)

// Tuning of the traffic mix. The shares are probabilities per conversation.
const (
	whatsappShare        = 0.60
	webchatShare         = 0.25 // telegram gets the rest
	explicitSessionShare = 0.30 // of WhatsApp conversations
	returnShare          = 0.11 // conversations after which the contact comes back
	botProtocolShare     = 0.70 // bot-only conversations that get a protocol
	whatsappWindow       = 24 * time.Hour
)

// Generator yields simulated conversations. It is not safe for concurrent use.
type Generator struct {
	rng     *rand.Rand
	start   time.Time
	spread  time.Duration
	total   int
	slot    int // index of the next conversation
	tenants []*tenant
	returns returnQueue

	words   *vocabulary
	idKey   uint64 // makes event ids differ between seeds
	idSeq   uint64
	scratch []event.Event // the conversation being built, reused
	buf     []byte        // formatting scratch, reused
}

// NewGenerator returns a generator for o. Tenants must be valid tenant tokens
// (event.IsToken); Run checks that, NewGenerator does not.
func NewGenerator(o Options) *Generator {
	if len(o.Tenants) == 0 {
		o.Tenants = []string{"acme"}
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	seed := uint64(o.Seed)
	g := &Generator{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		start:   o.Start.UTC(),
		spread:  max(o.Spread, 0),
		total:   max(o.Sessions, 0),
		scratch: make([]event.Event, 0, 64),
		buf:     make([]byte, 0, 256),
		words:   words(),
	}
	g.idKey = g.rng.Uint64()
	for _, name := range o.Tenants {
		g.tenants = append(g.tenants, g.newTenant(name))
	}
	return g
}

// Next returns the events of the next conversation in event-time order (each
// event strictly after the previous one), or ok=false when all Sessions were
// generated. Conversations come in order of their start time.
//
// The returned slice is the caller's. To keep generation allocation-light, the
// events of one conversation share pointed-to values (an Author, a handoff's
// Agent): treat what the events point to as read-only.
func (g *Generator) Next() (events []event.Event, ok bool) {
	if g.slot >= g.total {
		return nil, false
	}
	i := g.slot
	g.slot++
	at := g.slotTime(i)
	var ct *contact
	if len(g.returns) > 0 && g.returns[0].slot <= i {
		r := g.returns.pop()
		ct = r.contact
		// r.at lies before the next slot's boundary, so starts stay ordered.
		if r.at.After(at) {
			at = r.at
		}
	} else {
		ct = g.newContact()
	}
	c := conversation{g: g, t: g.tenants[ct.tenant], ct: ct, evs: g.scratch[:0], at: at}
	c.run()
	end := c.at
	events = slices.Clone(c.evs)
	g.scratch = c.evs[:0]
	g.assignIDs(events)
	ct.visits++
	g.maybeReturn(ct, i, end)
	return events, true
}

// slotTime is the start of conversation i: slots divide the spread evenly and
// each conversation starts at a random instant of its slot, to the millisecond.
func (g *Generator) slotTime(i int) time.Time {
	if g.spread <= 0 {
		return g.start
	}
	off := (float64(i) + g.rng.Float64()) * float64(g.spread) / float64(g.total)
	return g.start.Add(time.Duration(off).Truncate(time.Millisecond))
}

// maybeReturn schedules the contact's next conversation: soon (same day),
// within WhatsApp's 24-hour window, or days later.
func (g *Generator) maybeReturn(ct *contact, slot int, end time.Time) {
	if g.spread <= 0 || g.rng.Float64() >= returnShare {
		return
	}
	var gap time.Duration
	switch p := g.rng.Float64(); {
	case p < 0.45:
		gap = g.between(10*time.Minute, 6*time.Hour)
	case p < 0.70:
		gap = g.between(6*time.Hour, 23*time.Hour)
	default:
		gap = g.between(25*time.Hour, 72*time.Hour)
	}
	at := end.Add(gap).Truncate(time.Millisecond)
	off := at.Sub(g.start)
	if off >= g.spread {
		return
	}
	j := int(float64(off) * float64(g.total) / float64(g.spread))
	if j <= slot {
		j = slot + 1
	}
	if j >= g.total {
		return
	}
	g.returns.push(pendingReturn{slot: j, at: at, contact: ct})
}

// assignIDs gives every event a unique id: "evt-" and the hex of a bijective
// mix of a per-generator counter, so ids never repeat within a generator and
// differ between seeds. All ids of a conversation share one string.
func (g *Generator) assignIDs(evs []event.Event) {
	const idLen = 4 + 16
	b := g.buf[:0]
	for range evs {
		g.idSeq++
		b = append(b, "evt-"...)
		b = appendHex64(b, mix64(g.idSeq+g.idKey))
	}
	s := string(b)
	g.buf = b[:0]
	for i := range evs {
		evs[i].EventID = s[i*idLen : (i+1)*idLen]
	}
}

// mix64 is the SplitMix64 finaliser: a bijection on uint64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

const hexDigits = "0123456789abcdef"

func appendHex64(b []byte, x uint64) []byte {
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hexDigits[(x>>uint(shift))&0xf])
	}
	return b
}

// TopicFor returns the topic an event is published to, as the platform does:
// bot and customer messages, tags and infos on the bot topic (topics[0]),
// handoff events on topics[1], agent messages on topics[2]. With fewer topics
// the last one takes the rest; with none it returns "".
func TopicFor(e event.Event, topics []string) string {
	if len(topics) == 0 {
		return ""
	}
	i := 0
	switch {
	case e.Type == event.TypeHandoff:
		i = 1
	case e.Type == event.TypeMessage && e.Author != nil && e.Author.Role == event.RoleAgent:
		i = 2
	}
	return topics[min(i, len(topics)-1)]
}

// ---- random helpers ----

// between returns a duration in [lo, hi), to the millisecond.
func (g *Generator) between(lo, hi time.Duration) time.Duration {
	ms := int64(lo / time.Millisecond)
	if span := int64((hi - lo) / time.Millisecond); span > 0 {
		ms += g.rng.Int64N(span)
	}
	return time.Duration(ms) * time.Millisecond
}

func (g *Generator) chance(p float64) bool { return g.rng.Float64() < p }

func pick[T any](g *Generator, xs []T) T { return xs[g.rng.IntN(len(xs))] }

// weighted picks an index of ws with probability proportional to its weight.
func (g *Generator) weighted(ws []int) int {
	total := 0
	for _, w := range ws {
		total += w
	}
	n := g.rng.IntN(total)
	for i, w := range ws {
		if n < w {
			return i
		}
		n -= w
	}
	return len(ws) - 1
}

func (g *Generator) appendDigits(b []byte, n int) []byte {
	for range n {
		b = append(b, byte('0'+g.rng.IntN(10)))
	}
	return b
}

// uuid returns a random (version 4) UUID in canonical lowercase form.
func (g *Generator) uuid() string {
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	var raw [32]byte
	for i := range 16 {
		raw[15-i] = hexDigits[hi>>(4*i)&0xf]
		raw[31-i] = hexDigits[lo>>(4*i)&0xf]
	}
	b := g.buf[:0]
	b = append(b, raw[0:8]...)
	b = append(b, '-')
	b = append(b, raw[8:12]...)
	b = append(b, '-')
	b = append(b, raw[12:16]...)
	b = append(b, '-')
	b = append(b, raw[16:20]...)
	b = append(b, '-')
	b = append(b, raw[20:32]...)
	s := string(b)
	g.buf = b[:0]
	return s
}

func (g *Generator) hexString(n int) string {
	b := g.buf[:0]
	for range n {
		b = append(b, hexDigits[g.rng.IntN(16)])
	}
	s := string(b)
	g.buf = b[:0]
	return s
}

// ---- returning contacts: a min-heap by slot ----

type pendingReturn struct {
	slot    int
	at      time.Time
	contact *contact
}

type returnQueue []pendingReturn

func (q *returnQueue) push(r pendingReturn) {
	*q = append(*q, r)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].slot <= h[i].slot {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (q *returnQueue) pop() pendingReturn {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = pendingReturn{}
	h = h[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h[l].slot < h[m].slot {
			m = l
		}
		if r < n && h[r].slot < h[m].slot {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}
