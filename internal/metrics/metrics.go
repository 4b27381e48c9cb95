// Package metrics exposes chatreport's Prometheus metrics: what the ingester
// consumed, stored and dead-lettered per topic, consumer lag per partition,
// store write latency and retries, Elasticsearch bulk requests and conflicts,
// assembler work, and API latency per route.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/session"
)

// Registry holds every chatreport metric.
type Registry struct {
	reg          *prometheus.Registry
	consumed     *prometheus.CounterVec
	stored       *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	truncated    *prometheus.CounterVec
	lost         *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	storeLatency prometheus.Histogram
	retries      *prometheus.CounterVec
	batches      prometheus.Counter
	httpDuration *prometheus.HistogramVec

	bulkLatency prometheus.Histogram
	bulkOps     prometheus.Counter
	bulkRetried prometheus.Counter
	conflicts   prometheus.Counter
}

var _ ingest.Observer = (*Registry)(nil)

// New returns a registry with the Go runtime and process collectors.
func New() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatreport_events_consumed_total", Help: "Kafka messages consumed and committed, per source topic.",
		}, []string{"topic"}),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatreport_events_indexed_total", Help: "Events the store accepted, per source topic.",
		}, []string{"topic"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatreport_events_dead_lettered_total", Help: "Events sent to the dead-letter topic, per source topic.",
		}, []string{"topic"}),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatreport_dead_letters_truncated_total", Help: "Dead letters written as a stub (reason, source, key, a prefix of the value) because the dead-letter topic refused the whole record, per source topic.",
		}, []string{"topic"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatreport_dead_letters_lost_total", Help: "Dead letters the dead-letter topic refused even as a stub, so not written (each is logged with its source offset), per source topic.",
		}, []string{"topic"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chatreport_consumer_lag", Help: "Messages in a partition after the last one committed.",
		}, []string{"topic", "partition"}),
		storeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chatreport_store_write_seconds", Help: "Duration of one batch write to the store, every version written, reads included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatreport_store_retries_total", Help: "Failed store or dead-letter writes, counted as they fail; each is retried.",
		}, []string{"what"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatreport_batches_total", Help: "Batches stored and committed.",
		}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chatreport_http_request_duration_seconds", Help: "API request latency per route and status.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method", "route", "status"}),
		bulkLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chatreport_elasticsearch_bulk_seconds", Help: "Duration of one Elasticsearch _bulk request.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		bulkOps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatreport_elasticsearch_bulk_operations_total", Help: "Operations sent in Elasticsearch _bulk requests, retries included.",
		}),
		bulkRetried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatreport_elasticsearch_bulk_retried_operations_total", Help: "Bulk operations sent again after a 429, a 5xx or a failed request.",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatreport_elasticsearch_conflicts_total", Help: "Updates run again because another writer claimed a session key they read, or holds it.",
		}),
	}
	r.reg.MustRegister(r.consumed, r.stored, r.deadLettered, r.truncated, r.lost, r.lag, r.storeLatency, r.retries, r.batches, r.httpDuration,
		r.bulkLatency, r.bulkOps, r.bulkRetried, r.conflicts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the metrics in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// ObserveBatch records a stored batch (its commit attempted: one whose
// commit failed and that is delivered again is recorded again).
func (r *Registry) ObserveBatch(b ingest.BatchStats) {
	for topic, t := range b.Topics {
		r.consumed.WithLabelValues(topic).Add(float64(t.Consumed))
		r.stored.WithLabelValues(topic).Add(float64(t.Stored))
		r.deadLettered.WithLabelValues(topic).Add(float64(t.DeadLettered))
		if t.Truncated > 0 {
			r.truncated.WithLabelValues(topic).Add(float64(t.Truncated))
		}
		if t.Lost > 0 {
			r.lost.WithLabelValues(topic).Add(float64(t.Lost))
		}
	}
	for _, l := range b.Lag {
		r.lag.WithLabelValues(l.Topic, strconv.Itoa(l.Partition)).Set(float64(l.Lag))
	}
	r.storeLatency.Observe(b.StoreLatency.Seconds())
	r.batches.Inc()
}

// ObserveBulk records one Elasticsearch _bulk request (elastic.Observer).
func (r *Registry) ObserveBulk(d time.Duration, ops, retried int) {
	r.bulkLatency.Observe(d.Seconds())
	r.bulkOps.Add(float64(ops))
	r.bulkRetried.Add(float64(retried))
}

// ObserveConflict records an Elasticsearch update run again after a
// concurrent change (elastic.Observer).
func (r *Registry) ObserveConflict() { r.conflicts.Inc() }

// AssemblerWatch is anything that reports assembler work.
type AssemblerWatch interface {
	Stats() session.AssemblerStats
}

// ObserveRetry counts a failed write that will be retried.
func (r *Registry) ObserveRetry(what string) { r.retries.WithLabelValues(what).Inc() }

// WatchAssembler exports the assembler's work counters, and the key states
// held in memory that were lost.
func (r *Registry) WatchAssembler(a AssemblerWatch) {
	r.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "chatreport_held_states_lost_total",
			Help: "Key states held in memory that did not decode (a defect); each key was read from the store instead.",
		}, func() float64 { return float64(session.HeldStatesLost()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "chatreport_assembler_keys_total", Help: "Session keys recomputed by the assembler.",
		}, func() float64 { return float64(a.Stats().Keys) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "chatreport_assembler_reread_events_total",
			Help: "Stored events read back to recompute sessions; the assembler holds no state between batches.",
		}, func() float64 { return float64(a.Stats().Reread) }),
	)
}

// ObserveRequest records one API request.
func (r *Registry) ObserveRequest(method, route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	r.httpDuration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
}
