package ingest

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// TestSetGCDefaults: the ingester's settings apply unless the environment
// set its own, which stay as the runtime read them.
func TestSetGCDefaults(t *testing.T) {
	percent, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(percent)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
	for _, tc := range []struct {
		name        string
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{"nothing set", nil, ElasticGC.Percent, ElasticGC.Limit},
		{"GOGC set", map[string]string{"GOGC": "150"}, 150, ElasticGC.Limit},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "450MiB"}, ElasticGC.Percent, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What the runtime would have read from the environment.
			debug.SetGCPercent(150)
			debug.SetMemoryLimit(math.MaxInt64)
			for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
				t.Setenv(k, "") // restored after the subtest
				if v, ok := tc.env[k]; ok {
					t.Setenv(k, v)
				} else {
					os.Unsetenv(k)
				}
			}
			gotPercent, gotLimit := SetGCDefaults(ElasticGC)
			if gotPercent != tc.wantPercent || gotLimit != tc.wantLimit {
				t.Errorf("SetGCDefaults() = %d, %d; want %d, %d", gotPercent, gotLimit, tc.wantPercent, tc.wantLimit)
			}
			if p := debug.SetGCPercent(-1); p != tc.wantPercent {
				t.Errorf("GC percent in effect %d, want %d", p, tc.wantPercent)
			}
			if l := debug.SetMemoryLimit(-1); l != tc.wantLimit {
				t.Errorf("memory limit in effect %d, want %d", l, tc.wantLimit)
			}
		})
	}
}

func TestGCSettingsWithCache(t *testing.T) {
	for _, tc := range []struct {
		budget   int64
		inFlight int
		want     int64
	}{
		{0, 2, ElasticGC.Limit},
		{128 << 20, 4, ElasticGC.Limit}, // the default cache, four in flight: the default limit
		{400 << 20, 2, 864 << 20},       // twice the budget and room for batches
		{400 << 20, 4, 928 << 20},
		{128 << 20, 8, 512 << 20}, // the defaults (config.ElasticsearchInFlight)
	} {
		if got := ElasticGC.WithCache(tc.budget, tc.inFlight); got.Limit != tc.want || got.Percent != ElasticGC.Percent {
			t.Errorf("WithCache(%d MiB, %d in flight) = %+v, want limit %d MiB", tc.budget>>20, tc.inFlight, got, tc.want>>20)
		}
	}
}

func TestGCSettingsWithBatches(t *testing.T) {
	for _, tc := range []struct {
		inFlight, included int
		want               int64
	}{
		{2, 2, SQLiteGC.Limit}, // the SQLite defaults (config.SQLiteInFlight)
		{1, 2, SQLiteGC.Limit},
		{4, 2, SQLiteGC.Limit + 64<<20},
		{8, 2, SQLiteGC.Limit + 192<<20},
	} {
		if got := SQLiteGC.WithBatches(tc.inFlight, tc.included); got.Limit != tc.want || got.Percent != SQLiteGC.Percent {
			t.Errorf("WithBatches(%d, %d) = %+v, want limit %d MiB", tc.inFlight, tc.included, got, tc.want>>20)
		}
	}
}
