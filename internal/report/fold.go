package report

import (
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Fold is the form in which the contact filter compares names: lower case
// (all of Unicode) without diacritics, so "claudia" finds "CLÁUDIA" as the
// full-text filter's "nao" finds "NÃO". Letters that do not decompose into a
// base letter and marks ("ø", "ß") stay as they are.
func Fold(s string) string {
	s = strings.ToLower(s)
	if isASCII(s) {
		return s
	}
	out, _, err := transform.String(transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC), s)
	if err != nil {
		return s // invalid UTF-8 is kept as it is; it cannot match typed text anyway
	}
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
