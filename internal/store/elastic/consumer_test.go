package elastic

import (
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/waitfor"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
)

// TestConsumerOverFaultyBulk runs the ingester (embedded broker, consumer
// group, assembler) on this store while the cluster answers bulk items with
// a mix of 201, 429, 400 and 503 (and 409 where a retried batch creates events
// an earlier attempt indexed), and goes down for a while: every event
// ends up either indexed or in the dead-letter topic, none twice, none lost,
// and the group's committed offsets never pass an event that is neither.
func TestConsumerOverFaultyBulk(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and a consumer group")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	def := pipeline.MustDefault()
	b := startBroker(ctx, t, def)

	f := esfake.New(t)
	s := fakeStore(t, f)
	var mu sync.Mutex
	down := false
	rejected := map[string]bool{} // event ids the cluster refuses for good
	f.BulkHook = func(action, index, id string, attempt int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return 503, "unavailable_shards_exception"
		}
		if !strings.Contains(index, "-events-") {
			if attempt == 1 && len(id)%5 == 0 {
				return 503, "unavailable_shards_exception"
			}
			return 0, ""
		}
		n := len(id) + int(id[len(id)-1])
		switch {
		case n%11 == 0:
			rejected[strings.TrimPrefix(id, "acme/")] = true
			return 400, "document_parsing_exception"
		case n%7 == 0 && attempt <= 2:
			return 429, "es_rejected_execution_exception"
		case n%5 == 0 && attempt == 1:
			return 503, "unavailable_shards_exception"
		}
		return 0, ""
	}

	w := producer(t, b)
	produce := func(from, to int) {
		t.Helper()
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			e := event.Event{
				EventID: fmt.Sprintf("e%04d", i), Type: event.TypeMessage, Tenant: "acme", Channel: "whatsapp",
				OccurredAt: time.Date(2025, 10, 7, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute),
				Contact:    event.Contact{ID: fmt.Sprintf("55119%08d", i%13)},
				Author:     &event.Author{Role: event.RoleCustomer}, Text: "oi", ContentType: "text",
			}
			v, _ := json.Marshal(e)
			msgs = append(msgs, kafka.Message{Topic: def.Topics.Events[i%3], Key: []byte(e.RecommendedKey()), Value: v})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}

	obs := &ingestCounter{}
	defer runIngester(ctx, t, ingest.Config{
		Brokers: []string{b.Addr()}, Topics: def.Topics.Events, Group: def.ConsumerGroup, DeadLetter: def.Topics.DeadLetter,
		BatchSize: 25, BatchWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, ShutdownGrace: 200 * time.Millisecond,
		Observer: obs,
	}, session.NewAssembler(def, s))()

	const first, total = 150, 300
	produce(0, first)
	waitfor.True(t, time.Minute, "the first events committed", func() bool { return committedOffsets(t, ctx, b.Addr(), def) == first })

	// The cluster goes down: the ingester retries the batch it holds, and
	// commits nothing while it does.
	mu.Lock()
	down = true
	mu.Unlock()
	batches := obs.batches.Load()
	retries := obs.retries.Load()
	produce(first, total)
	waitfor.True(t, time.Minute, "two retries of a batch while the cluster is down", func() bool { return obs.retries.Load() >= retries+2 })
	if got := obs.batches.Load(); got != batches {
		t.Fatalf("%d batches committed while the cluster was down", got-batches)
	}
	if got := committedOffsets(t, ctx, b.Addr(), def); got != first {
		t.Fatalf("committed %d offsets while the cluster was down, want %d", got, first)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	waitfor.True(t, time.Minute, "every event committed", func() bool { return committedOffsets(t, ctx, b.Addr(), def) == total })

	indexed := map[string]bool{}
	for key := range f.Docs("test-events-*") {
		id := key[strings.LastIndex(key, "/")+1:]
		if indexed[id] {
			t.Errorf("event %s indexed twice", id)
		}
		indexed[id] = true
	}
	dead := deadLetters(t, ctx, b.Addr(), def.Topics.DeadLetter, len(rejected))
	for i := range total {
		id := fmt.Sprintf("e%04d", i)
		switch {
		case indexed[id] && dead[id] > 0:
			t.Errorf("event %s both indexed and dead-lettered", id)
		case !indexed[id] && dead[id] == 0:
			t.Errorf("event %s lost: neither indexed nor dead-lettered", id)
		case dead[id] > 1:
			t.Errorf("event %s dead-lettered %d times", id, dead[id])
		case dead[id] == 1 && !rejected[id]:
			t.Errorf("event %s dead-lettered but the cluster did not refuse it", id)
		}
	}
	t.Logf("%d indexed, %d dead-lettered, %d bulk requests", len(indexed), len(rejected), f.Bulks())
	if len(rejected) == 0 || len(indexed) == 0 {
		t.Fatalf("the mix did not exercise both outcomes: %d rejected, %d indexed", len(rejected), len(indexed))
	}
}

// ingestCounter counts the batches the ingester committed and the failed
// writes it retried.
type ingestCounter struct{ batches, retries atomic.Int64 }

func (c *ingestCounter) ObserveBatch(ingest.BatchStats) { c.batches.Add(1) }
func (c *ingestCounter) ObserveRetry(string)            { c.retries.Add(1) }

// committedOffsets sums the group's committed offsets over the event topics.
func committedOffsets(t *testing.T, ctx context.Context, addr string, def *pipeline.Definition) int64 {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
	req := &kafka.OffsetFetchRequest{GroupID: def.ConsumerGroup, Topics: map[string][]int{}}
	for _, topic := range def.Topics.Events {
		req.Topics[topic] = []int{0, 1, 2}
	}
	resp, err := c.OffsetFetch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, parts := range resp.Topics {
		for _, p := range parts {
			sum += max(p.CommittedOffset, 0)
		}
	}
	return sum
}

// deadLetters counts the dead letters per event id, reading want of them.
func deadLetters(t *testing.T, ctx context.Context, addr, topic string, want int) map[string]int {
	t.Helper()
	out := map[string]int{}
	if want == 0 {
		return out
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: "test-dlq", GroupTopics: []string{topic},
		StartOffset: kafka.FirstOffset, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	for n := 0; n < want; n++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read dead letters: %v", err)
		}
		e, err := event.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		out[e.EventID]++
	}
	// Nothing more than the refused events.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if m, err := r.FetchMessage(short); err == nil {
		t.Errorf("an extra dead letter: %s", m.Value)
	}
	return out
}

// TestConsumerDeadLettersKeysThatDoNotDecode: after a restart, the ingester
// reads back keys whose stored documents another program changed into
// something Elasticsearch accepts and the store cannot read — a key
// document's sessions, a session's event_refs, an event document. The new
// events of those keys go to the dead-letter topic with a reason that names
// the document (by a hash) without its content, the other keys' events are
// stored, and every offset is committed: no partition is blocked.
func TestConsumerDeadLettersKeysThatDoNotDecode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and a consumer group")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	def := pipeline.MustDefault()
	b := startBroker(ctx, t, def)
	f := esfake.New(t)

	w := producer(t, b)
	const secret = "segredo bancário"
	contacts := []string{"5511900000001", "5511900000002", "5511900000003", "5511900000004"}
	n := 0
	produce := func(each int) {
		t.Helper()
		var msgs []kafka.Message
		for range each {
			for _, c := range contacts {
				e := event.Event{
					EventID: fmt.Sprintf("e%04d", n), Type: event.TypeMessage, Tenant: "acme", Channel: "whatsapp",
					OccurredAt: time.Date(2025, 10, 7, 9, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute),
					Contact:    event.Contact{ID: c, Name: "Cláudia"},
					Author:     &event.Author{Role: event.RoleCustomer}, Text: secret, ContentType: "text",
				}
				n++
				v, _ := json.Marshal(e)
				msgs = append(msgs, kafka.Message{Topic: def.Topics.Events[0], Key: []byte(e.RecommendedKey()), Value: v})
			}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	run := func() func() {
		return runIngester(ctx, t, ingest.Config{
			Brokers: []string{b.Addr()}, Topics: def.Topics.Events, Group: def.ConsumerGroup, DeadLetter: def.Topics.DeadLetter,
			BatchSize: 100, BatchWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, ShutdownGrace: 200 * time.Millisecond,
		}, session.NewAssembler(def, fakeStore(t, f)))
	}

	stop := run()
	produce(3)
	waitfor.True(t, time.Minute, "the first events committed", func() bool { return committedOffsets(t, ctx, b.Addr(), def) == 12 })
	stop()

	// Another program rewrites three documents, each of another contact,
	// in shapes Elasticsearch takes: any JSON under "enabled": false, one
	// value for a list.
	for i, c := range unreadableDocs {
		rewriteDoc(t, f, docOf(t, f, c.pattern, contacts[i]), c.change)
	}

	stop = run()
	defer stop()
	produce(2)
	waitfor.True(t, time.Minute, "every event committed", func() bool { return committedOffsets(t, ctx, b.Addr(), def) == 20 })

	// The dead letters: the new events of the first three contacts, each
	// with the reason naming the kind of document.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, GroupID: "test-dlq", GroupTopics: []string{def.Topics.DeadLetter},
		StartOffset: kafka.FirstOffset, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	want := map[string]string{contacts[0]: unreadableDocs[0].kind, contacts[1]: unreadableDocs[1].kind, contacts[2]: unreadableDocs[2].kind}
	got := map[string]int{}
	for range 6 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read dead letters: %v", err)
		}
		e, err := event.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		var reason string
		for _, h := range m.Headers {
			if h.Key == ingest.HeaderReason {
				reason = string(h.Value)
			}
		}
		got[e.Contact.ID]++
		if kind := want[e.Contact.ID]; kind == "" || !strings.Contains(reason, "the stored "+kind+" test-") || !strings.Contains(reason, "does not decode") {
			t.Errorf("dead letter of %s: reason %q, want its %q", e.EventID, reason, want[e.Contact.ID])
		}
		for _, private := range append(slices.Clone(contacts), secret, "Cláudia", "lost") {
			if strings.Contains(reason, private) {
				t.Errorf("reason %q quotes %q", reason, private)
			}
		}
	}
	for c := range want {
		if got[c] != 2 {
			t.Errorf("%d dead letters of %s, want its 2 new events", got[c], c)
		}
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if m, err := r.FetchMessage(short); err == nil {
		t.Errorf("an extra dead letter: %s", m.Value)
	}
	// The fourth contact's events are all stored, in one session.
	stored := 0
	for _, doc := range f.Docs("test-events-*") {
		if strings.Contains(fmt.Sprint(doc), contacts[3]) {
			stored++
		}
	}
	if stored != 5 {
		t.Errorf("%d events of the readable contact stored, want 5", stored)
	}
}

// unreadableDocs are changes of a stored document that Elasticsearch (and
// esfake, with its mapping checks) accepts and the store cannot read: the
// kind of document and the pattern of its indices.
var unreadableDocs = []struct {
	kind, pattern string
	change        func(map[string]any)
}{
	{"key document", "test-keys-*", func(d map[string]any) { d["sessions"] = "lost" }},                               // enabled: false
	{"session document", "test-sessions-*", func(d map[string]any) { d["event_refs"] = d["event_refs"].([]any)[0] }}, // one value for a list
	{"event document", "test-events-*", func(d map[string]any) { d["attachments"] = map[string]any{"url": "x"} }},    // enabled: false
}

// docOf is the "<index> <id>" of the document in indices matching pattern
// whose source mentions contact.
func docOf(t *testing.T, f *esfake.Server, pattern, contact string) string {
	t.Helper()
	for name, doc := range f.Docs(pattern) {
		if strings.Contains(fmt.Sprint(doc), contact) {
			return name
		}
	}
	t.Fatalf("no document of %s in %s", contact, pattern)
	return ""
}

// rewriteDoc rewrites the document name ("<index> <id>") changed by change,
// as another program would: a plain index request, no versioning.
func rewriteDoc(t *testing.T, f *esfake.Server, name string, change func(map[string]any)) {
	t.Helper()
	index, id, _ := strings.Cut(name, " ")
	doc := f.Docs(index)[name]
	change(doc)
	action, _ := json.Marshal(map[string]any{"index": map[string]any{"_index": index, "_id": id}})
	source, _ := json.Marshal(doc)
	res, err := http.Post(f.URL()+"/_bulk", "application/x-ndjson", strings.NewReader(string(action)+"\n"+string(source)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || strings.Contains(string(body), `"errors":true`) {
		t.Fatalf("rewrite %s: %d %s", name, res.StatusCode, body)
	}
}

// startBroker starts an embedded broker of def's topics, three partitions
// each, closed when the test ends.
func startBroker(ctx context.Context, t *testing.T, def *pipeline.Definition) *broker.Broker {
	t.Helper()
	b, err := broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0", Topics: def.Topics.All(), Partitions: 3}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// producer writes to b's topics with the Java client's partitioner, as the
// platform does; closed when the test ends.
func producer(t *testing.T, b *broker.Broker) *kafka.Writer {
	tr := &kafka.Transport{}
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, Transport: tr}
	t.Cleanup(func() {
		w.Close()
		tr.CloseIdleConnections()
	})
	return w
}

// runIngester runs an ingester of cfg storing through asm until the
// function it returns is called, which waits for it to stop.
func runIngester(ctx context.Context, t *testing.T, cfg ingest.Config, asm *session.Assembler) (stop func()) {
	t.Helper()
	return runLoggedIngester(ctx, t, cfg, asm, zap.NewNop())
}

// runLoggedIngester is runIngester logging to log.
func runLoggedIngester(ctx context.Context, t *testing.T, cfg ingest.Config, asm *session.Assembler, log *zap.Logger) (stop func()) {
	t.Helper()
	in, err := ingest.New(cfg, asm, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(runCtx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
