package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/chatreport/chatreport/internal/config"
)

// TestShippedConfigsAreValid: the configuration files deploy/ ships pass
// --check-config, so docker compose and the Kubernetes manifests start.
func TestShippedConfigsAreValid(t *testing.T) {
	var manifest struct {
		Data map[string]string `yaml:"data"`
	}
	raw, err := os.ReadFile("../../deploy/kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	k8s := filepath.Join(t.TempDir(), "k8s.yaml")
	if err := os.WriteFile(k8s, []byte(manifest.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	// The serve Deployment takes API keys from the Secret, as
	// CHATREPORT_API_KEYS (the compose file has its own).
	var secret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	if raw, err = os.ReadFile("../../deploy/kubernetes/secret.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &secret); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"../../deploy/config.compose.yaml", k8s} {
		t.Setenv(config.EnvAPIKeys, "")
		if path == k8s {
			t.Setenv(config.EnvAPIKeys, secret.StringData[config.EnvAPIKeys])
		}
		for _, role := range []string{"ingest", "serve"} {
			var out, errOut bytes.Buffer
			err := Execute(context.Background(), []string{role, "--config", path, "--check-config"}, &out, &errOut)
			if err != nil || !strings.Contains(out.String(), "configuration is valid") {
				t.Errorf("%s %s: %v\n%s%s", role, path, err, out.String(), errOut.String())
			}
		}
	}
}

// TestCheckConfigHidesSecrets: --check-config prints no credential.
func TestCheckConfigHidesSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	cfg := "store: {kind: elasticsearch, elasticsearch: {urls: [http://es:9200], password: pw-secret, api_key: es-key-secret}}\n" +
		"api: {cursor_key: cursor-secret}\nauth: {api_keys: {acme: key-secret}}\nlog: {ref_key: reference-key-secret}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHATREPORT_JWT_HS256_SECRET", "jwt-secret-jwt-secret-jwt-secret-123")
	var out, errOut bytes.Buffer
	if err := Execute(context.Background(), []string{"serve", "--config", path, "--check-config"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if strings.Contains(out.String(), "-secret") {
		t.Fatalf("--check-config printed a secret:\n%s", out.String())
	}
}

// TestCheckConfigRefusesWhatTheStartRefuses: without credentials, serve and
// up (without --demo) refuse to start, and --check-config refuses the same
// configuration with the same message instead of calling it valid; with a
// key, or with --demo (which makes one), --check-config accepts it; ingest
// serves no API and needs none.
func TestCheckConfigRefusesWhatTheStartRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("store: {sqlite: {dir: "+filepath.Join(dir, "data")+"}}\nlog: {level: warn}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const refusal = "the report API has no credentials to accept: set auth.api_keys or auth.api_key_hashes in the configuration, CHATREPORT_API_KEYS=tenant=key in the environment, or auth.jwt"
	// Never listened on: every case ends before.
	addrs := []string{"--http-addr", "127.0.0.1:1", "--kafka-addr", "127.0.0.1:1"}
	for _, c := range []struct {
		keys string
		args []string
		want string // "" when it is valid
	}{
		{"", []string{"serve", "--check-config"}, refusal},
		{"", []string{"serve"}, refusal},
		{"", append([]string{"up", "--check-config"}, addrs...), refusal},
		{"", append([]string{"up"}, addrs...), refusal},
		{"", append([]string{"up", "--demo", "--check-config"}, addrs...), ""},
		{"", []string{"ingest", "--check-config"}, ""},
		{"acme=k1", []string{"serve", "--check-config"}, ""},
		{"acme=k1", append([]string{"up", "--check-config"}, addrs...), ""},
	} {
		t.Setenv(config.EnvAPIKeys, c.keys)
		var out, errOut bytes.Buffer
		err := Execute(t.Context(), append(c.args, "--config", path), &out, &errOut)
		switch {
		case c.want == "" && (err != nil || !strings.Contains(out.String(), "configuration is valid")):
			t.Errorf("keys %q, chatreport %v: %v\n%s%s; want it valid", c.keys, c.args, err, out.String(), errOut.String())
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("keys %q, chatreport %v: %v; want %q", c.keys, c.args, err, c.want)
		case c.want != "" && strings.Contains(out.String(), "valid"):
			t.Errorf("keys %q, chatreport %v printed %q", c.keys, c.args, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("a refused start created the data folder")
	}
	// JWT keys the API would refuse at start: refused by the check too.
	t.Setenv(config.EnvAPIKeys, "")
	badPEM, short := filepath.Join(dir, "key.pem"), filepath.Join(dir, "secret")
	if err := errors.Join(os.WriteFile(badPEM, []byte("not a key"), 0o600), os.WriteFile(short, []byte("short"), 0o600)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ jwt, want string }{
		{"{hs256_secret_file: " + short + "}", "the JWT HS256 secret must have at least 32 bytes"},
		{"{rs256_public_key_file: " + badPEM + "}", "the JWT RS256 public key"},
	} {
		jwtPath := filepath.Join(dir, "jwt.yaml")
		if err := os.WriteFile(jwtPath, []byte("store: {sqlite: {dir: "+filepath.Join(dir, "data")+"}}\nlog: {level: warn}\napi: {cursor_key: 0123456789abcdef0123456789abcdef}\nauth: {jwt: "+c.jwt+"}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		err := Execute(t.Context(), []string{"serve", "--check-config", "--config", jwtPath}, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve --check-config with auth.jwt %s: %v\n%s; want %q", c.jwt, err, out.String(), c.want)
		}
	}
}

// TestCIRunsTheREADMECommand: .ci/run ends with exactly the test command
// the README gives, so what a developer runs is what CI runs.
func TestCIRunsTheREADMECommand(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var command string
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(l, "go vet ") {
			command = l
		}
	}
	lines := strings.Split(strings.TrimSpace(string(ci)), "\n")
	if last := lines[len(lines)-1]; command == "" || last != command {
		t.Fatalf(".ci/run runs\n%s\nthe README says\n%s", last, command)
	}
	if !strings.Contains(command, "-race") || !strings.Contains(command, "-timeout") {
		t.Fatalf("the test command runs no race detector or has no timeout: %s", command)
	}
}
