package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/wal"
)

// loadPayload returns a payload of up to 300 bytes that checkLoadPayload can verify
// on its own: its first byte seeds the rest. Seeds stay below the poison byte.
func loadPayload(r *rand.Rand) []byte {
	p := make([]byte, r.IntN(300))
	seed := byte(1 + r.IntN(100))
	for i := range p {
		p[i] = seed + byte(i%13)
	}
	return p
}

func checkLoadPayload(p []byte) error {
	for i := range p {
		if p[i] != p[0]+byte(i%13) || p[0] >= poisonByte {
			return fmt.Errorf("%d-byte payload is %.8q at byte %d (0xa5 is poison)", len(p),
				p[i:], i)
		}
	}
	return nil
}

// loadClient is one goroutine of TestPayloadOwnershipUnderLoad: it checks every
// payload it gets, keeps some a while (so that reuse of their buffers would show),
// and releases them all.
type loadClient struct {
	t    *testing.T
	b    *Broker
	r    *rand.Rand
	held []Message
	dels []Delivery
	fail *sync.Once
}

func (c *loadClient) check(what string, m Message) {
	if err := checkLoadPayload(m.Payload); err != nil {
		c.fail.Do(func() { c.t.Errorf("%s: %v", what, err) })
	}
}

// keep checks m and either releases it now or holds it for a later check.
func (c *loadClient) keep(what string, ms ...Message) {
	for _, m := range ms {
		c.check(what, m)
		if c.r.IntN(3) == 0 {
			c.held = append(c.held, m)
		} else {
			m.Release()
		}
	}
}

func (c *loadClient) releaseHeld() {
	for _, m := range c.held {
		c.check("held message", m)
		m.Release()
	}
	c.held = c.held[:0]
	for _, d := range c.dels {
		c.check("held delivery", d.Message)
		d.Release()
	}
	c.dels = c.dels[:0]
}

// step runs one random operation on q (or q and its dead-letter queue).
func (c *loadClient) step(q, other string) {
	ctx := context.Background()
	b, r := c.b, c.r
	both := []string{q, q + ".dlq"}
	wait := time.Duration(r.IntN(2)) * time.Millisecond
	switch r.IntN(16) {
	case 0, 1, 2:
		b.Put(ctx, q, loadPayload(r))
	case 3:
		b.PutBatch(ctx, q, [][]byte{loadPayload(r), loadPayload(r)},
			PutOptions{TTL: time.Duration(r.IntN(3)) * time.Millisecond})
	case 4:
		b.Push(ctx, q, [][]byte{loadPayload(r), loadPayload(r)}, End(r.IntN(2)), false)
	case 5:
		if m, err := b.GetAny(ctx, both, wait); err == nil {
			c.keep("get", m)
		}
	case 6:
		if ms, err := b.GetBatch(ctx, both, 4, wait); err == nil {
			for _, m := range ms {
				c.check("batch", m)
			}
			ReleaseBatch(ms)
		}
	case 7:
		if ms, err := b.PopN(ctx, q, 3, End(r.IntN(2))); err == nil {
			c.keep("pop", ms...)
		}
	case 8:
		if _, ms, err := b.PopAnyN(ctx, both, 3, End(r.IntN(2)), wait); err == nil {
			c.keep("blocking pop", ms...)
		}
	case 9, 10:
		lease := time.Duration(1+r.IntN(3)) * time.Millisecond
		ds, err := b.Reserve(ctx, both, ReserveOptions{Max: 3, Lease: lease, Wait: wait})
		for _, d := range ds {
			c.check("delivery", d.Message)
		}
		if err == nil {
			c.dels = append(c.dels, ds...)
		}
	case 11:
		for _, d := range c.dels {
			if r.IntN(2) == 0 {
				b.Ack(ctx, d.DeliveryID)
			} else {
				b.Nack(ctx, d.DeliveryID, 0)
			}
		}
	case 12:
		if m, err := b.BlockingMove(ctx, q, other, End(r.IntN(2)), End(r.IntN(2)),
			wait); err == nil {
			c.keep("move", m)
		}
	case 13:
		if m, err := b.Peek(q, r.IntN(4)-2); err == nil {
			c.keep("peek", m)
		}
		if ms, err := b.Range(q, 0, -1); err == nil {
			c.keep("range", ms...)
		}
	case 14:
		if r.IntN(8) == 0 {
			b.Delete(ctx, q)
		} else {
			b.Remove(ctx, q, 1, loadPayload(r))
		}
	case 15:
		c.releaseHeld()
	}
}

// TestPayloadOwnershipUnderLoad runs every operation that hands out, copies, moves,
// leases, redelivers, expires or dead-letters messages at once, on two queues with
// dead-letter queues, keeping some messages a while before releasing them. Under
// the race detector released buffers are poisoned, so a message that shares its
// buffer with another, or a copy made from a released buffer, fails the check of
// its payload.
func TestPayloadOwnershipUnderLoad(t *testing.T) {
	for _, durable := range []bool{false, true} {
		name := "memory"
		if durable {
			name = "durable"
		}
		t.Run(name, func(t *testing.T) {
			cfg := Config{}
			if durable {
				l, err := wal.Open(t.TempDir(), wal.Options{})
				if err != nil {
					t.Fatal(err)
				}
				cfg = Config{Store: l, CacheBytes: 2000} // some payloads are read back
			}
			runOwnershipLoad(t, newTestBroker(t, cfg))
		})
	}
}

func runOwnershipLoad(t *testing.T, b *Broker) {
	ctx := context.Background()
	queues := []string{"a", "b"}
	for _, q := range queues {
		if err := b.SetQueue(ctx, q, QueueSettings{MaxDeliveries: 2,
			ExpiredToDLQ: true}); err != nil {
			t.Fatal(err)
		}
	}
	var fail sync.Once
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			c := &loadClient{t: t, b: b, r: rand.New(rand.NewPCG(uint64(g), 1)), fail: &fail}
			for range 1500 {
				c.step(queues[c.r.IntN(2)], queues[c.r.IntN(2)])
			}
			c.releaseHeld()
		})
	}
	wg.Wait()

	for _, q := range []string{"a", "b", "a.dlq", "b.dlq"} {
		for {
			m, err := b.Get(ctx, q, 0)
			if errors.Is(err, ErrEmpty) {
				break
			}
			if err != nil {
				t.Fatalf("drain %s: %v", q, err)
			}
			if err := checkLoadPayload(m.Payload); err != nil {
				t.Fatalf("left in %s: %v", q, err)
			}
			m.Release()
		}
	}
}
