package simulate_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/simulate"
)

// TestLiveWritesEachEventAtItsTime: in live mode no event reaches Kafka
// before its occurred_at, and the last ones wait for theirs.
func TestLiveWritesEachEventAtItsTime(t *testing.T) {
	b := startBroker(t)
	opts := simulate.Options{Seed: 5, Sessions: 1, Start: testStart, Spread: time.Millisecond}
	conv, _ := simulate.NewGenerator(opts).Next()
	if len(conv) < 3 {
		t.Fatalf("a conversation of %d events proves little", len(conv))
	}
	// Shift the conversation so that its last event is 1.5 s away.
	span := conv[len(conv)-1].OccurredAt.Sub(conv[0].OccurredAt)
	opts.Start = time.Now().Add(-span + 1500*time.Millisecond)
	conv, _ = simulate.NewGenerator(opts).Next()
	due := map[string]time.Time{}
	for _, e := range conv {
		due[e.EventID] = e.OccurredAt
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	began := time.Now()
	n, err := simulate.Run(ctx, simulate.Config{Brokers: []string{b.Addr()}, Topics: testTopics, Live: true, Options: opts}, zap.NewNop())
	if err != nil || n != len(conv) {
		t.Fatalf("Run: %d events, %v; want %d", n, err, len(conv))
	}
	if elapsed := time.Since(began); elapsed < time.Second {
		t.Fatalf("live Run took %s: it did not wait for the last events", elapsed)
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, GroupID: "live-test", GroupTopics: testTopics,
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for range conv {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e, err := event.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		// The writer stamps messages when it sends them.
		if m.Time.Before(due[e.EventID].Add(-50 * time.Millisecond)) {
			t.Errorf("event %s written at %s, before its time %s", e.EventID, m.Time, due[e.EventID])
		}
	}
}
