package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatreport/chatreport/internal/bench"
)

// childEnv makes the test binary a helper process of the bench, as
// `chatreport-bench child` is for the command: its value is RunChild's
// argument.
const childEnv = "CHATREPORT_BENCH_TEST_CHILD"

func TestMain(m *testing.M) {
	if arg, ok := os.LookupEnv(childEnv); ok {
		if err := bench.RunChild(context.Background(), arg, os.Stdin, os.Stdout, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// child starts this test binary as a helper process of the bench.
func child(ctx context.Context, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+args[0])
	return cmd
}

// TestRunQueryOnlyNoPacking: a run without the export scenario does not
// wait for the store's packer (which would pack and grow its copy first).
func TestRunQueryOnlyNoPacking(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{
		Sessions: 120, QueryRuns: 2, Only: []string{bench.ScenarioQuery},
		DataDir: t.TempDir(), ProfileDir: "", Child: child,
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := res.Value(bench.ScenarioQuery, "p95, worst kind"); !ok || v <= 0 {
		t.Fatalf("query p95 = %v (measured %t)", v, ok)
	}
	if _, ok := res.Value(bench.ScenarioExport, "event packs: first pass after opening"); ok {
		t.Fatal("a query-only run waited for the packer")
	}
}

// TestRunSmall runs every scenario at tiny sizes, the ingesters, the
// Elasticsearch stand-in and the memory scenario's ingester in processes
// of their own: the wiring works and every targeted figure is measured.
// The figures themselves mean nothing at this size.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{
		Events: 5000, Sessions: 120, ExportSessions: 100, OpenSessions: 10, QueryRuns: 2,
		DataDir: t.TempDir(), ProfileDir: t.TempDir(), Child: child,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.NotRun) > 0 {
		t.Errorf("not run: %+v", res.NotRun)
	}
	for _, want := range []struct{ scenario, figure string }{
		{bench.ScenarioConsumer, "sustained rate"},
		{bench.ScenarioQuery, "p95, worst kind"},
		{bench.ScenarioQuery, "p99, worst kind"},
		{bench.ScenarioFullText, "p95, worst kind"},
		{bench.ScenarioFullText, "full-text index: first merge pass after opening"},
		{bench.ScenarioExport, "export rate"},
		{bench.ScenarioExport, "peak heap growth over a tenth-size export"},
		{bench.ScenarioExport, "event packs: first pass after opening"},
		{bench.ScenarioMemory, "peak RSS of the ingester (VmHWM)"},
	} {
		if v, ok := res.Value(want.scenario, want.figure); !ok || v <= 0 {
			t.Errorf("%s / %s = %v (measured %t)", want.scenario, want.figure, v, ok)
		}
	}
	phases := []string{bench.PhaseFresh, bench.PhaseCold, bench.PhaseSteady, bench.PhaseLate}
	for _, scenario := range []string{bench.ScenarioIngestSQLite, bench.ScenarioIngestElastic} {
		for _, phase := range phases {
			for _, figure := range []string{"sustained rate", "CPU time per 1,000 events", "cores used", "broker CPU time per 1,000 events"} {
				if v, ok := res.PhaseValue(scenario, phase, figure); !ok || v <= 0 {
					t.Errorf("%s/%s / %s = %v (measured %t)", scenario, phase, figure, v, ok)
				}
			}
		}
	}
	es := func(phase, figure string) float64 {
		v, ok := res.PhaseValue(bench.ScenarioIngestElastic, phase, figure)
		if !ok {
			t.Errorf("%s / %s not measured", phase, figure)
		}
		return v
	}
	for _, phase := range phases {
		if es(phase, "_bulk requests per batch") < 3 || es(phase, "bulk body bytes per event") <= 0 || es(phase, "stand-in CPU time per 1,000 events") <= 0 {
			t.Errorf("%s: the Elasticsearch figures of writing are missing", phase)
		}
	}
	// After the restart every key is read back, with its stored state; in
	// steady state none is.
	if es(bench.PhaseCold, "_mget requests per batch") < 2 || es(bench.PhaseCold, "bytes read back per event") <= 0 {
		t.Errorf("cold start: keys not read back: %v _mget per batch, %v bytes per event",
			es(bench.PhaseCold, "_mget requests per batch"), es(bench.PhaseCold, "bytes read back per event"))
	}
	if v, ok := res.PhaseValue(bench.ScenarioIngestElastic, bench.PhaseSteady, "_mget requests per batch"); ok && v > 0 {
		t.Errorf("steady state: %v _mget requests per batch, want none", v)
	}
	for _, name := range []string{"ingest-elastic-cold", "ingest-sqlite-steady", "ingest-elastic-standin", "memory"} {
		if st, err := os.Stat(res.Profiles[name]); err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v (%v)", name, err, res.Profiles)
		}
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ingest-sqlite/steady", "ingest-elastic/cold", ">= 50,000", ">= 150,000"} {
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
	for _, bad := range []bench.Config{
		{ElasticLatency: -time.Millisecond},
		{LateShare: 1},
		{LateShare: -0.1},
	} {
		bad.Defaults()
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
	ok := bench.Config{ElasticLatency: time.Millisecond}
	ok.Defaults()
	if err := ok.Validate(); err != nil || ok.LateShare != 0.05 {
		t.Errorf("Validate = %v, late share %v", err, ok.LateShare)
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{1234567.8: "1,234,568", 150000: "150,000", 256: "256", 42.25: "42.2", 0.125: "0.12", -2500: "-2,500"} {
		if got := bench.FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %q, want %q", v, got, want)
		}
	}
}
