package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// recountHeld adds up what the broker holds from its queues and leases, and the
// budgets its queues reserved, as HeldBytes should count it. The broker must be
// quiet: no call running, no dead letter on its way (synctest.Wait after the last
// call).
func recountHeld(t fataler, b *Broker) int64 {
	t.Helper()
	if n := b.pendingDead.Load(); n != 0 {
		t.Fatalf("%d dead letters on their way", n)
	}
	var held int64
	b.mu.RLock()
	b.queues.all(func(q *Queue) {
		q.mu.Lock()
		held += q.bytes.Load() + q.depth.Load()*MessageOverhead
		held += q.deferredBytes + q.deferred.Load()*MessageOverhead
		held += q.heldBudget
		q.mu.Unlock()
	})
	b.mu.RUnlock()
	for i := range b.leases.shards {
		s := &b.leases.shards[i]
		s.mu.Lock()
		for _, l := range s.m {
			held += charge(l.e.size)
		}
		s.mu.Unlock()
	}
	return held
}

// fataler is what recountHeld needs of a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// wantHeld fails t unless HeldBytes is what the queues hold.
func wantHeld(t fataler, b *Broker) {
	t.Helper()
	if got, want := b.HeldBytes(), recountHeld(t, b); got != want {
		t.Fatalf("HeldBytes = %d; the queues hold %d", got, want)
	}
}

func TestServerFullRefusesNewMessages(t *testing.T) {
	ctx := context.Background()
	b := newTestBroker(t, Config{MaxHeldBytes: 3 * charge(100)})
	p := make([]byte, 100)
	for range 3 {
		mustPut(t, b, "q", p)
	}
	if _, err := b.Put(ctx, "other", p); !errors.Is(err, ErrServerFull) {
		t.Fatalf("put over the limit = %v; want ErrServerFull", err)
	}
	if _, err := b.Put(ctx, "other", nil); !errors.Is(err, ErrServerFull) {
		t.Fatalf("empty put over the limit = %v; want ErrServerFull", err)
	}
	if _, err := b.PutWith(ctx, "q", p, PutOptions{Delay: time.Second}); !errors.Is(err,
		ErrServerFull) {
		t.Fatalf("delayed put over the limit = %v; want ErrServerFull", err)
	}
	if _, err := b.Push(ctx, "q", [][]byte{p}, Front, false); !errors.Is(err, ErrServerFull) {
		t.Fatalf("push over the limit = %v; want ErrServerFull", err)
	}
	if _, _, err := b.PutAppend("q", p, PutOptions{}); !errors.Is(err, ErrServerFull) {
		t.Fatalf("async put over the limit = %v; want ErrServerFull", err)
	}
	if n, _ := b.Len("q"); n != 3 {
		t.Fatalf("len = %d after refused puts; want 3", n)
	}
	wantHeld(t, b)

	// What a get frees goes to its queue's budget first: a put there finds room.
	m, err := b.Get(ctx, "q", 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Release()
	mustPut(t, b, "q", p)
	wantHeld(t, b)
}

func TestServerFullBatchIsAllOrNone(t *testing.T) {
	ctx := context.Background()
	b := newTestBroker(t, Config{MaxHeldBytes: 3 * charge(10)})
	p := make([]byte, 10)
	mustPut(t, b, "q", p)

	if _, err := b.PutBatch(ctx, "q", [][]byte{p, p, p}, PutOptions{}); !errors.Is(err,
		ErrServerFull) {
		t.Fatalf("batch over the limit = %v; want ErrServerFull", err)
	}
	if _, err := b.Push(ctx, "q", [][]byte{p, p, p}, Back, false); !errors.Is(err,
		ErrServerFull) {
		t.Fatalf("push of 3 over the limit = %v; want ErrServerFull", err)
	}
	if n, _ := b.Len("q"); n != 1 {
		t.Fatalf("len = %d after refused batches; want 1", n)
	}
	if _, err := b.PutBatch(ctx, "q", [][]byte{p, p}, PutOptions{}); err != nil {
		t.Fatalf("batch that fits = %v", err)
	}
	if got := b.HeldBytes(); got != 3*charge(10) {
		t.Fatalf("HeldBytes = %d; want %d", got, 3*charge(10))
	}
}

// Messages that come back or move within the broker are never refused for the
// limit, even with the server full: refusing them would lose them.
func TestServerFullNeverRefusesInternalMoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		// Room for four messages, and for the budgets of two queues.
		b := newTestBroker(t, Config{MaxHeldBytes: 4*charge(10) + 4})
		p := make([]byte, 10)
		err := b.SetQueue(ctx, "q", QueueSettings{MaxDeliveries: 2, ExpiredToDLQ: true})
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, b, "q", p)
		ds, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Lease: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			mustPut(t, b, "fill", p)
		}
		if _, err := b.Put(ctx, "fill", p); !errors.Is(err, ErrServerFull) {
			t.Fatalf("put at the limit = %v; want ErrServerFull", err)
		}

		// A nack returns the message; its lease running out returns it again; the
		// next nack sends it to the dead-letter queue.
		if err := b.Nack(ctx, ds[0].DeliveryID, 0); err != nil {
			t.Fatalf("nack at the limit = %v", err)
		}
		if _, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Lease: time.Second}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if _, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{}); !errors.Is(err,
			ErrEmpty) {
			t.Fatalf("reserve after max deliveries = %v; want ErrEmpty", err)
		}
		synctest.Wait()
		if n, _ := b.Len("q.dlq"); n != 1 {
			t.Fatalf("dead-letter queue holds %d at the limit; want 1", n)
		}
		wantHeld(t, b)

		// A move within the broker is not refused either.
		if _, err := b.Move(ctx, "fill", "moved", Front, Back); err != nil {
			t.Fatalf("move at the limit = %v", err)
		}
		wantHeld(t, b)
	})
}

// A TTL that runs out, a delete and acks bring the total back to 0.
func TestHeldBytesReturnToZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := newTestBroker(t, Config{MaxHeldBytes: 1 << 20})
		if _, err := b.PutWith(ctx, "ttl", []byte("x"), PutOptions{TTL: time.Second}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.PutWith(ctx, "del", []byte("xy"), PutOptions{Delay: time.Hour}); err != nil {
			t.Fatal(err)
		}
		mustPut(t, b, "del", []byte("xyz"))
		mustPut(t, b, "ack", []byte("xyzw"))
		ds, err := b.Reserve(ctx, []string{"ack"}, ReserveOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantHeld(t, b)

		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n, err := b.Delete(ctx, "del"); n != 2 || err != nil {
			t.Fatalf("delete = %d, %v; want 2", n, err)
		}
		if err := b.Ack(ctx, ds[0].DeliveryID); err != nil {
			t.Fatal(err)
		}
		wantHeld(t, b)

		// Once deleted, or dropped as drained, queues give their budgets back.
		b.Delete(ctx, "ack")
		b.sweep()
		b.sweep()
		if got := b.HeldBytes(); got != 0 {
			t.Fatalf("HeldBytes = %d with nothing held; want 0", got)
		}
	})
}

// Recovery loads every message even over the limit; puts are then refused until
// takes bring the total under it.
func TestHeldBytesRecoveredOverLimit(t *testing.T) {
	ctx := context.Background()
	store := &logStore{}
	b := newTestBroker(t, Config{Store: store})
	p := make([]byte, 100)
	for range 5 {
		mustPut(t, b, "q", p)
	}
	b.Close()

	b = newTestBroker(t, Config{Store: store, MaxHeldBytes: 2 * charge(100)})
	if n, _ := b.Len("q"); n != 5 {
		t.Fatalf("recovered %d messages; want 5", n)
	}
	if got := b.HeldBytes(); got != 5*charge(100) {
		t.Fatalf("HeldBytes = %d after recovery; want %d", got, 5*charge(100))
	}
	if _, err := b.Put(ctx, "q", p); !errors.Is(err, ErrServerFull) {
		t.Fatalf("put over the limit after recovery = %v; want ErrServerFull", err)
	}
	for range 4 {
		m, err := b.Get(ctx, "q", 0)
		if err != nil {
			t.Fatal(err)
		}
		m.Release()
	}
	mustPut(t, b, "q", p)
	wantHeld(t, b)
}

// Without a limit nothing is counted.
func TestHeldBytesWithoutLimit(t *testing.T) {
	b := newTestBroker(t, Config{})
	mustPut(t, b, "q", make([]byte, 100))
	if got := b.HeldBytes(); got != 0 {
		t.Fatalf("HeldBytes = %d without a limit; want 0", got)
	}
}

// Room reserved ahead of puts follows what each queue holds, so that many queues
// holding a little each do not fill the limit with reservations: 12,000 queues of
// one 10-byte message fit a 10 MiB limit with room to spare (a tester's case: with a
// chunk kept by every queue that held anything, the 554th queue was refused).
func TestHeldSlackFollowsWhatQueuesHold(t *testing.T) {
	const queues = 12000
	b := newTestBroker(t, Config{MaxHeldBytes: 10 << 20})
	for i := range queues {
		mustPut(t, b, fmt.Sprintf("q%d", i), []byte("0123456789"))
	}

	uses := int64(queues) * charge(10)
	if got := b.HeldBytes(); got < uses || got > uses+uses/slackShare {
		t.Fatalf("HeldBytes = %d for %d messages of %d bytes each; want %d to %d",
			got, queues, charge(10), uses, uses+uses/slackShare)
	}
	wantHeld(t, b)
}

// However the messages are spread over queues, puts are refused no earlier than the
// reservations allow: at least 15/16 of the limit holds messages when the first put
// is refused.
func TestHeldLimitUsableAcrossQueues(t *testing.T) {
	for _, queues := range []int{1, 8, 300} {
		t.Run(fmt.Sprintf("queues=%d", queues), func(t *testing.T) {
			const limit = 4 << 20
			b := newTestBroker(t, Config{MaxHeldBytes: limit})
			p := make([]byte, 100)
			var uses int64
			for i := 0; ; i++ {
				_, err := b.Put(context.Background(), fmt.Sprintf("q%d", i%queues), p)
				if errors.Is(err, ErrServerFull) {
					break
				}
				if err != nil {
					t.Fatalf("put %d: %v", i, err)
				}
				uses += charge(len(p))
			}
			if uses < limit-limit/slackShare {
				t.Fatalf("first put refused with %d bytes of messages held, under %d "+
					"(15/16 of the limit %d)", uses, limit-limit/slackShare, limit)
			}
			wantHeld(t, b)
		})
	}
}

// A queue that a put fills and a get empties by turns keeps one message's room and
// gives the rest back, so that an emptied queue does not keep a chunk of the limit.
func TestHeldEmptyQueueKeepsLittle(t *testing.T) {
	ctx := context.Background()
	b := newTestBroker(t, Config{MaxHeldBytes: 64 << 20})
	p := make([]byte, 100)
	for range 1000 {
		mustPut(t, b, "q", p)
	}
	for range 1000 {
		m, err := b.Get(ctx, "q", 0)
		if err != nil {
			t.Fatal(err)
		}
		m.Release()
	}
	if got := b.HeldBytes(); got > 2*charge(len(p)) {
		t.Fatalf("HeldBytes = %d with queue q drained; want at most two messages' "+
			"room, %d", got, 2*charge(len(p)))
	}
	wantHeld(t, b)
}

// A queue that passed large messages does not keep their room once it holds little:
// a tester's case, where 66 queues that had each passed two 1 MB messages and kept a
// 6-byte one held a 64 MiB limit, and a put of 1 MB into a new queue was refused.
func TestHeldLargeMessagesRoomGoesBack(t *testing.T) {
	ctx := context.Background()
	const limit = 64 << 20
	b := newTestBroker(t, Config{MaxHeldBytes: limit})
	large := make([]byte, 1_000_000)
	const queues = 66
	for i := range queues {
		q := fmt.Sprintf("q%d", i)
		mustPut(t, b, q, large)
		mustPut(t, b, q, large)
		mustPut(t, b, q, []byte("small\n"))
		for range 2 {
			m, err := b.Get(ctx, q, 0)
			if err != nil {
				t.Fatalf("get from %s: %v", q, err)
			}
			m.Release()
		}
	}

	// Each queue may keep its slack and the room of one small message, twice over.
	bound := int64(queues) * (charge(6) + 2*(b.heldChunk/slackShare))
	if got := b.HeldBytes(); got > bound {
		t.Fatalf("HeldBytes = %d with %d queues of one 6-byte message; want at most %d",
			got, queues, bound)
	}
	wantHeld(t, b)
	mustPut(t, b, "fresh", large)
}

// A get from a full queue of large messages makes room for new puts at once.
func TestHeldGetMakesRoomForLargeMessages(t *testing.T) {
	ctx := context.Background()
	b := newTestBroker(t, Config{MaxHeldBytes: 16 << 20})
	large := make([]byte, 1_000_000)
	for {
		_, err := b.Put(ctx, "fill", large)
		if errors.Is(err, ErrServerFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	before := b.HeldBytes()
	m, err := b.Get(ctx, "fill", 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Release()
	if freed := before - b.HeldBytes(); freed < charge(len(large))-2*b.heldChunk {
		t.Fatalf("a get of %d bytes freed %d held bytes", len(large), freed)
	}
	mustPut(t, b, "fill", []byte("ok"))
	wantHeld(t, b)
}
