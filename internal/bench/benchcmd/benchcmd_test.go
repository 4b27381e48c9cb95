package benchcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain makes the test binary chatreport-bench when the command starts
// it as its helper process ("child"), as the real binary is.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		if err := Execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCommandRunsIngestInAChild: the command starts its ingester in a
// process of its own (this binary, as "child") and writes the results as
// JSON with every figure of the scenario.
func TestCommandRunsIngestInAChild(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "results.json")
	var stdout, stderr bytes.Buffer
	err := Execute(t.Context(), []string{"--only", "ingest-elastic", "--events", "2000",
		"--profile-dir", "", "--data-dir", dir, "--out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Figures []struct {
			Scenario, Phase, Figure string
			Value                   float64
		}
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	rates := map[string]float64{}
	for _, f := range res.Figures {
		if f.Figure == "sustained rate" {
			rates[f.Scenario+"/"+f.Phase] = f.Value
		}
	}
	for _, phase := range []string{"fresh", "cold", "steady", "late"} {
		if rates["ingest-elastic/"+phase] <= 0 {
			t.Errorf("no rate for phase %s: %s", phase, raw)
		}
	}
	if !bytes.Contains(stdout.Bytes(), []byte("ingest-elastic/steady")) {
		t.Errorf("no table on stdout:\n%s", stdout.String())
	}
}
