package ingest

import (
	"math"
	"os"
	"runtime/debug"
)

// The garbage collector's settings for an ingester process that writes to
// Elasticsearch. Its live heap is small and steady (the store's memory of
// its keys) while it allocates a batch's worth of short-lived documents
// and buffers per batch: at Go's default (GOGC=100) the collector took
// 15–20 % of its CPU (docs/performance.md). A higher GOGC collects less
// often; the soft memory limit keeps the heap under the resident memory
// the ingester is allowed, collecting more often only when the heap nears
// it (https://go.dev/doc/gc-guide#Memory_limit). It is twice the live heap
// of a full default cache (400,000 events, ~530 bytes each): a limit near
// the live heap would make the collector run all the time.
const (
	ingestGCPercent   = 400
	ingestMemoryLimit = 448 << 20
)

// SetGCDefaults applies the Elasticsearch ingester's garbage-collector
// settings, each unless the environment sets it (GOGC, GOMEMLIMIT), as an
// operator's deployment may (deploy/kubernetes sets GOMEMLIMIT below the
// pod's memory limit). It returns the GC percent and the memory limit in
// effect. The SQLite ingester keeps Go's defaults: its resident memory is
// mostly SQLite's, and a larger Go heap would add to it.
func SetGCDefaults() (percent int, limit int64) {
	percent = debug.SetGCPercent(-1)
	if _, set := os.LookupEnv("GOGC"); !set {
		percent = ingestGCPercent
	}
	debug.SetGCPercent(percent)
	limit = debug.SetMemoryLimit(-1)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && limit == math.MaxInt64 {
		limit = ingestMemoryLimit
		debug.SetMemoryLimit(limit)
	}
	return percent, limit
}
