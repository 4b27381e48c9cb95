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
