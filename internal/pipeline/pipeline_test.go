package pipeline

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultDefinition(t *testing.T) {
	d := MustDefault()
	if got := d.PolicyFor("whatsapp"); got != (Policy{Fixed, 24 * time.Hour}) {
		t.Errorf("whatsapp policy %+v", got)
	}
	if got := d.PolicyFor("webchat"); got != (Policy{Sliding, 30 * time.Minute}) {
		t.Errorf("webchat policy %+v", got)
	}
	if got := d.PolicyFor("telegram"); got != d.Sessions.Default {
		t.Errorf("unlisted channel gets %+v, want the default", got)
	}
	if len(d.Topics.Events) != 3 || d.Topics.DeadLetter != "chat.events.dlq" || d.Topics.Partitions != 3 {
		t.Errorf("topics %+v", d.Topics)
	}
}

func TestParseErrors(t *testing.T) {
	valid := `
topics: {events: [a], dead_letter: dlq, partitions: 1}
consumer_group: g
sessions: {default: {mode: fixed, duration: 24h}}
`
	if _, err := Parse([]byte(valid)); err != nil {
		t.Fatalf("valid definition: %v", err)
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", valid + "extra: 1\n", "field extra not found"},
		{"no topics", `{topics: {dead_letter: d, partitions: 1}, consumer_group: g, sessions: {default: {mode: fixed, duration: 1h}}}`, "at least one topic"},
		{"dead letter is an event topic", `{topics: {events: [a], dead_letter: a, partitions: 1}, consumer_group: g, sessions: {default: {mode: fixed, duration: 1h}}}`, "listed twice"},
		{"no partitions", `{topics: {events: [a], dead_letter: d}, consumer_group: g, sessions: {default: {mode: fixed, duration: 1h}}}`, "partitions"},
		{"no group", `{topics: {events: [a], dead_letter: d, partitions: 1}, sessions: {default: {mode: fixed, duration: 1h}}}`, "consumer_group"},
		{"bad mode", `{topics: {events: [a], dead_letter: d, partitions: 1}, consumer_group: g, sessions: {default: {mode: rolling, duration: 1h}}}`, "fixed or sliding"},
		{"zero duration", `{topics: {events: [a], dead_letter: d, partitions: 1}, consumer_group: g, sessions: {default: {mode: fixed}}}`, "positive"},
		{"bad channel", `{topics: {events: [a], dead_letter: d, partitions: 1}, consumer_group: g, sessions: {default: {mode: fixed, duration: 1h}, channels: {WhatsApp: {mode: fixed, duration: 1h}}}}`, "not a channel token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
