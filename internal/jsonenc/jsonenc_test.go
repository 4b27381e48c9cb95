package jsonenc

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
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
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(html)
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
			if got := AppendString(nil, s, html); !bytes.Equal(append(got, '\n'), want.Bytes()) {
				t.Fatalf("html %t, %q: got %s want %s", html, s, got, want.Bytes())
			}
		}
	}
}
