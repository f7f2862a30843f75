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

// BenchmarkClientPipeline sends rounds of 64 puts, then 64 gets, each round through a
// Pipeline: one op is one put and one get.
func BenchmarkClientPipeline(b *testing.B) {
	const depth = 64
	srv := testutil.StartServer(b)
	c := dialTest(b, srv.Addr)
	ctx := context.Background()
	data := make([]byte, benchMessage)
	p := c.Pipeline()
	gets := make([]*Result[Message], depth)

	b.SetBytes(benchMessage)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%depth != 0 {
			continue // each round does depth ops
		}
		p.Reset()
		for range depth {
			p.Put("bench", data)
		}
		if err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		for j := range gets {
			gets[j] = p.Get("bench")
		}
		if err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		for _, g := range gets {
			if err := g.Err(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
