package client

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/keyq/keyq/internal/testutil"
)

// benchMessage is the size of the messages in the benchmarks.
const benchMessage = 100

// BenchmarkClientPutGet measures one put and one get, each waiting for its reply:
// the round-trip cost over loopback TCP without pipelining.
func BenchmarkClientPutGet(b *testing.B) {
	srv := testutil.StartServer(b)
	c := dialTest(b, srv.Addr)
	ctx := context.Background()
	data := make([]byte, benchMessage)

	b.SetBytes(benchMessage)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Put(ctx, "bench", data); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Get(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientPutGetParallel has many goroutines share one connection, each
// putting and getting on its own queue: their requests are pipelined.
func BenchmarkClientPutGetParallel(b *testing.B) {
	srv := testutil.StartServer(b)
	c := dialTest(b, srv.Addr)
	ctx := context.Background()
	var next atomic.Int64

	b.SetBytes(benchMessage)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		queue := fmt.Sprintf("bench-%d", next.Add(1))
		data := make([]byte, benchMessage)
		for pb.Next() {
			if _, err := c.Put(ctx, queue, data); err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Get(ctx, queue); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
