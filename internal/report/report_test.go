package report

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCursorRoundTrip(t *testing.T) {
	k := NewCursorCodec([]byte("key"))
	c := Cursor{StartedAt: time.Date(2025, 10, 7, 9, 0, 0, 123456789, time.UTC), SessionID: "c639c747-4637-4ff5-99c0-9f0e86d3c21b"}
	got, err := k.Decode(k.Encode(c))
	if err != nil || !got.StartedAt.Equal(c.StartedAt) || got.SessionID != c.SessionID {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

func TestCursorTampered(t *testing.T) {
	k := NewCursorCodec([]byte("key"))
	good := k.Encode(Cursor{StartedAt: time.Unix(1, 0), SessionID: "s"})
	payload, sig, _ := strings.Cut(good, ".")
	forged := b64.EncodeToString([]byte(`{"t":"2030-01-01T00:00:00Z","s":"s"}`))
	bad := []string{
		"", ".", "abc", "abc.def", good + "x", "x" + good, payload, payload + ".", "." + sig,
		forged + "." + sig, // another position under the old signature
		NewCursorCodec([]byte("other")).Encode(Cursor{StartedAt: time.Unix(1, 0), SessionID: "s"}),
		k.Encode(Cursor{StartedAt: time.Unix(1, 0)}), // signed, but no session
		strings.ToUpper(good),
	}
	for i := range good {
		b := []byte(good)
		b[i] ^= 0x01
		bad = append(bad, string(b))
	}
	for _, s := range bad {
		if s == good {
			continue
		}
		if _, err := k.Decode(s); err != ErrBadCursor {
			t.Errorf("Decode(%q) = %v, want ErrBadCursor", s, err)
		}
	}
}

func TestWords(t *testing.T) {
	for q, want := range map[string][]string{
		"":                      nil,
		"   ":                   nil,
		"segunda via":           {"segunda", "via"},
		"  NÃO\tquero\n":        {"NÃO", "quero"},
		"! ? - segunda-via":     {"segunda-via"},
		"cpf? 123.456.789-00 😀": {"cpf?", "123.456.789-00"},
	} {
		if got := Words(q); !slices.Equal(got, want) {
			t.Errorf("Words(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestPhoneQuery(t *testing.T) {
	for s, want := range map[string]string{
		"+55 (11) 98765-4321": "5511987654321",
		"98765-4321":          "987654321",
		"9876.4321":           "98764321",
		"8765-432":            "", // 7 digits
		"web-77123456789":     "", // an id, not a phone
		"Maria 98765-4321":    "", // a name
		"":                    "",
	} {
		d, ok := PhoneQuery(s)
		if ok != (want != "") || ok && d != want {
			t.Errorf("PhoneQuery(%q) = %q, %v; want %q", s, d, ok, want)
		}
	}
}

// ReversedPhoneDigits gives the bytes both stores keep (the ASCII digits,
// last first) for any input, among them non-ASCII digits, which are not
// digits here, and bytes that are not UTF-8; and it is PhoneDigits reversed.
func TestReversedPhoneDigits(t *testing.T) {
	old := func(s string) string {
		var b []byte
		for i := len(s) - 1; i >= 0; i-- {
			if s[i] >= '0' && s[i] <= '9' {
				b = append(b, s[i])
			}
		}
		return string(b)
	}
	inputs := []string{"", " ", "+", "+55 11 98765-4321", "(11) 3333.4444", "abc", "7", "١٢٣ 45", "１２３", "+1-800-FLOWERS 9", "\xff9\xe2\x82"}
	pieces := []string{"0", "1", "5", "9", "+", " ", "-", "(", ")", ".", "١", "٣", "１", "²", "a", "é", "\xff", "\xe2\x82", "\x00", ":", "/"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		var b strings.Builder
		for range rng.IntN(24) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		inputs = append(inputs, b.String())
	}
	for _, s := range inputs {
		got, want := ReversedPhoneDigits(s), old(s)
		if got != want {
			t.Fatalf("ReversedPhoneDigits(%q) = %q, want %q", s, got, want)
		}
		b := []byte(PhoneDigits(s))
		slices.Reverse(b)
		if string(b) != got {
			t.Fatalf("PhoneDigits(%q) reversed = %q, ReversedPhoneDigits %q", s, b, got)
		}
	}
	if got := ReversedPhoneDigits("+55 (11) 98765-4321"); got != "1234567891155" {
		t.Errorf("ReversedPhoneDigits = %q", got)
	}
}

func TestFilterValidate(t *testing.T) {
	base := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	ok := Filter{Tenant: "acme", From: base, To: base.Add(MaxInterval)}
	if err := ok.Validate(); err != nil {
		t.Fatalf("31 days: %v", err)
	}
	dst := ok
	dst.To = dst.To.Add(time.Hour) // 31 calendar days across a DST change
	if err := dst.Validate(); err != nil {
		t.Fatalf("31 days and an hour: %v", err)
	}
	for name, f := range map[string]Filter{
		"no tenant":     {From: base, To: base.Add(time.Hour)},
		"empty":         {Tenant: "acme", From: base, To: base},
		"reversed":      {Tenant: "acme", From: base, To: base.Add(-time.Hour)},
		"32 days":       {Tenant: "acme", From: base, To: base.Add(32 * 24 * time.Hour)},
		"session":       {Tenant: "acme", From: base, To: base.Add(time.Hour), SessionID: "x"},
		"protocol":      {Tenant: "acme", From: base, To: base.Add(time.Hour), Protocol: "1"},
		"info key":      {Tenant: "acme", From: base, To: base.Add(time.Hour), Info: []Condition{{Key: "a b", Op: OpExists}}},
		"info op":       {Tenant: "acme", From: base, To: base.Add(time.Hour), Info: []Condition{{Key: "K", Op: "like"}}},
		"tag mode":      {Tenant: "acme", From: base, To: base.Add(time.Hour), TagMode: "some"},
		"query no word": {Tenant: "acme", From: base, To: base.Add(time.Hour), Query: "?!"},
	} {
		if err := f.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
	if err := (Page{}).Validate(); err == nil {
		t.Error("page without limit: valid")
	}
}

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"CLÁUDIA Simões": "claudia simoes",
		"joão d'ávila":   "joao d'avila",
		"Ação":           "acao",
		"plain ascii":    "plain ascii",
		"Cla\u0301udia":  "claudia", // decomposed input
		"Søren Straße":   "søren straße",
		"ÑANDÚ 123":      "nandu 123",
		"":               "",
		"Zé 12345678":    "ze 12345678",
		"\xff broken":    "\ufffd broken", // as strings.ToLower does
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}
