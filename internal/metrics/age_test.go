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

// TestMetricsLeaseAndLossCounts: what keyq stats and the HTTP queue list show of a
// queue beyond its depth (leased, deferred, expired, dead-lettered, dropped) is in
// /metrics too, per queue, summed under "_other", and server-wide for the gauges.
func TestMetricsLeaseAndLossCounts(t *testing.T) {
	src := fixedStats{Queues: 3, Inflight: 6, Deferred: 9, QueueStats: []broker.QueueStats{
		{Name: "a", Inflight: 1, Deferred: 2, Expired: 3, DeadLettered: 4, Dropped: 5},
		{Name: "b", Inflight: 2, Deferred: 3, Expired: 1, DeadLettered: 1, Dropped: 1},
		{Name: "c", Inflight: 3, Deferred: 4, Expired: 2, DeadLettered: 2, Dropped: 2},
	}}
	mfs := scrape(t, New(Config{Broker: src, MaxQueueSeries: 1, NoRuntime: true}))
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"keyq_queue_inflight", []string{"queue", "a"}, 1},
		{"keyq_queue_deferred", []string{"queue", "a"}, 2},
		{"keyq_queue_expired_total", []string{"queue", "a"}, 3},
		{"keyq_queue_dead_lettered_total", []string{"queue", "a"}, 4},
		{"keyq_queue_dropped_total", []string{"queue", "a"}, 5},
		{"keyq_queue_inflight", []string{"queue", OtherQueue}, 5},
		{"keyq_queue_deferred", []string{"queue", OtherQueue}, 7},
		{"keyq_queue_expired_total", []string{"queue", OtherQueue}, 3},
		{"keyq_queue_dead_lettered_total", []string{"queue", OtherQueue}, 3},
		{"keyq_queue_dropped_total", []string{"queue", OtherQueue}, 3},
		{"keyq_inflight", nil, 6},
		{"keyq_deferred", nil, 9},
	} {
		if got := value(t, mfs, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
