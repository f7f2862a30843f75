package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyq/keyq/internal/broker"
)

// queueCollector turns a broker.Stats snapshot, taken at scrape time, into series, so
// puts and gets pay nothing for metrics. Queues beyond the cap, in name order, are
// summed under queue="_other".
type queueCollector struct {
	source    StatsSource
	maxSeries int

	messages, bytes, puts, gets, acks, nacks, waiting, oldestAge *prometheus.Desc
	inflight, deferred, expired, deadLettered, dropped           *prometheus.Desc

	queues, overflow, totalMessages, totalBytes *prometheus.Desc
	totalPuts, totalGets, emptyGets, blocked    *prometheus.Desc
	totalAcks, totalNacks                       *prometheus.Desc
	totalInflight, totalDeferred                *prometheus.Desc
	cacheBytes                                  *prometheus.Desc
	heldBytes, maxMemory                        *prometheus.Desc
}

func newQueueCollector(source StatsSource, maxSeries int) *queueCollector {
	if maxSeries == 0 {
		maxSeries = DefaultMaxQueueSeries
	}
	perQueue := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("keyq_queue_"+name, help, []string{"queue"}, nil)
	}
	server := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("keyq_"+name, help, nil, nil)
	}
	return &queueCollector{
		source:    source,
		maxSeries: maxSeries,

		messages: perQueue("messages", "Messages in the queue."),
		bytes:    perQueue("bytes", "Payload bytes of the messages in the queue."),
		puts:     perQueue("puts_total", "Messages put since the queue was created."),
		gets:     perQueue("gets_total", "Messages taken since the queue was created."),
		acks:     perQueue("acks_total", "Deliveries acknowledged since the queue was created."),
		nacks:    perQueue("nacks_total", "Deliveries given back by their consumer."),
		waiting:  perQueue("waiting", "Gets and reserves blocked on the queue."),
		oldestAge: perQueue("oldest_message_age_seconds",
			"How long ago, at least, the message at the head of the queue was put "+
				"(to within a second; 0 when empty)."),
		inflight: perQueue("inflight", "Messages under a lease: delivered, not yet acked."),
		deferred: perQueue("deferred", "Messages put with a delay that is not over yet."),
		expired: perQueue("expired_total",
			"Messages whose TTL ran out, dropped or dead-lettered."),
		deadLettered: perQueue("dead_lettered_total",
			"Messages moved from the queue to its dead-letter queue."),
		dropped: perQueue("dropped_total",
			"Messages dropped from the head of the full queue (overflow drop-oldest)."),

		queues:        server("queues", "Queues in the table."),
		overflow:      server("queues_other", "Queues summed under queue=\"_other\"."),
		totalMessages: server("messages", "Messages in all queues."),
		totalBytes:    server("bytes", "Payload bytes in all queues."),
		totalPuts:     server("puts_total", "Messages put since start."),
		totalGets:     server("gets_total", "Messages taken since start."),
		totalAcks:     server("acks_total", "Deliveries acknowledged since start."),
		totalNacks:    server("nacks_total", "Deliveries given back since start."),
		emptyGets:     server("empty_gets_total", "Gets that found no message."),
		blocked:       server("waiting", "Gets and reserves blocked on any queue."),
		totalInflight: server("inflight", "Messages under a lease in all queues."),
		totalDeferred: server("deferred", "Messages waiting for their delay in all queues."),
		cacheBytes:    server("cache_bytes", "Payload bytes kept in memory that the log also has."),
		heldBytes: server("held_bytes", "What counts toward --max-memory: payloads, 64 "+
			"bytes per message and room reserved by busy queues (0 without a limit)."),
		maxMemory: server("max_memory_bytes", "The limit on held bytes past which puts "+
			"are refused (--max-memory); 0 for none."),
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.messages, c.bytes, c.puts, c.gets, c.acks, c.nacks, c.waiting, c.oldestAge,
		c.inflight, c.deferred, c.expired, c.deadLettered, c.dropped,
		c.queues, c.overflow, c.totalMessages, c.totalBytes,
		c.totalPuts, c.totalGets, c.emptyGets, c.blocked, c.cacheBytes,
		c.heldBytes, c.maxMemory,
		c.totalAcks, c.totalNacks, c.totalInflight, c.totalDeferred,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.source.Stats(0)

	var other broker.QueueStats
	overflow := 0
	own := 0
	for _, qs := range s.QueueStats {
		// A queue really named "_other" is summed there too: it must not clash with
		// the aggregate's series.
		if own >= c.maxSeries || qs.Name == OtherQueue {
			addQueueStats(&other, qs)
			overflow++
			continue
		}
		own++
		c.collectQueue(ch, qs.Name, qs)
	}
	if overflow > 0 {
		c.collectQueue(ch, OtherQueue, other)
	}

	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.queues, float64(s.Queues))
	gauge(c.overflow, float64(overflow))
	gauge(c.totalMessages, float64(s.Messages))
	gauge(c.totalBytes, float64(s.Bytes))
	counter(c.totalPuts, s.Puts)
	counter(c.totalGets, s.Gets)
	counter(c.totalAcks, s.Acks)
	counter(c.totalNacks, s.Nacks)
	counter(c.emptyGets, s.EmptyGets)
	gauge(c.blocked, float64(s.Waiting))
	gauge(c.totalInflight, float64(s.Inflight))
	gauge(c.totalDeferred, float64(s.Deferred))
	gauge(c.cacheBytes, float64(s.CacheUsed))
	gauge(c.heldBytes, float64(s.HeldBytes))
	gauge(c.maxMemory, float64(s.MaxHeld))
}

func (c *queueCollector) collectQueue(ch chan<- prometheus.Metric, label string,
	qs broker.QueueStats) {
	metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
		ch <- prometheus.MustNewConstMetric(d, t, v, label)
	}
	metric(c.messages, prometheus.GaugeValue, float64(qs.Messages))
	metric(c.bytes, prometheus.GaugeValue, float64(qs.Bytes))
	metric(c.puts, prometheus.CounterValue, float64(qs.Puts))
	metric(c.gets, prometheus.CounterValue, float64(qs.Gets))
	metric(c.acks, prometheus.CounterValue, float64(qs.Acks))
	metric(c.nacks, prometheus.CounterValue, float64(qs.Nacks))
	metric(c.waiting, prometheus.GaugeValue, float64(qs.Waiting))
	metric(c.oldestAge, prometheus.GaugeValue, qs.OldestAge.Seconds())
	metric(c.inflight, prometheus.GaugeValue, float64(qs.Inflight))
	metric(c.deferred, prometheus.GaugeValue, float64(qs.Deferred))
	metric(c.expired, prometheus.CounterValue, float64(qs.Expired))
	metric(c.deadLettered, prometheus.CounterValue, float64(qs.DeadLettered))
	metric(c.dropped, prometheus.CounterValue, float64(qs.Dropped))
}

func addQueueStats(sum *broker.QueueStats, qs broker.QueueStats) {
	sum.Messages += qs.Messages
	sum.Bytes += qs.Bytes
	sum.Puts += qs.Puts
	sum.Gets += qs.Gets
	sum.Acks += qs.Acks
	sum.Nacks += qs.Nacks
	sum.Waiting += qs.Waiting
	sum.Inflight += qs.Inflight
	sum.Deferred += qs.Deferred
	sum.Expired += qs.Expired
	sum.DeadLettered += qs.DeadLettered
	sum.Dropped += qs.Dropped
	sum.OldestAge = max(sum.OldestAge, qs.OldestAge) // the oldest of them all
}
