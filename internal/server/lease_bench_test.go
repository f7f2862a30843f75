package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyq/keyq/client"
	"github.com/keyq/keyq/internal/testutil"
)

// BenchmarkServerReserveAck measures reserve+ack cycles over loopback TCP, one
// message per cycle, with 8 and 64 consumers on connections of their own draining a
// queue filled first. It reports cycles per second.
func BenchmarkServerReserveAck(b *testing.B) {
	for _, consumers := range []int{8, 64} {
		b.Run(fmt.Sprintf("consumers=%d", consumers), func(b *testing.B) {
			benchReserveAck(b, consumers)
		})
	}
}

func benchReserveAck(b *testing.B, consumers int) {
	s := testutil.StartServer(b)
	ctx := context.Background()
	fill := dialClient(b, s.Addr)
	batch := make([][]byte, 500)
	for i := range batch {
		batch[i] = benchMessage
	}
	for left := b.N; left > 0; left -= len(batch) {
		if _, err := fill.PutBatch(ctx, "bench", batch[:min(left, len(batch))]); err != nil {
			b.Fatal(err)
		}
	}
	cs := make([]*client.Client, consumers)
	for i := range cs {
		cs[i] = dialClient(b, s.Addr)
	}

	var left atomic.Int64
	left.Store(int64(b.N))
	b.SetBytes(int64(len(benchMessage)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				ds, err := c.Reserve(ctx, []string{"bench"}, client.ReserveOptions{})
				if err == nil {
					err = c.Ack(ctx, ds[0].DeliveryID)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cycles/s")
}

func dialClient(b *testing.B, addr string) *client.Client {
	b.Helper()
	c, err := client.Dial(context.Background(), addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
