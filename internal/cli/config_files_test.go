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
