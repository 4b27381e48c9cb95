package simulate

import (
	"strconv"
	"strings"
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

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
	botName := pick(g, g.words.BotNames)
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
		full := pick(g, g.words.FirstNames).Name + " " + pick(g, g.words.Surnames)
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
	area    int    // index in the vocabulary's areas: where the contact lives
	visits  int

	// WhatsApp's 24-hour window as the platform sees it.
	windowStart time.Time
	sessionID   string // the platform-provided session id of that window, if any
}

func (g *Generator) newContact() *contact {
	ct := &contact{tenant: g.rng.IntN(len(g.tenants)), area: g.weighted(g.words.areaWeights)}
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
	b = append(b, g.words.Areas[area].DDD...)
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
		f := pick(g, g.words.FirstNames).Name
		return f, f
	case p < 0.76:
		f := pick(g, g.words.FirstNames).Name
		return strings.ToLower(f), f
	case p < 0.86:
		f := pick(g, g.words.FirstNames).Name
		return f + " " + pick(g, g.words.NameEmojis), f
	case p < 0.94:
		n := pick(g, g.words.Nicknames)
		return n, n
	default:
		f := pick(g, g.words.FirstNames)
		title := "Dr. "
		if f.Female {
			title = "Dra. "
		}
		if g.chance(0.5) {
			if f.Female {
				return "Loja da " + f.Name, ""
			}
			return "Oficina do " + f.Name, ""
		}
		return title + f.Name, f.Name
	}
}

func (g *Generator) fullName() (name, first string) {
	f := pick(g, g.words.FirstNames).Name
	return f + " " + pick(g, g.words.Surnames), f
}

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

// barcode returns a boleto's typeable line (linha digitável): a bank's
// code, then groups of digits, each after its separator.
func (g *Generator) barcode() string {
	b := append(g.buf[:0], pick(g, []string{"34191", "23793", "00190", "10499"})...)
	for _, group := range barcodeGroups {
		b = append(b, group.sep)
		b = g.appendDigits(b, group.digits)
	}
	s := string(b)
	g.buf = b[:0]
	return s
}

var barcodeGroups = []struct {
	sep    byte
	digits int
}{{'.', 5}, {' ', 5}, {'.', 6}, {' ', 5}, {'.', 6}, {' ', 1}, {' ', 14}}
