package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/versions"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// timeout bounds every wait of these tests: a replay that does not get
// where it should fails the test instead of hanging it.
const timeout = 20 * time.Second

var (
	topics = []string{"chat.events.bot", "chat.events.agent"}
	// t0 is when the produced events occurred and were produced.
	t0 = time.Date(2025, 10, 7, 9, 0, 0, 0, time.UTC)
)

const (
	partitionsPerTopic = 2
	liveGroup          = "live"
	target             = "v2"
)

// fixture is an embedded broker with two topics of two partitions, a
// registry in which the target is being built, and a replay's collaborators.
type fixture struct {
	t       testing.TB
	addr    string
	cluster *kfake.Cluster
	reg     *versions.File
	clock   *clock
	notify  *notifier
	target  *fakeTarget
	status  *statusLog
	seq     int
	// inFlight is the replay's Config.InFlight.
	inFlight int
	// produced are the messages produced to each partition, in offset
	// order (the broker is new: the first is at offset 0).
	produced map[string][]msg

	mu sync.Mutex
	// unsaved lists progress saved before what it covers was stored.
	unsaved []string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0", Topics: topics, Partitions: partitionsPerTopic},
		zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	reg := versions.OpenFile(t.TempDir())
	if _, err := reg.Register(ctx, target, t0); err != nil {
		t.Fatal(err)
	}
	n := newNotifier()
	f := &fixture{t: t, addr: b.Addr(), cluster: b.Cluster(), reg: reg, clock: &clock{now: t0.Add(time.Hour)}, notify: n,
		target: &fakeTarget{notify: n, ingested: map[event.Ref]int{}}, status: &statusLog{notify: n},
		inFlight: 1, produced: map[string][]msg{}}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, u := range f.unsaved {
			t.Errorf("progress saved before what it covers was stored: %s", u)
		}
	})
	return f
}

// inFlights runs test with one batch stored at a time, and with two.
func inFlights(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("in flight %d", n), func(t *testing.T) {
			f := newFixture(t)
			f.inFlight = n
			test(t, f)
		})
	}
}

// config is a replay of every partition from the start into the target,
// with a fake clock for the grace.
func (f *fixture) config() Config {
	return Config{Brokers: []string{f.addr}, Topics: topics, LiveGroup: liveGroup, Version: target, Registry: f.reg,
		Grace: time.Minute, CaughtUp: 1, BatchSize: 4, InFlight: f.inFlight, Poll: 10 * time.Millisecond, ReportEvery: 10 * time.Millisecond,
		SwapRetry: time.Minute, Now: f.clock.Now}
}

// start runs a replay in the background; its result arrives on the channel.
// Every progress it saves is checked to cover only what was stored.
func (f *fixture) start(ctx context.Context, cfg Config, log *zap.Logger) <-chan error {
	if log == nil {
		log = zaptest.NewLogger(f.t, zaptest.Level(zapcore.WarnLevel))
	}
	f.target.mu.Lock()
	f.target.onSave = func(state []byte) { f.checkSaved(state, cfg.To) }
	f.target.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		err := Run(ctx, cfg, f.target, f.status.report, log)
		done <- err
		f.notify.signal()
	}()
	return done
}

// msg is one event to produce: to a partition of a topic, at a time.
type msg struct {
	topic     string
	partition int
	at        time.Time
	text      string
	// ref is the event's, once produced.
	ref event.Ref
}

// produce sends events e-1, e-2, … (numbered across calls) and returns
// their references, in order.
func (f *fixture) produce(msgs ...msg) []event.Ref {
	f.t.Helper()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(f.addr), Balancer: toPartition{}, BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll, Transport: transport}
	defer w.Close()
	var out []event.Ref
	for _, m := range msgs {
		f.seq++
		id := fmt.Sprintf("e-%d", f.seq)
		text := m.text
		if text == "" {
			text = "Olá " + id
		}
		e := event.Event{EventID: id, Type: event.TypeMessage, OccurredAt: m.at, Tenant: "acme", Channel: "whatsapp",
			Contact: event.Contact{ID: fmt.Sprintf("551198765%04d", f.seq%7)}, Author: &event.Author{Role: "customer"}, Text: text}
		value, err := json.Marshal(&e)
		if err != nil {
			f.t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		// One message a request keeps the offsets in the order given.
		err = w.WriteMessages(ctx, kafka.Message{Topic: m.topic, Partition: m.partition, Time: m.at, Value: value})
		cancel()
		if err != nil {
			f.t.Fatalf("produce: %v", err)
		}
		out = append(out, e.Ref())
		key := partitionKey{m.topic, m.partition}.String()
		m.ref = e.Ref()
		f.mu.Lock()
		f.produced[key] = append(f.produced[key], m)
		f.mu.Unlock()
	}
	return out
}

// checkSaved records a saved progress that covers a message not stored: a
// resume would skip it. A partition's messages are covered below its Next,
// and, once it passed to, up to its first message after to. (Events the
// target rejects count as stored: the replay passes them.)
func (f *fixture) checkSaved(state []byte, to time.Time) {
	var p progress
	if err := json.Unmarshal(state, &p); err != nil {
		f.mu.Lock()
		f.unsaved = append(f.unsaved, fmt.Sprintf("%q: %v", state, err))
		f.mu.Unlock()
		return
	}
	stored := f.target.snapshot()
	f.target.mu.Lock()
	rejected := f.target.reject
	f.target.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, msgs := range f.produced {
		covered := p.Next[key]
		if p.ToReached[key] {
			for i, m := range msgs {
				if m.at.After(to) {
					covered = max(covered, int64(i))
					break
				}
			}
		}
		for i := int64(0); i < covered && i < int64(len(msgs)); i++ {
			if ref := msgs[i].ref; stored[ref] == 0 && rejected[ref] == "" {
				f.unsaved = append(f.unsaved, fmt.Sprintf("%s at %d (%s): next %d, to reached %v", key, i, ref.EventID, p.Next[key], p.ToReached[key]))
			}
		}
	}
}

// everywhere is n messages on each partition, occurred and produced at at.
func everywhere(n int, at time.Time) []msg {
	var out []msg
	for range n {
		for _, topic := range topics {
			for p := range partitionsPerTopic {
				out = append(out, msg{topic: topic, partition: p, at: at})
			}
		}
	}
	return out
}

// toPartition sends each message to the partition it names.
type toPartition struct{}

func (toPartition) Balance(m kafka.Message, _ ...int) int { return m.Partition }

// commitLive commits offset as the live group's position on every
// partition, as the live ingester does after storing a batch.
func (f *fixture) commitLive(offset int64) {
	f.t.Helper()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(f.addr), Transport: transport}
	req := &kafka.OffsetCommitRequest{GroupID: liveGroup, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{}}
	for _, topic := range topics {
		for p := range partitionsPerTopic {
			req.Topics[topic] = append(req.Topics[topic], kafka.OffsetCommit{Partition: p, Offset: offset})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := client.OffsetCommit(ctx, req)
	if err != nil {
		f.t.Fatalf("commit live offsets: %v", err)
	}
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				f.t.Fatalf("commit live offset of %s/%d: %v", topic, p.Partition, p.Error)
			}
		}
	}
}

// waitFor waits, at most timeout, until cond holds; cond is checked again
// whenever the replay reports, stores or ends.
func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := f.notify.wait()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			f.t.Fatalf("timed out waiting for %s; last status %+v", what, f.status.last())
		}
	}
}

// hookWait is for a target's hook (it runs on the replay's goroutines):
// it waits, at most timeout, until ch is closed, and fails the test and
// returns an error when it is not, or ctx's error when ctx ends first.
func (f *fixture) hookWait(ctx context.Context, ch <-chan struct{}, what string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		f.t.Errorf("timed out waiting for %s in a store", what)
		return fmt.Errorf("timed out waiting for %s", what)
	}
}

// waitPhase waits for a report in phase p that satisfies cond (when set).
func (f *fixture) waitPhase(p Phase, cond func(Status) bool) Status {
	f.t.Helper()
	var got Status
	f.waitFor("phase "+p.String(), func() bool {
		s, ok := f.status.lastOk()
		got = s
		return ok && s.Phase == p && (cond == nil || cond(s))
	})
	return got
}

// result waits for the replay's end.
func (f *fixture) result(done <-chan error) error {
	f.t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		f.t.Fatalf("the replay did not end; last status %+v", f.status.last())
		return nil
	}
}

func running(done <-chan error) bool {
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// saved is the progress the target holds.
func (f *fixture) saved() progress {
	f.t.Helper()
	data, _ := f.target.LoadReplayState(context.Background())
	var p progress
	if err := json.Unmarshal(data, &p); err != nil {
		f.t.Fatalf("saved progress %q: %v", data, err)
	}
	return p
}

// checkIngested: the target holds exactly want, each ingested once.
func (f *fixture) checkIngested(want ...[]event.Ref) {
	f.t.Helper()
	got := f.target.snapshot()
	n := 0
	for _, refs := range want {
		for _, ref := range refs {
			n++
			if got[ref] != 1 {
				f.t.Errorf("event %s ingested %d times, want once", ref.EventID, got[ref])
			}
		}
	}
	if len(got) != n {
		f.t.Errorf("the target holds %d events, want %d: %v", len(got), n, got)
	}
}

// TestFollowsAfterTheEnd: once it has read every partition to its end the
// replay reports that it is caught up and goes on replaying new messages
// as they come; interrupted, it saves where it was.
func TestFollowsAfterTheEnd(t *testing.T) { inFlights(t, testFollowsAfterTheEnd) }

func testFollowsAfterTheEnd(t *testing.T, f *fixture) {
	history := f.produce(everywhere(5, t0)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := f.start(ctx, f.config(), nil)
	st := f.waitPhase(Following, func(s Status) bool { return s.Events == int64(len(history)) })
	for _, p := range st.Partitions {
		if p.Lag != 0 || p.Done || p.End != 5 {
			t.Errorf("partition when caught up: %+v", p)
		}
	}

	more := f.produce(everywhere(2, t0)...)
	f.waitFor("the new messages replayed", func() bool { return f.target.count() == len(history)+len(more) })
	if !running(done) {
		t.Fatalf("the replay ended while following: %v", f.result(done))
	}
	if s := f.status.last(); s.Phase != Following && s.Phase != CatchingUp {
		t.Fatalf("phase while following: %v", s.Phase)
	}

	cancel()
	if err := f.result(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted replay: %v", err)
	}
	f.checkIngested(history, more)
	p := f.saved()
	if p.Events != int64(len(history)+len(more)) || p.Stop != nil {
		t.Fatalf("saved progress %+v", p)
	}
	for k, next := range p.Next {
		if next != 7 {
			t.Errorf("saved next offset of %s: %d, want 7", k, next)
		}
	}
}

// TestEndsAfterTheTargetBecameCurrent: when the registry shows the target
// current, the replay stops reading, waits for the grace, reads the live
// group's offsets and replays up to them (not past them: the live ingester
// writes the rest), then ends.
func TestEndsAfterTheTargetBecameCurrent(t *testing.T) {
	inFlights(t, testEndsAfterTheTargetBecameCurrent)
}

func testEndsAfterTheTargetBecameCurrent(t *testing.T, f *fixture) {
	history := f.produce(everywhere(5, t0)...)
	done := f.start(context.Background(), f.config(), nil)
	f.waitPhase(Following, func(s Status) bool { return s.Events == int64(len(history)) })

	if _, err := f.reg.Swap(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	f.waitPhase(Swapped, nil)
	// After the swap, two messages on each partition: the live ingester
	// wrote the first to the old version (it had not seen the swap yet) and
	// committed it; the second it writes to the target itself.
	beforeSwitch := f.produce(everywhere(2, t0)...)[:len(topics)*partitionsPerTopic]
	f.commitLive(6)
	// The replay sees them and reads none during the grace.
	st := f.waitPhase(Swapped, func(s Status) bool { return s.Partitions[0].End == 7 })
	if st.Events != int64(len(history)) || st.GraceLeft != time.Minute {
		t.Fatalf("during the grace: %+v", st)
	}
	if !running(done) {
		t.Fatalf("the replay ended before the grace passed: %v", f.result(done))
	}

	f.clock.Add(time.Minute)
	if err := f.result(done); err != nil {
		t.Fatal(err)
	}
	f.checkIngested(history, beforeSwitch)
	if st := f.status.last(); st.Phase != Done || st.Events != int64(len(history)+len(beforeSwitch)) {
		t.Fatalf("final status %+v", st)
	}
	p := f.saved()
	for _, topic := range topics {
		for part := range partitionsPerTopic {
			key := fmt.Sprintf("%s/%d", topic, part)
			if p.Stop[key] != 6 || p.Next[key] != 6 {
				t.Errorf("%s: saved stop %d, next %d, want 6 and 6", key, p.Stop[key], p.Next[key])
			}
		}
	}
}

// TestResumeAfterInterruption: an interrupted replay resumes where its
// saved progress says, storing nothing twice, even when its target became
// current while it was not running (it then waits for the grace, replays up
// to the live offsets and ends); run again once done, it ends at once.
func TestResumeAfterInterruption(t *testing.T) {
	f := newFixture(t)
	all := f.produce(everywhere(6, t0)...)
	ctx, cancel := context.WithCancel(context.Background())
	f.target.afterIngest = func() { cancel() } // interrupted after its first batch
	cfg := f.config()
	if err := f.result(f.start(ctx, cfg, nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted replay: %v", err)
	}
	f.target.afterIngest = nil
	first := f.saved()
	if first.Events == 0 || first.Events >= int64(len(all)) || int64(f.target.count()) != first.Events {
		t.Fatalf("after the interruption: saved %+v, target holds %d events", first, f.target.count())
	}

	// Meanwhile the live ingester consumed everything and v2 became current.
	f.commitLive(6)
	if _, err := f.reg.Swap(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	done := f.start(context.Background(), cfg, nil)
	st := f.waitPhase(Swapped, nil)
	if st.Events != first.Events {
		t.Fatalf("the resumed replay stored events before the grace passed: %+v", st)
	}
	f.clock.Add(time.Minute)
	if err := f.result(done); err != nil {
		t.Fatal(err)
	}
	f.checkIngested(all)

	// Once more: done already, it ends without waiting.
	if err := f.result(f.start(context.Background(), cfg, nil)); err != nil {
		t.Fatal(err)
	}
	f.checkIngested(all)
}

// TestTo: with To each partition ends at its first message after it (a
// partition without one at the end it had once To had passed), and the
// replay ends when every partition did, without following and without a
// swap.
func TestTo(t *testing.T) { inFlights(t, testTo) }

func testTo(t *testing.T, f *fixture) {
	before, after := t0, t0.Add(2*time.Hour)
	bot, agent := topics[0], topics[1] // agent/0 stays empty
	want := f.produce(
		msg{topic: bot, partition: 0, at: before}, msg{topic: bot, partition: 0, at: before},
		msg{topic: bot, partition: 1, at: before},
		msg{topic: agent, partition: 1, at: before},
	)
	f.produce(
		msg{topic: bot, partition: 0, at: after}, msg{topic: bot, partition: 0, at: before},
		msg{topic: agent, partition: 1, at: after},
	)
	cfg := f.toConfig()
	if err := f.result(f.start(context.Background(), cfg, nil)); err != nil {
		t.Fatal(err)
	}
	f.checkIngested(want)
	p := f.saved()
	if !p.ToReached["chat.events.bot/0"] || !p.ToReached["chat.events.agent/1"] || p.ToReached["chat.events.bot/1"] ||
		p.ToEnd["chat.events.bot/1"] != 1 || p.ToEnd["chat.events.agent/0"] != 0 || p.Stop != nil {
		t.Fatalf("saved progress %+v", p)
	}
	if st, _ := f.reg.State(context.Background()); st.Current != versions.Initial {
		t.Fatalf("a replay with To swapped: %+v", st)
	}
}

// TestFetchErrorDoesNotStopAPartition: a fetch answered with an error
// kafka-go recovers from by itself (it fetches again) does not end the
// reading of its partition: the replay reads every partition to its end.
// The partition's reader returned at the first error, without a word, and
// the replay waited for that partition for ever.
func TestFetchErrorDoesNotStopAPartition(t *testing.T) {
	f := newFixture(t)
	fault := f.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: topics[0], Partitions: []int32{0}, Err: kerr.KafkaStorageError})
	want := f.produce(everywhere(2, t0)...)
	cfg := f.toConfig()
	if err := f.result(f.start(context.Background(), cfg, nil)); err != nil {
		t.Fatal(err)
	}
	f.checkIngested(want)
	if fault.Hits() != 1 {
		t.Errorf("%d fetches failed, want 1", fault.Hits())
	}
}

// TestRefusedPartitionEndsTheReplay: a partition the cluster refuses to
// let the replay read (an error no fetch again cures) ends the replay with
// that error, naming the partition, where its reader stopped without a
// word and the replay waited for it for ever.
func TestRefusedPartitionEndsTheReplay(t *testing.T) {
	f := newFixture(t)
	f.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: topics[0], Partitions: []int32{0}, Err: kerr.TopicAuthorizationFailed, Count: -1})
	f.produce(everywhere(2, t0)...)
	cfg := f.toConfig()
	err := f.result(f.start(context.Background(), cfg, nil))
	if !errors.Is(err, kafka.TopicAuthorizationFailed) || !strings.Contains(err.Error(), topics[0]+"/0") {
		t.Fatalf("replay: %v, want TOPIC_AUTHORIZATION_FAILED on %s/0", err, topics[0])
	}
}

// TestBacklogFillsBatches: behind the partitions' ends a batch fills up,
// also when a tick came while the batch before was stored (each store here
// outlasts the poll): before, such a tick ended the next batch after a few
// events, and each of those paid a whole store's round trips.
func TestBacklogFillsBatches(t *testing.T) {
	f := newFixture(t)
	msgs := make([]msg, 400)
	for i := range msgs {
		msgs[i] = msg{topic: topics[0], partition: 0, at: t0}
	}
	want := f.produce(msgs...)
	cfg := f.toConfig()
	cfg.BatchSize, cfg.Poll = 20, 20*time.Millisecond
	f.target.afterIngest = func() { time.Sleep(50 * time.Millisecond) }
	if err := f.result(f.start(context.Background(), cfg, nil)); err != nil {
		t.Fatal(err)
	}
	f.checkIngested(want)
	f.target.mu.Lock()
	defer f.target.mu.Unlock()
	// Full batches, and a partial one or two where the reader was behind.
	if most := len(want)/cfg.BatchSize + 2; len(f.target.sizes) > most {
		t.Errorf("%d events in %d batches (at most %d wanted): %v", len(want), len(f.target.sizes), most, f.target.sizes)
	}
}

// TestRejectedEvents: an event the target refuses for good is counted and
// logged by reference (never by content), and the replay goes on.
func TestRejectedEvents(t *testing.T) { inFlights(t, testRejectedEvents) }

func testRejectedEvents(t *testing.T, f *fixture) {
	msgs := everywhere(2, t0)
	msgs[3].text = "meu telefone é 5511912345678"
	refs := f.produce(msgs...)
	bad := refs[3]
	f.target.reject = map[event.Ref]string{bad: "mapper_parsing_exception: failed to parse field [text]"}
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := f.config()
	cfg.To = t0.Add(time.Minute)
	cfg.Refs = idref.New([]byte("the replay's reference key"))
	if err := f.result(f.start(context.Background(), cfg, zap.New(core))); err != nil {
		t.Fatal(err)
	}
	stored := append(append([]event.Ref{}, refs[:3]...), refs[4:]...)
	f.checkIngested(stored)
	if st := f.status.last(); st.Rejected != 1 || st.Events != int64(len(stored)) || st.Phase != Done {
		t.Fatalf("final status %+v", st)
	}
	if p := f.saved(); p.Rejected != 1 {
		t.Fatalf("saved progress %+v", p)
	}
	rejected := logs.FilterMessageSnippet("rejected").All()
	if len(rejected) != 1 {
		t.Fatalf("logged rejections: %v", rejected)
	}
	fields := rejected[0].ContextMap()
	// Named as the store names its document, with the configured key.
	if fields["tenant"] != "acme" || fields["event"] != cfg.Refs.Of("acme/"+bad.EventID) || !strings.Contains(fmt.Sprint(fields["reason"]), "mapper_parsing_exception") {
		t.Fatalf("rejection logged with %v", fields)
	}
	for _, e := range logs.All() {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, "5511912345678") || strings.Contains(line, "telefone") || strings.Contains(line, bad.EventID) {
			t.Fatalf("a log line quotes the event: %s", line)
		}
	}
	if calls := f.target.calls(); calls > len(refs) {
		t.Fatalf("%d ingest calls for %d events: the rejection was retried", calls, len(refs))
	}
}

// TestAbandon: a replay whose target is abandoned ends with
// versions.ErrNotWritable, whether it notices in the registry while
// following or a fenced write of its store refuses a batch.
func TestAbandon(t *testing.T) {
	t.Run("while following", func(t *testing.T) {
		f := newFixture(t)
		f.produce(everywhere(1, t0)...)
		done := f.start(context.Background(), f.config(), nil)
		f.waitPhase(Following, func(s Status) bool { return s.Events == 4 })
		if _, err := f.reg.Abandon(context.Background(), target); err != nil {
			t.Fatal(err)
		}
		if err := f.result(done); !errors.Is(err, versions.ErrNotWritable) {
			t.Fatalf("replay of an abandoned target: %v", err)
		}
	})
	t.Run("fenced write", func(t *testing.T) {
		f := newFixture(t)
		f.produce(everywhere(1, t0)...)
		f.target.fail = fmt.Errorf("version %s: %w", target, versions.ErrNotWritable)
		if err := f.result(f.start(context.Background(), f.config(), nil)); !errors.Is(err, versions.ErrNotWritable) {
			t.Fatalf("replay whose writes are fenced: %v", err)
		}
		if calls := f.target.calls(); calls != 1 {
			t.Fatalf("%d ingest calls: a fenced write was retried", calls)
		}
	})
}

// TestSwapWhenCaughtUp: with Swap the replay makes its target current
// itself once caught up (trying again after SwapRetry when it fails), then
// ends as after any swap.
func TestSwapWhenCaughtUp(t *testing.T) { inFlights(t, testSwapWhenCaughtUp) }

func testSwapWhenCaughtUp(t *testing.T, f *fixture) {
	history := f.produce(everywhere(3, t0)...)
	var mu sync.Mutex
	var swaps []int // events the target held at each call
	cfg := f.config()
	cfg.Swap = func(ctx context.Context) error {
		mu.Lock()
		swaps = append(swaps, f.target.count())
		n := len(swaps)
		mu.Unlock()
		f.notify.signal()
		if n == 1 {
			return errors.New("versions v1 and v2 differ in 3 sessions")
		}
		_, err := f.reg.Swap(ctx, target)
		return err
	}
	calls := func() int { mu.Lock(); defer mu.Unlock(); return len(swaps) }
	done := f.start(context.Background(), cfg, nil)
	f.waitFor("a first swap", func() bool { return calls() == 1 })
	f.waitPhase(Following, nil)
	if calls() != 1 {
		t.Fatalf("the swap was tried again before SwapRetry passed: %d calls", calls())
	}
	f.clock.Add(time.Minute)
	f.waitPhase(Swapped, nil)
	if st, _ := f.reg.State(context.Background()); st.Current != target {
		t.Fatalf("after the replay's swap: %+v", st)
	}
	f.commitLive(3)
	f.clock.Add(time.Minute)
	if err := f.result(done); err != nil {
		t.Fatal(err)
	}
	f.checkIngested(history)
	mu.Lock()
	defer mu.Unlock()
	for _, held := range swaps {
		// Caught up: at most CaughtUp (1) message left per partition.
		if held < len(history)-len(topics)*partitionsPerTopic {
			t.Errorf("swap tried when the target held %d of %d events", held, len(history))
		}
	}
}

// fakeTarget is an in-memory target: it counts how often each event was
// ingested and keeps the saved progress.
type fakeTarget struct {
	notify *notifier
	// reject lists events refused for good (an ingest.Rejecter error).
	reject map[event.Ref]string
	// fail, when set, is the error of every Ingest.
	fail error
	// beforeIngest, when set, runs first in each Ingest; its error, when
	// not nil, is Ingest's, and nothing is stored.
	beforeIngest func(ctx context.Context, events []event.Event) error
	// afterIngest, when set, runs after each successful Ingest.
	afterIngest func()
	// beforeSave, when set, runs first in each SaveReplayState; its
	// error, when not nil, is SaveReplayState's, and nothing is saved.
	beforeSave func(state []byte) error
	// onSave, when set, runs after each SaveReplayState.
	onSave func(state []byte)

	mu       sync.Mutex
	ingested map[event.Ref]int
	state    []byte
	nCalls   int
	// sizes are the events of each Ingest call.
	sizes []int
}

func (ft *fakeTarget) Ingest(ctx context.Context, events []event.Event) error {
	ft.mu.Lock()
	before := ft.beforeIngest
	ft.mu.Unlock()
	if before != nil {
		if err := before(ctx, events); err != nil {
			return err
		}
	}
	ft.mu.Lock()
	ft.nCalls++
	ft.sizes = append(ft.sizes, len(events))
	if ft.fail != nil {
		ft.mu.Unlock()
		return ft.fail
	}
	rejected := rejectedError{}
	for _, e := range events {
		if reason, ok := ft.reject[e.Ref()]; ok {
			rejected[e.Ref()] = reason
			continue
		}
		ft.ingested[e.Ref()]++
	}
	after := ft.afterIngest
	ft.mu.Unlock()
	ft.notify.signal()
	if after != nil {
		after()
	}
	if len(rejected) > 0 {
		return rejected
	}
	return nil
}

func (ft *fakeTarget) LoadReplayState(context.Context) ([]byte, error) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.state, nil
}

func (ft *fakeTarget) SaveReplayState(_ context.Context, state []byte) error {
	ft.mu.Lock()
	before := ft.beforeSave
	ft.mu.Unlock()
	if before != nil {
		if err := before(state); err != nil {
			return err
		}
	}
	ft.mu.Lock()
	ft.state = state
	onSave := ft.onSave
	ft.mu.Unlock()
	if onSave != nil {
		onSave(state)
	}
	return nil
}

func (ft *fakeTarget) snapshot() map[event.Ref]int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	out := make(map[event.Ref]int, len(ft.ingested))
	for k, v := range ft.ingested {
		out[k] = v
	}
	return out
}

func (ft *fakeTarget) count() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return len(ft.ingested)
}

func (ft *fakeTarget) calls() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.nCalls
}

// rejectedError is an ingest.Rejecter: the store kept every other event.
type rejectedError map[event.Ref]string

func (e rejectedError) Error() string                  { return fmt.Sprintf("%d events rejected", len(e)) }
func (e rejectedError) Rejected() map[event.Ref]string { return e }

// statusLog keeps the last status reported.
type statusLog struct {
	notify *notifier
	mu     sync.Mutex
	st     Status
	ok     bool
}

func (l *statusLog) report(s Status) {
	l.mu.Lock()
	l.st, l.ok = s, true
	l.mu.Unlock()
	l.notify.signal()
}

func (l *statusLog) lastOk() (Status, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st, l.ok
}

func (l *statusLog) last() Status { s, _ := l.lastOk(); return s }

// notifier wakes up waiters whenever something changed.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

// wait returns a channel closed at the next signal.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) signal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}

// clock is a clock the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
