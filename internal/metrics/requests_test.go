package metrics

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestRequestSeriesMatchesPrometheusHistogram: the sharded series puts each
// duration in the bucket a client_golang histogram with the same bounds would, bounds
// themselves included, and sums the shards into the same count, sum and buckets.
func TestRequestSeriesMatchesPrometheusHistogram(t *testing.T) {
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ref", Buckets: requestBuckets,
	})
	s := newRequestSeries("native", "put", "ok")
	observe := func(shard uint64, d time.Duration) {
		s.observe(shard, d)
		ref.Observe(d.Seconds())
	}

	observe(0, 0)
	s.observe(1, -time.Second) // a clock that went back counts as 0
	ref.Observe(0)
	for i, bound := range requestBucketNanos {
		observe(uint64(i), time.Duration(bound))
		observe(uint64(i)+3, time.Duration(bound+1))
	}
	observe(5, time.Hour) // beyond the last bound
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10000 {
		observe(uint64(i), time.Duration(rng.Int64N(int64(40*time.Second))))
	}

	var want dto.Metric
	if err := ref.Write(&want); err != nil {
		t.Fatal(err)
	}
	count, sum, buckets := s.read()
	h := want.GetHistogram()
	if count != h.GetSampleCount() {
		t.Fatalf("count = %d, want %d", count, h.GetSampleCount())
	}
	if d := sum - h.GetSampleSum(); d > 1e-6 || d < -1e-6 {
		t.Errorf("sum = %v s, want %v", sum, h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		if got := buckets[b.GetUpperBound()]; got != b.GetCumulativeCount() {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), got,
				b.GetCumulativeCount())
		}
	}
}

// TestRequestShardsOwnTheirCacheLines: every shard of a series starts on a cache
// line and fills whole ones, so that two connections on different cores never
// write to one line (which would cost what sharding is there to save).
func TestRequestShardsOwnTheirCacheLines(t *testing.T) {
	if size := unsafe.Sizeof(requestShard{}); size%64 != 0 {
		t.Fatalf("a shard is %d bytes, not whole cache lines", size)
	}
	c := newRequestCollector()
	for range 10 {
		s := c.add("native", "put", "ok")
		if addr := uintptr(unsafe.Pointer(&s.shards[0])); addr%64 != 0 {
			t.Fatalf("a series' shards start at %#x, not on a cache line", addr)
		}
	}
}

// TestRequestSeriesReadWhileObserved: a scrape in the middle of observations always
// sees a histogram whose +Inf bucket is its count, and no count goes missing.
func TestRequestSeriesReadWhileObserved(t *testing.T) {
	s := newRequestCollector().add("native", "put", "ok")
	const workers, each = 4, 20000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				s.observe(uint64(w), time.Duration(i%7)*time.Millisecond)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()

	var last uint64
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		count, _, buckets := s.read()
		if top := buckets[requestBuckets[len(requestBuckets)-1]]; top > count {
			t.Fatalf("last bucket %d above count %d", top, count)
		}
		if count < last {
			t.Fatalf("count went from %d to %d", last, count)
		}
		last = count
	}
	if count, _, _ := s.read(); count != workers*each {
		t.Fatalf("count = %d, want %d", count, workers*each)
	}
}
