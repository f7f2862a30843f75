package metrics

import (
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// fixedStats is a StatsSource that returns the same snapshot at every scrape.
type fixedStats broker.Stats

func (f fixedStats) Stats(int) broker.Stats { return broker.Stats(f) }

// TestMetricsOldestMessageAge: each queue's head age is a gauge in seconds, and the
// queues summed under "_other" report the oldest of theirs, not a sum.
func TestMetricsOldestMessageAge(t *testing.T) {
	src := fixedStats{Queues: 3, QueueStats: []broker.QueueStats{
		{Name: "a", Messages: 1, OldestAge: 90 * time.Second, Acks: 7, Nacks: 2},
		{Name: "b", Messages: 1, OldestAge: 30 * time.Second},
		{Name: "c", Messages: 1, OldestAge: 60 * time.Second},
	}}
	m := New(Config{Broker: src, MaxQueueSeries: 1, NoRuntime: true})
	mfs := scrape(t, m)
	if got := value(t, mfs, "keyq_queue_oldest_message_age_seconds", "queue", "a"); got != 90 {
		t.Fatalf("age of a = %v, want 90", got)
	}
	if got := value(t, mfs, "keyq_queue_acks_total", "queue", "a"); got != 7 {
		t.Fatalf("acks of a = %v, want 7", got)
	}
	if got := value(t, mfs, "keyq_queue_nacks_total", "queue", "a"); got != 2 {
		t.Fatalf("nacks of a = %v, want 2", got)
	}
	if got := value(t, mfs, "keyq_queue_oldest_message_age_seconds", "queue",
		OtherQueue); got != 60 {
		t.Fatalf("age of %s = %v, want 60, the oldest of b and c", OtherQueue, got)
	}
}
