package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// BenchmarkPutGetAtDepth measures one put, one get and a release on a queue that
// already holds depth messages of 100 bytes: the cost must not grow with the backlog.
// -bench.deep adds depth=1e7, which takes about 2 GB and ten seconds to fill.
func BenchmarkPutGetAtDepth(b *testing.B) {
	depths := []int{1e3, 1e6}
	if *benchDeep {
		depths = append(depths, 1e7)
	}
	for _, depth := range depths {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			br := newTestBroker(b, Config{MaxHeldBytes: *benchMaxHeld})
			ctx := context.Background()
			payload := make([]byte, 100)
			for range depth {
				br.Put(ctx, "q", payload)
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
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
			cpu.report(b)
		})
	}
}

// BenchmarkPutGetParallel runs put+get pairs from GOMAXPROCS goroutines, each on its
// own queue, so it scales with cores if the table lock is never a bottleneck; the
// shared variant puts every goroutine on one queue for contrast.
func BenchmarkPutGetParallel(b *testing.B) {
	for _, shared := range []bool{false, true} {
		b.Run(fmt.Sprintf("shared=%v", shared), func(b *testing.B) {
			br := newTestBroker(b, Config{MaxHeldBytes: *benchMaxHeld})
			ctx := context.Background()
			payload := make([]byte, 100)
			var next atomic.Int64
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			cpu := startCPU()
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
			cpu.report(b)
		})
	}
}

// BenchmarkPutGetManyQueues spreads put+get pairs over n queues, to show the cost
// stays flat as the table grows. Each queue holds one message of 100 bytes; each op
// puts one on a queue, gets one from it and releases it. The queues take turns in a
// shuffled order, the same every round, so that consecutive ops meet queues that lie
// anywhere in memory (created in name order, they would lie in a row and the CPU's
// prefetcher would hide the cost of reaching them). The names the ops pass are
// copies made in that shuffled order, so they lie in a row as the ops read them: a
// server finds a request's name in the buffer it just read, not scattered in memory.
func BenchmarkPutGetManyQueues(b *testing.B) {
	for _, n := range []int{1, 1e3, 1e5} {
		b.Run(fmt.Sprintf("queues=%d", n), func(b *testing.B) {
			br := newTestBroker(b, Config{MaxHeldBytes: *benchMaxHeld})
			ctx := context.Background()
			payload := make([]byte, 100)
			for i := range n {
				br.Put(ctx, fmt.Sprintf("queue-%d", i), payload)
			}
			order := rand.New(rand.NewPCG(1, 2)).Perm(n)
			names := make([]string, n)
			for i, q := range order {
				names[i] = fmt.Sprintf("queue-%d", q)
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			cpu := startCPU()
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
			cpu.report(b)
		})
	}
}

// BenchmarkGetBatch puts 64 messages of 100 bytes one by one, takes them with one
// GetBatch and releases them; allocs/op is per batch of 64.
func BenchmarkGetBatch(b *testing.B) {
	const n = 64
	br := newTestBroker(b, Config{MaxHeldBytes: *benchMaxHeld})
	ctx := context.Background()
	payload := make([]byte, 100)
	b.SetBytes(n * int64(len(payload)))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		for range n {
			if _, err := br.Put(ctx, "q", payload); err != nil {
				b.Fatal(err)
			}
		}
		msgs, err := br.GetBatch(ctx, []string{"q"}, n, 0)
		if err != nil || len(msgs) != n {
			b.Fatalf("get batch: %d messages, %v", len(msgs), err)
		}
		for i := range msgs {
			msgs[i].Release()
		}
	}
	cpu.report(b)
}
