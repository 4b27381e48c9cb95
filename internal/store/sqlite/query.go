package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// where translates a filter into a SQL condition on the sessions table s.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func translate(f *report.Filter) *where {
	w := &where{}
	w.add("s.tenant = ?", f.Tenant)
	w.add("s.started_at >= ? AND s.started_at < ?", f.From.UnixNano(), f.To.UnixNano())
	if f.SessionID != "" {
		w.add("s.session_id = ?", strings.ToLower(f.SessionID))
	}
	if f.Protocol != "" {
		w.add(`EXISTS (SELECT 1 FROM session_protocols p
			WHERE p.tenant = s.tenant AND p.session_id = s.session_id AND p.protocol = ?)`, f.Protocol)
	}
	if len(f.Tags) > 0 {
		tags := dedupe(f.Tags)
		args := make([]any, len(tags))
		for i, t := range tags {
			args[i] = t
		}
		q := `(SELECT count(*) FROM session_tags t
			WHERE t.tenant = s.tenant AND t.session_id = s.session_id AND t.tag IN (` + placeholders(len(tags)) + `))`
		if f.TagMode == report.TagsAll {
			w.add(q+" = ?", append(args, len(tags))...)
		} else {
			w.add(q+" > 0", args...)
		}
	}
	for _, c := range f.Info {
		infoCondition(w, c)
	}
	if len(f.Channels) > 0 {
		args := make([]any, len(f.Channels))
		for i, c := range f.Channels {
			args[i] = c
		}
		w.add("s.channel IN ("+placeholders(len(args))+")", args...)
	}
	if f.Contact != "" {
		contactCondition(w, f.Contact)
	}
	if f.HandedOff != nil {
		w.add("s.handed_off = ?", *f.HandedOff)
	}
	if f.Query != "" {
		queryCondition(w, f.Query)
	}
	return w
}

func infoCondition(w *where, c report.Condition) {
	const has = `EXISTS (SELECT 1 FROM session_info i
		WHERE i.tenant = s.tenant AND i.session_id = s.session_id AND i.key = ?`
	v := strings.ToLower(c.Value)
	switch c.Op {
	case report.OpEquals:
		w.add(has+" AND i.value_lower = ?)", c.Key, v)
	case report.OpNotEquals:
		w.add("NOT "+has+" AND i.value_lower = ?)", c.Key, v)
	case report.OpContains:
		w.add(has+" AND instr(i.value_lower, ?) > 0)", c.Key, v)
	case report.OpNotContain:
		w.add("NOT "+has+" AND instr(i.value_lower, ?) > 0)", c.Key, v)
	case report.OpStartsWith:
		w.add(has+" AND substr(i.value_lower, 1, ?) = ?)", c.Key, len([]rune(v)), v)
	case report.OpExists:
		w.add(has+")", c.Key)
	case report.OpNotExists:
		w.add("NOT "+has+")", c.Key)
	}
}

func contactCondition(w *where, contact string) {
	conds := []string{"s.contact_id = ?", "instr(s.contact_name_lower, ?) > 0"}
	args := []any{contact, strings.ToLower(contact)}
	if d := report.PhoneDigits(contact); len(d) >= report.MinPhoneDigits {
		// A number without country code matches by its last digits.
		conds = append(conds, "(s.contact_phone_digits = ? OR s.contact_phone_digits LIKE ?)")
		args = append(args, d, "%"+d)
	}
	w.add("("+strings.Join(conds, " OR ")+")", args...)
}

// queryCondition matches sessions with a message whose text contains every
// word of q, ignoring case.
func queryCondition(w *where, q string) {
	words := strings.Fields(strings.ToLower(q))
	if len(words) == 0 {
		return
	}
	conds := make([]string, len(words))
	args := []any{}
	for i, word := range words {
		conds[i] = "instr(lower(json_extract(m.body, '$.text')), ?) > 0"
		args = append(args, word)
	}
	w.add(`EXISTS (SELECT 1 FROM events m
		WHERE m.tenant = s.tenant AND m.session_id = s.session_id AND m.type = 'message' AND `+
		strings.Join(conds, " AND ")+")", args...)
}

func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Search returns one page of the sessions f matches, newest first.
func (s *Store) Search(ctx context.Context, f report.Filter, page report.Page) (report.Result, error) {
	if err := f.Validate(); err != nil {
		return report.Result{}, err
	}
	w := translate(&f)
	var res report.Result
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sessions s WHERE "+w.String(), w.args...).Scan(&res.Total); err != nil {
		return res, fmt.Errorf("count sessions: %w", err)
	}
	if page.After != nil {
		a := page.After.StartedAt.UnixNano()
		w.add("(s.started_at < ? OR (s.started_at = ? AND s.session_id < ?))", a, a, page.After.SessionID)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT s.doc FROM sessions s WHERE "+w.String()+
		" ORDER BY s.started_at DESC, s.session_id DESC LIMIT ?", append(w.args, page.Limit+1)...)
	if err != nil {
		return res, fmt.Errorf("search sessions: %w", err)
	}
	defer rows.Close()
	res.Items = []session.Session{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return res, fmt.Errorf("scan session: %w", err)
		}
		var ss session.Session
		if err := json.Unmarshal(doc, &ss); err != nil {
			return res, fmt.Errorf("decode session: %w", err)
		}
		res.Items = append(res.Items, ss)
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("search sessions: %w", err)
	}
	if len(res.Items) > page.Limit {
		res.Items = res.Items[:page.Limit]
		last := res.Items[len(res.Items)-1]
		res.Next = &report.Cursor{StartedAt: last.StartedAt, SessionID: last.ID}
	}
	return res, nil
}

// Session returns a session of tenant with its events in order.
func (s *Store) Session(ctx context.Context, tenant, id string) (report.Detail, error) {
	var d report.Detail
	var doc []byte
	err := s.db.QueryRowContext(ctx, `SELECT doc FROM sessions WHERE tenant = ? AND session_id = ?`,
		tenant, strings.ToLower(id)).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return d, report.ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("read session: %w", err)
	}
	if err := json.Unmarshal(doc, &d.Session); err != nil {
		return d, fmt.Errorf("decode session: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM events WHERE tenant = ? AND session_id = ?
		ORDER BY occurred_at, event_id`, tenant, d.Session.ID)
	if err != nil {
		return d, fmt.Errorf("read session events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return d, fmt.Errorf("scan event: %w", err)
		}
		var e event.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return d, fmt.Errorf("decode event: %w", err)
		}
		d.Events = append(d.Events, e)
	}
	return d, rows.Err()
}
