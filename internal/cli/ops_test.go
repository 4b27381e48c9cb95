package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/replay"
	"github.com/chatreport/chatreport/internal/simulate"
)

// producer feeds simulated conversations to the broker until stopped.
type producer struct {
	sent atomic.Int64
	stop func()
	done chan struct{}
}

func startProducer(t *testing.T, addr string, seed int64, conversations int) *producer {
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
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				if ctx.Err() == nil {
					t.Errorf("produce: %v", err)
				}
				return
			}
			p.sent.Add(int64(len(msgs)))
			time.Sleep(2 * time.Millisecond)
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

// TestReplaySwapForget: live ingest goes on while a replay, interrupted once
// and resumed, rebuilds version v2; v2 then equals v1 document for document,
// the swap moves the API to it without a failed request, live ingest writes
// it, and forget erases a contact from both versions and nothing else.
func TestReplaySwapForget(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dataDir := t.TempDir()
	up := startUp(t, dataDir, false)
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf("kafka: {brokers: [%q]}\nstore: {sqlite: {dir: %q}}\nlog: {level: warn}\n", up.Kafka, dataDir)), 0o600)
	opsScenario{up: up, cfgFile: cfgFile, conversations: 250,
		store: config.Store{Kind: config.StoreSQLite, SQLite: config.SQLite{Dir: dataDir}}}.run(t)
}

// opsScenario is the acceptance scenario of the operations commands on one
// store; the hooks, when set, check what is particular to it.
type opsScenario struct {
	up            *running
	cfgFile       string
	store         config.Store
	conversations int
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
	prod := startProducer(t, o.up.Kafka, 7, o.conversations)
	stopPolling := startPoller(t, base)
	// Sessions stored before the replay registers v2 reach v2 only through
	// the replay; the rest reach it twice, live and replayed, at once.
	waitFor(t, "live ingest before the replay", func() bool { return countSessions(t, base) > 10 })

	r := &Replay{Brokers: []string{o.up.Kafka}, Store: o.store, Def: pipeline.MustDefault(), Target: "v2",
		Grace: time.Second, Batch: 200, Log: zap.NewNop(), Progress: &bytes.Buffer{}}
	replayInterrupted(t, r, prod, o.interrupted)
	<-prod.done

	// Live ingest catches up; then both versions hold everything.
	sent := prod.sent.Load()
	waitFor(t, "live ingest of everything sent into both versions", func() bool {
		return strings.Count(runCLI(t, "index", "status", "--config", o.cfgFile), fmt.Sprintf("%d events", sent)) == 2
	})
	if status := runCLI(t, "index", "status", "--config", o.cfgFile); !strings.Contains(status, "building since") {
		t.Fatalf("index status:\n%s", status)
	}
	out := runCLI(t, "index", "swap", "--to", "v2", "--verify", "--config", o.cfgFile)
	if !strings.Contains(out, "every session document is equal") || !strings.Contains(out, "current version: v2") {
		t.Fatalf("swap:\n%s", out)
	}
	if o.swapped != nil {
		o.swapped()
	}

	// Live ingest now writes v2 (the current version) and the API reads it.
	before := countSessions(t, base)
	late := startProducer(t, o.up.Kafka, 8, 3)
	<-late.done
	waitFor(t, "new sessions served from v2", func() bool { return countSessions(t, base) > before })
	if ok, failed := stopPolling(); failed > 0 || ok < 10 {
		t.Fatalf("API during replay and swap: %d ok, %d failed", ok, failed)
	}
	all := sent + late.sent.Load()
	waitFor(t, "live ingest of the late events into v2", func() bool {
		return strings.Contains(runCLI(t, "index", "status", "--config", o.cfgFile), fmt.Sprintf("%d events", all))
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
	out = runCLI(t, "forget", "--tenant", "acme", "--contact", contact, "--config", o.cfgFile)
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

// replayInterrupted runs r twice: interrupted as soon as it stored
// something (then check, when set, looks at what the interruption left),
// and again to the end. live must still be producing when the replay
// starts, so that the replay and the live ingester write at the same time.
func replayInterrupted(t *testing.T, r *Replay, live *producer, check func()) {
	t.Helper()
	select {
	case <-live.done:
		t.Fatalf("the producer sent all %d events before the replay started: nothing was ingested live during the replay", live.sent.Load())
	default:
	}
	interrupted, cancel := context.WithCancel(context.Background())
	r.Report = func(s replay.Status) {
		if s.Events > 0 {
			cancel()
		}
	}
	if err := r.Do(interrupted); err == nil {
		t.Fatal("the first replay was not interrupted")
	}
	if check != nil {
		check()
	}
	r.Report = nil
	if err := r.Do(context.Background()); err != nil {
		t.Fatalf("resumed replay: %v", err)
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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
