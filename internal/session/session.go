// Package session groups chat events into sessions. The rules (docs/sessions.md)
// are a pure function of the set of events: whatever order Kafka delivers them
// in, the same events give the same sessions.
package session

import (
	"slices"
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
	Info      map[string]string `json:"info"`
	HandedOff bool              `json:"handed_off"`
	Agents    []event.Agent     `json:"agents"`
	// Queues are the queues of the session's handoffs, sorted.
	Queues        []string     `json:"queues"`
	MessageCounts Counts       `json:"message_counts"`
	Attendances   []Attendance `json:"attendances"`
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
	// Status is the status of the latest closing handoff (StatusClosed when
	// it gave none), or StatusOpen. Session.AttendanceOutcome says how the
	// attendance ended as of a moment.
	Status    string `json:"status"`
	HandedOff bool   `json:"handed_off"`
	// Tags and Info are those set by the attendance's own events (the
	// events that carry its protocol): the session's are those of every
	// event. The report names the attendances whose own tags and
	// information meet a filter's conditions (docs/sessions.md).
	Tags []string          `json:"tags"`
	Info map[string]string `json:"info"`
}

// Statuses of sessions and attendances.
const (
	StatusActive              = "active"
	StatusEnded               = "ended"
	StatusOpen                = "open"
	StatusClosed              = "closed"
	StatusCancelledInactivity = "cancelled_inactivity"
	StatusResolved            = "resolved"
	StatusAbandoned           = "abandoned"
)

// StatusAt is the session's status at now: active until its window ends.
func (s *Session) StatusAt(now time.Time) string {
	if now.Before(s.WindowEndsAt) {
		return StatusActive
	}
	return StatusEnded
}

// Outcomes of an attendance: how it ended, or that it has not
// (docs/sessions.md, "Outcomes of attendances").
const (
	// OutcomeOpen: still going on — with the bot, in a queue or with an
	// agent — in a session whose window is open.
	OutcomeOpen = "open"
	// OutcomeBotFinished: never handed off, and over: the session's window
	// ended, or a later attendance began.
	OutcomeBotFinished = "bot_finished"
	// OutcomeResolved: handed off, and closed as resolved (or closed with
	// no status).
	OutcomeResolved = "resolved"
	// OutcomeAbandoned: handed off, and closed as abandoned: the customer
	// left.
	OutcomeAbandoned = "abandoned"
	// OutcomeCancelledInactivity: handed off, and still open when the
	// session's window ended (or closed by the platform with that status).
	OutcomeCancelledInactivity = "cancelled_inactivity"
	// OutcomeClosed: handed off, and closed with another status of the
	// platform's (Attendance.Status says which).
	OutcomeClosed = "closed"
)

// Outcomes lists every outcome, in the order a screen offers them.
var Outcomes = []string{OutcomeOpen, OutcomeBotFinished, OutcomeResolved, OutcomeAbandoned, OutcomeCancelledInactivity, OutcomeClosed}

// AttendanceOutcome is the outcome of s.Attendances[i] at now. Only an
// attendance that has not ended depends on now: it is over when the
// session's window ends.
func (s *Session) AttendanceOutcome(i int, now time.Time) string {
	a := &s.Attendances[i]
	windowEnded := !now.Before(s.WindowEndsAt)
	switch {
	case a.Status == StatusResolved || a.Status == StatusClosed:
		return OutcomeResolved
	case a.Status == StatusAbandoned:
		return OutcomeAbandoned
	case a.Status == StatusCancelledInactivity:
		return OutcomeCancelledInactivity
	case a.Status != StatusOpen:
		return OutcomeClosed
	case a.HandedOff && windowEnded:
		return OutcomeCancelledInactivity
	case a.HandedOff:
		return OutcomeOpen
	case windowEnded || s.followed(i):
		return OutcomeBotFinished
	}
	return OutcomeOpen
}

// OutcomeMarks are what a store indexes to filter by outcome without
// knowing when it will be asked: final are the outcomes of attendances that
// have ended, which never change; atEnd are the outcomes the others take
// when the session's window ends (until then they are open).
func (s *Session) OutcomeMarks() (final, atEnd []string) {
	for i := range s.Attendances {
		o, marks := s.AttendanceOutcome(i, s.StartedAt), &final
		if o == OutcomeOpen {
			o, marks = s.AttendanceOutcome(i, s.WindowEndsAt), &atEnd
		}
		if !slices.Contains(*marks, o) {
			*marks = append(*marks, o)
		}
	}
	return final, atEnd
}

// followed reports whether another attendance of s began after
// s.Attendances[i] did.
func (s *Session) followed(i int) bool {
	for j := range s.Attendances {
		if s.Attendances[j].StartedAt.After(s.Attendances[i].StartedAt) {
			return true
		}
	}
	return false
}

// Ref names a session.
type Ref struct {
	Tenant string
	ID     string
}
