package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatreport/chatreport/internal/broker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every network step, so a broken broker fails a test
// instead of hanging it.
const testTimeout = 10 * time.Second

func TestProduceConsumeGroup(t *testing.T) {
	topics := []string{"chat.messages", "chat.receipts"}
	b := startBroker(t, broker.Config{Addr: "127.0.0.1:0", Topics: topics, Partitions: 3})

	var sent []kafka.Message
	for _, topic := range topics {
		sent = append(sent, keyedMessages(topic, "first", 30)...)
	}
	produce(t, b.Addr(), sent)

	r := newGroupReader(t, b.Addr(), "report-builder", topics)
	got := fetchAndCommit(t, r, len(sent))

	assertSameMessages(t, sent, got)
	// The service joins events of one contact across topics by partition,
	// so a key must map to the same partition number in every topic.
	partitionOf := map[string]int{}
	for _, m := range got {
		k := string(m.Key)
		if p, ok := partitionOf[k]; ok && p != m.Partition {
			t.Errorf("key %s: partition %d in %s, %d elsewhere", k, m.Partition, m.Topic, p)
		}
		partitionOf[k] = m.Partition
	}
	used := map[int]bool{}
	for _, p := range partitionOf {
		used[p] = true
	}
	if len(used) < 2 {
		t.Errorf("all keys landed on partitions %v; the partition check proves nothing", used)
	}
}

func TestCommittedOffsetsSurviveReaderRestart(t *testing.T) {
	topics := []string{"chat.messages", "chat.receipts"}
	b := startBroker(t, broker.Config{Addr: "127.0.0.1:0", Topics: topics, Partitions: 3})
	const group = "report-builder"

	var first []kafka.Message
	for _, topic := range topics {
		first = append(first, keyedMessages(topic, "first", 12)...)
	}
	produce(t, b.Addr(), first)
	r1 := newGroupReader(t, b.Addr(), group, topics)
	assertSameMessages(t, first, fetchAndCommit(t, r1, len(first)))
	if err := r1.Close(); err != nil {
		t.Fatalf("close first reader: %v", err)
	}

	var second []kafka.Message
	for _, topic := range topics {
		second = append(second, keyedMessages(topic, "second", 12)...)
	}
	produce(t, b.Addr(), second)
	r2 := newGroupReader(t, b.Addr(), group, topics)
	// A redelivered message has a lower offset than the new ones in its
	// partition, so it would arrive among the first len(second) messages.
	assertSameMessages(t, second, fetchAndCommit(t, r2, len(second)))

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if m, err := r2.FetchMessage(ctx); err == nil {
		t.Errorf("unexpected extra message %s/%d@%d: %s", m.Topic, m.Partition, m.Offset, m.Value)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for no more messages: %v", err)
	}
}

func TestKcatProducesToKafkaGoConsumer(t *testing.T) {
	kcat := lookKcat(t)
	b := startBroker(t, broker.Config{Addr: "127.0.0.1:0", Topics: []string{"chat.messages"}, Partitions: 3})

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-P", "-b", b.Addr(), "-t", "chat.messages", "-k", "contact-7")
	cmd.Stdin = strings.NewReader("hello from librdkafka\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}

	r := newGroupReader(t, b.Addr(), "kcat-check", []string{"chat.messages"})
	got := fetchAndCommit(t, r, 1)
	if k, v := string(got[0].Key), string(got[0].Value); k != "contact-7" || v != "hello from librdkafka" {
		t.Errorf("got key %q value %q, want contact-7 / hello from librdkafka", k, v)
	}
}

func TestKcatConsumesWithGroup(t *testing.T) {
	kcat := lookKcat(t)
	b := startBroker(t, broker.Config{Addr: "127.0.0.1:0", Topics: []string{"chat.messages"}, Partitions: 3})
	sent := keyedMessages("chat.messages", "first", 3)
	produce(t, b.Addr(), sent)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// -G makes librdkafka join a consumer group; -c stops after the
	// messages we produced, so the command ends on its own.
	cmd := exec.CommandContext(ctx, kcat, "-b", b.Addr(), "-G", "kcat-group",
		"-X", "auto.offset.reset=earliest", "-c", strconv.Itoa(len(sent)),
		"-f", "%k=%s\n", "-q", "chat.messages")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, stderr.String())
	}
	got := map[string]bool{}
	for line := range strings.Lines(stdout.String()) {
		got[strings.TrimSuffix(line, "\n")] = true
	}
	for _, m := range sent {
		if line := string(m.Key) + "=" + string(m.Value); !got[line] {
			t.Errorf("kcat did not print %q; got %q", line, stdout.String())
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tooManyPartitions := math.MaxInt32 // the wire format's limit
	tooManyPartitions++
	tests := []struct {
		name    string
		cfg     broker.Config
		wantErr string // empty: valid
	}{
		{"valid", broker.Config{Addr: "127.0.0.1:0", Topics: []string{"a", "b.c_d-1"}, Partitions: 3}, ""},
		{"no topics", broker.Config{Addr: "127.0.0.1:0", Partitions: 1}, ""},
		{"wildcard host", broker.Config{Addr: ":0", Partitions: 1}, ""},
		{"empty addr", broker.Config{Partitions: 1}, "addr"},
		{"no port", broker.Config{Addr: "127.0.0.1", Partitions: 1}, "addr"},
		{"empty port", broker.Config{Addr: "127.0.0.1:", Partitions: 1}, "port"},
		{"named port", broker.Config{Addr: "127.0.0.1:kafka", Partitions: 1}, "port"},
		{"port too big", broker.Config{Addr: "127.0.0.1:65536", Partitions: 1}, "port"},
		{"zero partitions", broker.Config{Addr: "127.0.0.1:0", Topics: []string{"a"}}, "partitions"},
		{"negative partitions", broker.Config{Addr: "127.0.0.1:0", Partitions: -1}, "partitions"},
		{"partitions overflow int32", broker.Config{Addr: "127.0.0.1:0", Partitions: tooManyPartitions}, "partitions"},
		{"empty topic", broker.Config{Addr: "127.0.0.1:0", Topics: []string{""}, Partitions: 1}, "empty"},
		{"dot topic", broker.Config{Addr: "127.0.0.1:0", Topics: []string{".."}, Partitions: 1}, "reserved"},
		{"bad character", broker.Config{Addr: "127.0.0.1:0", Topics: []string{"chat messages"}, Partitions: 1}, "allowed"},
		{"too long", broker.Config{Addr: "127.0.0.1:0", Topics: []string{strings.Repeat("a", 250)}, Partitions: 1}, "longer"},
		{"duplicate topic", broker.Config{Addr: "127.0.0.1:0", Topics: []string{"a", "b", "a"}, Partitions: 1}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want error containing %q", err, tt.wantErr)
			}
			// Start must refuse the config before it listens anywhere.
			b, err := broker.Start(context.Background(), tt.cfg, zap.NewNop())
			if err == nil {
				b.Close()
				t.Fatal("Start accepted an invalid config")
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if b, err := broker.Start(context.Background(), broker.Config{Addr: taken.Addr().String(), Partitions: 1}, zap.NewNop()); err == nil {
		b.Close()
		t.Error("Start on a port in use succeeded")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b, err := broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0", Partitions: 1}, zap.NewNop())
	if err == nil {
		b.Close()
		t.Fatal("Start with a cancelled context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestWildcardAddrAdvertisesLoopback(t *testing.T) {
	b := startBroker(t, broker.Config{Addr: "0.0.0.0:0", Topics: []string{"chat.messages"}, Partitions: 2})
	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %s, want 127.0.0.1 and the bound port", b.Addr())
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := (&kafka.Dialer{}).DialContext(ctx, "tcp", b.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	brokers, err := conn.Brokers()
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(brokers) != 1 || net.JoinHostPort(brokers[0].Host, strconv.Itoa(brokers[0].Port)) != b.Addr() {
		t.Errorf("metadata advertises %+v, want one broker at %s", brokers, b.Addr())
	}
}

func TestStartLogsAddr(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	b, err := broker.Start(context.Background(), broker.Config{Addr: "127.0.0.1:0", Partitions: 1}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	started := logs.FilterMessage("kafka broker listening").All()
	if len(started) != 1 || started[0].ContextMap()["addr"] != b.Addr() {
		t.Errorf("listening log entries %+v, want one with addr %s", started, b.Addr())
	}
}

func TestCloseStopsListeningAndIsIdempotent(t *testing.T) {
	b, err := broker.Start(context.Background(), broker.Config{Addr: "127.0.0.1:0", Partitions: 1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.Close()
	conn, err := net.DialTimeout("tcp", b.Addr(), time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("broker still accepts connections after Close")
	}
}

func startBroker(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	b, err := broker.Start(ctx, cfg, zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)))
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// keyedMessages returns n messages for topic spread over 10 keys; the value
// names the batch and the sequence so every message is distinct.
func keyedMessages(topic, batch string, n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Topic: topic,
			Key:   fmt.Appendf(nil, "contact-%d", i%10),
			Value: fmt.Appendf(nil, "%s/%s/%03d", topic, batch, i),
		}
	}
	return msgs
}

func produce(t *testing.T, addr string, msgs []kafka.Message) {
	t.Helper()
	// An own transport, so its pooled connections close with the test
	// instead of idling in kafka.DefaultTransport past goleak's check.
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Balancer:     &kafka.Murmur2Balancer{},
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
		Transport:    transport,
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce %d messages: %v", len(msgs), err)
	}
}

func newGroupReader(t *testing.T, addr, group string, topics []string) *kafka.Reader {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{addr},
		GroupID:     group,
		GroupTopics: topics,
		StartOffset: kafka.FirstOffset,
		// The defaults wait up to 10 s for data, which only slows the
		// tests down and delays Close.
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: time.Second,
		ErrorLogger:       kafka.LoggerFunc(t.Logf),
	})
	// Close is idempotent in effect for our purpose: a second call
	// returns an error we do not need.
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// fetchAndCommit fetches n messages, committing each one as it arrives the
// way the service does once a message is handled.
func fetchAndCommit(t *testing.T, r *kafka.Reader, n int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	got := make([]kafka.Message, 0, n)
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch message %d of %d: %v", len(got)+1, n, err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit %s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
		}
		got = append(got, m)
	}
	return got
}

// assertSameMessages checks that got holds exactly the messages in sent, with
// their keys, and that each key's messages arrived in the order sent.
func assertSameMessages(t *testing.T, sent, got []kafka.Message) {
	t.Helper()
	wantKey := map[string]string{}
	for _, m := range sent {
		wantKey[string(m.Value)] = string(m.Key)
	}
	seen := map[string]bool{}
	last := map[string]string{} // topic+key → last value, values sort by sequence
	for _, m := range got {
		v, k := string(m.Value), string(m.Key)
		want, ok := wantKey[v]
		switch {
		case !ok:
			t.Errorf("unexpected message %s/%d@%d key %s: %s", m.Topic, m.Partition, m.Offset, k, v)
			continue
		case seen[v]:
			t.Errorf("message %s delivered twice", v)
		case k != want:
			t.Errorf("message %s: key %s, want %s", v, k, want)
		case !strings.HasPrefix(v, m.Topic+"/"):
			t.Errorf("message %s arrived on topic %s", v, m.Topic)
		}
		seen[v] = true
		if prev := last[m.Topic+"|"+k]; prev > v {
			t.Errorf("key %s on %s: %s arrived after %s", k, m.Topic, v, prev)
		}
		last[m.Topic+"|"+k] = v
	}
	for v := range wantKey {
		if !seen[v] {
			t.Errorf("message %s never arrived", v)
		}
	}
}

func lookKcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not on PATH; install it (apt-get install kcat) to check librdkafka compatibility")
	}
	return path
}
