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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/pipeline"
)

// running is an `up` started by a test.
type running struct {
	Endpoints
	stop func() error
}

func startUp(t *testing.T, dataDir string, demo bool) *running {
	t.Helper()
	cfg := config.Default()
	cfg.Store.SQLite.Dir = dataDir
	return startUpWith(t, cfg, dataDir, demo)
}

// startUpWith runs up with cfg's store and test keys and log level.
func startUpWith(t *testing.T, cfg config.Config, dataDir string, demo bool) *running {
	t.Helper()
	cfg.Auth.APIKeys = map[string]config.Secret{"acme": "key-acme", "globex": "key-globex"}
	cfg.Log.Level = "warn"
	ready := make(chan Endpoints, 1)
	u := &Up{
		Config: cfg, Pipeline: pipeline.MustDefault(), Demo: demo,
		HTTPAddr: "127.0.0.1:0", KafkaAddr: "127.0.0.1:0", DataDir: dataDir,
		Ready: func(e Endpoints) { ready <- e },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() { done <- u.Do(ctx, &globals{stdout: io.Discard, stderr: &logs}) }()
	r := &running{stop: sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("up did not stop within 30 s")
		}
	})}
	select {
	case r.Endpoints = <-ready:
	case err := <-done:
		t.Fatalf("up failed: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("up not ready within 20 s")
	}
	t.Cleanup(func() { r.stop() }) //nolint:errcheck // the test checks the error where it matters
	return r
}

func get(t *testing.T, url, key string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("decode %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

type listResponse struct {
	Items []struct {
		SessionID string `json:"session_id"`
		Contact   struct {
			ID string `json:"id"`
		} `json:"contact"`
		MessageCounts struct {
			Customer int `json:"customer"`
			Bot      int `json:"bot"`
		} `json:"message_counts"`
	} `json:"items"`
	Total int `json:"total"`
}

// waitForSessions polls the list until it holds want sessions.
func waitForSessions(t *testing.T, base, key string, want int, within time.Duration) listResponse {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var l listResponse
		code := get(t, base+"/api/v1/sessions?limit=100", key, &l)
		if code == http.StatusOK && l.Total == want {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: status %d, %d sessions, want %d", within, code, l.Total, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func message(id, contact string, at time.Time, role, text string) []byte {
	e := event.Event{
		EventID: id, Type: event.TypeMessage, OccurredAt: at, Tenant: "acme", Channel: "whatsapp",
		Contact: event.Contact{ID: contact, Phone: "+" + contact, Name: "Cliente " + contact},
		Author:  &event.Author{Role: role}, Text: text,
	}
	b, _ := json.Marshal(e)
	return b
}

// TestEndToEnd: kafka-go producer → embedded broker → ingester → SQLite →
// HTTP API; a malformed event goes to the dead-letter topic without blocking
// its partition; a restart on the same data folder serves the same sessions.
func TestEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir, false)
	base := "http://" + up.HTTP
	def := pipeline.MustDefault()

	w := &kafka.Writer{
		Addr: kafka.TCP(up.Kafka), Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	now := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	key := []byte("acme/whatsapp/5511911111111")
	bad := []byte(`{"event_id":"bad-1","type":"message","tenant":"acme"}`)
	msgs := []kafka.Message{
		{Topic: def.Topics.Events[0], Key: key, Value: message("e1", "5511911111111", now, event.RoleCustomer, "oi")},
		{Topic: def.Topics.Events[0], Key: key, Value: bad},
		{Topic: def.Topics.Events[0], Key: key, Value: message("e2", "5511911111111", now.Add(time.Second), event.RoleBot, "Olá!")},
		{Topic: def.Topics.Events[2], Key: []byte("acme/whatsapp/5511922222222"), Value: message("e3", "5511922222222", now.Add(time.Minute), event.RoleCustomer, "bom dia")},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}

	l := waitForSessions(t, base, "key-acme", 2, 5*time.Second)
	// Newest first: contact 2's session started a minute later.
	if l.Items[0].Contact.ID != "5511922222222" || l.Items[1].Contact.ID != "5511911111111" {
		t.Fatalf("order: %+v", l.Items)
	}
	if c := l.Items[1].MessageCounts; c.Customer != 1 || c.Bot != 1 {
		t.Fatalf("the event after the malformed one was not ingested: counts %+v", c)
	}

	// The malformed event is in the dead-letter topic with its reason.
	dl := readDeadLetter(t, up.Kafka, def.Topics.DeadLetter)
	if !bytes.Equal(dl.Value, bad) || !bytes.Equal(dl.Key, key) {
		t.Fatalf("dead letter changed the event: key %q value %q", dl.Key, dl.Value)
	}
	headers := map[string]string{}
	for _, h := range dl.Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers[ingest.HeaderReason] == "" || headers[ingest.HeaderSourceTopic] != def.Topics.Events[0] || headers[ingest.HeaderSourceOffset] == "" {
		t.Fatalf("dead-letter headers: %v", headers)
	}

	// Tenant isolation and auth.
	var other listResponse
	if code := get(t, base+"/api/v1/sessions", "key-globex", &other); code != http.StatusOK || other.Total != 0 {
		t.Fatalf("globex sees %d sessions (status %d)", other.Total, code)
	}
	sid := l.Items[0].SessionID
	if code := get(t, base+"/api/v1/sessions/"+sid, "key-globex", nil); code != http.StatusNotFound {
		t.Fatalf("globex opens acme's session: status %d", code)
	}
	if code := get(t, base+"/api/v1/sessions", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("no key: status %d", code)
	}
	if code := get(t, base+"/api/v1/sessions", "wrong", nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong key: status %d", code)
	}
	var detail struct {
		Messages []struct {
			EventID string `json:"event_id"`
			Text    string `json:"text"`
		} `json:"messages"`
	}
	if code := get(t, base+"/api/v1/sessions/"+l.Items[1].SessionID, "key-acme", &detail); code != http.StatusOK ||
		len(detail.Messages) != 2 || detail.Messages[0].EventID != "e1" || detail.Messages[1].Text != "Olá!" {
		t.Fatalf("detail: status %d %+v", code, detail)
	}

	checkMetrics(t, base)
	if resp, err := http.Get(base + "/"); err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("the report screen is not served at /: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	checkDLQCommands(t, up, base)
	if code := get(t, base+"/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz: %d", code)
	}

	if err := up.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	again := startUp(t, dataDir, false)
	waitForSessions(t, "http://"+again.HTTP, "key-acme", 3, 5*time.Second)
}

func readDeadLetter(t *testing.T, addr, topic string) kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, GroupID: "test-dlq", GroupTopics: []string{topic},
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("read dead-letter topic: %v", err)
	}
	return m
}

// TestDemoServesSessions: `up --demo` serves simulated sessions.
func TestDemoServesSessions(t *testing.T) {
	up := startUp(t, t.TempDir(), true)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l listResponse
		get(t, fmt.Sprintf("http://%s/api/v1/sessions", up.HTTP), "key-acme", &l)
		if l.Total > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no demo sessions within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestKcatEventAppears: an event produced by kcat (librdkafka, another Kafka
// client than ours) into the embedded broker is served within 5 s.
func TestKcatEventAppears(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (Debian package kcat); .ci/run installs it")
	}
	up := startUp(t, t.TempDir(), false)
	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	value := `{"event_id":"kcat-1","type":"message","occurred_at":"` + at + `","tenant":"acme","channel":"whatsapp",` +
		`"contact":{"id":"5511900001234"},"author":{"role":"customer"},"text":"Olá via kcat"}`
	cmd := exec.Command(kcat, "-P", "-b", up.Kafka, "-t", "chat.events.bot", "-k", "acme/whatsapp/5511900001234")
	cmd.Stdin = strings.NewReader(value + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	l := waitForSessions(t, "http://"+up.HTTP, "key-acme", 1, 5*time.Second)
	if l.Items[0].Contact.ID != "5511900001234" {
		t.Fatalf("got %+v", l.Items)
	}
}

// checkMetrics scrapes /metrics after the ingest above and checks the series
// operators rely on.
func checkMetrics(t *testing.T, base string) {
	t.Helper()
	text := scrape(t, base)
	for _, want := range []string{
		`chatreport_events_consumed_total{topic="chat.events.bot"} 3`,
		`chatreport_events_consumed_total{topic="chat.events.agent"} 1`,
		`chatreport_events_indexed_total{topic="chat.events.bot"} 2`,
		`chatreport_events_dead_lettered_total{topic="chat.events.bot"} 1`,
		`chatreport_consumer_lag{partition="`,
		`chatreport_store_write_seconds_count`,
		`chatreport_assembler_reread_events_total`,
		`chatreport_http_request_duration_seconds_count{method="GET",route="/api/v1/sessions",status="200"}`,
		`chatreport_http_request_duration_seconds_count{method="GET",route="/api/v1/sessions/:id",status="404"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// scrape returns what /metrics answers.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// checkDLQCommands lists the dead letter, shows it, fixes it and redrives it:
// the fixed event is then served.
func checkDLQCommands(t *testing.T, up *running, base string) {
	t.Helper()
	run := func(stdin string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := Execute(context.Background(), append(args, "--brokers", up.Kafka), &out, &errOut); err != nil {
			t.Fatalf("chatreport %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	list := run("", "dlq", "list")
	if !strings.Contains(list, "1 dead letters") || !strings.Contains(list, "bad-1") || !strings.Contains(list, "chat.events.bot/") {
		t.Fatalf("dlq list:\n%s", list)
	}
	shown := run("", "dlq", "show")
	fixed := strings.Replace(shown, `"tenant":"acme"}`, `"tenant":"acme","occurred_at":"`+time.Now().UTC().Add(-2*time.Hour).Format(time.RFC3339)+
		`","channel":"whatsapp","contact":{"id":"5511933333333"},"author":{"role":"customer"},"text":"consertado"}`, 1)
	if fixed == shown {
		t.Fatalf("dlq show printed %s", shown)
	}
	path := filepath.Join(t.TempDir(), "fixed.jsonl")
	if err := os.WriteFile(path, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := run("", "dlq", "redrive", "--file", path); !strings.Contains(out, "sent 1, not sent 0") {
		t.Fatalf("redrive: %s", out)
	}
	waitForSessions(t, base, "key-acme", 3, 5*time.Second)
}
