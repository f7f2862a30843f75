package broker

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestIDClockBoundsPutTimes(t *testing.T) {
	var c idClock
	start := time.Unix(1000, 0)
	for i := range 10 {
		c.sample(uint64(10*i+1), start.Add(time.Duration(i)*time.Second))
	}
	now := start.Add(20 * time.Second)
	// ID 15 was handed out between the samples at 1 s (next 11) and 2 s (next 21).
	if got := c.ageOf(15, now); got != 18*time.Second {
		t.Fatalf("age of 15 = %v, want 18s", got)
	}
	if got := c.ageOf(10, now); got != 19*time.Second {
		t.Fatalf("age of 10 = %v, want 19s", got)
	}
	if got := c.ageOf(500, now); got != 0 {
		t.Fatalf("age of an ID newer than every sample = %v, want 0", got)
	}
}

func TestIDClockThinsWhenFull(t *testing.T) {
	var c idClock
	start := time.Unix(0, 0)
	for i := range 3 * maxClockSamples {
		c.sample(uint64(i+1), start.Add(time.Duration(i)*time.Second))
	}
	if n := len(c.samples); n > maxClockSamples {
		t.Fatalf("%d samples kept, over the bound of %d", n, maxClockSamples)
	}
	now := start.Add(time.Duration(3*maxClockSamples) * time.Second)
	// Coarser, but still a lower bound that is never in the future and never too old.
	for _, id := range []uint64{1, 100, 5000, 3*maxClockSamples - 1} {
		age := c.ageOf(id, now)
		exact := now.Sub(start.Add(time.Duration(id-1) * time.Second))
		if age > exact || age < 0 {
			t.Fatalf("age of %d = %v, exact %v: not a lower bound", id, age, exact)
		}
	}
}

// TestBrokerStatsOldestAge: the age of a queue's head grows while nobody takes it and
// follows the head as it is taken.
func TestBrokerStatsOldestAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroker(t, Config{SweepInterval: time.Second})
		mustPut(t, b, "q", []byte("old"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		mustPut(t, b, "q", []byte("new"))
		time.Sleep(5 * time.Second)
		synctest.Wait()

		age := queueAge(b, "q")
		if age < 14*time.Second || age > 15*time.Second {
			t.Fatalf("oldest age = %v, want 14s to 15s", age)
		}
		mustGet(t, b, "q")
		if age := queueAge(b, "q"); age < 4*time.Second || age > 5*time.Second {
			t.Fatalf("oldest age after taking the old one = %v, want 4s to 5s", age)
		}
		b.Get(context.Background(), "q", 0)
		if age := queueAge(b, "q"); age != 0 {
			t.Fatalf("oldest age of an empty queue = %v, want 0", age)
		}
	})
}

func queueAge(b *Broker, name string) time.Duration {
	for _, qs := range b.Stats(0).QueueStats {
		if qs.Name == name {
			return qs.OldestAge
		}
	}
	return 0
}

// TestBrokerStatsCountAcksAndNacks: acks and nacks are counted per queue and in total,
// and a refused ack counts as neither.
func TestBrokerStatsCountAcksAndNacks(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	mustPut(t, b, "q", []byte("a"))
	mustPut(t, b, "q", []byte("b"))
	d1 := mustReserve(t, b, "q", ReserveOptions{Lease: time.Minute})
	if err := b.Nack(ctx, d1.DeliveryID, 0); err != nil {
		t.Fatal(err)
	}
	d2 := mustReserve(t, b, "q", ReserveOptions{Lease: time.Minute})
	if err := b.Ack(ctx, d2.DeliveryID); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(ctx, d2.DeliveryID); err == nil {
		t.Fatal("second ack of one delivery succeeded")
	}
	s := b.Stats(0)
	if s.Acks != 1 || s.Nacks != 1 || s.QueueStats[0].Acks != 1 || s.QueueStats[0].Nacks != 1 {
		t.Fatalf("acks/nacks: total %d/%d, queue %d/%d; want 1/1 each", s.Acks, s.Nacks,
			s.QueueStats[0].Acks, s.QueueStats[0].Nacks)
	}
}
