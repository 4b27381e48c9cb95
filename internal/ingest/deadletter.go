package ingest

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Headers of a dead letter that is not the whole record (see stub).
const (
	// HeaderTruncated says why the dead letter is not the whole record:
	// the dead-letter topic refused the whole copy. The record is whole in
	// its source topic, at the source partition and offset.
	HeaderTruncated = "chatreport-truncated"
	// HeaderValueBytes is the size of the record's whole value, as decimal
	// text.
	HeaderValueBytes = "chatreport-value-bytes"
)

// Bounds of a stub: far below any broker's message size limit (Kafka's
// default is 1 MiB), so a stub is always writable.
const (
	stubValueBytes  = 64 << 10
	stubKeyBytes    = 4 << 10
	stubReasonBytes = 1 << 10
)

// deadLetter is m's key and value plus why and where from, with m's own
// headers. The value is never null: kafka-go reads an empty value as nil, and
// a null value on a compacted dead-letter topic would be a tombstone that
// deletes the key, so an empty (or null) value is written empty.
func deadLetter(m *kafka.Message, reason string) kafka.Message {
	headers := append(append([]kafka.Header(nil), m.Headers...), locate(m, reason)...)
	value := m.Value
	if value == nil {
		value = []byte{}
	}
	return kafka.Message{Key: m.Key, Value: value, Headers: headers}
}

// locate is the headers that say why a record was dead-lettered and where it
// is in its source topic.
func locate(m *kafka.Message, reason string) []kafka.Header {
	return []kafka.Header{
		{Key: HeaderReason, Value: []byte(reason)},
		{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
		{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(m.Partition))},
		{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	}
}

// stub is the dead letter written when the dead-letter topic refuses the
// whole copy of m for good (see permanent): the reason, the source topic,
// partition and offset, the key and a prefix of the value, all bounded, so
// that the record can be found in its source topic. m's own headers are left
// out: they may be what made the copy too large.
func stub(m *kafka.Message, reason string, refused error) kafka.Message {
	headers := append(locate(m, prefix(reason, stubReasonBytes)),
		kafka.Header{Key: HeaderTruncated, Value: []byte(prefix("the dead-letter topic refused the whole record: "+cause(refused).Error(), stubReasonBytes))},
		kafka.Header{Key: HeaderValueBytes, Value: []byte(strconv.Itoa(len(m.Value)))},
	)
	return kafka.Message{
		Key:     []byte(prefix(string(m.Key), stubKeyBytes)),
		Value:   []byte(prefix(string(m.Value), stubValueBytes)),
		Headers: headers,
	}
}

// prefix is s cut to at most n bytes, at a UTF-8 boundary when s is UTF-8.
func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > n-utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = n // not UTF-8 there: bytes are bytes
	}
	return s[:cut]
}

// permanent reports whether the dead-letter topic refused a record for what
// the record is, so that writing it again cannot succeed:
//
//   - MESSAGE_TOO_LARGE: the record (compressed) is over the topic's
//     max.message.bytes, or over the writer's own bound before sending;
//   - RECORD_LIST_TOO_LARGE: the batch is over the broker's segment size;
//   - INVALID_RECORD: the broker's record validation refused it (a compacted
//     topic takes no record without a key, for example);
//   - INVALID_TIMESTAMP: its timestamp is outside the topic's
//     message.timestamp.*.max.ms window;
//   - UNSUPPORTED_COMPRESSION_TYPE: the broker or topic takes no zstd.
//
// Anything else — the broker unreachable, leadership moving, the topic
// missing or not writable by chatreport — is retried: it is the cluster, not
// the record, and skipping the dead letter would lose it silently.
func permanent(err error) bool {
	var perLetter kafka.WriteErrors
	if errors.As(err, &perLetter) {
		// It has no Unwrap: ask about each letter's error.
		return slices.ContainsFunc(perLetter, func(e error) bool { return e != nil && permanent(e) })
	}
	for _, code := range []kafka.Error{
		kafka.MessageSizeTooLarge,
		kafka.RecordListTooLarge,
		kafka.InvalidRecord,
		kafka.InvalidTimestamp,
		kafka.UnsupportedCompressionType,
	} {
		if errors.Is(err, code) {
			return true
		}
	}
	return false
}

// letterAt is a dead letter and the batch index of its message.
type letterAt struct {
	at int
	letter
}

func newLetter(at int, m *kafka.Message, reason string) letterAt {
	return letterAt{at: at, letter: letter{msg: deadLetter(m, reason), src: m, reason: reason}}
}

// deadLetterAll writes a batch's dead letters, in batch order as one call
// would have produced them, and counts them in stats.
func (in *Ingester) deadLetterAll(ctx context.Context, batch []kafka.Message, dead []letterAt, stats *BatchStats) error {
	if len(dead) == 0 {
		return nil
	}
	slices.SortFunc(dead, func(a, b letterAt) int { return cmp.Compare(a.at, b.at) })
	letters := make([]letter, len(dead))
	for i, d := range dead {
		letters[i] = d.letter
		t := stats.Topics[batch[d.at].Topic]
		t.DeadLettered++
		stats.Topics[batch[d.at].Topic] = t
	}
	ls, err := in.writeDeadLetters(ctx, letters)
	if err != nil {
		return err
	}
	for topic, n := range ls.truncated {
		t := stats.Topics[topic]
		t.Truncated += n
		stats.Topics[topic] = t
	}
	for topic, n := range ls.lost {
		t := stats.Topics[topic]
		t.Lost += n
		stats.Topics[topic] = t
	}
	in.log.Info("events dead-lettered", zap.Int("count", len(letters)), zap.String("topic", in.cfg.DeadLetter))
	return nil
}

// cause is the error of the first letter that failed, when err is per
// letter: the broker's own words, without kafka-go's summary around them.
func cause(err error) error {
	var perLetter kafka.WriteErrors
	if errors.As(err, &perLetter) {
		for _, e := range perLetter {
			if e != nil {
				return e
			}
		}
	}
	return err
}

// letter is a dead letter on its way to the topic.
type letter struct {
	msg    kafka.Message
	src    *kafka.Message
	reason string
	stub   bool // msg is src's stub
}

// letterStats is what writing a batch's dead letters did.
type letterStats struct {
	// truncated and lost count, per source topic, the stubs written in
	// place of whole records and the letters not written at all.
	truncated, lost map[string]int
}

// writeDeadLetters writes the letters to the dead-letter topic. A write that
// fails for a reason the cluster may cure is retried until ctx ends (then the
// error is returned and the batch is not committed). A letter the topic
// refuses for good (permanent) is replaced by its stub; a stub refused for
// good too is logged, without its content, counted as lost and skipped, so
// no record blocks its partition.
func (in *Ingester) writeDeadLetters(ctx context.Context, letters []letter) (letterStats, error) {
	st := letterStats{truncated: map[string]int{}, lost: map[string]int{}}
	pending := letters
	err := in.retry(ctx, "write dead letters", func() error {
		msgs := make([]kafka.Message, len(pending))
		for i := range pending {
			msgs[i] = pending[i].msg
		}
		err := in.dlq.WriteMessages(ctx, msgs...)
		failed, anyPermanent := unwritten(pending, err)
		pending = failed
		if len(pending) == 0 || !anyPermanent {
			return err
		}
		// Some letter is refused for good: write the failed ones one by
		// one, so that each refusal belongs to its letter. A letter
		// written alone was refused alone: its stub is next.
		if l := &pending[0]; len(msgs) == 1 && !l.stub {
			l.msg, l.stub = stub(l.src, l.reason, err), true
		}
		var rest []letter
		var last error
		for i := range pending {
			if err := in.writeAlone(ctx, &pending[i], &st); err != nil {
				rest = append(rest, pending[i])
				last = err
			}
		}
		pending = rest
		return last
	})
	return st, err
}

// unwritten is the letters that err says were not written, and whether any
// of them was refused for good.
func unwritten(letters []letter, err error) ([]letter, bool) {
	if err == nil {
		return nil, false
	}
	var perLetter kafka.WriteErrors
	if !errors.As(err, &perLetter) || len(perLetter) != len(letters) {
		// Nothing was sent (the writer's own size check, a metadata
		// failure) or it is unknown what was: all of them again.
		return letters, permanent(err)
	}
	var out []letter
	for i, e := range perLetter {
		if e != nil {
			out = append(out, letters[i])
		}
	}
	return out, permanent(perLetter)
}

// writeAlone writes one letter, falling back to its stub, then to logging it
// as lost, when the topic refuses it for good. Its error is one to retry.
func (in *Ingester) writeAlone(ctx context.Context, l *letter, st *letterStats) error {
	for {
		err := in.dlq.WriteMessages(ctx, l.msg)
		switch {
		case err == nil:
			if l.stub {
				st.truncated[l.src.Topic]++
			}
			return nil
		case !permanent(err):
			return err
		case !l.stub:
			l.msg, l.stub = stub(l.src, l.reason, err), true
		default:
			st.lost[l.src.Topic]++
			in.log.Error("dead letter not written: the dead-letter topic refused even its stub; the record stays only in its source topic",
				zap.String("source_topic", l.src.Topic), zap.Int("source_partition", l.src.Partition),
				zap.Int64("source_offset", l.src.Offset), zap.Error(cause(err)))
			return nil
		}
	}
}
