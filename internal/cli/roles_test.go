package cli

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/broker"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/waitfor"
)

var handedOut sync.Map // of freeAddr

// freeAddr is a loopback address no one listens on, for a command to
// listen on later. Its port is below Linux's ephemeral range (32768 and up
// by default): a port the kernel hands out for ":0" can be handed to an
// outgoing connection (the Kafka clients make many) before the command
// binds it. No address is handed out twice in a test run.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if _, taken := handedOut.LoadOrStore(addr, true); taken {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// runRole runs a role until the test ends; it must then stop cleanly.
func runRole(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out, errOut bytes.Buffer
	go func() { done <- Execute(ctx, args, &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%v: %v\n%s", args, err, errOut.String())
		}
	})
}

// TestIngestAndServeRoles: the two production roles, as separate commands
// against one Kafka cluster and one store folder.
func TestIngestAndServeRoles(t *testing.T) {
	def := pipeline.MustDefault()
	b, err := broker.Start(context.Background(), broker.Config{Addr: "127.0.0.1:0", Topics: def.Topics.All(), Partitions: 3}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir, ingestAddr, serveAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	write := func(name, httpAddr string) string {
		path := filepath.Join(dir, name)
		cfg := fmt.Sprintf("kafka: {brokers: [%q]}\nstore: {sqlite: {dir: %q}}\nhttp: {addr: %q}\nauth: {api_keys: {acme: key-acme}}\nlog: {level: warn}\n",
			b.Addr(), filepath.Join(dir, "data"), httpAddr)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	runRole(t, "ingest", "--config", write("ingest.yaml", ingestAddr))
	runRole(t, "serve", "--config", write("serve.yaml", serveAddr))

	prod := startProducer(t, b.Addr(), 3, 20)
	<-prod.done
	waitfor.True(t, time.Minute, "sessions served", func() bool {
		var l listResponse
		return get(t, "http://"+serveAddr+"/api/v1/sessions", "key-acme", &l) == http.StatusOK && l.Total > 0
	})
	for _, addr := range []string{ingestAddr, serveAddr} {
		waitfor.True(t, time.Minute, "ready "+addr, func() bool { return get(t, "http://"+addr+"/readyz", "", nil) == http.StatusOK })
	}
	if code := get(t, "http://"+ingestAddr+"/api/v1/sessions", "key-acme", nil); code != http.StatusNotFound {
		t.Fatalf("the ingest role serves the API: %d", code)
	}
}

// TestUpTakesTheConfigFile: up --config listens on the file's http.addr and
// keeps its data in the file's store.sqlite.dir (it used the flags'
// defaults, 127.0.0.1:8080 and ./data, whatever the file said), unless
// --http-addr or --data-dir is given.
func TestUpTakesTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	fileAddr, flagAddr := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "up.yaml")
	cfg := fmt.Sprintf("store: {sqlite: {dir: %q}}\nhttp: {addr: %q}\nauth: {api_keys: {acme: key-acme}}\nlog: {level: warn}\n",
		filepath.Join(dir, "from-file"), fileAddr)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		flags      []string
		addr, data string
	}{
		{"the file", nil, fileAddr, filepath.Join(dir, "from-file")},
		{"the flags", []string{"--http-addr", flagAddr, "--data-dir", filepath.Join(dir, "from-flag")}, flagAddr, filepath.Join(dir, "from-flag")},
	} {
		t.Run(c.name, func(t *testing.T) {
			runRole(t, append([]string{"up", "--config", path, "--kafka-addr", freeAddr(t)}, c.flags...)...)
			waitfor.True(t, 20*time.Second, "up answering on "+c.addr, func() bool {
				resp, err := http.Get("http://" + c.addr + "/healthz")
				if err != nil {
					return false // not listening yet, or not there
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
			if code := get(t, "http://"+c.addr+"/api/v1/sessions", "key-acme", nil); code != http.StatusOK {
				t.Errorf("the report API on %s: %d", c.addr, code)
			}
			if _, err := os.Stat(filepath.Join(c.data, "chatreport-v1.db")); err != nil {
				t.Errorf("the store is not in %s: %v", c.data, err)
			}
		})
	}
}

// TestUpOnTakenPorts: up on a port another program holds fails saying
// which flag moves it.
func TestUpOnTakenPorts(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	t.Setenv("CHATREPORT_API_KEYS", "acme=key-acme")
	for _, c := range []struct{ flag, other, want string }{
		{"--http-addr", "--kafka-addr", "listen for the API (--http-addr another free address)"},
		{"--kafka-addr", "--http-addr", "start embedded broker (--kafka-addr another free address)"},
	} {
		var out, errOut bytes.Buffer
		err := Execute(context.Background(), []string{"up", c.flag, taken.Addr().String(), c.other, freeAddr(t), "--data-dir", t.TempDir()}, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("up %s on a taken port: %v, want an error saying %q", c.flag, err, c.want)
		}
	}
}
