// Package jsonenc appends JSON strings exactly as encoding/json writes them,
// for the hand-written encoders of the hot paths (the Elasticsearch write
// path's documents, the export's lines), which tests hold byte-equal to
// encoding/json.
package jsonenc

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// AppendString appends s quoted as encoding/json writes it: the short
// escapes \b \f \n \r \t, \u00XX for the other control characters, \u2028
// and \u2029 (which JavaScript cannot hold in a string literal), U+FFFD
// for invalid UTF-8, and with html (encoding/json's default, Encoder's
// SetEscapeHTML(true)) <, > and & as \u003c, \u003e and \u0026.
func AppendString(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	b = AppendEscaped(b, s, html)
	return append(b, '"')
}

// AppendEscaped is AppendString without the quotes.
//
// Runs of ASCII that needs no escape are skipped eight bytes at a time
// (plainWord, noMarkup), a two-byte UTF-8 sequence (the accented letters)
// in one step; any other byte is escaped, or decoded as UTF-8, as
// encoding/json does. What needs no escape is copied in runs.
func AppendEscaped(b []byte, s string, html bool) []byte {
	safe := &safeSet
	if html {
		safe = &htmlSafeSet
	}
	start := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) {
			if x := load64(s, i); !plainWord(x) || html && !noMarkup(x) {
				break
			}
			i += 8
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if safe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		if c >= 0xc2 && c <= 0xdf && i+1 < len(s) && s[i+1]&0xc0 == 0x80 {
			i += 2 // a valid two-byte sequence: neither U+2028 nor U+2029
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// safeSet and htmlSafeSet hold the ASCII bytes written as they are, without
// and with html.
var safeSet, htmlSafeSet = func() (plain, html [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		plain[c] = c != '"' && c != '\\'
		html[c] = plain[c] && c != '<' && c != '>' && c != '&'
	}
	return plain, html
}()

// load64 is the eight bytes of s from i as a little-endian word (one load:
// the compiler combines the byte loads).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// Words of eight bytes tested at once, after Anderson's "Bit Twiddling
// Hacks" ("Determine if a word has a byte less than n"): (x - n·ones) &^ x
// & highs is not 0 when a byte of x is below n (n ≤ 0x80), and a byte
// equal to c is a byte of x^(c·ones) below 1. A word that has a byte to
// look at is never taken for a safe one; the other way round only costs a
// trip through the one-byte path.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainWord reports whether the eight bytes of x are ASCII that JSON
// writes as they are: no control character, '"' or '\\'.
func plainWord(x uint64) bool {
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return (x|(x-ones*0x20)&^x|(q-ones)&^q|(bs-ones)&^bs)&highs == 0
}

// noMarkup reports whether none of the eight bytes of x is '<', '>' or
// '&' (which html escapes).
func noMarkup(x uint64) bool {
	lt, gt, amp := x^(ones*'<'), x^(ones*'>'), x^(ones*'&')
	return ((lt-ones)&^lt|(gt-ones)&^gt|(amp-ones)&^amp)&highs == 0
}
