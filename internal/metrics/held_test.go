package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// keyq_held_bytes and keyq_max_memory_bytes show what counts toward the memory
// limit and the limit.
func TestMetricsHeldBytesAndLimit(t *testing.T) {
	// A limit under 256 bytes reserves no chunks: held is exactly what is queued.
	b, err := broker.New(broker.Config{SweepInterval: time.Hour, MaxHeldBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if _, err := b.Put(context.Background(), "q", []byte("hello")); err != nil {
		t.Fatal(err)
	}

	mfs := scrape(t, New(Config{Broker: b, NoRuntime: true}))
	if got := value(t, mfs, "keyq_held_bytes"); got != 5+broker.MessageOverhead {
		t.Errorf("keyq_held_bytes = %v, want %d", got, 5+broker.MessageOverhead)
	}
	if got := value(t, mfs, "keyq_max_memory_bytes"); got != 200 {
		t.Errorf("keyq_max_memory_bytes = %v, want 200", got)
	}
}
