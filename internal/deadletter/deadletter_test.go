package deadletter_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/deadletter"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
)

const (
	source = "chat.events.bot"
	dlq    = "chat.events.dlq"
)

// startBroker starts an embedded broker with the source and dead-letter
// topics, of partitions partitions each, closed when the test ends.
func startBroker(t *testing.T, partitions int) *broker.Broker {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{Addr: "127.0.0.1:0", Topics: []string{source, dlq}, Partitions: partitions}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func letter(key, value, reason string, offset int) kafka.Message {
	return kafka.Message{Topic: dlq, Key: []byte(key), Value: []byte(value), Headers: []kafka.Header{
		{Key: ingest.HeaderReason, Value: []byte(reason)},
		{Key: ingest.HeaderSourceTopic, Value: []byte(source)},
		{Key: ingest.HeaderSourcePartition, Value: []byte("1")},
		{Key: ingest.HeaderSourceOffset, Value: []byte(strings.Repeat("1", offset))},
	}}
}

func TestListAndRedrive(t *testing.T) {
	b := startBroker(t, 3)
	brokers := []string{b.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	broken := `{"event_id":"e1","type":"message","occurred_at":"2025-10-07T09:00:00","tenant":"acme","channel":"whatsapp","contact":{"id":"c1"},"author":{"role":"customer"},"text":"oi"}`
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	if err := w.WriteMessages(ctx,
		letter("acme/whatsapp/c1", broken, "occurred_at: must be RFC 3339 with a UTC offset", 2),
		letter("acme/whatsapp/c2", "not json", "not a JSON event object", 3),
	); err != nil {
		t.Fatal(err)
	}

	var letters []deadletter.Letter
	if err := deadletter.Read(ctx, brokers, dlq, zap.NewNop(), func(l deadletter.Letter) error {
		letters = append(letters, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(letters) != 2 {
		t.Fatalf("read %d letters, want 2", len(letters))
	}
	byKey := map[string]deadletter.Letter{}
	for _, l := range letters {
		byKey[l.Key] = l
	}
	l1 := byKey["acme/whatsapp/c1"]
	if l1.EventID != "e1" || l1.SourceTopic != source || l1.SourcePartition != 1 || l1.SourceOffset != 11 || !strings.Contains(l1.Reason, "RFC 3339") {
		t.Fatalf("letter %+v", l1)
	}

	// Fix the first (add the offset), leave the second broken.
	l1.Value = []byte(strings.Replace(broken, `09:00:00"`, `09:00:00-03:00"`, 1))
	outcomes, err := deadletter.Redrive(ctx, brokers, []deadletter.Letter{l1, byKey["acme/whatsapp/c2"]}, false)
	if err != nil {
		t.Fatal(err)
	}
	if outcomes[0].Err != nil || outcomes[1].Err == nil {
		t.Fatalf("outcomes: %v / %v", outcomes[0].Err, outcomes[1].Err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: "check", GroupTopics: []string{source}, StartOffset: kafka.FirstOffset, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, err := event.Decode(m.Value)
	if err != nil || e.EventID != "e1" || string(m.Key) != "acme/whatsapp/c1" {
		t.Fatalf("redriven message: key %q, event %+v, err %v", m.Key, e, err)
	}
}

// TestRedriveLargestEvent: an event at the contract's size limit goes back
// to its source topic, whose broker takes at most 1 MiB per batch (Kafka's
// default message.max.bytes): the redrive writes it compressed.
func TestRedriveLargestEvent(t *testing.T) {
	b := startBroker(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Unknown fields are ignored, so one can fill an event up to the limit.
	head := `{"event_id":"big","type":"message","occurred_at":"2025-10-07T09:00:00-03:00","tenant":"acme","channel":"whatsapp","contact":{"id":"c1"},"author":{"role":"customer"},"text":"oi","platform_trace":"`
	value := head + strings.Repeat("boleto ", (event.MaxEventBytes-len(head)-2)/7) + `"}`
	if _, err := event.Decode([]byte(value)); err != nil {
		t.Fatalf("the test's event is invalid: %v", err)
	}
	l := deadletter.Letter{Key: "acme/whatsapp/c1", Value: []byte(value), SourceTopic: source, SourcePartition: 0, SourceOffset: 7}
	outcomes, err := deadletter.Redrive(ctx, []string{b.Addr()}, []deadletter.Letter{l}, false)
	if err != nil {
		t.Fatal(err)
	}
	if outcomes[0].Err != nil {
		t.Fatal(outcomes[0].Err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, GroupID: "check", GroupTopics: []string{source}, StartOffset: kafka.FirstOffset, MaxWait: 50 * time.Millisecond, MaxBytes: 4 << 20})
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Value) != len(value) {
		t.Fatalf("redriven %d bytes, want %d", len(m.Value), len(value))
	}
}

// A stub (a letter the dead-letter topic refused whole) reads as truncated,
// and redrive refuses it, naming where the whole event is.
func TestTruncatedLetter(t *testing.T) {
	b := startBroker(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stub := letter("acme/whatsapp/c1", `{"event_id":"e1","text":"aaaa`, "event is 2000000 bytes, over the 1048576-byte limit", 2)
	stub.Headers = append(stub.Headers,
		kafka.Header{Key: ingest.HeaderTruncated, Value: []byte("the dead-letter topic refused the whole record: [10] Message Size Too Large")},
		kafka.Header{Key: ingest.HeaderValueBytes, Value: []byte("2000000")})
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	if err := w.WriteMessages(ctx, stub); err != nil {
		t.Fatal(err)
	}
	var letters []deadletter.Letter
	if err := deadletter.Read(ctx, []string{b.Addr()}, dlq, zap.NewNop(), func(l deadletter.Letter) error {
		letters = append(letters, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || letters[0].ValueBytes != 2000000 || !strings.Contains(letters[0].Truncated, "Message Size Too Large") {
		t.Fatalf("letters %+v", letters)
	}
	out, err := deadletter.Redrive(ctx, []string{b.Addr()}, letters, true)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Err == nil || !strings.Contains(out[0].Err.Error(), "truncated: the letter holds a prefix of the event; the whole event is in chat.events.bot, partition 1, offset 11") {
		t.Fatalf("redrive: %v", out[0].Err)
	}
}

func TestParseLetters(t *testing.T) {
	ls, err := deadletter.ParseLetters("{\"partition\":1,\"offset\":7,\"source_topic\":\"t\",\"key\":\"k\",\"value\":{\"a\":1}}\n\n")
	if err != nil || len(ls) != 1 || ls[0].Offset != 7 || string(ls[0].Value) != `{"a":1}` {
		t.Fatalf("%+v %v", ls, err)
	}
	if _, err := deadletter.ParseLetters("{nope"); err == nil {
		t.Fatal("bad line accepted")
	}
}

// TestReadPastAFetchError: a fetch of the dead-letter topic answered with
// an error the Kafka client recovers from does not end Read: it logs it and
// reads every letter. Read failed at the first such error.
func TestReadPastAFetchError(t *testing.T) {
	b := startBroker(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	if err := w.WriteMessages(ctx, letter("acme/whatsapp/c1", "not json", "not a JSON event object", 2),
		letter("acme/whatsapp/c2", "not json", "not a JSON event object", 3)); err != nil {
		t.Fatal(err)
	}
	fault := b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: dlq, Err: kerr.KafkaStorageError})
	core, logs := observer.New(zap.WarnLevel)
	n := 0
	if err := deadletter.Read(ctx, []string{b.Addr()}, dlq, zap.New(core), func(deadletter.Letter) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 2 || fault.Hits() != 1 {
		t.Errorf("read %d letters with %d fetches failed, want 2 and 1", n, fault.Hits())
	}
	if got := logs.FilterMessage("fetch failed; fetching again").Len(); got != 1 {
		t.Errorf("%d warnings of the failed fetch, want 1 (the command says why it waits)", got)
	}
}
