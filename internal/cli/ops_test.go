package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/replay"
	"github.com/chatreport/chatreport/internal/simulate"
	"github.com/chatreport/chatreport/internal/store"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/versions"
	"github.com/chatreport/chatreport/internal/waitfor"
)

// producer feeds simulated conversations to the broker until stopped.
type producer struct {
	sent atomic.Int64
	stop func()
	done chan struct{}
}

// stopped reports whether the producer ended.
func (p *producer) stopped() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func startProducer(t *testing.T, addr string, seed int64, conversations int) *producer {
	t.Helper()
	return startPacedProducer(t, addr, seed, conversations, 2*time.Millisecond)
}

// startPacedProducer sends a conversation every pace until it sent them
// all or is stopped.
func startPacedProducer(t *testing.T, addr string, seed int64, conversations int, pace time.Duration) *producer {
	t.Helper()
	def := pipeline.MustDefault()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	ctx, cancel := context.WithCancel(context.Background())
	p := &producer{stop: cancel, done: make(chan struct{})}
	gen := simulate.NewGenerator(simulate.Options{Seed: seed, Tenants: []string{"acme"}, Sessions: conversations,
		Start: time.Now().Add(-48 * time.Hour), Spread: 47 * time.Hour})
	go func() {
		defer close(p.done)
		defer w.Close()
		for ctx.Err() == nil {
			events, ok := gen.Next()
			if !ok {
				return
			}
			msgs := make([]kafka.Message, len(events))
			for i := range events {
				v, _ := json.Marshal(&events[i])
				msgs[i] = kafka.Message{Topic: simulate.TopicFor(events[i], def.Topics.Events), Key: []byte(events[i].RecommendedKey()), Value: v}
			}
			// A conversation is sent whole even when stopped meanwhile, so
			// that sent counts exactly what the topics hold.
			write, cancelWrite := context.WithTimeout(context.Background(), 30*time.Second)
			err := w.WriteMessages(write, msgs...)
			cancelWrite()
			if err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			p.sent.Add(int64(len(msgs)))
			select {
			case <-time.After(pace):
			case <-ctx.Done():
			}
		}
	}()
	t.Cleanup(func() { p.stop(); <-p.done })
	return p
}

// poller checks that the API answers 200 all the time.
func startPoller(t *testing.T, base string) (stop func() (ok, failed int)) {
	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/sessions?limit=5", nil)
			req.Header.Set("Authorization", "Bearer key-acme")
			resp, err := http.DefaultClient.Do(req)
			switch {
			case ctx.Err() != nil:
			case err != nil || resp.StatusCode != http.StatusOK:
				failed++
			default:
				ok++
			}
			if resp != nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() (int, int) { cancel(); wg.Wait(); return ok, failed }
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := Execute(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("chatreport %v: %v\n%s%s", args, err, out.String(), errOut.String())
	}
	return out.String()
}

// TestReplaySwapForget: while live ingest goes on, a replay (interrupted
// once and resumed) rebuilds version v2, catches up and follows; v2 is
// swapped in under live traffic, the replay finishes at the live offsets and
// exits, and the live ingester writes v2 alone from then on. v2 then holds
// every event sent, once, and equals a version v3 replayed from scratch
// afterwards; the API never failed a request; forget erases a contact from
// every version and nothing else.
func TestReplaySwapForget(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dataDir := t.TempDir()
	up := startUp(t, dataDir, false)
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf("kafka: {brokers: [%q]}\nstore: {sqlite: {dir: %q}}\nlog: {level: warn}\n", up.Kafka, dataDir)), 0o600)
	opsScenario{up: up, cfgFile: cfgFile, pace: 20 * time.Millisecond,
		store: config.Store{Kind: config.StoreSQLite, SQLite: config.SQLite{Dir: dataDir}}}.run(t)
}

// opsScenario is the acceptance scenario of the operations commands on one
// store; the hooks, when set, check what is particular to it.
type opsScenario struct {
	up      *running
	cfgFile string
	store   config.Store
	// pace is how often the live traffic sends a conversation.
	pace time.Duration
	// replaySwaps: the replay swaps itself (--swap) instead of `index swap`.
	replaySwaps bool
	// interrupted looks at what the interrupted replay left.
	interrupted func()
	// swapped looks at the store after the swap.
	swapped func()
	// docs returns every document of every version, so that forget can be
	// checked document for document.
	docs func() map[string]map[string]any
}

func (o opsScenario) run(t *testing.T) {
	t.Helper()
	base := "http://" + o.up.HTTP
	live := startPacedProducer(t, o.up.Kafka, 7, 100000, o.pace)
	stopPolling := startPoller(t, base)
	// Sessions stored before the replay registers v2 reach v2 only through
	// the replay.
	waitfor.True(t, time.Minute, "live ingest before the replay", func() bool { return countSessions(t, base) > 10 })

	r := &Replay{Brokers: []string{o.up.Kafka}, Store: o.store, Def: pipeline.MustDefault(), Target: "v2",
		Grace: time.Second, Batch: 1000, Swap: o.replaySwaps, Log: zap.NewNop(), Progress: &bytes.Buffer{}, Out: &bytes.Buffer{}}
	replayInterrupted(t, r, o.interrupted)
	bg := startReplay(t, r)
	bg.waitPhase(t, replay.Following)
	if !o.replaySwaps {
		if status := runCLI(t, "index", "status", "--config", o.cfgFile); !strings.Contains(status, "building since") {
			t.Fatalf("index status:\n%s", status)
		}
		if out := runCLI(t, "index", "swap", "--to", "v2", "--config", o.cfgFile); !strings.Contains(out, "current version: v2") {
			t.Fatalf("swap:\n%s", out)
		}
	}
	if err := bg.wait(t); err != nil {
		t.Fatalf("replay: %v", err)
	}
	for _, p := range []replay.Phase{replay.Following, replay.Swapped, replay.Done} {
		if !bg.saw(p) {
			t.Errorf("the replay never reported phase %s", p)
		}
	}
	if live.stopped() {
		t.Fatal("the live traffic ended before the replay did: the swap was not under live traffic")
	}
	live.stop()
	<-live.done
	if o.swapped != nil {
		o.swapped()
	}

	// The live ingester writes v2 alone: it catches up there, and v1 lacks
	// what came after the swap.
	sent := live.sent.Load()
	waitfor.True(t, time.Minute, "live ingest of everything sent into v2", func() bool {
		return versionEvents(t, o.cfgFile, "v2") == sent
	})
	if n := versionEvents(t, o.cfgFile, "v1"); n >= sent {
		t.Fatalf("v1 holds %d of the %d events sent: the live ingester still wrote it after the swap", n, sent)
	}
	// v2 equals a version replayed from scratch once the traffic stopped.
	ref := &Replay{Brokers: []string{o.up.Kafka}, Store: o.store, Def: pipeline.MustDefault(), Target: "v3",
		To: time.Now(), Grace: time.Second, Batch: 500, Log: zap.NewNop(), Progress: &bytes.Buffer{}}
	if err := ref.Do(context.Background()); err != nil {
		t.Fatalf("replay of v3: %v", err)
	}
	if diff, out := compareStoreVersions(t, o.store, "v2", "v3"); diff != 0 || versionEvents(t, o.cfgFile, "v3") != sent {
		t.Fatalf("v2 and v3 differ in %d sessions:\n%s", diff, out)
	}
	if out := runCLI(t, "index", "abandon", "--version", "v3", "--config", o.cfgFile); !strings.Contains(out, "version v3 abandoned") {
		t.Fatalf("abandon:\n%s", out)
	}
	// index status says what each version is: v1 retired by the swap, v3
	// abandoned (on SQLite, whose file stays; Elasticsearch deleted its
	// indices). It called both "old".
	status := runCLI(t, "index", "status", "--config", o.cfgFile)
	for _, want := range []string{"v1 +old, current until ", "v2 +current "} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(status) {
			t.Errorf("index status has no line %q:\n%s", want, status)
		}
	}
	if abandoned := regexp.MustCompile(`(?m)^v3 +abandoned at `).MatchString(status); abandoned != (o.store.Kind == config.StoreSQLite) {
		t.Errorf("index status shows v3 abandoned: %v, want it on SQLite only:\n%s", abandoned, status)
	}
	// No swap back to v1, which lacks what was ingested after the swap;
	// the refusal says why and what to do instead. Nothing changes.
	var swapOut bytes.Buffer
	err := Execute(context.Background(), []string{"index", "swap", "--to", "v1", "--config", o.cfgFile}, &swapOut, &swapOut)
	if err == nil || !strings.Contains(err.Error(), "was current until") || !strings.Contains(err.Error(), "lacks every event ingested after that") ||
		!strings.Contains(err.Error(), "chatreport replay --from earliest --target NEW --swap") {
		t.Errorf("index swap --to v1 (retired): %v\n%s", err, swapOut.String())
	}
	// Nor a replay into v1: its replay finished when it was current, so it
	// would resume that progress, end at once, and make v1 swappable again.
	back := &Replay{Brokers: []string{o.up.Kafka}, Store: o.store, Def: pipeline.MustDefault(), Target: "v1",
		To: time.Now(), Grace: time.Second, Batch: 500, Log: zap.NewNop(), Progress: &bytes.Buffer{}}
	if err := back.Do(context.Background()); err == nil || !strings.Contains(err.Error(), "a replay into it would not rebuild it") {
		t.Errorf("replay into the retired v1: %v", err)
	}
	if o.store.Kind == config.StoreSQLite {
		err = Execute(context.Background(), []string{"index", "swap", "--to", "v3", "--config", o.cfgFile}, &swapOut, &swapOut)
		if err == nil || !strings.Contains(err.Error(), "version v3 was abandoned at") {
			t.Errorf("index swap --to v3 (abandoned): %v", err)
		}
	}
	if status := runCLI(t, "index", "status", "--config", o.cfgFile); !regexp.MustCompile(`(?m)^v2 +current `).MatchString(status) {
		t.Fatalf("after the refused swaps:\n%s", status)
	}

	// Live ingest goes on into v2 (the current version) and the API reads it.
	before := countSessions(t, base)
	late := startProducer(t, o.up.Kafka, 8, 3)
	<-late.done
	waitfor.True(t, time.Minute, "new sessions served from v2", func() bool { return countSessions(t, base) > before })
	if ok, failed := stopPolling(); failed > 0 || ok < 10 {
		t.Fatalf("API during replay and swap: %d ok, %d failed", ok, failed)
	}
	all := sent + late.sent.Load()
	waitfor.True(t, time.Minute, "live ingest of the late events into v2", func() bool {
		return versionEvents(t, o.cfgFile, "v2") == all
	})

	// Forget one contact: gone from both versions, the rest unchanged.
	var l listResponse
	get(t, base+"/api/v1/sessions?limit=1", "key-acme", &l)
	contact := l.Items[0].Contact.ID
	total := countSessions(t, base)
	withContact := countWhere(t, base, "contact="+contact)
	var docsBefore map[string]map[string]any
	if o.docs != nil {
		docsBefore = o.docs()
	}
	out := runCLI(t, "forget", "--tenant", "acme", "--contact", contact, "--config", o.cfgFile)
	if !strings.Contains(out, "version v1: removed") || !strings.Contains(out, "version v2: removed") {
		t.Fatalf("forget:\n%s", out)
	}
	if n := countWhere(t, base, "contact="+contact); n != 0 {
		t.Fatalf("%d sessions of the forgotten contact remain", n)
	}
	if n := countSessions(t, base); n != total-withContact {
		t.Fatalf("forget removed %d sessions, want %d", total-n, withContact)
	}
	if o.docs != nil {
		checkForgotten(t, docsBefore, o.docs(), contact)
	}
}

// versionEvents is how many events `index status` says version holds.
func versionEvents(t *testing.T, cfgFile, version string) int64 {
	t.Helper()
	status := runCLI(t, "index", "status", "--config", cfgFile)
	for _, line := range strings.Split(status, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != version {
			continue
		}
		var n int64
		if _, err := fmt.Sscanf(fields[len(fields)-2], "%d", &n); err == nil && fields[len(fields)-1] == "events" {
			return n
		}
	}
	t.Fatalf("index status has no event count of %s:\n%s", version, status)
	return 0
}

// compareStoreVersions compares every session document of two versions.
func compareStoreVersions(t *testing.T, c config.Store, a, b string) (int, string) {
	t.Helper()
	vs, err := store.OpenVersions(c, idref.Key{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	var out bytes.Buffer
	diff, err := versions.Compare(context.Background(), vs, a, b, &out)
	if err != nil {
		t.Fatal(err)
	}
	return diff, out.String()
}

// replayInterrupted runs r until it stored something, then interrupts it
// (check, when set, then looks at what the interruption left).
func replayInterrupted(t *testing.T, r *Replay, check func()) {
	t.Helper()
	interrupted, cancel := context.WithCancel(context.Background())
	r.Report = func(s replay.Status) {
		if s.Events > 0 {
			cancel()
		}
	}
	if err := r.Do(interrupted); !errors.Is(err, context.Canceled) {
		t.Fatalf("the first replay was not interrupted: %v", err)
	}
	r.Report = nil
	if check != nil {
		check()
	}
}

// backgroundReplay is a replay running in the background.
type backgroundReplay struct {
	done chan error

	mu    sync.Mutex
	seen  map[replay.Phase]bool
	phase replay.Phase
}

// startReplay runs r in the background; the test's end stops it.
func startReplay(t *testing.T, r *Replay) *backgroundReplay {
	t.Helper()
	b := &backgroundReplay{done: make(chan error, 1), seen: map[replay.Phase]bool{}}
	r.Report = func(s replay.Status) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.seen[s.Phase], b.phase = true, s.Phase
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { b.done <- r.Do(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			t.Error("the background replay did not stop")
		}
	})
	return b
}

func (b *backgroundReplay) saw(p replay.Phase) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[p]
}

// waitPhase waits until the replay reports p (or a later phase).
func (b *backgroundReplay) waitPhase(t *testing.T, p replay.Phase) {
	t.Helper()
	waitfor.True(t, time.Minute, "replay phase "+p.String(), func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.phase >= p
	})
}

// wait returns the replay's result; it must end within two minutes.
func (b *backgroundReplay) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-b.done:
		b.done <- err // for the cleanup
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("the replay did not end")
		return nil
	}
}

func countSessions(t *testing.T, base string) int { return countWhere(t, base, "") }

func countWhere(t *testing.T, base, query string) int {
	t.Helper()
	var l listResponse
	if code := get(t, base+"/api/v1/sessions?limit=1&"+query, "key-acme", &l); code != http.StatusOK {
		t.Fatalf("list: status %d", code)
	}
	return l.Total
}

// TestReplayTakesTheIngestersBatching: a Replay without Batch or InFlight
// takes the ingester's defaults for its store (config.Ingest.BatchSizeOf,
// InFlightOf), set before it even reaches Kafka.
func TestReplayTakesTheIngestersBatching(t *testing.T) {
	// A Replay without a store kind opens SQLite, and takes its defaults.
	for _, kind := range []string{config.StoreSQLite, ""} {
		r := &Replay{Brokers: []string{"127.0.0.1:1"}, Store: config.Store{Kind: kind, SQLite: config.SQLite{Dir: t.TempDir()}},
			Def: pipeline.MustDefault(), Target: "v2", Grace: time.Minute, Log: zap.NewNop()}
		if err := r.Do(context.Background()); err == nil {
			t.Fatal("a replay from a broker that does not answer succeeded")
		}
		if r.Batch != config.SQLiteBatchSize || r.InFlight != config.SQLiteInFlight {
			t.Fatalf("store kind %q: batch %d, in flight %d; want %d and %d", kind, r.Batch, r.InFlight, config.SQLiteBatchSize, config.SQLiteInFlight)
		}
	}
}

// TestReplayFlags: combinations that cannot end well are refused before
// anything is registered.
func TestReplayFlags(t *testing.T) {
	es := esfake.New(t)
	dir := t.TempDir()
	sqliteCfg := filepath.Join(dir, "sqlite.yaml")
	esCfg := filepath.Join(dir, "es.yaml")
	os.WriteFile(sqliteCfg, []byte(fmt.Sprintf("kafka: {brokers: [127.0.0.1:1]}\nstore: {sqlite: {dir: %q}}\nlog: {level: warn}\n", dir)), 0o600)
	os.WriteFile(esCfg, []byte(fmt.Sprintf("kafka: {brokers: [127.0.0.1:1]}\nstore: {kind: elasticsearch, elasticsearch: {urls: [%q], registry_ttl: 5s}}\nlog: {level: warn}\n", es.URL())), 0o600)
	for _, c := range []struct {
		cfg  string
		args []string
		want string
	}{
		{sqliteCfg, []string{"--swap", "--to", "2025-10-07T00:00:00Z"}, "--swap with --to"},
		{sqliteCfg, []string{"--verify"}, "--verify goes with --swap"},
		{sqliteCfg, []string{"--grace", "0s"}, "must be positive"},
		{esCfg, []string{"--grace", "5s"}, "must be longer than store.elasticsearch.registry_ttl"},
		// Kafka does not answer: said so before anything is registered
		// or, on Elasticsearch, created.
		{sqliteCfg, nil, "kafka at 127.0.0.1:1 does not answer (kafka.brokers of the configuration, or --brokers)"},
		{esCfg, []string{"--grace", "1m"}, "does not answer (kafka.brokers of the configuration, or --brokers)"},
	} {
		args := append([]string{"replay", "--from", "earliest", "--target", "v2", "--config", c.cfg}, c.args...)
		var out, errOut bytes.Buffer
		err := Execute(context.Background(), args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("chatreport %v: %v, want an error saying %q", args, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "versions.json")); err == nil {
		t.Error("a refused replay registered its target")
	}
	if _, err := os.Stat(filepath.Join(dir, "chatreport-v2.db")); err == nil {
		t.Error("a refused replay created its target's database")
	}
	res, err := http.Get(es.URL() + "/_cat/indices?format=json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("a refused replay created indices: %s", body)
	}
}
