// Package deadletter reads the dead-letter topic and sends events back to the
// topics they came from, for the `chatreport dlq` commands.
package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
)

// Letter is one dead-lettered event with why and where it came from.
type Letter struct {
	Partition       int       `json:"partition"`
	Offset          int64     `json:"offset"`
	Time            time.Time `json:"time"`
	Reason          string    `json:"reason"`
	SourceTopic     string    `json:"source_topic"`
	SourcePartition int       `json:"source_partition"`
	SourceOffset    int64     `json:"source_offset"`
	// EventID is the event's id when the value is JSON with one.
	EventID string `json:"event_id,omitempty"`
	Key     string `json:"key"`
	// Value is the event as it was rejected; fix it and redrive.
	Value json.RawMessage `json:"value"`
	// Truncated, when set, says why the letter is a stub that holds only
	// a prefix of the value (of ValueBytes bytes): the whole record is in
	// its source topic, at the source partition and offset.
	Truncated  string `json:"truncated,omitempty"`
	ValueBytes int    `json:"value_bytes,omitempty"`
}

func letterOf(m *kafka.Message) Letter {
	l := Letter{Partition: m.Partition, Offset: m.Offset, Time: m.Time.UTC(), Key: string(m.Key), Value: rawOrString(m.Value)}
	for _, h := range m.Headers {
		v := string(h.Value)
		switch h.Key {
		case ingest.HeaderReason:
			l.Reason = v
		case ingest.HeaderSourceTopic:
			l.SourceTopic = v
		case ingest.HeaderSourcePartition:
			l.SourcePartition, _ = strconv.Atoi(v)
		case ingest.HeaderSourceOffset:
			l.SourceOffset, _ = strconv.ParseInt(v, 10, 64)
		case ingest.HeaderTruncated:
			l.Truncated = v
		case ingest.HeaderValueBytes:
			l.ValueBytes, _ = strconv.Atoi(v)
		}
	}
	var probe struct {
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(m.Value, &probe) == nil {
		l.EventID = probe.EventID
	}
	return l
}

// rawOrString keeps a JSON value as it is and wraps anything else (not JSON at
// all) in a JSON string, so a letter always prints as one JSON line.
func rawOrString(v []byte) json.RawMessage {
	if json.Valid(v) {
		return json.RawMessage(v)
	}
	s, _ := json.Marshal(string(v))
	return s
}

// valueBytes is what redrive sends: the raw JSON, or the string a non-JSON
// value was wrapped in.
func (l *Letter) valueBytes() []byte {
	var s string
	if json.Unmarshal(l.Value, &s) == nil {
		return []byte(s)
	}
	return l.Value
}

// Read calls fn for every letter in topic that was there when Read started,
// partition by partition, in offset order. It uses no consumer group. A
// fetch error the Kafka client recovers from is logged on log and fetched
// past, for up to readGiveUp.
func Read(ctx context.Context, brokers []string, topic string, log *zap.Logger, fn func(Letter) error) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: &kafka.Transport{}}
	defer client.Transport.(*kafka.Transport).CloseIdleConnections()
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("kafka at %s does not answer (kafka.brokers of the configuration, or --brokers): read metadata of %s: %w", strings.Join(brokers, ","), topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return fmt.Errorf("topic %s: not found", topic)
	}
	// One kind of offset per request: brokers refuse a partition listed twice.
	offsets := func(kind func(int) kafka.OffsetRequest) (map[int]int64, error) {
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
		for _, p := range meta.Topics[0].Partitions {
			req.Topics[topic] = append(req.Topics[topic], kind(p.ID))
		}
		resp, err := client.ListOffsets(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		out := map[int]int64{}
		for _, p := range resp.Topics[topic] {
			if p.Error != nil {
				return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
			}
			out[p.Partition] = max(p.FirstOffset, p.LastOffset) // the one asked for; the other is 0
		}
		return out, nil
	}
	first, err := offsets(kafka.FirstOffsetOf)
	if err != nil {
		return err
	}
	last, err := offsets(kafka.LastOffsetOf)
	if err != nil {
		return err
	}
	for _, p := range meta.Topics[0].Partitions {
		if first[p.ID] >= last[p.ID] {
			continue
		}
		if err := readPartition(ctx, brokers, topic, p.ID, first[p.ID], last[p.ID], log, fn); err != nil {
			return err
		}
	}
	return nil
}

// readGiveUp is how long Read fetches a partition again after errors the
// Kafka client recovers from (a broker restarting), before it fails: a
// command waits that long at most, and says why.
const readGiveUp = 30 * time.Second

func readPartition(ctx context.Context, brokers []string, topic string, partition int, first, end int64, log *zap.Logger, fn func(Letter) error) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, Topic: topic, Partition: partition, MaxWait: ingest.ReaderMaxWait(200 * time.Millisecond),
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return fmt.Errorf("seek %s/%d: %w", topic, partition, err)
	}
	for {
		m, err := ingest.Fetch(ctx, r, readGiveUp, log.With(zap.String("topic", topic), zap.Int("partition", partition)))
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		if err := fn(letterOf(&m)); err != nil {
			return err
		}
		if m.Offset >= end-1 {
			return nil
		}
	}
}

// Outcome is what Redrive did with one letter.
type Outcome struct {
	Letter Letter
	// Err says why the letter was not sent: the event still breaks the
	// contract, or its source topic is unknown.
	Err error
}

// Redrive validates each letter's value and sends the valid ones to their
// source topic with their key, so the ingester consumes them again. With
// dryRun nothing is sent.
func Redrive(ctx context.Context, brokers []string, letters []Letter, dryRun bool) ([]Outcome, error) {
	out := make([]Outcome, len(letters))
	var msgs []kafka.Message
	for i, l := range letters {
		out[i].Letter = l
		if l.SourceTopic == "" {
			out[i].Err = errors.New("no source topic")
			continue
		}
		if l.Truncated != "" {
			out[i].Err = fmt.Errorf("truncated: the letter holds a prefix of the event; the whole event is in %s, partition %d, offset %d",
				l.SourceTopic, l.SourcePartition, l.SourceOffset)
			continue
		}
		value := l.valueBytes()
		if _, err := event.Decode(value); err != nil {
			out[i].Err = fmt.Errorf("still invalid: %w", err)
			continue
		}
		msgs = append(msgs, kafka.Message{
			Topic: l.SourceTopic, Key: []byte(l.Key), Value: value,
			Headers: []kafka.Header{{Key: "chatreport-redriven-from", Value: []byte(fmt.Sprintf("%d/%d", l.Partition, l.Offset))}},
		})
	}
	if dryRun || len(msgs) == 0 {
		return out, nil
	}
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	// Compressed, as the ingester writes dead letters: a valid event may be
	// up to event.MaxEventBytes, which with its key, headers and batch
	// framing is over a broker's default message.max.bytes uncompressed.
	w := &kafka.Writer{
		Addr: kafka.TCP(brokers...), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, Transport: tr, Compression: kafka.Zstd,
		// The writer's own bound is on the uncompressed size: above any event.
		BatchBytes: 4 * event.MaxEventBytes,
	}
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return out, fmt.Errorf("send to source topics: %w", err)
	}
	return out, nil
}

// ParseLetters reads letters as JSON lines (the output of `dlq show`).
func ParseLetters(text string) ([]Letter, error) {
	var out []Letter
	for i, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var l Letter
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, l)
	}
	return out, nil
}
