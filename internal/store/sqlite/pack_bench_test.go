package sqlite

import (
	"maps"
	"os"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPackSweep measures a sweep of the database named by
// CHATREPORT_PACK_DB (a copy: Open migrates it), whose sessions are packed:
// "full" is the first sweep after Open (no marks), "steady" a sweep after
// it (from the mark, nothing new). cpu-ms/op is the process's user and
// system CPU per sweep (getrusage), which survives a shared machine's noise
// better than the time; rowids/op the rowids a sweep visits.
func BenchmarkPackSweep(b *testing.B) {
	path := os.Getenv("CHATREPORT_PACK_DB")
	if path == "" {
		b.Skip("CHATREPORT_PACK_DB names no database")
	}
	s, err := Open(b.Context(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var first packMarks
	sweepWith(b, s, &first)
	for _, bc := range []struct {
		name  string
		marks func() packMarks
	}{
		{"full", func() packMarks { return packMarks{} }},
		{"steady", func() packMarks { m := first; m.waiting = maps.Clone(first.waiting); m.visited = 0; return m }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var cpu time.Duration
			var visited int64
			for b.Loop() {
				m := bc.marks()
				before := cpuTime(b)
				sweepWith(b, s, &m)
				cpu += cpuTime(b) - before
				visited += m.visited
			}
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(visited)/float64(b.N), "rowids/op")
		})
	}
}

// cpuTime is the process's user and system CPU so far.
func cpuTime(tb testing.TB) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
