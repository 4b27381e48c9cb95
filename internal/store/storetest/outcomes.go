package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// testOutcomesAgentsQueues: the outcome filter evaluates each attendance's
// outcome at the filter's Now — an open attendance is over when its
// session's window ends: bot_finished when it stayed with the bot,
// cancelled_inactivity when it was handed off — and the agent and queue
// filters match any of their values (docs/sessions.md, "Outcomes of
// attendances").
func testOutcomesAgentsQueues(t *testing.T, s Store) {
	h := time.Hour
	bot := B{Contact: "5511900000101", Protocol: "20251007090000101"}      // stays with the bot
	waiting := B{Contact: "5511900000102", Protocol: "20251007100000102"}  // handed off, never picked up
	resolved := B{Contact: "5511900000103", Protocol: "20251007110000103"} // handed off, assigned, resolved
	two := B{Contact: "5511900000104", Protocol: "20251007120000104"}      // a bot attendance, then another
	two2 := two
	two2.Protocol = "20251007121000105"
	other := resolved
	other.Contact = "5511900000106"
	other.Protocol = "20251007130000106"
	e := []event.Event{
		bot.Msg("b1", 0, event.RoleCustomer, "segunda via"),
		bot.Msg("b2", time.Minute, event.RoleBot, "aqui está"),
		waiting.Msg("w1", h, event.RoleCustomer, "quero falar com alguém"),
		waiting.Handoff("w2", h+time.Minute, event.ActionRequested, ""),
		resolved.Msg("r1", 2*h, event.RoleCustomer, "cancelar"),
		resolved.Handoff("r2", 2*h+time.Minute, event.ActionRequested, ""),
		resolved.Handoff("r3", 2*h+2*time.Minute, event.ActionAssigned, ""),
		resolved.Handoff("r4", 2*h+3*time.Minute, event.ActionClosed, "resolved"),
		two.Msg("t1", 3*h, event.RoleCustomer, "boleto"),
		two2.Msg("t2", 3*h+10*time.Minute, event.RoleCustomer, "outra coisa"),
		other.Msg("x1", 4*h, event.RoleCustomer, "oi"),
		other.Handoff("x2", 4*h+time.Minute, event.ActionRequested, ""),
		other.Handoff("x3", 4*h+2*time.Minute, event.ActionClosed, "abandoned"),
	}
	// other's handoffs go to another queue, with another agent.
	e[11].Handoff.Queue, e[12].Handoff.Queue = "Retenção", "Retenção"
	Ingest(t, s, e...)
	b, w, r, tw, x := session.DeriveID(&e[0]), session.DeriveID(&e[2]), session.DeriveID(&e[4]), session.DeriveID(&e[8]), session.DeriveID(&e[10])
	during := Base.Add(5 * h)     // every window open
	after := Base.Add(24*h + 5*h) // every window ended
	tests := []struct {
		name string
		f    report.Filter
		want []string
	}{
		{"open, windows open", report.Filter{Outcomes: []string{session.OutcomeOpen}, Now: during}, []string{tw, w, b}},
		{"open, windows ended", report.Filter{Outcomes: []string{session.OutcomeOpen}, Now: after}, []string{}},
		{"bot_finished, windows open: a later attendance ended the first", report.Filter{Outcomes: []string{session.OutcomeBotFinished}, Now: during}, []string{tw}},
		{"bot_finished, windows ended", report.Filter{Outcomes: []string{session.OutcomeBotFinished}, Now: after}, []string{tw, b}},
		{"cancelled_inactivity, windows open", report.Filter{Outcomes: []string{session.OutcomeCancelledInactivity}, Now: during}, []string{}},
		{"cancelled_inactivity, windows ended", report.Filter{Outcomes: []string{session.OutcomeCancelledInactivity}, Now: after}, []string{w}},
		{"resolved", report.Filter{Outcomes: []string{session.OutcomeResolved}, Now: during}, []string{r}},
		{"resolved or abandoned", report.Filter{Outcomes: []string{session.OutcomeAbandoned, session.OutcomeResolved}, Now: after}, []string{x, r}},
		{"open or cancelled, at the window's end of the first", report.Filter{Outcomes: []string{session.OutcomeOpen, session.OutcomeCancelledInactivity},
			Now: Base.Add(24*h + h)}, []string{tw, w}},
		{"agent", report.Filter{Agents: []string{"ag-1"}}, []string{r}},
		{"agent repeated", report.Filter{Agents: []string{"ag-1", "ag-9", "ag-1"}}, []string{r}},
		{"agent unknown", report.Filter{Agents: []string{"ag-9"}}, []string{}},
		{"queue", report.Filter{Queues: []string{"Financeiro"}}, []string{r, w}},
		{"queues any of, repeated", report.Filter{Queues: []string{"Retenção", "Financeiro", "Retenção"}}, []string{x, r, w}},
		{"outcomes repeated", report.Filter{Outcomes: []string{session.OutcomeResolved, session.OutcomeResolved}, Now: during}, []string{r}},
		{"queue and outcome", report.Filter{Queues: []string{"Financeiro"}, Outcomes: []string{session.OutcomeCancelledInactivity}, Now: after}, []string{w}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := search(t, s, tc.f); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
