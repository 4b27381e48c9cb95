package api

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
)

// exportFlushEvery is how many sessions an export writes between flushes to
// the client, so a long export shows progress.
const exportFlushEvery = 100

// export streams every session the filter matches, complete, as JSON lines
// or CSV. The store encodes the sessions (on several goroutines, chunk by
// chunk) with the format's encoder; nothing is held beyond a few of its
// chunks.
func (s *Server) export(c *gin.Context) {
	p := s.parser()
	in := p.decodeQuery(c.Request.URL.Query(), routeParams(c))
	f, _ := p.validate(&in)
	format := p.exportFormat(&in)
	if len(p.errs) > 0 {
		s.badRequest(c, p.sorted())
		return
	}
	f.Tenant = c.GetString(tenantKey)
	now := p.now
	ctx := c.Request.Context()

	contentType, header := "application/x-ndjson", ""
	newEncoder := func() report.Encoder { return &jsonlEncoder{now: now} }
	if format == formatCSV {
		contentType, header = "text/csv; charset=utf-8", csvHeader()
		newEncoder = func() report.Encoder { return newCSVEncoder(now) }
	}
	started := false
	start := func() error {
		// Headers go out with the first chunk (or the end), so that a
		// store failing at once still gets a problem document.
		started = true
		h := c.Writer.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Disposition", `attachment; filename="chatreport-`+now.In(s.loc).Format(time.DateOnly)+"."+format+`"`)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		c.Status(http.StatusOK)
		if _, err := c.Writer.WriteString(header); err != nil {
			return writeError{err}
		}
		return nil
	}
	n := 0
	err := s.store.Export(ctx, f, newEncoder, func(chunk []byte, ends []int) error {
		if !started {
			if err := start(); err != nil {
				return err
			}
		}
		// A chunk reaches the client exportFlushEvery sessions at a time,
		// so that a long export shows progress.
		for i := 0; i < len(ends); i += exportFlushEvery {
			last := min(i+exportFlushEvery, len(ends)) - 1
			from := 0
			if i > 0 {
				from = ends[i-1]
			}
			if _, err := c.Writer.Write(chunk[from:ends[last]]); err != nil {
				return writeError{err}
			}
			c.Writer.Flush()
			n += last + 1 - i
			// A client that went away stops the export at once.
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && !started {
		err = start()
	}
	var werr writeError
	switch {
	case err == nil:
		c.Writer.Flush()
	case ctx.Err() != nil || errors.As(err, &werr):
		s.log.Info("export stopped: the client went away", zap.Int("sessions", n))
		c.Abort()
	case !c.Writer.Written():
		// The store failed before anything reached the client: a
		// problem document replaces the export.
		c.Writer.Header().Del("Content-Disposition")
		s.storeFailed(c, err)
	default:
		// The status line is gone: the only way left to tell the client
		// the file is incomplete is to cut the response short, without
		// the final chunk.
		s.log.Error("export failed midway", zap.Int("sessions", n), zap.Error(err))
		panic(http.ErrAbortHandler)
	}
}

// writeError is a failure to write to the client: it went away.
type writeError struct{ err error }

func (e writeError) Error() string { return "write export: " + e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

// csvColumns are the CSV export's columns: the session's, then the
// message's. Lists and maps are JSON.
var csvColumns = []string{
	"session_id", "channel", "contact_id", "contact_phone", "contact_name",
	"started_at", "last_activity_at", "window_ends_at", "status", "handed_off",
	"protocols", "tags", "info", "agents",
	"customer_messages", "bot_messages", "agent_messages",
	"message_event_id", "message_occurred_at", "message_author_role", "message_author_id",
	"message_author_name", "message_text", "message_content_type", "message_attachments", "message_protocol",
}

// csvEncoder writes one row per message, with its session's columns; a
// session without messages gets one row with empty message columns.
type csvEncoder struct {
	out appendWriter
	w   *csv.Writer
	now time.Time
	row []string
}

func newCSVEncoder(now time.Time) *csvEncoder {
	x := &csvEncoder{now: now, row: make([]string, len(csvColumns))}
	x.w = csv.NewWriter(&x.out)
	return x
}

// csvHeader is the CSV export's first line.
func csvHeader() string {
	var out appendWriter
	w := csv.NewWriter(&out)
	w.Write(csvColumns) //nolint:errcheck // into memory
	w.Flush()
	return string(out)
}

// appendWriter is an io.Writer that appends to itself.
type appendWriter []byte

func (a *appendWriter) Write(p []byte) (int, error) {
	*a = append(*a, p...)
	return len(p), nil
}

func (x *csvEncoder) Append(dst []byte, sd *report.StoredDetail) ([]byte, error) {
	d, err := sd.Decode()
	if err != nil {
		return dst, err
	}
	x.out = dst
	v := viewSession(&d.Session, x.now)
	r := x.row
	r[0], r[1], r[2] = v.SessionID, v.Channel, cell(v.Contact.ID)
	r[3], r[4] = cell(d.Session.Contact.Phone), cell(d.Session.Contact.Name)
	r[5], r[6], r[7] = csvTime(v.StartedAt), csvTime(v.LastActivityAt), csvTime(v.WindowEndsAt)
	r[8], r[9] = v.Status, strconv.FormatBool(v.HandedOff)
	r[10], r[11], r[12], r[13] = jsonCell(v.Protocols), jsonCell(v.Tags), jsonCell(v.Info), jsonCell(v.Agents)
	r[14] = strconv.Itoa(v.MessageCounts.Customer)
	r[15] = strconv.Itoa(v.MessageCounts.Bot)
	r[16] = strconv.Itoa(v.MessageCounts.Agent)
	const first = 17
	wrote := false
	for i := range d.Events {
		e := &d.Events[i]
		if e.Type != event.TypeMessage {
			continue
		}
		m := viewMessage(e)
		r[first], r[first+1] = m.EventID, csvTime(m.OccurredAt)
		r[first+2], r[first+3], r[first+4] = m.Author.Role, cell(deref(m.Author.ID)), cell(deref(m.Author.Name))
		r[first+5], r[first+6] = cell(m.Text), m.ContentType
		r[first+7], r[first+8] = jsonCell(m.Attachments), deref(m.Protocol)
		if err := x.w.Write(r); err != nil {
			return dst, err
		}
		wrote = true
	}
	if !wrote {
		clear(r[first:])
		if err := x.w.Write(r); err != nil {
			return dst, err
		}
	}
	x.w.Flush()
	return x.out, x.w.Error()
}

func csvTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func jsonCell(v any) string {
	b, _ := json.Marshal(v) // strings, maps and slices of plain data
	return string(b)
}

// cell guards a free-text value against formula injection: a spreadsheet
// evaluates a cell that starts with = + - @ (or a tab or CR before them), and
// customers write the texts and names. Such values get a leading apostrophe
// (OWASP's advice); the jsonl export has every value exactly.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
