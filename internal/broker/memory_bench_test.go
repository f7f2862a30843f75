package broker

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"testing"
)

// benchDeep adds a 1e7-message depth to BenchmarkPutGetAtDepth. It is off by default:
// filling the queue takes a few seconds and about 2 GB of memory.
var benchDeep = flag.Bool("bench.deep", false, "also run BenchmarkPutGetAtDepth at 1e7")

// benchMaxHeld sets Config.MaxHeldBytes in the put/get benchmarks, to measure what
// counting the held total costs.
var benchMaxHeld = flag.Int64("bench.maxheld", 0, "MaxHeldBytes of the put/get benchmarks")

// BenchmarkMemoryPerMessage puts 1e6 messages of 100 bytes, into one queue and
// spread over 1e3 queues, and reports the heap each message costs beyond its
// payload (bytes/msg) in memory mode. Run it with -benchtime=1x: one iteration
// fills the queues once.
func BenchmarkMemoryPerMessage(b *testing.B) {
	const total, size = 1_000_000, 100
	for _, queues := range []int{1, 1e3} {
		b.Run(fmt.Sprintf("queues=%d", queues), func(b *testing.B) {
			names := make([]string, queues)
			for i := range names {
				names[i] = fmt.Sprintf("queue-%d", i)
			}
			payload := make([]byte, size)
			var perMsg float64
			for b.Loop() {
				perMsg = heapPerMessage(b, names, payload, total)
			}
			b.ReportMetric(perMsg, "bytes/msg")
		})
	}
}

// heapPerMessage fills the named queues of a fresh broker with total copies of
// payload and returns the growth of HeapInuse per message, minus the payload.
func heapPerMessage(b *testing.B, names []string, payload []byte, total int) float64 {
	br := newTestBroker(b, Config{})
	ctx := context.Background()
	before := heapInuse()
	for i := range total {
		if _, err := br.Put(ctx, names[i%len(names)], payload); err != nil {
			b.Fatal(err)
		}
	}
	after := heapInuse()
	if got := br.Stats(1).Messages; got != int64(total) {
		b.Fatalf("messages = %d, want %d", got, total)
	}
	return float64(after-before)/float64(total) - float64(len(payload))
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
