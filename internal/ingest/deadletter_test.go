package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/waitfor"
)

type discardSink struct{}

func (discardSink) Ingest(context.Context, []event.Event) error { return nil }

// TestDeadLetterWriterStopsWithIngester: once an ingester has dead-lettered
// anything, no goroutine of its dead-letter writer outlives Run. (With the
// writer on kafka.DefaultTransport, kafka-go's connection pool goroutines,
// connPool.discover and conn.run, stayed behind.)
func TestDeadLetterWriterStopsWithIngester(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and a consumer group")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0", Topics: []string{"leak.events", "leak.dlq"}, Partitions: 1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w := newKeyedWriter(b.Addr())
	if err := w.WriteMessages(ctx, kafka.Message{Topic: "leak.events", Key: []byte("k"), Value: []byte(`{"event_id":"broken"}`)}); err != nil {
		t.Fatal(err)
	}
	w.close()

	in, err := ingest.New(ingest.Config{
		Brokers: []string{b.Addr()}, Topics: []string{"leak.events"}, Group: "leak", DeadLetter: "leak.dlq",
		BatchSize: 10, BatchWait: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond,
	}, discardSink{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(runCtx) }()
	for in.Stats().DeadLettered == 0 {
		if ctx.Err() != nil {
			t.Fatal("the broken event was never dead-lettered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// dlBroker starts a broker with one partition per topic, so that every
// message of a test is in one partition and one blocked record would block
// everything after it.
func dlBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{
		Addr: "127.0.0.1:0", Topics: []string{dlqTopic}, Partitions: 1,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// createTopics creates the event topics with one partition and the given
// topic configuration.
func createTopics(t *testing.T, addr string, configs ...kafka.ConfigEntry) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
	req := &kafka.CreateTopicsRequest{}
	for _, tp := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: tp, NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: configs})
	}
	resp, err := c.CreateTopics(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for tp, err := range resp.Errors {
		if err != nil {
			t.Fatalf("create %s: %v", tp, err)
		}
	}
}

// produceCompressed sends msgs compressed with zstd, as a producer may, in
// one batch of up to 32 MiB uncompressed.
func produceCompressed(t *testing.T, addr string, msgs ...kafka.Message) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, Transport: tr, Compression: kafka.Zstd, BatchBytes: 32 << 20}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// paddedEvent is a valid tag event whose unknown field "pad" makes it size
// bytes long; random pads do not compress.
func paddedEvent(t *testing.T, i, size int, random bool) kafka.Message {
	t.Helper()
	e := tagEvent(i)
	v, _ := json.Marshal(e)
	head := string(v[:len(v)-1]) + `,"pad":"`
	n := size - len(head) - 2
	pad := make([]byte, n)
	if random {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		for j := range pad {
			pad[j] = alphabet[rng.IntN(len(alphabet))]
		}
	} else {
		for j := range pad {
			pad[j] = 'x'
		}
	}
	return kafka.Message{Topic: topics[0], Key: []byte(e.RecommendedKey()), Value: []byte(head + string(pad) + `"}`)}
}

// allDeadLetters reads every record of the dead-letter topic's partition 0
// as stored, with kafka.Client.Fetch: unlike kafka.Reader it tells an empty
// value from a null one.
func allDeadLetters(t *testing.T, addr string) []kafka.Record {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
	resp, err := c.Fetch(context.Background(), &kafka.FetchRequest{Topic: dlqTopic, Partition: 0, MaxBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Error != nil {
		t.Fatal(resp.Error)
	}
	var out []kafka.Record
	for {
		r, err := resp.Records.ReadRecord()
		if err != nil {
			return out
		}
		out = append(out, *r)
	}
}

func readAll(t *testing.T, b kafka.Bytes) []byte {
	t.Helper()
	if b == nil {
		return nil
	}
	out, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

func recordHeader(r kafka.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestOversizedCompressedEvent: a 2 MiB event produced zstd-compressed is
// within the broker's limit, which applies to the compressed batch, but over
// the contract's 1 MiB. Its dead letter is written compressed, whole, and
// the event after it is stored. (Written uncompressed, the copy was refused
// by the broker and retried forever: nothing after it was stored or
// committed.)
func TestOversizedCompressedEvent(t *testing.T) {
	b := dlBroker(t)
	createTopics(t, b.Addr())
	big := paddedEvent(t, 0, 2<<20, false)
	next := tagMessages(2)[1]
	next.Topic = topics[0]
	produceCompressed(t, b.Addr(), big, next)

	sink := &faultySink{stored: map[string]int{}}
	stop := runIngester(t, b.Addr(), sink)
	defer stop()
	waitfor.True(t, 15*time.Second, "the event after the oversized one stored", func() bool { return sink.times("e001") == 1 })
	waitfor.True(t, 15*time.Second, "both offsets committed", func() bool { return committed(t, b.Addr()) == 2 })
	dl := allDeadLetters(t, b.Addr())
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if v := readAll(t, dl[0].Value); !bytes.Equal(v, big.Value) || recordHeader(dl[0], ingest.HeaderTruncated) != "" {
		t.Fatalf("dead letter of %d bytes, truncated %q; want the whole %d-byte event", len(v), recordHeader(dl[0], ingest.HeaderTruncated), len(big.Value))
	}
	if !strings.Contains(recordHeader(dl[0], ingest.HeaderReason), "over the 1048576-byte limit") {
		t.Errorf("reason %q", recordHeader(dl[0], ingest.HeaderReason))
	}
	if st := stop(); st.DeadLettered != 1 || st.Truncated != 0 || st.Lost != 0 || st.Stored != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestIncompressibleOversizedEvent: when even compressed the copy is over the
// dead-letter topic's limit (here the event topic takes 8 MiB, the
// dead-letter topic Kafka's default 1 MiB), the dead letter is a stub that
// says why and where the record is, with its key and a prefix of its value;
// the partition goes on.
func TestIncompressibleOversizedEvent(t *testing.T) {
	b := dlBroker(t)
	createTopics(t, b.Addr(), kafka.ConfigEntry{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(8 << 20)})
	big := paddedEvent(t, 0, 3<<20/2, true)
	big.Headers = []kafka.Header{{Key: "trace", Value: []byte("abc")}}
	small := kafka.Message{Topic: topics[0], Key: []byte("acme/whatsapp/1"), Value: []byte(`{"event_id":"small"}`)}
	next := tagMessages(2)[1]
	next.Topic = topics[0]
	produceCompressed(t, b.Addr(), big, small, next)

	sink := &faultySink{stored: map[string]int{}}
	stop := runIngester(t, b.Addr(), sink)
	defer stop()
	waitfor.True(t, 15*time.Second, "the event after the oversized one stored", func() bool { return sink.times("e001") == 1 })
	waitfor.True(t, 15*time.Second, "every offset committed", func() bool { return committed(t, b.Addr()) == 3 })
	dl := allDeadLetters(t, b.Addr())
	if len(dl) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dl))
	}
	// The small letter of the same batch is written whole.
	if v := readAll(t, dl[1].Value); !bytes.Equal(v, small.Value) || recordHeader(dl[1], ingest.HeaderTruncated) != "" {
		t.Errorf("second dead letter %q, truncated %q", v, recordHeader(dl[1], ingest.HeaderTruncated))
	}
	r := dl[0]
	v := readAll(t, r.Value)
	if len(v) != 64<<10 || !bytes.HasPrefix(big.Value, v) {
		t.Errorf("stub value of %d bytes, want the first 65536 bytes of the event", len(v))
	}
	if k := readAll(t, r.Key); !bytes.Equal(k, big.Key) {
		t.Errorf("stub key %q, want %q", k, big.Key)
	}
	want := map[string]string{
		ingest.HeaderSourceTopic:     topics[0],
		ingest.HeaderSourcePartition: "0",
		ingest.HeaderSourceOffset:    "0",
		ingest.HeaderValueBytes:      strconv.Itoa(len(big.Value)),
	}
	for k, w := range want {
		if got := recordHeader(r, k); got != w {
			t.Errorf("header %s = %q, want %q", k, got, w)
		}
	}
	if !strings.Contains(recordHeader(r, ingest.HeaderReason), "over the 1048576-byte limit") {
		t.Errorf("reason %q", recordHeader(r, ingest.HeaderReason))
	}
	if tr := recordHeader(r, ingest.HeaderTruncated); !strings.HasPrefix(tr, "the dead-letter topic refused the whole record: [10] Message Size Too Large") {
		t.Errorf("truncated %q, want the broker's refusal", tr)
	}
	if recordHeader(r, "trace") != "" {
		t.Error("the stub kept the record's own headers")
	}
	if st := stop(); st.DeadLettered != 2 || st.Truncated != 1 || st.Lost != 0 || st.Stored != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDeadLetterRefusedForGood: each refusal that writing again cannot cure
// turns the dead letter into its stub (the broker refuses the first write
// only), or, when the stub is refused too (every write), loses the letter
// with a log line; the partition goes on either way. A refusal by the
// cluster (authorization, leadership, a missing topic) is retried instead,
// and the letter is written whole once the cluster takes it.
func TestDeadLetterRefusedForGood(t *testing.T) {
	for _, tt := range []struct {
		err                   *kerr.Error
		count                 int
		truncated, lost, want int // stats, and dead letters in the topic
		whole                 bool
	}{
		{err: kerr.MessageTooLarge, count: 1, truncated: 1, want: 1},
		{err: kerr.RecordListTooLarge, count: 1, truncated: 1, want: 1},
		{err: kerr.InvalidRecord, count: 1, truncated: 1, want: 1},
		{err: kerr.InvalidTimestamp, count: 1, truncated: 1, want: 1},
		{err: kerr.UnsupportedCompressionType, count: 1, truncated: 1, want: 1},
		{err: kerr.MessageTooLarge, count: -1, lost: 1},
		{err: kerr.InvalidRecord, count: -1, lost: 1},
		{err: kerr.TopicAuthorizationFailed, count: 3, want: 1, whole: true},
		{err: kerr.NotEnoughReplicas, count: 3, want: 1, whole: true},
	} {
		t.Run(fmt.Sprintf("%s×%d", tt.err.Message, tt.count), func(t *testing.T) {
			b := dlBroker(t)
			createTopics(t, b.Addr())
			b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: dlqTopic, Err: tt.err, Count: tt.count})
			broken := kafka.Message{Topic: topics[0], Key: []byte("acme/whatsapp/1"), Value: []byte(`{"event_id":"broken"}`)}
			next := tagMessages(2)[1]
			next.Topic = topics[0]
			produceMessages(t, b.Addr(), []kafka.Message{broken, next})

			sink := &faultySink{stored: map[string]int{}}
			stop := runIngester(t, b.Addr(), sink)
			defer stop()
			waitfor.True(t, 15*time.Second, "the event after the broken one stored", func() bool { return sink.times("e001") == 1 })
			waitfor.True(t, 15*time.Second, "both offsets committed", func() bool { return committed(t, b.Addr()) == 2 })
			st := stop()
			if st.DeadLettered != 1 || st.Truncated != int64(tt.truncated) || st.Lost != int64(tt.lost) {
				t.Fatalf("stats %+v", st)
			}
			dl := allDeadLetters(t, b.Addr())
			if len(dl) != tt.want {
				t.Fatalf("%d dead letters, want %d", len(dl), tt.want)
			}
			if tt.want == 0 {
				return
			}
			r := dl[0]
			if v := readAll(t, r.Value); !bytes.Equal(v, broken.Value) {
				t.Errorf("value %q", v)
			}
			truncated := recordHeader(r, ingest.HeaderTruncated)
			if tt.whole != (truncated == "") || !tt.whole && !strings.Contains(truncated, tt.err.Message) {
				t.Errorf("truncated header %q", truncated)
			}
			if recordHeader(r, ingest.HeaderReason) == "" || recordHeader(r, ingest.HeaderSourceOffset) != "0" {
				t.Errorf("reason %q, source offset %q", recordHeader(r, ingest.HeaderReason), recordHeader(r, ingest.HeaderSourceOffset))
			}
		})
	}
}

// TestEmptyValueDeadLetteredEmpty: a record with an empty value is
// dead-lettered with an empty value, not a null one (a tombstone, which on a
// compacted dead-letter topic deletes the key).
func TestEmptyValueDeadLetteredEmpty(t *testing.T) {
	b := dlBroker(t)
	createTopics(t, b.Addr())
	next := tagMessages(2)[1]
	next.Topic = topics[0]
	produceMessages(t, b.Addr(), []kafka.Message{{Topic: topics[0], Key: []byte("acme/whatsapp/1"), Value: []byte{}}, next})
	sink := &faultySink{stored: map[string]int{}}
	stop := runIngester(t, b.Addr(), sink)
	defer stop()
	waitfor.True(t, 15*time.Second, "both offsets committed", func() bool { return committed(t, b.Addr()) == 2 })
	dl := allDeadLetters(t, b.Addr())
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if dl[0].Value == nil {
		t.Fatal("the empty value was dead-lettered as null, a tombstone")
	}
	if v := readAll(t, dl[0].Value); len(v) != 0 {
		t.Fatalf("value %q, want empty", v)
	}
	if got := recordHeader(dl[0], ingest.HeaderReason); got != "not a JSON event object" {
		t.Errorf("reason %q", got)
	}
}

// TestShutdownWhileDeadLettersFail: while the dead-letter topic refuses
// writes for a reason the cluster may cure, a stopping ingester returns
// within its shutdown grace (and the answer to the write it was waiting
// for), without committing the batch. kafka-go's writer retried each write
// by itself, ten times with pauses nothing could cut short, and Close
// waited for them: 7 s for a 300 ms grace.
func TestShutdownWhileDeadLettersFail(t *testing.T) {
	b := dlBroker(t)
	createTopics(t, b.Addr())
	b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: dlqTopic, Err: kerr.NotEnoughReplicas, Count: -1})
	produceMessages(t, b.Addr(), []kafka.Message{{Topic: topics[0], Key: []byte("acme/whatsapp/1"), Value: []byte(`{"event_id":"broken"}`)}})
	retries := &retryCounter{}
	const grace = 300 * time.Millisecond
	stop := runIngesterWith(t, b.Addr(), &faultySink{stored: map[string]int{}}, func(c *ingest.Config) {
		c.Observer, c.ShutdownGrace = retries, grace
	})
	defer stop()
	waitfor.True(t, 20*time.Second, "the dead letter's write retried", func() bool { return retries.n.Load() > 0 })
	start := time.Now()
	stop()
	if took := time.Since(start); took > grace+2*time.Second {
		t.Errorf("stopped after %s, with a shutdown grace of %s", took, grace)
	}
	if n := committed(t, b.Addr()); n != 0 {
		t.Errorf("%d offsets committed, want none", n)
	}
}
