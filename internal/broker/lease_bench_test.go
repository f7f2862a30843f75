package broker

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkReserveAck runs put, reserve and ack from many goroutines on one queue:
// the throughput of reliable delivery at 8 and 64 consumers (GOMAXPROCS times the
// parallelism the name gives).
func BenchmarkReserveAck(b *testing.B) {
	for _, consumers := range []int{8, 64} {
		b.Run(fmt.Sprintf("consumers=%d", consumers), func(b *testing.B) {
			br := newTestBroker(b, Config{})
			ctx := context.Background()
			payload := make([]byte, 100)
			b.SetParallelism(max(1, consumers/runtime.GOMAXPROCS(0)))
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				o := ReserveOptions{Lease: time.Minute, Wait: time.Second}
				for pb.Next() {
					if _, err := br.Put(ctx, "q", payload); err != nil {
						b.Fatal(err)
					}
					ds, err := br.Reserve(ctx, []string{"q"}, o)
					if err != nil {
						b.Fatal(err)
					}
					if err := br.Ack(ctx, ds[0].DeliveryID); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkReserveWithLeasesOutstanding measures put+reserve+ack while n other
// leases are outstanding: with the deadlines in a heap the cost must not grow with
// n.
func BenchmarkReserveWithLeasesOutstanding(b *testing.B) {
	for _, n := range []int{0, 1e6} {
		b.Run(fmt.Sprintf("leases=%d", n), func(b *testing.B) {
			br := newTestBroker(b, Config{})
			ctx := context.Background()
			payload := make([]byte, 100)
			for range n {
				br.Put(ctx, "held", payload)
			}
			for n > 0 {
				ds, err := br.Reserve(ctx, []string{"held"}, ReserveOptions{Lease: time.Hour,
					Max: 1000})
				if err != nil {
					b.Fatal(err)
				}
				n -= len(ds)
			}
			b.ReportAllocs()
			b.ResetTimer()
			o := ReserveOptions{Lease: time.Minute}
			for b.Loop() {
				br.Put(ctx, "q", payload)
				ds, err := br.Reserve(ctx, []string{"q"}, o)
				if err != nil {
					b.Fatal(err)
				}
				if err := br.Ack(ctx, ds[0].DeliveryID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDelayedMemory puts 1e6 delayed messages of 100 bytes and reports the
// heap they take per message (payload included). Run it with -benchtime=1x.
func BenchmarkDelayedMemory(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	payload := make([]byte, 100)
	for b.Loop() {
		br := newTestBroker(b, Config{})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n {
			if _, err := br.PutWith(ctx, "q", payload, PutOptions{Delay: time.Hour}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if d := br.Stats(0).QueueStats[0].Deferred; d != n {
			b.Fatalf("deferred = %d", d)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/msg")
		br.Close()
	}
}
