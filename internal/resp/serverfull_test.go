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
