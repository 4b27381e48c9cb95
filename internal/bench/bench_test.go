package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatreport/chatreport/internal/bench"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunSmall runs every scenario that runs in-process at tiny sizes: the
// wiring works and every targeted figure is measured. The figures
// themselves mean nothing at this size.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{
		Events: 5000, Sessions: 120, ExportSessions: 100, OpenSessions: 10, QueryRuns: 2,
		DataDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ scenario, figure string }{
		{bench.ScenarioConsumer, "sustained rate"},
		{bench.ScenarioIngestSQLite, "sustained rate"},
		{bench.ScenarioIngestSQLite, "fraction of the consumer ceiling"},
		{bench.ScenarioIngestElastic, "sustained rate"},
		{bench.ScenarioIngestElastic, "HTTP requests per batch"},
		{bench.ScenarioQuery, "p95, worst kind"},
		{bench.ScenarioQuery, "p99, worst kind"},
		{bench.ScenarioFullText, "p95, worst kind"},
		{bench.ScenarioExport, "export rate"},
		{bench.ScenarioExport, "peak heap growth over a tenth-size export"},
	} {
		if v, ok := res.Value(want.scenario, want.figure); !ok || v <= 0 {
			t.Errorf("%s / %s = %v (measured %t)", want.scenario, want.figure, v, ok)
		}
	}
	// Without a way to start its own process, the memory scenario says so.
	if len(res.NotRun) != 1 || res.NotRun[0].Scenario != bench.ScenarioMemory {
		t.Errorf("not run: %+v", res.NotRun)
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ingest-sqlite", ">= 50,000", "not run: memory"} {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, table.String())
		}
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := bench.Config{Only: []string{"ingest", "query"}}
	c.Defaults()
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `unknown scenario "ingest"`) {
		t.Errorf("Validate = %v", err)
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{1234567.8: "1,234,568", 150000: "150,000", 256: "256", 42.25: "42.2", 0.125: "0.12", -2500: "-2,500"} {
		if got := bench.FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %q, want %q", v, got, want)
		}
	}
}
