package simulate

import (
	"strconv"
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

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
		c.customerSays(pick(g, g.words.OffMenu))
		c.botSays("Desculpe, não entendi 🤔. Por favor, digite apenas o número da opção desejada.")
		c.tag("Opção Inválida")
	}
	c.customerSays(pick(g, g.words.menuChoices[f]))
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
		return pick(g, g.words.ReturnGreetings)
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
	return pick(g, g.words.Greetings)
}

// tenantZone is the simulated tenants' time zone: Brasília, UTC−3 with no
// daylight saving since 2019 (the report's default api.time_zone,
// America/Sao_Paulo, gives the same times for the dates simulated).
var tenantZone = time.FixedZone("America/Sao_Paulo", -3*60*60)

// brasiliaHour is the local hour in Brasília.
func brasiliaHour(t time.Time) int { return t.In(tenantZone).Hour() }

// issueProtocol opens the attendance: every later event carries the protocol,
// YYYYMMDD and HHMMSS plus milliseconds of the moment it was issued (UTC).
func (c *conversation) issueProtocol() {
	if c.base.Protocol != "" {
		return
	}
	// The platform writes a protocol's date and time in the tenant's time
	// zone, so that it starts with the day the operator sees.
	at := c.at.Add(c.g.between(300*time.Millisecond, time.Second)).In(tenantZone)
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
		c.customerSays(pick(g, g.words.Replies.OneInvoice))
	} else {
		c.customerSays(pick(g, g.words.Replies.TwoInvoices))
	}
	c.botSays("Aqui está o seu boleto 📄")
	c.attach("document", c.t.media+"boletos/"+g.hexString(16)+".pdf", "application/pdf", "boleto.pdf")
	c.botSays("Se preferir, copie a linha digitável:\n" + g.barcode())
	c.tag("Segunda Via Sucesso")
	c.info("VALOR_FATURA", string(appendDecimal(g.buf[:0], cents)))
	if handoff {
		return c.asksForHuman(g.words.Replies.ContestInvoice, "Contestação Fatura", "Financeiro")
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
		return c.asksForHuman(g.words.Replies.NoDeal, "Negociação Sem Acordo", "Cobrança")
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
	c.customerSays(pick(g, g.words.Replies.SupportProblem))
	c.botSays("Em qual cidade fica o endereço da instalação?")
	city := g.words.Areas[c.ct.area].City
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
		c.customerSays(pick(g, g.words.Replies.StillBroken))
		c.botSays("Vou abrir um chamado e transferir você para a nossa equipe técnica.")
		c.tag("Falha Técnica")
		return "Suporte"
	}
	c.customerSays(pick(g, g.words.Replies.Fixed))
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
	city := g.words.Areas[c.ct.area].City
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
		c.customerSays(pick(g, g.words.Replies.Cancel))
		c.info("MOTIVO_CONTATO", "cancelamento")
		c.tag("Cancelamento")
		return "Retenção"
	case 1:
		c.customerSays(pick(g, g.words.Replies.InvoiceDoubt))
		c.info("MOTIVO_CONTATO", "fatura")
		return "Financeiro"
	default:
		c.customerSays(pick(g, g.words.Replies.Registration))
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
	c.customerSays(pick(g, g.words.Replies.ProofCaption))
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

// asksForHuman: the customer answers with one of replies, which the flow
// tags; it returns the queue to hand off to.
func (c *conversation) asksForHuman(replies []string, tag, queue string) string {
	c.customerSays(pick(c.g, replies))
	c.tag(tag)
	return queue
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
	c.customerSays(pick(g, g.words.Replies.NothingMore))
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
