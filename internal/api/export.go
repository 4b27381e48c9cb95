package api

import (
	"bufio"
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
// or CSV. Nothing is buffered beyond one store chunk and the write buffer.
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

	buf := bufio.NewWriterSize(c.Writer, 64<<10)
	var w exportWriter
	if format == formatCSV {
		w = newCSVExport(buf, now)
	} else {
		w = &jsonlExport{w: buf, now: now}
	}
	started := false
	start := func() {
		// Headers go out with the first session (or the end), so that a
		// store failing at once still gets a problem document.
		started = true
		h := c.Writer.Header()
		h.Set("Content-Type", w.contentType())
		h.Set("Content-Disposition", `attachment; filename="chatreport-`+now.In(s.loc).Format(time.DateOnly)+"."+format+`"`)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		c.Status(http.StatusOK)
	}
	n := 0
	err := s.store.Export(ctx, f, func(d report.Detail) error {
		if !started {
			start()
		}
		if err := w.write(&d); err != nil {
			return writeError{err}
		}
		n++
		if n%exportFlushEvery == 0 {
			if err := buf.Flush(); err != nil {
				return writeError{err}
			}
			c.Writer.Flush()
		}
		// A client that went away stops the export at once, not at the
		// end of the store's chunk.
		return ctx.Err()
	})
	if err == nil {
		if !started {
			start()
		}
		if err = w.finish(); err == nil {
			err = buf.Flush()
		}
		if err != nil {
			err = writeError{err}
		}
	}
	var werr writeError
	switch {
	case err == nil:
		c.Writer.Flush()
	case ctx.Err() != nil || errors.As(err, &werr):
		s.log.Info("export stopped: the client went away", zap.Int("sessions", n))
		c.Abort()
	case !c.Writer.Written():
		// The store failed before anything reached the client (the
		// first sessions may still sit in buf): a problem document
		// replaces the export.
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

// exportWriter writes sessions in one export format.
type exportWriter interface {
	contentType() string
	write(d *report.Detail) error
	// finish writes what an export needs at its end (a CSV header when
	// nothing matched).
	finish() error
}

// jsonlExport writes one line per session: the object GET /sessions/{id}
// returns.
type jsonlExport struct {
	w   *bufio.Writer
	buf []byte // one line, reused
	now time.Time
}

func (j *jsonlExport) contentType() string { return "application/x-ndjson" }

func (j *jsonlExport) write(d *report.Detail) error {
	var err error
	if j.buf, err = appendDetail(j.buf[:0], &d.Session, d.Events, j.now); err != nil {
		return err
	}
	_, err = j.w.Write(j.buf)
	return err
}

func (j *jsonlExport) finish() error { return nil }

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

// csvExport writes one row per message, with its session's columns; a
// session without messages gets one row with empty message columns.
type csvExport struct {
	w      *csv.Writer
	now    time.Time
	header bool
	row    []string
}

func newCSVExport(w *bufio.Writer, now time.Time) *csvExport {
	return &csvExport{w: csv.NewWriter(w), now: now, row: make([]string, len(csvColumns))}
}

func (x *csvExport) contentType() string { return "text/csv; charset=utf-8" }

func (x *csvExport) writeHeader() error {
	if x.header {
		return nil
	}
	x.header = true
	return x.w.Write(csvColumns)
}

func (x *csvExport) write(d *report.Detail) error {
	if err := x.writeHeader(); err != nil {
		return err
	}
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
			return err
		}
		wrote = true
	}
	if !wrote {
		clear(r[first:])
		if err := x.w.Write(r); err != nil {
			return err
		}
	}
	x.w.Flush() // into the export's buffer; it reaches the client in batches
	return x.w.Error()
}

func (x *csvExport) finish() error {
	if err := x.writeHeader(); err != nil {
		return err
	}
	x.w.Flush()
	return x.w.Error()
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
