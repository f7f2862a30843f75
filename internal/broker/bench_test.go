package broker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkPutGetAtDepth measures one put and one get on a queue that already holds
// depth messages: the cost must not grow with the backlog. -bench.deep adds 1e7.
func BenchmarkPutGetAtDepth(b *testing.B) {
	depths := []int{1e3, 1e6}
	if *benchDeep {
		depths = append(depths, 1e7)
	}
	for _, depth := range depths {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			br := newTestBroker(b, Config{})
			ctx := context.Background()
			payload := make([]byte, 100)
			for range depth {
				br.Put(ctx, "q", payload)
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := br.Put(ctx, "q", payload); err != nil {
					b.Fatal(err)
				}
				m, err := br.Get(ctx, "q", 0)
				if err != nil {
					b.Fatal(err)
				}
				m.Release()
			}
		})
	}
}

// BenchmarkPutGetParallel runs put+get pairs from GOMAXPROCS goroutines, each on its
// own queue, so it scales with cores if the table lock is never a bottleneck; the
// shared variant puts every goroutine on one queue for contrast.
func BenchmarkPutGetParallel(b *testing.B) {
	for _, shared := range []bool{false, true} {
		b.Run(fmt.Sprintf("shared=%v", shared), func(b *testing.B) {
			br := newTestBroker(b, Config{})
			ctx := context.Background()
			payload := make([]byte, 100)
			var next atomic.Int64
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				queue := "shared"
				if !shared {
					queue = fmt.Sprintf("q%d", next.Add(1))
				}
				for pb.Next() {
					if _, err := br.Put(ctx, queue, payload); err != nil {
						b.Fatal(err)
					}
					m, err := br.Get(ctx, queue, 0)
					if err != nil {
						b.Fatal(err)
					}
					m.Release()
				}
			})
		})
	}
}

// BenchmarkPutGetManyQueues spreads put+get pairs over n queues that all hold a few
// messages, to show the cost stays flat as the table grows.
func BenchmarkPutGetManyQueues(b *testing.B) {
	for _, n := range []int{1, 1e3, 1e5} {
		b.Run(fmt.Sprintf("queues=%d", n), func(b *testing.B) {
			br := newTestBroker(b, Config{})
			ctx := context.Background()
			payload := make([]byte, 100)
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("queue-%d", i)
				br.Put(ctx, names[i], payload)
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				q := names[i%n]
				i++
				if _, err := br.Put(ctx, q, payload); err != nil {
					b.Fatal(err)
				}
				m, err := br.Get(ctx, q, 0)
				if err != nil {
					b.Fatal(err)
				}
				m.Release()
			}
		})
	}
}
