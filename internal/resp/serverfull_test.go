package resp

import (
	"context"
	"testing"

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
