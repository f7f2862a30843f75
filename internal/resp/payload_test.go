package resp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/wal"
)

// respPayloads returns one value of each size the broker's pools and the
// connection's reply buffer treat apart, each of a byte of its own, so that a value
// that shows another's bytes, or the poison of a released buffer (0xA5, under the
// race detector), is told from its own.
func respPayloads() []string {
	sizes := []int{1, 16, 17, 1000, 9000, 70 << 10}
	vs := make([]string, len(sizes))
	for i, n := range sizes {
		vs[i] = strings.Repeat(string(rune('a'+i)), n)
	}
	return vs
}

func wantValue(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %d bytes starting %.8q, want %d of %q (0xa5 is the poison of a "+
			"released buffer)", what, len(got), got, len(want), want[:1])
	}
}

func wantValues(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		wantValue(t, what, got[i], want[i])
	}
}

// TestRepliesNeverCarryAReleasedPayload: each list command that takes a message
// gives its buffer back to the broker once the value is in the reply, and the next
// push may reuse it at once; one that reads messages in place copies them. Pipelines
// of pushes and takes make reuse happen between commands; under the race detector a
// released buffer is poisoned, so a value read from one after its release shows here.
func TestRepliesNeverCarryAReleasedPayload(t *testing.T) {
	for _, durable := range []bool{false, true} {
		name := "memory"
		cfg := broker.Config{}
		if durable {
			name = "durable"
			l, err := wal.Open(t.TempDir(), wal.Options{Fsync: wal.FsyncAlways})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Store = l
		}
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, cfg)
			rc := ts.client(t, 2)
			checkPipelinedPops(t, rc)
			checkReads(t, rc)
			checkMoves(t, rc)
			checkTransaction(t, rc)
			checkBlockedPop(t, ts, rc)
		})
	}
}

// checkPipelinedPops sends RPUSH, LPOP, RPUSH, RPOP... in one write.
func checkPipelinedPops(t *testing.T, rc *redis.Client) {
	ctx := context.Background()
	vs := respPayloads()
	var pops []*redis.StringCmd
	var counts []*redis.StringSliceCmd
	_, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for range 3 {
			for _, v := range vs {
				p.RPush(ctx, "pipe", v)
				pops = append(pops, p.LPop(ctx, "pipe"))
				p.RPush(ctx, "pipe", v)
				pops = append(pops, p.RPop(ctx, "pipe"))
			}
			p.RPush(ctx, "pipe", toAny(vs)...)
			counts = append(counts, p.LPopCount(ctx, "pipe", len(vs)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range pops {
		wantValue(t, "pipelined pop", c.Val(), vs[i/2%len(vs)])
	}
	for _, c := range counts {
		wantValues(t, "pop with a count", c.Val(), vs)
	}
}

// checkReads reads a list in place (LRANGE, LINDEX) while pops and pushes that may
// reuse buffers follow in the pipeline.
func checkReads(t *testing.T, rc *redis.Client) {
	ctx := context.Background()
	vs := respPayloads()
	var ranges []*redis.StringSliceCmd
	var indexes []*redis.StringCmd
	_, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, "read", toAny(vs)...)
		for range 3 {
			indexes = append(indexes, p.LIndex(ctx, "read", 0))
			ranges = append(ranges, p.LRange(ctx, "read", 0, -1))
			p.LPop(ctx, "read")
			p.RPush(ctx, "read", vs[0])
			p.RPush(ctx, "scratch", toAny(vs)...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := vs
	for i, r := range ranges {
		wantValues(t, "lrange", r.Val(), want)
		wantValue(t, "lindex", indexes[i].Val(), want[0])
		want = append(append([]string(nil), want[1:]...), vs[0])
	}
}

// checkMoves moves messages between lists and around one: each move answers with a
// copy while the message goes on living in its new place.
func checkMoves(t *testing.T, rc *redis.Client) {
	ctx := context.Background()
	vs := respPayloads()
	if err := rc.RPush(ctx, "src", toAny(vs)...).Err(); err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		wantValue(t, "lmove", rc.LMove(ctx, "src", "dst", "LEFT", "RIGHT").Val(), v)
		wantValue(t, "rotation", rc.RPopLPush(ctx, "dst", "dst").Val(), v)
		if err := rc.RPush(ctx, "scratch", v).Err(); err != nil {
			t.Fatal(err)
		}
		wantValue(t, "pop of a moved message", rc.LPop(ctx, "dst").Val(), vs[i])
	}
}

// checkTransaction pushes and pops inside MULTI.
func checkTransaction(t *testing.T, rc *redis.Client) {
	ctx := context.Background()
	vs := respPayloads()
	var pops []*redis.StringCmd
	_, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, v := range vs {
			p.RPush(ctx, "tx", v)
			pops = append(pops, p.LPop(ctx, "tx"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range pops {
		wantValue(t, "pop in a transaction", c.Val(), vs[i])
	}
}

// checkBlockedPop takes messages handed straight to a blocked BLPOP and BLMOVE.
func checkBlockedPop(t *testing.T, ts *testServer, rc *redis.Client) {
	ctx := context.Background()
	pusher := ts.client(t, 2)
	for _, v := range respPayloads() {
		popped := make(chan []string, 1)
		go func() { popped <- rc.BLPop(ctx, time.Minute, "block").Val() }()
		ts.waitBlocked(t, 1)
		if err := pusher.RPush(ctx, "block", v).Err(); err != nil {
			t.Fatal(err)
		}
		wantValues(t, "blpop", <-popped, []string{"block", v})

		moved := make(chan string, 1)
		go func() { moved <- rc.BLMove(ctx, "block", "kept", "LEFT", "RIGHT", time.Minute).Val() }()
		ts.waitBlocked(t, 1)
		if err := pusher.RPush(ctx, "block", v).Err(); err != nil {
			t.Fatal(err)
		}
		wantValue(t, "blmove", <-moved, v)
		wantValue(t, "the message a blmove moved", pusher.LPop(ctx, "kept").Val(), v)
	}
}

func toAny(vs []string) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}
