package api

import (
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// The API's JSON shapes. Optional values the platform may not know (a
// WhatsApp username without phone, an author without id) are null rather
// than missing, so every object has the same keys. openapi.json describes
// them; a test keeps the two in step.

// sessionView is a session as the API shows it: statuses as of now, times in
// UTC.
type sessionView struct {
	SessionID      string            `json:"session_id"`
	Channel        string            `json:"channel"`
	Contact        contactView       `json:"contact"`
	StartedAt      time.Time         `json:"started_at"`
	LastActivityAt time.Time         `json:"last_activity_at"`
	WindowEndsAt   time.Time         `json:"window_ends_at"`
	Status         string            `json:"status"`
	Protocols      []string          `json:"protocols"`
	Tags           []string          `json:"tags"`
	Info           map[string]string `json:"info"`
	HandedOff      bool              `json:"handed_off"`
	Agents         []agentView       `json:"agents"`
	MessageCounts  session.Counts    `json:"message_counts"`
	Attendances    []attendanceView  `json:"attendances"`
}

type contactView struct {
	ID    string  `json:"id"`
	Phone *string `json:"phone"`
	Name  *string `json:"name"`
}

type agentView struct {
	ID   string  `json:"id"`
	Name *string `json:"name"`
}

type attendanceView struct {
	Protocol  string    `json:"protocol"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Status    string    `json:"status"`
	Outcome   string    `json:"outcome"`
	HandedOff bool      `json:"handed_off"`
	// Tags and Info are those the attendance's own events set.
	Tags []string          `json:"tags"`
	Info map[string]string `json:"info"`
	// Matched, in a list whose filter has protocol, tag, information or
	// outcome conditions, says whether this attendance meets them by
	// itself; null elsewhere.
	Matched *bool `json:"matched"`
}

// orNull is s, or null when s is empty.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func viewAgent(a event.Agent) agentView { return agentView{ID: a.ID, Name: orNull(a.Name)} }

func viewSession(s *session.Session, now time.Time) sessionView {
	v := sessionView{
		SessionID:      s.ID,
		Channel:        s.Channel,
		Contact:        contactView{ID: s.Contact.ID, Phone: orNull(s.Contact.Phone), Name: orNull(s.Contact.Name)},
		StartedAt:      s.StartedAt.UTC(),
		LastActivityAt: s.LastActivityAt.UTC(),
		WindowEndsAt:   s.WindowEndsAt.UTC(),
		Status:         s.StatusAt(now),
		Protocols:      nonNil(s.Protocols),
		Tags:           nonNil(s.Tags),
		Info:           s.Info,
		HandedOff:      s.HandedOff,
		Agents:         make([]agentView, len(s.Agents)),
		MessageCounts:  s.MessageCounts,
		Attendances:    make([]attendanceView, len(s.Attendances)),
	}
	if v.Info == nil {
		v.Info = map[string]string{}
	}
	for i, a := range s.Agents {
		v.Agents[i] = viewAgent(a)
	}
	for i, a := range s.Attendances {
		if a.Info == nil {
			a.Info = map[string]string{}
		}
		v.Attendances[i] = attendanceView{
			Protocol:  a.Protocol,
			StartedAt: a.StartedAt.UTC(),
			EndedAt:   a.EndedAt.UTC(),
			Status:    a.Status,
			Outcome:   s.AttendanceOutcome(i, now),
			Tags:      nonNil(a.Tags),
			Info:      a.Info,
			HandedOff: a.HandedOff,
		}
	}
	return v
}

// viewListItem is a session of a list: each attendance says whether it
// meets the filter's attendance conditions by itself.
func viewListItem(s *session.Session, now time.Time, f *report.Filter) sessionView {
	v := viewSession(s, now)
	if f.ScopesAttendances() {
		for i := range s.Attendances {
			matched := f.MatchesAttendance(s, i)
			v.Attendances[i].Matched = &matched
		}
	}
	return v
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// messageView is one message of a conversation.
type messageView struct {
	EventID     string           `json:"event_id"`
	OccurredAt  time.Time        `json:"occurred_at"`
	Author      authorView       `json:"author"`
	Text        string           `json:"text"`
	ContentType string           `json:"content_type"`
	Attachments []attachmentView `json:"attachments"`
	Protocol    *string          `json:"protocol"`
}

type authorView struct {
	Role string  `json:"role"`
	ID   *string `json:"id"`
	Name *string `json:"name"`
}

type attachmentView struct {
	URL      string  `json:"url"`
	MIMEType *string `json:"mime_type"`
	Name     *string `json:"name"`
}

// timelineEvent is a handoff, tag or info event of a conversation: the
// common fields, and the one field of its type (handoff, tag or info).
type timelineEvent struct {
	EventID    string       `json:"event_id"`
	OccurredAt time.Time    `json:"occurred_at"`
	Type       event.Type   `json:"type"`
	Protocol   *string      `json:"protocol"`
	Handoff    *handoffView `json:"handoff,omitempty"`
	Tag        *string      `json:"tag,omitempty"`
	Info       *event.Info  `json:"info,omitempty"`
}

type handoffView struct {
	Action string     `json:"action"`
	Queue  *string    `json:"queue"`
	Agent  *agentView `json:"agent"`
	Reason *string    `json:"reason"`
	Status *string    `json:"status"`
}

// detailView is a session with its whole timeline: what GET
// /sessions/{id} returns and each line of a jsonl export.
type detailView struct {
	sessionView
	Messages []messageView   `json:"messages"`
	Events   []timelineEvent `json:"events"`
}

func viewMessage(e *event.Event) messageView {
	m := messageView{
		EventID: e.EventID, OccurredAt: e.OccurredAt.UTC(), Text: e.Text,
		ContentType: e.ContentType, Attachments: make([]attachmentView, len(e.Attachments)), Protocol: orNull(e.Protocol),
	}
	if e.Author != nil {
		m.Author = authorView{Role: e.Author.Role, ID: orNull(e.Author.ID), Name: orNull(e.Author.Name)}
	}
	for i, a := range e.Attachments {
		m.Attachments[i] = attachmentView{URL: a.URL, MIMEType: orNull(a.MIMEType), Name: orNull(a.Name)}
	}
	return m
}

func viewEvent(e *event.Event) timelineEvent {
	v := timelineEvent{EventID: e.EventID, OccurredAt: e.OccurredAt.UTC(), Type: e.Type, Protocol: orNull(e.Protocol)}
	switch e.Type {
	case event.TypeHandoff:
		if h := e.Handoff; h != nil {
			v.Handoff = &handoffView{Action: h.Action, Queue: orNull(h.Queue), Reason: orNull(h.Reason), Status: orNull(h.Status)}
			if h.Agent != nil {
				a := viewAgent(*h.Agent)
				v.Handoff.Agent = &a
			}
		}
	case event.TypeTag:
		tag := e.Tag
		v.Tag = &tag
	case event.TypeInfo:
		v.Info = e.Info
	}
	return v
}

func viewDetail(s *session.Session, events []event.Event, now time.Time) detailView {
	d := detailView{sessionView: viewSession(s, now), Messages: []messageView{}, Events: []timelineEvent{}}
	for i := range events {
		e := &events[i]
		if e.Type == event.TypeMessage {
			d.Messages = append(d.Messages, viewMessage(e))
			continue
		}
		d.Events = append(d.Events, viewEvent(e))
	}
	return d
}
