package report

import (
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/session"
)

// TestMatchesAttendance: each attendance is judged by its own protocol,
// tags, information and outcome at the filter's moment.
func TestMatchesAttendance(t *testing.T) {
	t0 := time.Date(2025, 10, 7, 12, 0, 0, 0, time.UTC)
	s := session.Session{StartedAt: t0, WindowEndsAt: t0.Add(24 * time.Hour), Attendances: []session.Attendance{
		{Protocol: "20251007090000001", StartedAt: t0, Status: session.StatusOpen, HandedOff: true,
			Tags: []string{"Transbordo"}, Info: map[string]string{"FILA": "Financeiro"}},
		{Protocol: "20251007100000002", StartedAt: t0.Add(time.Hour), Status: session.StatusOpen,
			Tags: []string{"Menu"}, Info: map[string]string{"NAO_TRANSBORDADA": "true"}},
	}}
	after := t0.Add(25 * time.Hour)
	tests := []struct {
		name string
		f    Filter
		want []bool
	}{
		{"no attendance conditions", Filter{Channels: []string{"whatsapp"}}, []bool{false, false}},
		{"protocol", Filter{Protocol: "20251007100000002"}, []bool{false, true}},
		{"tag", Filter{Tags: []string{"Menu", "Outra"}}, []bool{false, true}},
		{"tags all, set by two attendances", Filter{Tags: []string{"Menu", "Transbordo"}, TagMode: TagsAll}, []bool{false, false}},
		{"info contains, case ignored", Filter{Info: []Condition{{Key: "NAO_TRANSBORDADA", Op: OpContains, Value: "TRU"}}}, []bool{false, true}},
		{"info not_exists", Filter{Info: []Condition{{Key: "NAO_TRANSBORDADA", Op: OpNotExists}}}, []bool{true, false}},
		{"outcome after the window", Filter{Outcomes: []string{session.OutcomeCancelledInactivity}, Now: after}, []bool{true, false}},
		{"outcome bot_finished before the window ends", Filter{Outcomes: []string{session.OutcomeBotFinished}, Now: t0.Add(2 * time.Hour)}, []bool{false, false}},
		{"outcome and info", Filter{Outcomes: []string{session.OutcomeBotFinished}, Now: after,
			Info: []Condition{{Key: "NAO_TRANSBORDADA", Op: OpEquals, Value: "true"}}}, []bool{false, true}},
	}
	for _, tt := range tests {
		for i, want := range tt.want {
			if got := tt.f.MatchesAttendance(&s, i); got != want {
				t.Errorf("%s: attendance %d matched %t, want %t", tt.name, i, got, want)
			}
		}
	}
}
