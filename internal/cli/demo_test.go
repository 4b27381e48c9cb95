package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/pipeline"
)

// startDemo runs `up --demo` on dir with the configuration's defaults (no
// API key for the demo tenant), seeding history conversations.
func startDemo(t *testing.T, dir string, history int) (Endpoints, func()) {
	t.Helper()
	cfg := config.Default()
	cfg.Store.SQLite.Dir = dir
	cfg.Log.Level = "warn"
	ready := make(chan Endpoints, 1)
	u := &Up{
		Config: cfg, Pipeline: pipeline.MustDefault(), Demo: true,
		HTTPAddr: "127.0.0.1:0", KafkaAddr: "127.0.0.1:0", DataDir: dir,
		Ready: func(e Endpoints) { ready <- e }, demoHistory: history,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() { done <- u.Do(ctx, &globals{stdout: io.Discard, stderr: &logs}) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("up: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("up did not stop within 30 s")
		}
	}
	t.Cleanup(stop)
	select {
	case e := <-ready:
		return e, stop
	case err := <-done:
		t.Fatalf("up failed: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("up not ready within 20 s")
	}
	return Endpoints{}, stop
}

func total(t *testing.T, e Endpoints) int {
	t.Helper()
	var l listResponse
	if code := get(t, fmt.Sprintf("http://%s/api/v1/sessions?limit=1", e.HTTP), e.DemoKey, &l); code != http.StatusOK {
		t.Fatalf("list with the demo key: %d", code)
	}
	return l.Total
}

// TestDemoSeedsOnceAndKeepsItsKey: a restarted `up --demo` on the same data
// directory keeps the demo key (open tabs stay signed in) and does not seed
// its history again.
func TestDemoSeedsOnceAndKeepsItsKey(t *testing.T) {
	const history = 200
	dir := t.TempDir()

	first, stop := startDemo(t, dir, history)
	if !first.DemoSeeding || !strings.HasPrefix(first.DemoKey, "demo-") || first.DemoKeyFile != demoStatePath(dir) {
		t.Fatalf("first start: seeding %v, key %q kept in %q", first.DemoSeeding, first.DemoKey, first.DemoKeyFile)
	}
	// Conversations of one contact inside its session window are one
	// session, so the history is a little under 200 sessions.
	deadline := time.Now().Add(30 * time.Second)
	for total(t, first) < history*8/10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions within 30 s, want about the %d of the history", total(t, first), history)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The mark is written once the history is produced.
	for {
		s, err := loadDemoState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !s.SeededAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the history is not marked as seeded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fi, err := os.Stat(demoStatePath(dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("demo state file: %v, %v; want readable by its owner only", fi.Mode(), err)
	}
	stop()

	second, _ := startDemo(t, dir, history)
	if second.DemoKey != first.DemoKey {
		t.Errorf("restart: key %q, want the kept %q", second.DemoKey, first.DemoKey)
	}
	if second.DemoSeeding {
		t.Error("restart: seeds the history again")
	}
	before := total(t, second) // the first key still signs in
	// A second history would be ingested within a second or two; live
	// conversations start one every 3 s.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if n := total(t, second); n > before+5 {
			t.Fatalf("restart: %d sessions, %d before: the history was added again", n, before)
		}
	}
}

// TestDemoKeyFromConfiguration: a configured key for the demo tenant is used
// and not written to the data directory, and the banner says where it comes
// from (it said "kept in demo.json", which held another key or none).
func TestDemoKeyFromConfiguration(t *testing.T) {
	dir := t.TempDir()
	up := startUp(t, dir, true) // configures key-acme
	if up.DemoKey != "key-acme" || up.DemoKeyFile != "" {
		t.Fatalf("demo key %q kept in %q, want the configured one", up.DemoKey, up.DemoKeyFile)
	}
	if s, err := loadDemoState(dir); err != nil || s.APIKey != "" {
		t.Fatalf("demo state %+v, %v: the configured key is kept in the data directory", s, err)
	}
	var out bytes.Buffer
	printEndpoints(&globals{stdout: &out}, &Up{}, up.Endpoints)
	if !strings.Contains(out.String(), "key-acme (auth.api_keys of the configuration)") || strings.Contains(out.String(), "kept in") {
		t.Errorf("banner:\n%s\nwant the configured key said to come from auth.api_keys", out.String())
	}
}

// TestOneDemoFeedPerFolder: a second `up --demo` on a data folder whose demo
// feed runs refuses, naming the folder, instead of feeding the demo twice;
// an `up` without --demo still shares the folder (two ingesters may); once
// the first demo stops, a demo starts there again.
func TestOneDemoFeedPerFolder(t *testing.T) {
	dir := t.TempDir()
	_, stop := startDemo(t, dir, 10)

	cfg := config.Default()
	cfg.Store.SQLite.Dir = dir
	cfg.Log.Level = "warn"
	cfg.Auth.APIKeys = map[string]config.Secret{"acme": "k1"}
	up := func(demo bool, ready func(Endpoints)) *Up {
		return &Up{Config: cfg, Pipeline: pipeline.MustDefault(), Demo: demo, DataDir: dir,
			HTTPAddr: "127.0.0.1:0", KafkaAddr: "127.0.0.1:0", Ready: ready, demoHistory: 10}
	}
	g := &globals{stdout: io.Discard, stderr: io.Discard}
	second, stopSecond := context.WithTimeout(t.Context(), 20*time.Second)
	defer stopSecond()
	err := up(true, func(Endpoints) { t.Error("a second demo feed started"); stopSecond() }).Do(second, g)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("feeding demo traffic into the data folder %q", dir)) {
		t.Fatalf("a second up --demo on the folder: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- up(false, func(Endpoints) { close(ready) }).Do(ctx, g) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("an up without --demo on the demo's folder: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("an up without --demo not ready within 20 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	stop()
	if _, stop := startDemo(t, dir, 10); stop == nil {
		t.Fatal("no demo after the first stopped")
	}
}

// TestDemoLockDiesWithItsProcess: the demo lock of a process killed with
// SIGKILL is gone with it (the kernel releases a flock), so a crashed demo
// never blocks the next one.
func TestDemoLockDiesWithItsProcess(t *testing.T) {
	if dir := os.Getenv("CHATREPORT_TEST_DEMO_LOCK_DIR"); dir != "" {
		// The child: hold the lock until killed.
		if _, err := lockDemo(dir); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		os.Exit(2)
	}
	if runtime.GOOS == "windows" {
		t.Skip("no flock: the demo lock is not taken here")
	}
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestDemoLockDiesWithItsProcess$")
	child.Env = append(os.Environ(), "CHATREPORT_TEST_DEMO_LOCK_DIR="+dir)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		child.Process.Kill() //nolint:errcheck // it may be gone
		t.Fatalf("the child: %q %v", line, err)
	}
	if _, err := lockDemo(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("the lock held by another process: %v", err)
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	child.Wait() //nolint:errcheck // killed
	release, err := lockDemo(dir)
	if err != nil {
		t.Fatalf("after kill -9 of its holder the lock is still held: %v", err)
	}
	release()
}
