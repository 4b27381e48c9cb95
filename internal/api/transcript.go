package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
)

// transcriptTime is the time of a transcript line, in the report time zone.
const transcriptTime = "2006-01-02 15:04:05 -07:00"

func (s *Server) getTranscript(c *gin.Context) {
	d, ok := s.detail(c)
	if !ok {
		return
	}
	c.Header("Content-Disposition", `inline; filename="chatreport-`+d.Session.ID+`.txt"`)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(transcript(&d, s.loc)))
}

// transcript renders the messages of a session, one line each:
//
//	2025-10-07 06:00:00 -03:00 Maria Souza (customer): Olá, preciso da segunda via
//
// Line breaks and other control characters in texts and names are escaped
// (\n, \r, \\, \u2028), so one message is always one line.
func transcript(d *report.Detail, loc *time.Location) string {
	var b strings.Builder
	for i := range d.Events {
		e := &d.Events[i]
		if e.Type != event.TypeMessage {
			continue
		}
		b.WriteString(e.OccurredAt.In(loc).Format(transcriptTime))
		b.WriteByte(' ')
		b.WriteString(escapeLine(authorLabel(e, d.Session.Contact.Name)))
		b.WriteString(": ")
		b.WriteString(escapeLine(e.Text))
		sep := e.Text != ""
		for _, a := range e.Attachments {
			name := a.Name
			if name == "" {
				name = a.URL
			}
			if sep {
				b.WriteByte(' ')
			}
			sep = true
			b.WriteString("[attachment: " + escapeLine(name) + "]")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// authorLabel is "Name (role)", or the role alone; a customer's name is the
// contact's captured name.
func authorLabel(e *event.Event, contactName string) string {
	role, name := "", ""
	if e.Author != nil {
		role, name = e.Author.Role, e.Author.Name
	}
	if name == "" && role == event.RoleCustomer {
		name = contactName
	}
	if name == "" {
		return role
	}
	return name + " (" + role + ")"
}

// escapeLine makes s one line: backslash, line breaks and control characters
// become escapes.
func escapeLine(s string) string {
	if strings.IndexFunc(s, needsEscape) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsEscape(r rune) bool {
	return r == '\\' || unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}
