package resp

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/keyq/keyq/internal/broker"
)

// BenchmarkRESPPushPop is RPUSH then LPOP of a 64-byte value over TCP, one round
// trip each, as one client without pipelining sees it.
func BenchmarkRESPPushPop(b *testing.B) {
	ts := startServer(b, broker.Config{})
	rc := ts.client(b, 3)
	ctx := context.Background()
	value := make([]byte, 64)

	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if err := rc.RPush(ctx, "bench", value).Err(); err != nil {
			b.Fatal(err)
		}
		if err := rc.LPop(ctx, "bench").Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRESPPipelinedPush is RPUSH of a 64-byte value in pipelines of 100.
func BenchmarkRESPPipelinedPush(b *testing.B) {
	ts := startServer(b, broker.Config{})
	rc := ts.client(b, 3)
	ctx := context.Background()
	value := make([]byte, 64)

	b.SetBytes(int64(len(value)) * 100)
	b.ReportAllocs()
	for b.Loop() {
		_, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range 100 {
				p.RPush(ctx, "bench", value)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
