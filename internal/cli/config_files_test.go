package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
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
	for _, path := range []string{"../../deploy/config.compose.yaml", k8s} {
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
		"api: {cursor_key: cursor-secret}\nauth: {api_keys: {acme: key-secret}}\n"
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
