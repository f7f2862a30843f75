package resp

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/keyq/keyq/internal/broker"
)

// A push over the server's memory limit is refused as Redis refuses a write over
// maxmemory; a pop makes room again.
func TestPushOverMemoryLimitIsOOM(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, broker.Config{MaxHeldBytes: 2 * (100 + broker.MessageOverhead)})
	rc := ts.client(t, 2)
	msg := string(make([]byte, 100))
	if err := rc.RPush(ctx, "q", msg, msg).Err(); err != nil {
		t.Fatal(err)
	}

	err := rc.LPush(ctx, "q", msg).Err()
	if err == nil || err.Error() != oomError {
		t.Fatalf("push over the limit = %v; want %q", err, oomError)
	}
	if n := rc.LLen(ctx, "q").Val(); n != 2 {
		t.Fatalf("len = %d after a refused push; want 2", n)
	}
	if err := rc.LPop(ctx, "q").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.LPush(ctx, "q", msg).Err(); err != nil {
		t.Fatalf("push after a pop = %v", err)
	}
}

// Inside MULTI a push is refused as it is queued while the server is full, as Redis
// refuses it over maxmemory, so that EXEC discards the whole transaction rather
// than run the rest of it; commands that add nothing are queued as usual.
func TestMultiRefusesPushWhenFull(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, broker.Config{MaxHeldBytes: 2 * (100 + broker.MessageOverhead)})
	rc := ts.client(t, 2)
	msg := string(make([]byte, 100))
	if err := rc.RPush(ctx, "q", msg, msg).Err(); err != nil {
		t.Fatal(err)
	}

	_, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LLen(ctx, "q")
		p.RPush(ctx, "other", "x")
		return nil
	})
	if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
		t.Fatalf("EXEC of a transaction with a push queued when full = %v; want EXECABORT",
			err)
	}
	if n := rc.LLen(ctx, "other").Val(); n != 0 {
		t.Fatalf("queue other holds %d after an aborted transaction; want 0", n)
	}

	// A pop makes room in q (the room stays reserved for q's next put).
	if err := rc.LPop(ctx, "q").Err(); err != nil {
		t.Fatal(err)
	}
	cmds, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, "q", "x")
		return nil
	})
	if err != nil || len(cmds) != 1 {
		t.Fatalf("EXEC with room again = %v, %v", cmds, err)
	}
}

// CONFIG GET and INFO memory report the memory limit in Redis' fields, which tools
// that watch a Redis read.
func TestMemoryLimitInConfigAndInfo(t *testing.T) {
	ctx := context.Background()
	const limit = 10 << 20
	ts := startServer(t, broker.Config{MaxHeldBytes: limit})
	rc := ts.client(t, 2)
	if err := rc.RPush(ctx, "q", "0123456789").Err(); err != nil {
		t.Fatal(err)
	}

	got, err := rc.ConfigGet(ctx, "maxmemory*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got["maxmemory"] != "10485760" || got["maxmemory-policy"] != "noeviction" {
		t.Fatalf("CONFIG GET maxmemory* = %v", got)
	}

	info, err := rc.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Memory\r\n", "\r\nmaxmemory:10485760\r\n",
		"\r\nmaxmemory_policy:noeviction\r\n", "\r\nkeyq_held_bytes:"} {
		if !strings.Contains(info, want) {
			t.Fatalf("INFO memory lacks %q:\n%s", want, info)
		}
	}
	if strings.Contains(info, "keyq_held_bytes:0\r\n") {
		t.Fatalf("INFO memory shows nothing held with a message queued:\n%s", info)
	}
}
