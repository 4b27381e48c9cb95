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
func AppendEscaped(b []byte, s string, html bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look: message texts
		// are mostly plain ASCII, and this was the write path's largest
		// function (docs/performance.md).
		for i+8 <= len(s) && plain8(word(s, i), html) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
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
			i += 2 // a valid two-byte sequence (á, ç, ã): nothing to escape
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

// word is the eight bytes of s from i, the first the lowest.
func word(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plain8 reports whether none of the eight bytes of w needs escaping or a
// look at its UTF-8: each is ASCII, at least a space, and neither '"' nor
// '\\' (nor, with html, '<', '>' or '&'). The tests are the classic
// bitwise ones ("determine if a word has a byte less than n"): exact when,
// as here, the bytes tested are below 0x80.
func plain8(w uint64, html bool) bool {
	if w&msb != 0 {
		return false
	}
	bad := (w - 0x20*lsb) | zeroByte(w^'"'*lsb) | zeroByte(w^'\\'*lsb)
	if html {
		bad |= zeroByte(w^'<'*lsb) | zeroByte(w^'>'*lsb) | zeroByte(w^'&'*lsb)
	}
	return bad&msb == 0
}

// zeroByte has the high bit of each byte of w that is zero set (w's bytes
// below 0x80; others may be marked too, which plain8 never asks).
func zeroByte(w uint64) uint64 { return w - lsb }
