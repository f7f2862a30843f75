package broker

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// mustLen returns the number of ready messages in queue.
func mustLen(t *testing.T, b *Broker, queue string) int {
	t.Helper()
	n, err := b.Len(queue)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// queueStats returns the stats of queue (zero if it is not in the table).
func queueStats(b *Broker, queue string) QueueStats {
	for _, s := range b.Stats(0).QueueStats {
		if s.Name == queue {
			return s
		}
	}
	return QueueStats{}
}

// TestQueueTTLExpiresWithoutConsumer is issue 4's repro: a message whose default
// TTL runs out leaves its queue for the dead-letter queue then, with no get to
// find it, and is counted.
func TestQueueTTLExpiresWithoutConsumer(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := Config{}
				if durable {
					cfg.Store = &logStore{}
				}
				b := newTestBroker(t, cfg)
				ctx := context.Background()
				err := b.SetQueue(ctx, "q", QueueSettings{DefaultTTL: 200 * time.Millisecond,
					ExpiredToDLQ: true})
				if err != nil {
					t.Fatal(err)
				}
				mustPut(t, b, "q", []byte("stale"))
				time.Sleep(199 * time.Millisecond)
				synctest.Wait()
				if n := mustLen(t, b, "q"); n != 1 {
					t.Fatalf("len before the TTL = %d, want 1", n)
				}
				time.Sleep(time.Millisecond)
				synctest.Wait()
				if n := mustLen(t, b, "q"); n != 0 {
					t.Fatalf("len after the TTL = %d, want 0", n)
				}
				if s := queueStats(b, "q"); s.Expired != 1 || s.Messages != 0 {
					t.Fatalf("stats = %+v", s)
				}
				if m := mustGet(t, b, "q.dlq"); string(m.Payload) != "stale" ||
					m.DeadLetter == nil || m.DeadLetter.Reason != ReasonExpired {
					t.Fatalf("dead letter = %+v", m)
				}
			})
		})
	}
}

// TestPutTTLExpiresFromTheMiddle: a message whose TTL is shorter than that of the
// message ahead of it leaves from between the others.
func TestPutTTLExpiresFromTheMiddle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroker(t, Config{})
		ctx := context.Background()
		for _, p := range []struct {
			payload string
			ttl     time.Duration
		}{{"a", 10 * time.Second}, {"b", time.Second}, {"c", 0}} {
			if _, err := b.PutWith(ctx, "q", []byte(p.payload),
				PutOptions{TTL: p.ttl}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := drainPayloads(t, b, "q"); got != "a c" {
			t.Fatalf("after b's TTL got %q, want \"a c\"", got)
		}
		if s := queueStats(b, "q"); s.Expired != 1 {
			t.Fatalf("stats = %+v", s)
		}
	})
}

// TestPutDelayAndTTLC17 is case C17 with a TTL: a delayed message is never leased
// before it is due, and expires at its TTL whether it is deferred, ready or leased
// then (a lease keeps it until it comes back).
func TestPutDelayAndTTLC17(t *testing.T) {
	t.Run("expires-while-deferred", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newTestBroker(t, Config{})
			ctx := context.Background()
			b.PutWith(ctx, "q", []byte("late"), PutOptions{Delay: 5 * time.Second,
				TTL: 3 * time.Second})
			time.Sleep(4 * time.Second)
			synctest.Wait()
			if s := queueStats(b, "q"); s.Deferred != 1 || s.Expired != 0 {
				t.Fatalf("stats at 4s = %+v", s)
			}
			time.Sleep(time.Second)
			synctest.Wait()
			if s := queueStats(b, "q"); s.Deferred != 0 || s.Messages != 0 || s.Expired != 1 {
				t.Fatalf("stats at 5s = %+v", s)
			}
		})
	})
	t.Run("expires-once-ready", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newTestBroker(t, Config{})
			ctx := context.Background()
			b.PutWith(ctx, "q", []byte("eta"), PutOptions{Delay: 2 * time.Second,
				TTL: 5 * time.Second})
			time.Sleep(3 * time.Second)
			synctest.Wait()
			if n := mustLen(t, b, "q"); n != 1 {
				t.Fatalf("len at 3s = %d, want 1", n)
			}
			time.Sleep(2 * time.Second)
			synctest.Wait()
			if s := queueStats(b, "q"); s.Messages != 0 || s.Expired != 1 {
				t.Fatalf("stats at 5s = %+v", s)
			}
		})
	})
	t.Run("leased-then-returned", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newTestBroker(t, Config{})
			ctx := context.Background()
			b.PutWith(ctx, "q", []byte("job"), PutOptions{Delay: time.Second,
				TTL: 6 * time.Second})
			time.Sleep(time.Second)
			synctest.Wait() // the timer goroutine makes the message ready at 1s
			d := mustReserve(t, b, "q", ReserveOptions{Lease: 2 * time.Second})
			time.Sleep(3 * time.Second) // the lease ran out at 3s: ready again
			synctest.Wait()
			if err := b.Ack(ctx, d.DeliveryID); err == nil {
				t.Fatal("ack after the lease ran out succeeded")
			}
			if n := mustLen(t, b, "q"); n != 1 {
				t.Fatalf("len at 4s = %d, want 1", n)
			}
			time.Sleep(2 * time.Second)
			synctest.Wait()
			if s := queueStats(b, "q"); s.Messages != 0 || s.Expired != 1 {
				t.Fatalf("stats at 6s = %+v", s)
			}
		})
	})
	t.Run("leased-past-ttl", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newTestBroker(t, Config{})
			ctx := context.Background()
			b.PutWith(ctx, "q", []byte("job"), PutOptions{TTL: 3 * time.Second})
			d := mustReserve(t, b, "q", ReserveOptions{Lease: 10 * time.Second})
			time.Sleep(4 * time.Second)
			synctest.Wait()
			if s := queueStats(b, "q"); s.Inflight != 1 || s.Expired != 0 {
				t.Fatalf("stats at 4s = %+v", s)
			}
			if err := b.Nack(ctx, d.DeliveryID, 0); err != nil {
				t.Fatal(err)
			}
			if s := queueStats(b, "q"); s.Messages != 0 || s.Expired != 1 {
				t.Fatalf("stats after the nack = %+v", s)
			}
		})
	})
}

// TestPutTTLExpiresAfterRestart: messages recovered with a TTL expire at it, ready
// ones and those that were leased alike.
func TestPutTTLExpiresAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &logStore{}
		b := newTestBroker(t, Config{Store: store})
		ctx := context.Background()
		if err := b.SetQueue(ctx, "q", QueueSettings{ExpiredToDLQ: true}); err != nil {
			t.Fatal(err)
		}
		b.PutWith(ctx, "q", []byte("leased"), PutOptions{TTL: 2 * time.Second})
		b.PutWith(ctx, "q", []byte("ready"), PutOptions{TTL: 5 * time.Second})
		b.PutWith(ctx, "q", []byte("plain"), PutOptions{})
		mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour})
		time.Sleep(3 * time.Second)
		synctest.Wait()

		b = restart(t, b, store)
		synctest.Wait()
		if got := drainPayloadsKeep(t, b, "q"); got != "ready plain" {
			t.Fatalf("after the restart q holds %q, want \"ready plain\"", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := drainPayloads(t, b, "q"); got != "plain" {
			t.Fatalf("after the TTL q holds %q, want \"plain\"", got)
		}
		if got := drainPayloads(t, b, "q.dlq"); got != "leased ready" {
			t.Fatalf("dead letters %q, want \"leased ready\"", got)
		}
	})
}

// drainPayloadsKeep returns the payloads of queue's ready messages without taking
// them.
func drainPayloadsKeep(t *testing.T, b *Broker, queue string) string {
	t.Helper()
	msgs, err := b.Range(queue, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	for i, m := range msgs {
		if i > 0 {
			s += " "
		}
		s += string(m.Payload)
	}
	return s
}
