package session_test

import (
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/session"
)

// TestAttendanceOutcome: every row of docs/sessions.md's table of outcomes,
// before and after the session's window ends.
func TestAttendanceOutcome(t *testing.T) {
	t0 := time.Date(2025, 10, 7, 12, 0, 0, 0, time.UTC)
	before, after := t0.Add(time.Hour), t0.Add(25*time.Hour)
	att := func(status string, handedOff bool, start time.Duration) session.Attendance {
		return session.Attendance{Protocol: "2025100709000000" + string(rune('0'+int(start/time.Minute))), StartedAt: t0.Add(start), EndedAt: t0.Add(start + time.Minute), Status: status, HandedOff: handedOff}
	}
	tests := []struct {
		name          string
		attendances   []session.Attendance
		before, after string // of the first attendance
	}{
		{"with the bot, the latest", []session.Attendance{att("open", false, 0)}, session.OutcomeOpen, session.OutcomeBotFinished},
		{"with the bot, another attendance began after it", []session.Attendance{att("open", false, 0), att("open", false, 5*time.Minute)}, session.OutcomeBotFinished, session.OutcomeBotFinished},
		{"handed off, not closed", []session.Attendance{att("open", true, 0)}, session.OutcomeOpen, session.OutcomeCancelledInactivity},
		{"handed off, not closed, another attendance after it", []session.Attendance{att("open", true, 0), att("open", false, 5*time.Minute)}, session.OutcomeOpen, session.OutcomeCancelledInactivity},
		{"closed as resolved", []session.Attendance{att("resolved", true, 0)}, session.OutcomeResolved, session.OutcomeResolved},
		{"closed with no status", []session.Attendance{att("closed", true, 0)}, session.OutcomeResolved, session.OutcomeResolved},
		{"closed as abandoned", []session.Attendance{att("abandoned", true, 0)}, session.OutcomeAbandoned, session.OutcomeAbandoned},
		{"closed by the platform at the window's end", []session.Attendance{att("cancelled_inactivity", true, 0)}, session.OutcomeCancelledInactivity, session.OutcomeCancelledInactivity},
		{"closed with a status of the platform's", []session.Attendance{att("transferido_externo", true, 0)}, session.OutcomeClosed, session.OutcomeClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session.Session{StartedAt: t0, WindowEndsAt: t0.Add(24 * time.Hour), Attendances: tt.attendances}
			if got := s.AttendanceOutcome(0, before); got != tt.before {
				t.Errorf("before the window ends: %s, want %s", got, tt.before)
			}
			if got := s.AttendanceOutcome(0, after); got != tt.after {
				t.Errorf("after the window ends: %s, want %s", got, tt.after)
			}
		})
	}
}
