package ingest

import (
	"math"
	"os"
	"runtime/debug"
)

// GCSettings are the garbage collector's settings for an ingester process:
// the GC percent (GOGC) and the soft memory limit (GOMEMLIMIT), which keeps
// the heap under the resident memory the ingester is allowed, collecting
// more often only when the heap nears it
// (https://go.dev/doc/gc-guide#Memory_limit).
type GCSettings struct {
	Percent int
	Limit   int64
}

// ElasticGC is the settings of an ingester that writes to Elasticsearch.
// Its live heap is small and steady (the store's memory of its keys) while
// it allocates a batch's worth of short-lived documents and buffers per
// batch: at Go's default (GOGC=100) the collector took 15–20 % of its CPU
// (docs/performance.md). A higher GOGC collects less often; the limit is
// more than twice the live heap of a full default cache: a limit near the
// live heap would make the collector run all the time.
var ElasticGC = GCSettings{Percent: 400, Limit: 448 << 20}

// SQLiteGC is the settings of an ingester that writes to SQLite, whose
// resident memory must stay under 256 MiB with 100,000 open sessions
// (docs/performance.md, "Held events encoded"): Go's default percent, and
// a limit that leaves room for SQLite's page cache (its C memory, which the
// limit does not count) and that is more than twice the live heap of a
// full default key-state cache (session.DefaultStateBudget) and the
// batches in flight. The budget: this limit (112 MiB) + the writer's page
// cache, ~2× its 32 MiB in RSS (sqlite's writerCacheKiB) + the rest of
// SQLite, the runtime and the binary: the memory scenario peaked at
// 224–227 MiB; a change that adds ~25 MiB to any of them misses the target.
var SQLiteGC = GCSettings{Percent: 100, Limit: 112 << 20}

// WithCache is d with a limit high enough for a key-state cache of budget
// bytes and inFlight batches stored at once: more than twice the budget
// plus 32 MiB of room per batch in flight (a batch of the default 4,000
// events, its documents and buffers; larger batches want a limit the
// operator sets, docs/operations.md), so that an operator's larger cache
// (store.elasticsearch.cache_mib) or more batches in flight do not keep
// the live heap at the limit, where the collector would run all the time.
// What the default limit already covers leaves d unchanged.
func (d GCSettings) WithCache(budget int64, inFlight int) GCSettings {
	d.Limit = max(d.Limit, 2*budget+int64(inFlight)*batchRoom)
	return d
}

// WithBatches is d with room for inFlight batches stored at once where
// d's limit has room for included of them: 32 MiB more per batch beyond
// those (SQLiteGC, whose limit counts the default two, with an operator's
// larger ingest.batches_in_flight).
func (d GCSettings) WithBatches(inFlight, included int) GCSettings {
	d.Limit += int64(max(inFlight-included, 0)) * batchRoom
	return d
}

// batchRoom is what a limit leaves per batch in flight: a batch of the
// default 4,000 events, its documents and buffers.
const batchRoom = 32 << 20

// SetGCDefaults applies d, each setting unless the environment sets it
// (GOGC, GOMEMLIMIT), as an operator's deployment may (deploy/kubernetes
// sets GOMEMLIMIT below the pod's memory limit). It returns the GC percent
// and the memory limit in effect.
func SetGCDefaults(d GCSettings) (percent int, limit int64) {
	percent = debug.SetGCPercent(-1)
	if _, set := os.LookupEnv("GOGC"); !set {
		percent = d.Percent
	}
	debug.SetGCPercent(percent)
	limit = debug.SetMemoryLimit(-1)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && limit == math.MaxInt64 {
		limit = d.Limit
		debug.SetMemoryLimit(limit)
	}
	return percent, limit
}
