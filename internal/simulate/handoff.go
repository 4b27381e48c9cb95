package simulate

import (
	"slices"
	"strings"
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

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
		c.customerSays(pick(g, g.words.Replies.Impatient))
		c.handoffEvent(g.between(time.Minute, 5*time.Minute), &event.Handoff{Action: event.ActionClosed, Queue: queue, Reason: "cliente_desistiu", Status: "abandoned"})
		return
	}
	c.assign(wait, event.ActionAssigned, queue, "")
	c.script(queue)
	if g.chance(0.15) {
		c.agentSays("Esse assunto é tratado por outra equipe. Vou transferir você, só um instante.")
		next := pick(g, g.words.transfers[queue])
		c.assign(g.between(20*time.Second, 3*time.Minute), event.ActionTransferred, next, "outro_setor")
		queue = next
		c.script(queue)
	}
	if g.chance(0.85) {
		c.agentSays("Posso ajudar em algo mais?")
		c.customerSays(pick(g, g.words.Replies.ThanksAgent))
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

func (c *conversation) script(queue string) {
	s := pick(c.g, c.g.words.scripts[queue])
	for _, l := range s {
		switch {
		case l.Agent != "":
			c.agentSays(l.Agent)
		default:
			c.customerSays(l.Customer)
			if l.Image {
				c.attach("image", c.t.media+"uploads/"+c.g.hexString(16)+".jpg", "image/jpeg", "")
			}
		}
	}
}
