package api

import (
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// sessionView is a session as the API shows it: statuses as of now, times in
// UTC.
type sessionView struct {
	SessionID      string            `json:"session_id"`
	Channel        string            `json:"channel"`
	Contact        event.Contact     `json:"contact"`
	StartedAt      time.Time         `json:"started_at"`
	LastActivityAt time.Time         `json:"last_activity_at"`
	WindowEndsAt   time.Time         `json:"window_ends_at"`
	Status         string            `json:"status"`
	Protocols      []string          `json:"protocols"`
	Tags           []string          `json:"tags"`
	Info           map[string]string `json:"info"`
	HandedOff      bool              `json:"handed_off"`
	Agents         []event.Agent     `json:"agents"`
	MessageCounts  session.Counts    `json:"message_counts"`
	Attendances    []attendanceView  `json:"attendances"`
}

type attendanceView struct {
	Protocol  string    `json:"protocol"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Status    string    `json:"status"`
	HandedOff bool      `json:"handed_off"`
}

func viewSession(s *session.Session, now time.Time) sessionView {
	v := sessionView{
		SessionID:      s.ID,
		Channel:        s.Channel,
		Contact:        s.Contact,
		StartedAt:      s.StartedAt.UTC(),
		LastActivityAt: s.LastActivityAt.UTC(),
		WindowEndsAt:   s.WindowEndsAt.UTC(),
		Status:         s.StatusAt(now),
		Protocols:      nonNil(s.Protocols),
		Tags:           nonNil(s.Tags),
		Info:           s.Info,
		HandedOff:      s.HandedOff,
		Agents:         nonNil(s.Agents),
		MessageCounts:  s.MessageCounts,
		Attendances:    make([]attendanceView, len(s.Attendances)),
	}
	if v.Info == nil {
		v.Info = map[string]string{}
	}
	for i, a := range s.Attendances {
		v.Attendances[i] = attendanceView{
			Protocol:  a.Protocol,
			StartedAt: a.StartedAt.UTC(),
			EndedAt:   a.EndedAt.UTC(),
			Status:    s.AttendanceStatus(a, now),
			HandedOff: a.HandedOff,
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
	EventID     string             `json:"event_id"`
	OccurredAt  time.Time          `json:"occurred_at"`
	Author      event.Author       `json:"author"`
	Text        string             `json:"text"`
	ContentType string             `json:"content_type"`
	Attachments []event.Attachment `json:"attachments"`
	Protocol    string             `json:"protocol,omitempty"`
}

// timelineEvent is a handoff, tag or info event of a conversation.
type timelineEvent struct {
	EventID    string         `json:"event_id"`
	OccurredAt time.Time      `json:"occurred_at"`
	Type       event.Type     `json:"type"`
	Protocol   string         `json:"protocol,omitempty"`
	Handoff    *event.Handoff `json:"handoff,omitempty"`
	Tag        string         `json:"tag,omitempty"`
	Info       *event.Info    `json:"info,omitempty"`
}

// detailView is a session with its whole timeline.
type detailView struct {
	sessionView
	Messages []messageView   `json:"messages"`
	Events   []timelineEvent `json:"events"`
}

func viewDetail(s *session.Session, events []event.Event, now time.Time) detailView {
	d := detailView{sessionView: viewSession(s, now), Messages: []messageView{}, Events: []timelineEvent{}}
	for i := range events {
		e := &events[i]
		if e.Type == event.TypeMessage {
			d.Messages = append(d.Messages, messageView{
				EventID: e.EventID, OccurredAt: e.OccurredAt.UTC(), Author: *e.Author, Text: e.Text,
				ContentType: e.ContentType, Attachments: nonNil(e.Attachments), Protocol: e.Protocol,
			})
			continue
		}
		d.Events = append(d.Events, timelineEvent{
			EventID: e.EventID, OccurredAt: e.OccurredAt.UTC(), Type: e.Type, Protocol: e.Protocol,
			Handoff: e.Handoff, Tag: e.Tag, Info: e.Info,
		})
	}
	return d
}
