package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/metrics"
)

// metricsOptions are serve's flags of the one *metrics.Metrics that every front
// door records into, the durable log reports its fsyncs to, and the HTTP door
// serves on /metrics.
type metricsOptions struct {
	maxQueues int64
}

func (o *metricsOptions) addFlags(fs *pflag.FlagSet) {
	// A negative count is refused while the command line is parsed: a usage error.
	countFlag(fs, &o.maxQueues, "metrics-max-queues", metrics.DefaultMaxQueueSeries, 0,
		`queues with series of their own in /metrics; the rest are summed as queue="_other"`)
}

// metricsUser is a front door that records its connections and requests in the
// shared metrics (or, for HTTP, serves them too). serve hands them over before it
// starts the door.
type metricsUser interface {
	useMetrics(m *metrics.Metrics)
}

// fsyncReporter is a storage backend whose log can report each fsync.
type fsyncReporter interface {
	reportFsyncs(fn func(d time.Duration, err error))
}

// newMetrics builds the metrics of one serve and hands them to every door and the
// storage backend that take them. The queue series come later, from collectQueues,
// since the broker opens after the log.
func (o *metricsOptions) newMetrics(opts *serveOptions) (*metrics.Metrics, error) {
	m := metrics.New(metrics.Config{})
	if r, ok := opts.storage.(fsyncReporter); ok {
		r.reportFsyncs(m.ObserveFsync)
	}
	for _, d := range append([]frontDoor{&opts.native}, opts.doors...) {
		if u, ok := d.(metricsUser); ok {
			u.useMetrics(m)
		}
	}
	return m, nil
}

// collectQueues adds the series of b's queues to m.
func (o *metricsOptions) collectQueues(m *metrics.Metrics, b *broker.Broker) error {
	maxSeries := int(o.maxQueues)
	if maxSeries == 0 {
		maxSeries = -1 // metrics reads 0 as its default; the flag's 0 means none
	}
	return m.CollectQueues(b, maxSeries)
}
