// Package session groups chat events into sessions. The rules (docs/sessions.md)
// are a pure function of the set of events: whatever order Kafka delivers them
// in, the same events give the same sessions.
package session

import (
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

// Session is the summary of one session, as stored and indexed.
type Session struct {
	Tenant string `json:"tenant"`
	ID     string `json:"session_id"`
	// Key is the grouping key (see KeyOf): sessions of one derived key form a
	// chain of windows.
	Key            string        `json:"key"`
	Channel        string        `json:"channel"`
	Contact        event.Contact `json:"contact"`
	StartedAt      time.Time     `json:"started_at"`
	LastActivityAt time.Time     `json:"last_activity_at"`
	WindowEndsAt   time.Time     `json:"window_ends_at"`
	Protocols      []string      `json:"protocols"`
	Tags           []string      `json:"tags"`
	// Info holds, per additional-information key, the latest value set.
	Info          map[string]string `json:"info"`
	HandedOff     bool              `json:"handed_off"`
	Agents        []event.Agent     `json:"agents"`
	MessageCounts Counts            `json:"message_counts"`
	Attendances   []Attendance      `json:"attendances"`
	// Events counts every event of the session, messages included.
	Events int `json:"events"`
}

// Counts is the number of messages per author role.
type Counts struct {
	Customer int `json:"customer"`
	Bot      int `json:"bot"`
	Agent    int `json:"agent"`
}

// Attendance is the part of a session that carries one protocol.
type Attendance struct {
	Protocol  string    `json:"protocol"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	// Status is the status of the latest closing handoff, or StatusOpen. Use
	// Session.AttendanceStatus for the status as of a moment.
	Status    string `json:"status"`
	HandedOff bool   `json:"handed_off"`
}

// Statuses of sessions and attendances.
const (
	StatusActive              = "active"
	StatusEnded               = "ended"
	StatusOpen                = "open"
	StatusClosed              = "closed"
	StatusCancelledInactivity = "cancelled_inactivity"
)

// StatusAt is the session's status at now: active until its window ends.
func (s *Session) StatusAt(now time.Time) string {
	if now.Before(s.WindowEndsAt) {
		return StatusActive
	}
	return StatusEnded
}

// AttendanceStatus is a's status at now: an attendance still open when its
// session's window has ended was cancelled for inactivity.
func (s *Session) AttendanceStatus(a Attendance, now time.Time) string {
	if a.Status == StatusOpen && !now.Before(s.WindowEndsAt) {
		return StatusCancelledInactivity
	}
	return a.Status
}

// Ref names a session.
type Ref struct {
	Tenant string
	ID     string
}
