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
	"strconv"
	"strings"
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

// ---- tenants and contacts ----

type tenant struct {
	name     string
	brand    string
	bot      event.Author // copied per conversation
	menu     string
	nps      string
	farewell string
	media    string // base URL of files the bot and customers send
	agents   []event.Agent
}

func (g *Generator) newTenant(name string) *tenant {
	brand := brandName(name)
	botName := pick(g, botNames)
	t := &tenant{
		name:  name,
		brand: brand,
		bot:   event.Author{Role: event.RoleBot, ID: "bot-" + strings.ToLower(stripAccents(botName)), Name: botName},
		menu: "Olá! Boas-vindas ao atendimento " + brand + "! Sou a " + botName + ", assistente virtual. 😊\n" +
			"Como posso ajudar você hoje? Digite o número da opção:\n" +
			"1) Segunda via de boleto\n2) Negociar débitos\n3) Suporte técnico\n" +
			"4) Planos e ofertas\n5) Problema com pagamento\n6) Falar com um atendente",
		nps:      "Antes de você ir: de 0 a 10, quanto você recomendaria o atendimento " + brand + " para um amigo ou familiar?",
		farewell: "Obrigada pelo contato com o atendimento " + brand + "! Até logo 👋",
		media:    "https://media.chatbot.example/" + name + "/",
	}
	for range 8 + g.rng.IntN(8) {
		full := pick(g, firstNames).name + " " + pick(g, surnames)
		t.agents = append(t.agents, event.Agent{ID: "ag-" + strconv.Itoa(1000+g.rng.IntN(9000)), Name: full})
	}
	return t
}

// brandName turns a tenant token into a display name: "banco-sol" → "Banco Sol".
func brandName(tenant string) string {
	words := strings.FieldsFunc(tenant, func(r rune) bool { return r == '-' || r == '_' })
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	if len(words) == 0 {
		return tenant
	}
	return strings.Join(words, " ")
}

func stripAccents(s string) string {
	return strings.NewReplacer("á", "a", "é", "e", "í", "i", "ó", "o", "ú", "u", "ã", "a", "ç", "c").Replace(s)
}

type contact struct {
	tenant  int
	channel string
	c       event.Contact
	first   string // first name for greetings, "" when unknown
	area    int    // index in areas: where the contact lives
	visits  int

	// WhatsApp's 24-hour window as the platform sees it.
	windowStart time.Time
	sessionID   string // the platform-provided session id of that window, if any
}

func (g *Generator) newContact() *contact {
	ct := &contact{tenant: g.rng.IntN(len(g.tenants)), area: g.weighted(areaWeights)}
	p := g.rng.Float64()
	switch {
	case p < whatsappShare:
		ct.channel = ChannelWhatsApp
		g.whatsappContact(ct)
	case p < whatsappShare+webchatShare:
		ct.channel = ChannelWebchat
		ct.c.ID = "web-" + g.hexString(20)
		if g.chance(0.20) { // the pre-chat form asked for it
			ct.c.Phone = g.mobile(ct.area)
		}
		if g.chance(0.60) {
			ct.c.Name, ct.first = g.fullName()
		}
	default:
		ct.channel = ChannelTelegram
		b := strconv.AppendInt(g.buf[:0], 5_000_000_000+g.rng.Int64N(2_500_000_000), 10)
		ct.c.ID = string(b)
		if g.chance(0.05) { // the user shared the phone with the bot
			ct.c.Phone = g.mobile(ct.area)
		}
		if g.chance(0.90) {
			ct.c.Name, ct.first = g.fullName()
		}
	}
	return ct
}

func (g *Generator) whatsappContact(ct *contact) {
	if g.chance(0.05) {
		// A username contact: the platform gives an opaque user id and no phone.
		ct.c.ID = "BR." + string(g.appendDigits(g.buf[:0], 19))
	} else {
		e164 := g.mobile(ct.area)
		ct.c.Phone = e164
		if g.chance(0.25) {
			// Older Brazilian accounts keep the wa_id without the ninth digit.
			ct.c.ID = e164[1:5] + e164[6:]
		} else {
			ct.c.ID = e164[1:]
		}
	}
	if g.chance(0.88) {
		ct.c.Name, ct.first = g.profileName()
	}
}

// mobile returns a Brazilian mobile number in E.164: +55 DDD 9 XXXX-XXXX.
func (g *Generator) mobile(area int) string {
	b := append(g.buf[:0], "+55"...)
	b = append(b, areas[area].ddd...)
	b = append(b, '9', byte('6'+g.rng.IntN(4)))
	b = g.appendDigits(b, 7)
	s := string(b)
	g.buf = b[:0]
	return s
}

// profileName is a WhatsApp profile name: free-form, as people set it.
func (g *Generator) profileName() (name, first string) {
	switch p := g.rng.Float64(); {
	case p < 0.50:
		return g.fullName()
	case p < 0.70:
		f := pick(g, firstNames).name
		return f, f
	case p < 0.76:
		f := pick(g, firstNames).name
		return strings.ToLower(f), f
	case p < 0.86:
		f := pick(g, firstNames).name
		return f + " " + pick(g, nameEmojis), f
	case p < 0.94:
		n := pick(g, nicknames)
		return n, n
	default:
		f := pick(g, firstNames)
		title := "Dr. "
		if f.female {
			title = "Dra. "
		}
		if g.chance(0.5) {
			if f.female {
				return "Loja da " + f.name, ""
			}
			return "Oficina do " + f.name, ""
		}
		return title + f.name, f.name
	}
}

func (g *Generator) fullName() (name, first string) {
	f := pick(g, firstNames).name
	return f + " " + pick(g, surnames), f
}

// ---- conversations ----

// conversation builds the events of one conversation: c.at is the time of the
// latest event and every event moves it forward.
type conversation struct {
	g   *Generator
	t   *tenant
	ct  *contact
	evs []event.Event
	at  time.Time

	base     event.Event // tenant, channel, contact, session, protocol
	customer *event.Author
	bot      *event.Author
	agent    *event.Agent
	agentAu  *event.Author
}

type flow int

const (
	flowBill flow = iota
	flowDebt
	flowSupport
	flowPlans
	flowHuman
	flowPayment
)

// Share of each flow, and how often it ends with a human: about 35% of all
// conversations are handed off.
var (
	flowWeights  = []int{35, 18, 20, 10, 10, 7}
	handoffShare = []float64{0.08, 0.35, 0.40, 0.30, 1, 0.80}
	menuChoices  = [][]string{
		{"1", "1", "1", "segunda via", "quero a 2ª via do boleto", "1️⃣"},
		{"2", "2", "negociar", "quero negociar minha dívida"},
		{"3", "3", "suporte", "minha internet não está funcionando"},
		{"4", "4", "planos"},
		{"6", "6", "atendente", "quero falar com uma pessoa"},
		{"5", "5", "paguei e não baixou"},
	}
)

func (c *conversation) run() {
	g, ct := c.g, c.ct
	c.base = event.Event{Tenant: c.t.name, Channel: ct.channel, Contact: ct.c}
	if ct.channel == ChannelWhatsApp {
		if ct.windowStart.IsZero() || !c.at.Before(ct.windowStart.Add(whatsappWindow)) {
			ct.windowStart = c.at
			ct.sessionID = ""
			if g.chance(explicitSessionShare) {
				ct.sessionID = g.uuid()
			}
		}
		c.base.SessionID = ct.sessionID
	}
	bot := c.t.bot
	c.bot = &bot
	c.customer = &event.Author{Role: event.RoleCustomer}

	// The first event is at the conversation's start time exactly.
	c.message(0, c.customer, c.greeting())
	c.botSays(c.t.menu)
	c.tag("Menu Principal")

	f := flow(g.weighted(flowWeights))
	handoff := g.chance(handoffShare[f])
	if g.chance(0.08) {
		c.customerSays(pick(g, offMenu))
		c.botSays("Desculpe, não entendi 🤔. Por favor, digite apenas o número da opção desejada.")
		c.tag("Opção Inválida")
	}
	c.customerSays(pick(g, menuChoices[f]))
	c.info("OPCAO_MENU", strconv.Itoa(menuOption[f]))
	if handoff || g.chance(botProtocolShare) {
		c.issueProtocol()
	}

	var queue string
	switch f {
	case flowBill:
		queue = c.billFlow(handoff)
	case flowDebt:
		queue = c.debtFlow(handoff)
	case flowSupport:
		queue = c.supportFlow(handoff)
	case flowPlans:
		queue = c.plansFlow(handoff)
	case flowHuman:
		queue = c.humanFlow()
	case flowPayment:
		queue = c.paymentFlow(handoff)
	}
	if handoff {
		c.handoff(queue)
	} else {
		c.closeBot()
	}
}

var menuOption = []int{1, 2, 3, 4, 6, 5}

func (c *conversation) greeting() string {
	g := c.g
	if c.ct.visits > 0 && g.chance(0.6) {
		return pick(g, returnGreetings)
	}
	if g.chance(0.35) {
		switch h := brasiliaHour(c.at); {
		case h >= 5 && h < 12:
			return "Bom dia"
		case h >= 12 && h < 18:
			return "Boa tarde"
		default:
			return "Boa noite"
		}
	}
	return pick(g, greetings)
}

// brasiliaHour is the local hour in Brasília (UTC−3, no daylight saving since 2019).
func brasiliaHour(t time.Time) int { return (t.Hour() + 21) % 24 }

// issueProtocol opens the attendance: every later event carries the protocol,
// YYYYMMDD and HHMMSS plus milliseconds of the moment it was issued (UTC).
func (c *conversation) issueProtocol() {
	if c.base.Protocol != "" {
		return
	}
	at := c.at.Add(c.g.between(300*time.Millisecond, time.Second))
	b := at.AppendFormat(c.g.buf[:0], "20060102150405.000")
	b = append(b[:14], b[15:]...) // drop the decimal point
	p := string(b)
	c.g.buf = b[:0]
	c.base.Protocol = p
	c.botSays("Seu número de protocolo é " + p + ". Guarde-o para acompanhar sua solicitação.")
}

// ---- event builders ----

func (c *conversation) push(d time.Duration, typ event.Type) *event.Event {
	if len(c.evs) > 0 {
		c.at = c.at.Add(max(d, time.Millisecond))
	}
	e := c.base
	e.Type = typ
	e.OccurredAt = c.at
	c.evs = append(c.evs, e)
	return &c.evs[len(c.evs)-1]
}

func (c *conversation) message(d time.Duration, a *event.Author, text string) *event.Event {
	e := c.push(d, event.TypeMessage)
	e.Author = a
	e.Text = text
	e.ContentType = "text"
	return e
}

// customerSays: the customer reads, thinks and types; sometimes gets distracted.
func (c *conversation) customerSays(text string) {
	c.message(c.typing(len(text)), c.customer, text)
}

func (c *conversation) typing(n int) time.Duration {
	g := c.g
	d := 2*time.Second + time.Duration(n)*time.Duration(100+g.rng.IntN(250))*time.Millisecond
	if g.chance(0.10) {
		d += g.between(time.Minute, 8*time.Minute)
	}
	return d + g.between(0, 3*time.Second)
}

func (c *conversation) botSays(text string) *event.Event {
	return c.message(c.g.between(600*time.Millisecond, 2500*time.Millisecond), c.bot, text)
}

func (c *conversation) agentSays(text string) {
	d := c.g.between(8*time.Second, 40*time.Second) + time.Duration(len(text))*120*time.Millisecond
	c.message(d, c.agentAu, text)
}

// attach turns the latest message into a file message.
func (c *conversation) attach(contentType, url, mime, name string) {
	e := &c.evs[len(c.evs)-1]
	e.ContentType = contentType
	e.Attachments = []event.Attachment{{URL: url, MIMEType: mime, Name: name}}
}

// A flow's code blocks run in milliseconds.
func (c *conversation) codeDelay() time.Duration {
	return c.g.between(15*time.Millisecond, 350*time.Millisecond)
}

func (c *conversation) tag(name string) {
	c.push(c.codeDelay(), event.TypeTag).Tag = name
}

func (c *conversation) info(key, value string) {
	c.push(c.codeDelay(), event.TypeInfo).Info = &event.Info{Key: key, Value: value}
}

func (c *conversation) handoffEvent(d time.Duration, h *event.Handoff) {
	c.push(d, event.TypeHandoff).Handoff = h
}

// ---- bot flows; each returns the queue to hand off to ----

func (c *conversation) askCPF() {
	g := c.g
	c.botSays("Para localizar seu cadastro, informe o CPF do titular, por favor.")
	if g.chance(0.10) {
		c.customerSays(string(g.appendDigits(g.buf[:0], 8+g.rng.IntN(2))))
		c.info("CPF_VALIDADO", "false")
		c.tag("CPF Inválido")
		c.botSays("Hmm, esse CPF não parece válido. Confira os números e digite novamente, por favor.")
	}
	c.customerSays(g.cpf())
	c.info("CPF_VALIDADO", "true")
}

func (c *conversation) billFlow(handoff bool) string {
	g := c.g
	c.askCPF()
	n := 1 + g.rng.IntN(2)
	cents := 8990 + g.rng.IntN(25000)
	y, m, _ := c.at.Date()
	b := append(g.buf[:0], "Encontrei "...)
	if n == 1 {
		b = append(b, "1 fatura em aberto:\n"...)
	} else {
		b = append(b, "2 faturas em aberto:\n"...)
	}
	for i := range n {
		due := time.Date(y, m-time.Month(n-1-i), 10, 0, 0, 0, 0, time.UTC)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, ") Vencimento "...)
		b = due.AppendFormat(b, "02/01/2006")
		b = append(b, " — "...)
		b = appendBRL(b, cents)
		b = append(b, '\n')
	}
	b = append(b, "Qual você deseja receber?"...)
	c.botSays(string(b))
	g.buf = b[:0]
	c.info("QTD_FATURAS", strconv.Itoa(n))
	if n == 1 {
		c.customerSays(pick(g, []string{"essa mesmo", "1", "pode mandar", "sim"}))
	} else {
		c.customerSays(pick(g, []string{"1", "2", "a mais recente", "as duas"}))
	}
	c.botSays("Aqui está o seu boleto 📄")
	c.attach("document", c.t.media+"boletos/"+g.hexString(16)+".pdf", "application/pdf", "boleto.pdf")
	c.botSays("Se preferir, copie a linha digitável:\n" + g.barcode())
	c.tag("Segunda Via Sucesso")
	c.info("VALOR_FATURA", string(appendDecimal(g.buf[:0], cents)))
	if handoff {
		c.customerSays(pick(g, []string{
			"esse valor está errado, veio muito alto",
			"não reconheço essa cobrança, quero falar com alguém",
		}))
		c.tag("Contestação Fatura")
		return "Financeiro"
	}
	return ""
}

func (c *conversation) debtFlow(handoff bool) string {
	g := c.g
	c.askCPF()
	cents := 30000 + g.rng.IntN(220000)
	months := 2 + g.rng.IntN(4)
	b := append(g.buf[:0], "Identificamos um débito de "...)
	b = appendBRL(b, cents)
	b = append(b, " referente a "...)
	b = strconv.AppendInt(b, int64(months), 10)
	b = append(b, " faturas vencidas. Temos estas condições:\n1) À vista com 20% de desconto: "...)
	b = appendBRL(b, cents*8/10)
	b = append(b, "\n2) Em 3x de "...)
	b = appendBRL(b, cents/3+1)
	b = append(b, "\n3) Em 6x de "...)
	b = appendBRL(b, cents*106/600)
	b = append(b, "\nQual opção você prefere?"...)
	c.botSays(string(b))
	g.buf = b[:0]
	c.tag("Negociação")
	c.info("VALOR_DIVIDA", string(appendDecimal(g.buf[:0], cents)))
	if handoff {
		c.customerSays(pick(g, []string{
			"nenhuma dessas cabe no meu bolso, consigo falar com alguém?",
			"queria parcelar em mais vezes",
			"preciso conversar com um atendente sobre isso",
		}))
		c.tag("Negociação Sem Acordo")
		return "Cobrança"
	}
	opt := 1 + g.rng.IntN(3)
	c.customerSays(strconv.Itoa(opt))
	c.info("PARCELAS", strconv.Itoa([]int{1, 3, 6}[opt-1]))
	c.botSays("Acordo registrado! ✅ Segue o boleto para pagamento.")
	c.attach("document", c.t.media+"acordos/"+g.hexString(16)+".pdf", "application/pdf", "acordo.pdf")
	c.tag("Acordo Fechado")
	return ""
}

func (c *conversation) supportFlow(handoff bool) string {
	g := c.g
	c.botSays("Sinto muito pelo transtorno. O que está acontecendo?\n1) Internet lenta ou caindo\n2) Sem conexão\n3) Problema com a TV\n4) Outro")
	c.customerSays(pick(g, []string{"1", "2", "2", "3", "estou sem internet desde ontem", "a internet cai toda hora"}))
	c.botSays("Em qual cidade fica o endereço da instalação?")
	city := areas[c.ct.area].city
	c.customerSays(city)
	c.info("CIDADE", city)
	c.tag("Suporte Técnico")
	if !handoff && g.chance(0.15) {
		c.botSays("Identificamos uma instabilidade na sua região. Nossa equipe já está trabalhando e a previsão de normalização é de até 4 horas.")
		c.tag("Falha Massiva")
		return ""
	}
	c.botSays("Não encontrei falhas na sua região. Por favor, desligue o modem da tomada, aguarde 30 segundos e ligue novamente. Me avise quando terminar 🙂")
	c.at = c.at.Add(g.between(time.Minute, 4*time.Minute)) // restarting the modem
	if handoff {
		c.customerSays(pick(g, []string{"já fiz isso e continua igual", "continua sem funcionar", "reiniciei e nada"}))
		c.botSays("Vou abrir um chamado e transferir você para a nossa equipe técnica.")
		c.tag("Falha Técnica")
		return "Suporte"
	}
	c.customerSays(pick(g, []string{"voltou! obrigado", "funcionou", "agora foi, valeu"}))
	c.tag("Problema Resolvido Bot")
	return ""
}

var plans = []string{"Fibra 300 Mega", "Fibra 500 Mega", "Fibra 1 Giga"}

func (c *conversation) plansFlow(handoff bool) string {
	g := c.g
	c.botSays("Temos ótimas opções de internet fibra:\n1) Fibra 300 Mega — R$ 99,90/mês\n2) Fibra 500 Mega — R$ 119,90/mês\n3) Fibra 1 Giga — R$ 159,90/mês\nQual te interessa?")
	i := g.rng.IntN(len(plans))
	c.customerSays(strconv.Itoa(i + 1))
	c.info("PLANO", plans[i])
	c.tag("Interesse Plano")
	c.botSays("Ótima escolha! Em qual cidade você mora?")
	city := areas[c.ct.area].city
	c.customerSays(city)
	c.info("CIDADE", city)
	if handoff {
		c.botSays("Temos cobertura aí! 🎉 Um consultor vai finalizar a sua contratação.")
		return "Comercial"
	}
	c.botSays("Temos cobertura aí! 🎉 Finalize a contratação pelo link: https://assine.chatbot.example/" + c.t.name)
	c.tag("Link Contratação Enviado")
	return ""
}

func (c *conversation) humanFlow() string {
	g := c.g
	c.tag("Transbordo Solicitado")
	c.botSays("Claro! Para direcionar você à equipe certa, me conte em poucas palavras o assunto.")
	switch g.rng.IntN(4) {
	case 0:
		c.customerSays(pick(g, []string{"quero cancelar meu plano", "cancelamento", "quero cancelar"}))
		c.info("MOTIVO_CONTATO", "cancelamento")
		c.tag("Cancelamento")
		return "Retenção"
	case 1:
		c.customerSays(pick(g, []string{"dúvida na minha fatura", "cobrança indevida"}))
		c.info("MOTIVO_CONTATO", "fatura")
		return "Financeiro"
	default:
		c.customerSays(pick(g, []string{"quero mudar a data de vencimento", "mudança de endereço", "atualizar meu cadastro"}))
		c.info("MOTIVO_CONTATO", "cadastro")
		return "Atendimento Geral"
	}
}

func (c *conversation) paymentFlow(handoff bool) string {
	g := c.g
	c.botSays("Que pena! Como você fez o pagamento?\n1) Pix\n2) Boleto\n3) Cartão de crédito")
	i := g.rng.IntN(3)
	c.customerSays([]string{"pix", "2", "3"}[i])
	c.info("MEIO_PAGAMENTO", []string{"pix", "boleto", "cartao"}[i])
	c.botSays("Envie o comprovante de pagamento, por favor.")
	c.customerSays(pick(g, []string{"", "segue o comprovante", "tá aqui"}))
	c.attach("image", c.t.media+"uploads/"+g.hexString(16)+".jpg", "image/jpeg", "")
	c.tag("Falha Pagamento")
	if handoff {
		c.botSays("Recebi! Vou encaminhar para a equipe financeira analisar.")
		return "Financeiro"
	}
	c.botSays("Localizei seu pagamento! Ele foi compensado e a baixa acontece em até 3 dias úteis.")
	c.tag("Pagamento Localizado")
	return ""
}

// closeBot ends a conversation that stayed with the bot.
func (c *conversation) closeBot() {
	g := c.g
	c.botSays("Posso ajudar em algo mais?\n1) Sim\n2) Não")
	if g.chance(0.08) {
		c.at = c.at.Add(g.between(5*time.Minute, 10*time.Minute))
		c.botSays("Você ainda está aí? 🙂")
		c.at = c.at.Add(g.between(5*time.Minute, 10*time.Minute))
		c.botSays("Como não recebi resposta, vou encerrar por aqui. Se precisar, é só chamar!")
		c.tag("Encerrado Por Inatividade")
		return // the flow's last code block never ran: no NAO_TRANSBORDADA
	}
	c.customerSays(pick(g, []string{"2", "não, obrigado", "não, obrigada 😊", "só isso", "nao"}))
	if g.chance(0.55) {
		c.survey(c.t.nps)
	}
	c.botSays(c.t.farewell)
	c.info("NAO_TRANSBORDADA", "true")
}

var npsScores = []int{10, 10, 10, 10, 9, 9, 9, 8, 8, 7, 6, 5, 3, 0}

func (c *conversation) survey(question string) {
	c.botSays(question)
	score := pick(c.g, npsScores)
	c.customerSays(strconv.Itoa(score))
	c.info("NPS", strconv.Itoa(score))
	c.tag("Pesquisa Respondida")
}

// ---- handoff to a human ----

func (c *conversation) handoff(queue string) {
	g := c.g
	c.issueProtocol()
	c.botSays("Vou transferir você para um de nossos especialistas. ⏳ Aguarde um momento, por favor.")
	reason := "fluxo"
	if queue == "Atendimento Geral" || queue == "Retenção" {
		reason = "solicitado_cliente"
	}
	c.handoffEvent(c.codeDelay(), &event.Handoff{Action: event.ActionRequested, Queue: queue, Reason: reason})
	c.tag("Transbordo Humano")

	wait := g.between(15*time.Second, 3*time.Minute)
	if g.chance(0.3) {
		wait += g.between(3*time.Minute, 20*time.Minute)
	}
	switch p := g.rng.Float64(); {
	case p < 0.03 && c.ct.channel == ChannelWhatsApp:
		// Nobody picked it up before WhatsApp closed the 24-hour window: the
		// platform closes it a second before the window ends (an event at
		// the end itself would open the next session).
		end := c.ct.windowStart.Add(whatsappWindow)
		c.handoffEvent(max(end.Add(-time.Second).Sub(c.at), time.Millisecond), &event.Handoff{Action: event.ActionClosed, Queue: queue, Status: "cancelled_inactivity"})
		return
	case p < 0.09:
		c.at = c.at.Add(wait)
		c.customerSays(pick(g, []string{"?", "alguém??", "vou desistir", "demora muito"}))
		c.handoffEvent(g.between(time.Minute, 5*time.Minute), &event.Handoff{Action: event.ActionClosed, Queue: queue, Reason: "cliente_desistiu", Status: "abandoned"})
		return
	}
	c.assign(wait, event.ActionAssigned, queue, "")
	c.script(queue)
	if g.chance(0.15) {
		c.agentSays("Esse assunto é tratado por outra equipe. Vou transferir você, só um instante.")
		next := pick(g, transferQueues[queue])
		c.assign(g.between(20*time.Second, 3*time.Minute), event.ActionTransferred, next, "outro_setor")
		queue = next
		c.script(queue)
	}
	if g.chance(0.85) {
		c.agentSays("Posso ajudar em algo mais?")
		c.customerSays(pick(g, []string{"não, era só isso. obrigado!", "só isso mesmo, valeu", "não, obrigada 😊", "não"}))
		c.agentSays(goodbye(brasiliaHour(c.at)))
		c.handoffEvent(c.g.between(2*time.Second, 30*time.Second), &event.Handoff{Action: event.ActionClosed, Queue: queue, Agent: c.agent, Status: "resolved"})
		if g.chance(0.40) {
			c.survey("Seu atendimento foi encerrado. De 0 a 10, qual nota você dá para o atendimento que recebeu?")
			c.botSays("Obrigada pela sua avaliação! 💙")
		}
		return
	}
	c.at = c.at.Add(g.between(3*time.Minute, 10*time.Minute))
	c.agentSays("Olá, você ainda está por aí? 🙂")
	c.at = c.at.Add(g.between(5*time.Minute, 10*time.Minute))
	c.agentSays("Como não tivemos retorno, estou encerrando este atendimento. Se precisar, é só chamar!")
	c.handoffEvent(c.g.between(time.Second, 10*time.Second), &event.Handoff{Action: event.ActionClosed, Queue: queue, Agent: c.agent, Status: "abandoned"})
}

// assign hands the conversation to a new agent, who greets the customer.
func (c *conversation) assign(wait time.Duration, action, queue, reason string) {
	g := c.g
	a := pick(g, c.t.agents)
	if c.agent != nil && a.ID == c.agent.ID {
		a = c.t.agents[(slices.Index(c.t.agents, a)+1)%len(c.t.agents)]
	}
	c.agent = &a
	c.agentAu = &event.Author{Role: event.RoleAgent, ID: a.ID, Name: a.Name}
	c.handoffEvent(wait, &event.Handoff{Action: action, Queue: queue, Agent: c.agent, Reason: reason})
	first, _, _ := strings.Cut(a.Name, " ")
	hello := "Olá! "
	if c.ct.first != "" {
		hello = "Olá, " + c.ct.first + "! "
	}
	c.agentSays(hello + "Meu nome é " + first + " e vou continuar o seu atendimento.")
}

func goodbye(hour int) string {
	switch {
	case hour >= 5 && hour < 12:
		return "Eu que agradeço! Tenha um ótimo dia 😊"
	case hour >= 12 && hour < 18:
		return "Eu que agradeço! Tenha uma ótima tarde 😊"
	default:
		return "Eu que agradeço! Tenha uma ótima noite 😊"
	}
}

// line is one message of an agent script; an empty customer text with image
// set is a photo without caption.
type line struct {
	agent bool
	text  string
	image bool
}

func (c *conversation) script(queue string) {
	s := pick(c.g, scripts[queue])
	for _, l := range s {
		switch {
		case l.agent:
			c.agentSays(l.text)
		default:
			c.customerSays(l.text)
			if l.image {
				c.attach("image", c.t.media+"uploads/"+c.g.hexString(16)+".jpg", "image/jpeg", "")
			}
		}
	}
}

func agentLine(s string) line    { return line{agent: true, text: s} }
func customerLine(s string) line { return line{text: s} }

var scripts = map[string][][]line{
	"Financeiro": {
		{
			agentLine("Estou verificando seu cadastro, só um instante, por favor."),
			customerLine("ok, aguardo"),
			agentLine("Localizei o pagamento. Ele foi feito após o vencimento, por isso ainda não havia baixado. Já solicitei a baixa manual."),
			customerLine("vai ser cobrado juros?"),
			agentLine("Neste caso isentamos os juros. A próxima fatura virá com o valor normal."),
			customerLine("ah, que bom"),
		},
		{
			agentLine("Pode me confirmar a data de vencimento da fatura com problema?"),
			customerLine("dia 10"),
			agentLine("Obrigada! Vi que houve uma cobrança em duplicidade neste mês. Vou solicitar o estorno, que aparece na próxima fatura."),
			customerLine("certo, obrigado"),
		},
	},
	"Cobrança": {
		{
			agentLine("Verifiquei seu débito. Consigo parcelar em até 10x sem juros, com entrada de R$ 50,00. Fica bom para você?"),
			customerLine("10x fica melhor sim"),
			agentLine("Perfeito! Acordo registrado. O boleto da entrada chega por aqui em instantes."),
			customerLine("recebi, obrigada"),
		},
		{
			agentLine("Entendo. Qual valor de parcela caberia no seu orçamento hoje?"),
			customerLine("uns 100 reais por mês"),
			agentLine("Consigo fazer em 12x de R$ 104,90. Posso registrar?"),
			customerLine("pode sim"),
			agentLine("Acordo registrado ✅. Você vai receber os boletos todo mês por aqui e por e-mail."),
		},
	},
	"Suporte": {
		{
			agentLine("Vou fazer alguns testes remotos na sua conexão. Pode deixar o modem ligado?"),
			customerLine("tá ligado"),
			agentLine("Identifiquei uma falha no sinal da fibra até a sua casa. Vou agendar uma visita técnica."),
			customerLine("qual dia vocês conseguem vir?"),
			agentLine("Tenho disponibilidade amanhã, entre 8h e 12h. Pode ser?"),
			customerLine("pode ser"),
			agentLine("Visita agendada! O técnico estará identificado com crachá da empresa."),
		},
		{
			agentLine("Pode me enviar uma foto das luzes do modem?"),
			{text: "segue", image: true},
			agentLine("Obrigado! A luz LOS vermelha indica rompimento da fibra. Já abri uma ordem de serviço com prioridade."),
			customerLine("quanto tempo demora?"),
			agentLine("O prazo é de até 24 horas, mas normalmente resolvemos antes."),
		},
	},
	"Comercial": {
		{
			agentLine("Que bom que você se interessou! O plano inclui Wi-Fi 6 e instalação grátis. Podemos agendar a instalação?"),
			customerLine("pode ser"),
			agentLine("A instalação pode ser feita em até 3 dias úteis. Qual o melhor período?"),
			customerLine("de manhã"),
			agentLine("Agendado para o período da manhã ✅. Você vai receber o contrato por e-mail para assinatura digital."),
		},
	},
	"Retenção": {
		{
			agentLine("Sinto muito que você queira cancelar. Posso perguntar o motivo?"),
			customerLine("tá muito caro"),
			agentLine("Entendo. Consigo oferecer 30% de desconto nos próximos 6 meses, mantendo a sua velocidade. O que acha?"),
			customerLine("assim fica bom"),
			agentLine("Ótimo! Desconto aplicado a partir da próxima fatura."),
		},
		{
			agentLine("Sinto muito que você queira cancelar. Posso perguntar o motivo?"),
			customerLine("vou me mudar para outra cidade"),
			agentLine("Entendo. Infelizmente não temos cobertura lá. Registrei o cancelamento, e a retirada do equipamento será agendada."),
			customerLine("ok"),
		},
	},
	"Atendimento Geral": {
		{
			agentLine("Como posso ajudar?"),
			customerLine("quero mudar a data de vencimento da minha fatura"),
			agentLine("Claro! As datas disponíveis são 5, 10, 15 ou 20. Qual prefere?"),
			customerLine("dia 15"),
			agentLine("Alterado! A mudança vale a partir do próximo ciclo."),
		},
		{
			agentLine("Como posso ajudar?"),
			customerLine("preciso atualizar meu e-mail no cadastro"),
			agentLine("Sem problemas. Por segurança, enviei um código de confirmação por SMS. Pode me informar?"),
			customerLine("482913"),
			agentLine("Confirmado! Seu cadastro foi atualizado."),
		},
	},
}

var transferQueues = map[string][]string{
	"Financeiro":        {"Cobrança", "Atendimento Geral"},
	"Cobrança":          {"Financeiro"},
	"Suporte":           {"Atendimento Geral", "Comercial"},
	"Comercial":         {"Atendimento Geral"},
	"Retenção":          {"Financeiro", "Comercial"},
	"Atendimento Geral": {"Financeiro", "Suporte", "Retenção"},
}

// ---- formatting ----

// appendBRL formats cents as Brazilian reais: R$ 1.249,70.
func appendBRL(b []byte, cents int) []byte {
	b = append(b, "R$ "...)
	reais := strconv.Itoa(cents / 100)
	for i := range len(reais) {
		if i > 0 && (len(reais)-i)%3 == 0 {
			b = append(b, '.')
		}
		b = append(b, reais[i])
	}
	b = append(b, ',', byte('0'+cents/10%10), byte('0'+cents%10))
	return b
}

// appendDecimal formats cents the machine way: 1249.70.
func appendDecimal(b []byte, cents int) []byte {
	b = strconv.AppendInt(b, int64(cents/100), 10)
	return append(b, '.', byte('0'+cents/10%10), byte('0'+cents%10))
}

// cpf returns a random CPF with valid check digits, formatted as customers
// type it: with punctuation or without.
func (g *Generator) cpf() string {
	var d [11]int
	for i := range 9 {
		d[i] = g.rng.IntN(10)
	}
	for k := 9; k <= 10; k++ {
		sum := 0
		for i := range k {
			sum += d[i] * (k + 1 - i)
		}
		if r := sum * 10 % 11; r < 10 {
			d[k] = r
		}
	}
	punct := g.chance(0.4)
	b := g.buf[:0]
	for i, x := range d {
		if punct && (i == 3 || i == 6) {
			b = append(b, '.')
		}
		if punct && i == 9 {
			b = append(b, '-')
		}
		b = append(b, byte('0'+x))
	}
	s := string(b)
	g.buf = b[:0]
	return s
}

// barcode returns a boleto's typeable line (linha digitável).
func (g *Generator) barcode() string {
	b := append(g.buf[:0], pick(g, []string{"34191", "23793", "00190", "10499"})...)
	b = append(b, '.')
	b = g.appendDigits(b, 5)
	b = append(b, ' ')
	b = g.appendDigits(b, 5)
	b = append(b, '.')
	b = g.appendDigits(b, 6)
	b = append(b, ' ')
	b = g.appendDigits(b, 5)
	b = append(b, '.')
	b = g.appendDigits(b, 6)
	b = append(b, ' ')
	b = g.appendDigits(b, 1)
	b = append(b, ' ')
	b = g.appendDigits(b, 14)
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

// ---- vocabulary ----

var (
	botNames = []string{"Lia", "Bia", "Sofia", "Clara", "Duda", "Malu"}

	greetings = []string{
		"Oi", "Olá", "oi", "oii", "Oi, tudo bem?", "Olá, preciso de ajuda", "Opa", "boa tarde, preciso de ajuda",
		"Oi! Vim pelo site", "alô",
	}
	returnGreetings = []string{"oi de novo", "Voltei", "oi, falei com vocês mais cedo", "Olá novamente"}
	offMenu         = []string{"quero ajuda", "?", "não sei", "meu boleto", "oi"}

	firstNames = []struct {
		name   string
		female bool
	}{
		{"Maria", true}, {"Ana", true}, {"Francisca", true}, {"Antônia", true}, {"Adriana", true},
		{"Juliana", true}, {"Márcia", true}, {"Fernanda", true}, {"Patrícia", true}, {"Aline", true},
		{"Camila", true}, {"Bruna", true}, {"Letícia", true}, {"Amanda", true}, {"Larissa", true},
		{"Beatriz", true}, {"Gabriela", true}, {"Vitória", true}, {"Júlia", true}, {"Luana", true},
		{"Sandra", true}, {"Cláudia", true}, {"Rosângela", true}, {"Débora", true}, {"Tatiane", true},
		{"José", false}, {"João", false}, {"Antônio", false}, {"Francisco", false}, {"Carlos", false},
		{"Paulo", false}, {"Pedro", false}, {"Lucas", false}, {"Luiz", false}, {"Marcos", false},
		{"Gabriel", false}, {"Rafael", false}, {"Daniel", false}, {"Marcelo", false}, {"Bruno", false},
		{"Eduardo", false}, {"Felipe", false}, {"Raimundo", false}, {"Rodrigo", false}, {"Thiago", false},
		{"Matheus", false}, {"Gustavo", false}, {"Leonardo", false}, {"Vinícius", false}, {"Cícero", false},
	}
	surnames = []string{
		"Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes",
		"Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes", "Vieira", "Barbosa",
		"Rocha", "Dias", "Nascimento", "Andrade", "Moreira", "Nunes", "Marques", "Machado", "Mendes", "Freitas",
		"Cardoso", "Ramos", "Gonçalves", "Santana", "Teixeira", "Araújo", "Batista", "Conceição",
	}
	nicknames  = []string{"Bia", "Lu", "Zé", "Nanda", "Dudu", "Gabi", "Rafa", "Carol", "Tati", "Juninho"}
	nameEmojis = []string{"🌻", "❤️", "🙏", "⚽", "✨", "🌸", "😎", "🇧🇷"}

	// areas: telephone area codes (DDD) and their main city, weighted roughly
	// by population.
	areas = []struct{ ddd, city string }{
		{"11", "São Paulo"}, {"21", "Rio de Janeiro"}, {"31", "Belo Horizonte"}, {"41", "Curitiba"},
		{"51", "Porto Alegre"}, {"71", "Salvador"}, {"81", "Recife"}, {"85", "Fortaleza"},
		{"19", "Campinas"}, {"62", "Goiânia"}, {"61", "Brasília"}, {"92", "Manaus"},
		{"48", "Florianópolis"}, {"27", "Vitória"}, {"84", "Natal"}, {"91", "Belém"},
	}
	areaWeights = []int{30, 14, 8, 6, 6, 5, 5, 5, 5, 3, 4, 3, 2, 2, 1, 2}
)
