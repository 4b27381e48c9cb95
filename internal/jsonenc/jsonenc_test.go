package jsonenc

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMatchesEncodingJSON: every byte value, the separators, invalid UTF-8
// and random mixes, in both HTML modes, quoted as encoding/json quotes them.
func TestMatchesEncodingJSON(t *testing.T) {
	cases := []string{"", "plain", "Olá, NÃO 😀", "\u2028\u2029", "\xff\xfe", "a\xe2\x82", "<b>&amp;</b>", "\b\f\n\r\t\x00\x1f\x7f\"\\"}
	for c := range 256 {
		cases = append(cases, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "ç", "<", "&", "\n", "\x01", "\u2028", "\xff", "\"", "\\", "😀", "\b"}
	for range 2000 {
		var s string
		for range r.IntN(12) {
			s += alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, s)
	}
	for _, html := range []bool{false, true} {
		for _, s := range cases {
			if got, want := AppendString(nil, s, html), encodingJSON(t, s, html); !bytes.Equal(got, want) {
				t.Fatalf("html %t, %q: got %s want %s", html, s, got, want)
			}
		}
	}
}

// TestEveryPlaceInAWord: each byte value at each place of words read eight
// bytes at a time (and across two words), among ASCII letters, quoted as
// encoding/json quotes it: a byte to escape is never skipped with a word.
func TestEveryPlaceInAWord(t *testing.T) {
	for _, html := range []bool{false, true} {
		for c := range 256 {
			for at := range 20 {
				s := []byte("abcdefghijklmnopqrstuvwx")
				s[at] = byte(c)
				if want := encodingJSON(t, string(s), html); !bytes.Equal(AppendString(nil, string(s), html), want) {
					t.Fatalf("html %t, byte %#x at %d: got %s want %s", html, c, at, AppendString(nil, string(s), html), want)
				}
			}
		}
	}
}

// FuzzMatchesEncodingJSON: any string, in both modes.
func FuzzMatchesEncodingJSON(f *testing.F) {
	for _, s := range slices.Concat(benchStrings, []string{"\u2028 \xff", "abcdefg\u2029hijklmnop", "12345678\x7f"}) {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, html bool) {
		if got, want := AppendString(nil, s, html), encodingJSON(t, s, html); !bytes.Equal(got, want) {
			t.Fatalf("html %t, %q: got %s want %s", html, s, got, want)
		}
	})
}

// encodingJSON is s as encoding/json's Encoder writes it, without the
// newline.
func encodingJSON(t *testing.T, s string, html bool) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

// benchStrings are the kinds of strings the write path and the export
// encode: message texts (accented Portuguese, plain ASCII, a long one),
// ids, phone numbers, names, tags and times.
var benchStrings = []string{
	"Olá! Gostaria de saber o status do meu pedido, por favor.",
	"Seu pedido nº 48213 saiu para entrega e chega amanhã até às 18h.",
	"ok obrigado",
	"Hi, I would like to change the delivery address of my last order to the one in my profile, thanks a lot for the quick help with this.",
	"6f1c7a4e-2b1d-5c39-9a0e-c4a7d3b2e815",
	"5511987654321",
	"José da Conceição",
	"atendimento-humano",
	"2026-12-04T14:31:22.123Z",
	"Linha 1\nLinha 2 com \"aspas\" e <tags> & mais",
}

func BenchmarkAppendEscaped(b *testing.B) {
	n := 0
	for _, s := range benchStrings {
		n += len(s)
	}
	for _, html := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "html"}[html], func(b *testing.B) {
			b.SetBytes(int64(n))
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				buf = buf[:0]
				for _, s := range benchStrings {
					buf = AppendEscaped(buf, s, html)
				}
			}
		})
	}
}
