// Package metrics exposes keyq's Prometheus metrics: the state of the broker's queues,
// read at scrape time, and the counters and histograms that front doors and the
// durable log feed as they work (connections, request latency, fsync latency), with
// the Go runtime and process collectors beside them.
//
// Front doors hold a *Metrics and call ObserveRequest (or a RequestRecorder), ConnOpened,
// ConnClosed and ConnRefused; these calls do not allocate once a door and operation have been
// seen. A nil *Metrics is valid and records nothing, so a door built without metrics
// needs no checks.
package metrics

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyq/keyq/internal/broker"
)

// DefaultMaxQueueSeries is how many queues get their own series when Config leaves
// MaxQueueSeries unset.
const DefaultMaxQueueSeries = 100

// OtherQueue is the queue label of the series that add up every queue beyond the
// cap on per-queue series.
const OtherQueue = "_other"

// StatsSource is what the queue collector reads at scrape time; *broker.Broker is one.
type StatsSource interface {
	Stats(limit int) broker.Stats
}

// Config holds what Metrics are built with.
type Config struct {
	// Broker is read at each scrape for per-queue and server-wide series; nil leaves
	// them out.
	Broker StatsSource

	// MaxQueueSeries caps how many queues get series of their own: the first ones by
	// name, the rest summed under queue="_other". 0 means DefaultMaxQueueSeries; a
	// negative value gives every queue to "_other".
	MaxQueueSeries int

	// NoRuntime leaves out the Go runtime and process collectors (for tests that
	// compare whole scrapes).
	NoRuntime bool
}

// Metrics owns keyq's Prometheus registry and the series that front doors and the
// log update. Its methods may be called from any goroutine, and on a nil *Metrics.
type Metrics struct {
	reg *prometheus.Registry

	requests    *requestCollector      // door, op, result
	connections *prometheus.GaugeVec   // door
	accepted    *prometheus.CounterVec // door
	refused     *prometheus.CounterVec // door
	fsync       prometheus.Histogram
	fsyncErrors prometheus.Counter

	// series caches the resolved children of the vectors above, so that the hot
	// path neither hashes label values nor allocates. It is copied on write: readers
	// load it without a lock, writers hold seriesMu.
	series   atomic.Pointer[seriesCache]
	seriesMu sync.Mutex
}

// New builds the metrics and registers every collector on a fresh registry.
func New(cfg Config) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = newRequestCollector()
	m.connections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "keyq",
		Name:      "connections",
		Help:      "Open client connections, by front door.",
	}, []string{"door"})
	m.accepted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keyq",
		Name:      "connections_accepted_total",
		Help:      "Client connections accepted since start, by front door.",
	}, []string{"door"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keyq",
		Name:      "connections_refused_total",
		Help:      "Client connections refused over --max-conns since start, by front door.",
	}, []string{"door"})
	m.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "keyq",
		Name:      "fsync_duration_seconds",
		Help:      "Time of each fsync of the durable log.",
		Buckets:   prometheus.ExponentialBucketsRange(20e-6, 2, 16),
	})
	m.fsyncErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "keyq",
		Name:      "fsync_errors_total",
		Help:      "Fsyncs of the durable log that failed.",
	})
	m.series.Store(&seriesCache{})

	m.reg.MustRegister(m.requests, m.connections, m.accepted, m.refused, m.fsync,
		m.fsyncErrors)
	if cfg.Broker != nil {
		m.reg.MustRegister(newQueueCollector(cfg.Broker, cfg.MaxQueueSeries))
	}
	if !cfg.NoRuntime {
		m.reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	return m
}

// CollectQueues adds the series of src's queues and totals, read at each scrape,
// for a caller that builds Metrics before the broker exists (a log that reports its
// fsyncs here opens before the broker). maxSeries is read as Config.MaxQueueSeries.
// It fails if the queue series are already registered.
func (m *Metrics) CollectQueues(src StatsSource, maxSeries int) error {
	if err := m.reg.Register(newQueueCollector(src, maxSeries)); err != nil {
		return fmt.Errorf("register queue series: %w", err)
	}
	return nil
}

// Registry returns the registry behind Handler, for callers that add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg,
		EnableOpenMetrics: true,
	})
}
