package simulate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/simulate"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testTopics = []string{"chat.events.bot", "chat.events.handoff", "chat.events.agent"}

func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.Start(t.Context(), broker.Config{Addr: "127.0.0.1:0", Topics: testTopics, Partitions: 3}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestRunProducesEveryEvent(t *testing.T) {
	b := startBroker(t)
	cfg := simulate.Config{
		Brokers: []string{b.Addr()},
		Topics:  testTopics,
		Options: simulate.Options{Seed: 11, Tenants: []string{"acme", "banco-sol"}, Sessions: 400, Start: testStart, Spread: 48 * time.Hour},
	}
	// What Run must have written: the same generator, run here.
	want := map[event.Ref]event.Event{}
	perTopic := map[string]int{}
	for _, conv := range generate(t, cfg.Options) {
		for _, ev := range conv {
			want[ev.Ref()] = ev
			perTopic[simulate.TopicFor(ev, testTopics)]++
		}
	}

	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	n, err := simulate.Run(ctx, cfg, zap.New(core))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n != len(want) {
		t.Fatalf("Run wrote %d events, want %d", n, len(want))
	}
	for _, topic := range testTopics {
		if perTopic[topic] == 0 {
			t.Fatalf("no event for topic %s: the test proves little", topic)
		}
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{b.Addr()},
		GroupID:     "simulate-test",
		GroupTopics: testTopics,
		StartOffset: kafka.FirstOffset,
		MaxWait:     100 * time.Millisecond,
	})
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("close reader: %v", err)
		}
	}()

	partitionOf := map[string]int{}
	last := map[string]event.Event{} // per topic and key: the latest event read
	got := map[string]int{}
	for range n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch after %d of %d messages: %v", len(got), n, err)
		}
		ev, err := event.Decode(m.Value)
		if err != nil {
			t.Fatalf("message in %s does not decode: %v", m.Topic, err)
		}
		if _, ok := want[ev.Ref()]; !ok {
			t.Fatalf("unexpected or duplicate event %v", ev.Ref())
		}
		delete(want, ev.Ref())
		got[m.Topic]++
		key := string(m.Key)
		if key != ev.RecommendedKey() {
			t.Errorf("key %q, want %q", key, ev.RecommendedKey())
		}
		if topic := simulate.TopicFor(ev, testTopics); m.Topic != topic {
			t.Errorf("%s event in %s, want %s", ev.Type, m.Topic, topic)
		}
		// Co-partitioning: a contact's events share a partition number in
		// every topic, which the murmur2 balancer guarantees.
		if p, ok := partitionOf[key]; ok && p != m.Partition {
			t.Errorf("key %s in partition %d of %s, %d elsewhere", key, m.Partition, m.Topic, p)
		}
		partitionOf[key] = m.Partition
		// Within a partition, a contact's events arrive in event-time order.
		if prev, ok := last[m.Topic+"|"+key]; ok && !prev.Before(&ev) {
			t.Errorf("%s: event %s read after the later %s", m.Topic, ev.EventID, prev.EventID)
		}
		last[m.Topic+"|"+key] = ev
	}
	if len(want) != 0 {
		t.Errorf("%d events never read", len(want))
	}
	for _, topic := range testTopics {
		if got[topic] != perTopic[topic] {
			t.Errorf("%s: read %d events, want %d", topic, got[topic], perTopic[topic])
		}
	}
	partitions := map[int]bool{}
	for _, p := range partitionOf {
		partitions[p] = true
	}
	if len(partitions) < 3 {
		t.Errorf("contacts spread over partitions %v only", partitions)
	}

	// Privacy: logs carry counts, never what people wrote or who they are.
	for _, entry := range logs.All() {
		line := entry.Message
		for _, f := range entry.Context {
			line += " " + f.Key + "=" + f.String
		}
		for _, ev := range last {
			for _, secret := range []string{ev.Contact.Phone, ev.Contact.Name, ev.Contact.ID, ev.Text} {
				if secret != "" && strings.Contains(line, secret) {
					t.Errorf("log line %q contains %q", line, secret)
				}
			}
		}
	}
}

func TestRunPacesConversations(t *testing.T) {
	b := startBroker(t)
	cfg := simulate.Config{
		Brokers: []string{b.Addr()},
		Topics:  testTopics,
		Rate:    200,
		Options: simulate.Options{Seed: 3, Sessions: 30, Start: testStart, Spread: time.Hour},
	}
	began := time.Now()
	n, err := simulate.Run(t.Context(), cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n == 0 {
		t.Fatal("nothing written")
	}
	// The 30th conversation is due 29/200 s after the first.
	if elapsed, min := time.Since(began), 29*time.Second/200; elapsed < min {
		t.Errorf("30 conversations at 200/s took %s, want at least %s", elapsed, min)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	b := startBroker(t)
	cfg := simulate.Config{
		Brokers: []string{b.Addr()},
		Topics:  testTopics,
		Rate:    20,
		Options: simulate.Options{Seed: 5, Sessions: 1000, Start: testStart, Spread: time.Hour},
	}
	ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	n, err := simulate.Run(ctx, cfg, zap.NewNop())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run returned %v, want the context's error", err)
	}
	if n == 0 || n > 20*40 {
		t.Errorf("Run wrote %d events before the stop", n)
	}

	// Cancelled before anything happens: a clean stop, the bare context error.
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	n, err = simulate.Run(ctx, cfg, zap.NewNop())
	if err != context.Canceled || n != 0 {
		t.Errorf("Run on a cancelled context = %d, %v; want 0, context.Canceled", n, err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := simulate.Config{Brokers: []string{"localhost:9092"}, Topics: testTopics, Options: simulate.Options{Sessions: 1}}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		change func(*simulate.Config)
		want   string
	}{
		{"no brokers", func(c *simulate.Config) { c.Brokers = nil }, "brokers"},
		{"no topics", func(c *simulate.Config) { c.Topics = nil }, "topics"},
		{"empty topic", func(c *simulate.Config) { c.Topics = []string{"a", ""} }, "topics[1]"},
		{"negative rate", func(c *simulate.Config) { c.Rate = -1 }, "rate"},
		{"negative sessions", func(c *simulate.Config) { c.Sessions = -1 }, "sessions"},
		{"bad tenant", func(c *simulate.Config) { c.Tenants = []string{"Acme Corp"} }, "tenants[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error about %s", err, tt.want)
			}
			if _, err := simulate.Run(t.Context(), c, zap.NewNop()); err == nil {
				t.Error("Run accepted the config")
			}
		})
	}
}
