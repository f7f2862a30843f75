package metrics

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// requestShards is how many copies of its counters each request series keeps. A
// door passes a shard number that stays the same for one connection, so requests
// served at once on different cores mostly write to different cache lines: one
// shared Prometheus histogram costs ten times as much per observation once two
// cores update it (58 ns against 10 ns per Observe on this project's 2-core
// machines), about an eighth of the server's CPU per pipelined request.
const requestShards = 16

// numRequestBuckets is the number of bounds of keyq_request_duration_seconds.
const numRequestBuckets = 20

// requestBuckets are the upper bounds, in seconds, of keyq_request_duration_seconds.
var requestBuckets = prometheus.ExponentialBucketsRange(50e-6, 30, numRequestBuckets)

// requestBucketNanos are requestBuckets in nanoseconds: a duration of d ns falls in
// the first bucket whose bound is at least d.
var requestBucketNanos = func() [numRequestBuckets]int64 {
	var ns [numRequestBuckets]int64
	for i, b := range requestBuckets {
		ns[i] = int64(math.Floor(b * 1e9))
	}
	return ns
}()

// requestShard is one copy of a series' counters, padded to whole cache lines so
// that two shards never share one.
type requestShard struct {
	// buckets counts the observations in each bucket (not cumulative), +Inf last.
	buckets [numRequestBuckets + 1]atomic.Uint64
	nanos   atomic.Uint64 // the sum of the observed durations
	_       [64 - (numRequestBuckets+2)*8%64]byte
}

// requestSeries is one series of keyq_request_duration_seconds: a door, an
// operation and a result. Its shards are an allocation of their own, which holds
// no pointers and so starts on a cache line (an object with pointers this large
// starts with the allocator's 8-byte header), as then does each shard
// (TestRequestShardsOwnTheirCacheLines).
type requestSeries struct {
	shards           *[requestShards]requestShard
	door, op, result string
}

func newRequestSeries(door, op, result string) *requestSeries {
	return &requestSeries{shards: new([requestShards]requestShard), door: door, op: op,
		result: result}
}

// observe records one request that took d, into shard's counters.
func (s *requestSeries) observe(shard uint64, d time.Duration) {
	ns := max(int64(d), 0)
	i := 0
	for i < numRequestBuckets && ns > requestBucketNanos[i] {
		i++
	}
	sh := &s.shards[shard%requestShards]
	sh.buckets[i].Add(1)
	sh.nanos.Add(uint64(ns))
}

// read sums the shards into a histogram's count, sum in seconds and cumulative
// bucket counts. The count is the buckets' total, so the +Inf bucket equals it
// however observations interleave with the read.
func (s *requestSeries) read() (count uint64, sum float64, buckets map[float64]uint64) {
	var perBucket [numRequestBuckets + 1]uint64
	var nanos uint64
	for i := range s.shards {
		sh := &s.shards[i]
		for j := range perBucket {
			perBucket[j] += sh.buckets[j].Load()
		}
		nanos += sh.nanos.Load()
	}

	buckets = make(map[float64]uint64, numRequestBuckets)
	for j, bound := range requestBuckets {
		count += perBucket[j]
		buckets[bound] = count
	}
	count += perBucket[numRequestBuckets]
	return count, float64(nanos) / 1e9, buckets
}

// requestCollector exposes the request series as const histograms at each scrape.
type requestCollector struct {
	desc *prometheus.Desc

	mu     sync.Mutex // protects series
	series []*requestSeries
}

func newRequestCollector() *requestCollector {
	return &requestCollector{desc: prometheus.NewDesc(
		"keyq_request_duration_seconds",
		"Time to serve one request, by front door, operation and result.",
		[]string{"door", "op", "result"}, nil)}
}

// add makes the series of door, op and result, and exposes it from the next scrape.
func (c *requestCollector) add(door, op, result string) *requestSeries {
	s := newRequestSeries(door, op, result)
	c.mu.Lock()
	c.series = append(c.series, s)
	c.mu.Unlock()
	return s
}

// Describe implements prometheus.Collector.
func (c *requestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *requestCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	series := c.series
	c.mu.Unlock()

	for _, s := range series {
		count, sum, buckets := s.read()
		ch <- prometheus.MustNewConstHistogram(c.desc, count, sum, buckets,
			s.door, s.op, s.result)
	}
}
