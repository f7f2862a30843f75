package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// heldStore is a logStore whose Wait never returns before its context ends: a
// record appended to it is never durable, as during a very slow fsync.
type heldStore struct{ logStore }

func (s *heldStore) Wait(ctx context.Context, _ storage.Ticket) error {
	<-ctx.Done()
	return ctx.Err()
}

// takeAll gets every message of queue and returns their payloads, in order.
func takeAll(t *testing.T, b *Broker, queue string) []string {
	t.Helper()
	var got []string
	for {
		m, err := b.Get(context.Background(), queue, 0)
		if errors.Is(err, ErrEmpty) {
			return got
		}
		if err != nil {
			t.Fatalf("get %q: %v", queue, err)
		}
		got = append(got, string(m.Payload))
	}
}

func wantPayloads(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("messages %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("messages %q, want %q", got, want)
		}
	}
}

// putAppended puts payloads on queue without waiting for the store.
func putAppended(t *testing.T, b *Broker, queue string, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if _, _, err := b.PutAppend(queue, []byte(p), PutOptions{}); err != nil {
			t.Fatalf("put %q: %v", p, err)
		}
	}
}

// TestTakeAppendFinishTakeInOrder takes two messages ahead of finishing them: each
// is off its queue once appended, and finishing hands them out in put order.
func TestTakeAppendFinishTakeInOrder(t *testing.T) {
	b := newTestBroker(t, Config{})
	putAppended(t, b, "q", "a", "b", "c")
	p1, err := b.TakeAppend([]string{"none", "q"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := b.TakeAppend([]string{"q"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Len("q"); n != 1 {
		t.Fatalf("len %d after two takes appended, want 1", n)
	}
	for i, p := range []PendingTake{p1, p2} {
		m, err := b.FinishTake(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if want := string(rune('a' + i)); string(m.Payload) != want || m.Queue != "q" {
			t.Fatalf("take %d: %q from %q, want %q from q", i, m.Payload, m.Queue, want)
		}
	}
	wantPayloads(t, takeAll(t, b, "q"), "c")
}

// TestTakeAppendEmptyCountsOnlyWithoutWait: a take that finds nothing is an empty
// get unless it has a wait, which the caller goes on to wait with.
func TestTakeAppendEmptyCountsOnlyWithoutWait(t *testing.T) {
	b := newTestBroker(t, Config{})
	before := b.Stats(0).EmptyGets
	if _, err := b.TakeAppend([]string{"q"}, time.Second); !errors.Is(err, ErrEmpty) {
		t.Fatalf("take with a wait from an empty queue: %v, want ErrEmpty", err)
	}
	if _, err := b.TakeBatchAppend([]string{"q"}, 4, 0, time.Second); !errors.Is(err, ErrEmpty) {
		t.Fatalf("batch take with a wait from an empty queue: %v, want ErrEmpty", err)
	}
	if _, err := b.ReserveAppend([]string{"q"}, ReserveOptions{Wait: time.Second}); !errors.Is(
		err, ErrEmpty) {
		t.Fatalf("reserve with a wait from an empty queue: %v, want ErrEmpty", err)
	}
	if got := b.Stats(0).EmptyGets - before; got != 0 {
		t.Fatalf("%d empty gets counted for takes that wait, want 0", got)
	}
	if _, err := b.TakeAppend([]string{"q"}, 0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("take from an empty queue: %v, want ErrEmpty", err)
	}
	if got := b.Stats(0).EmptyGets - before; got != 1 {
		t.Fatalf("%d empty gets counted, want 1", got)
	}
	if _, err := b.TakeAppend([]string{""}, 0); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("take from an empty key: %v, want ErrInvalidKey", err)
	}
}

// TestFinishTakeRequeuesWhenCallerLeft: takes whose caller leaves before they are
// durable go back where they were (finished last first, as a front door does), and
// each message is then delivered once.
func TestFinishTakeRequeuesWhenCallerLeft(t *testing.T) {
	b := newTestBroker(t, Config{Store: &heldStore{}})
	putAppended(t, b, "q", "a", "b", "c", "d", "e")
	one, err := b.TakeAppend([]string{"q"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := b.TakeBatchAppend([]string{"q"}, 2, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Len("q"); n != 2 {
		t.Fatalf("len %d after three takes appended, want 2", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if msgs, err := b.FinishTakeBatch(ctx, batch); err == nil || len(msgs) != 0 {
		t.Fatalf("batch finished after its caller left: %d messages, %v", len(msgs), err)
	}
	if m, err := b.FinishTake(ctx, one); err == nil {
		t.Fatalf("take finished after its caller left: %q", m.Payload)
	}
	// The held store never makes a get durable: look at the queue's order with
	// takes that are put back.
	wantPayloads(t, queueOrder(t, b, "q"), "a", "b", "c", "d", "e")
}

// queueOrder takes every message of queue with TakeAppend, returns their payloads
// and puts them all back with AbandonTake, last first, leaving the queue as it was.
func queueOrder(t *testing.T, b *Broker, queue string) []string {
	t.Helper()
	var ps []PendingTake
	var got []string
	for {
		p, err := b.TakeAppend([]string{queue}, 0)
		if errors.Is(err, ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
		got = append(got, string(p.d.e.payload))
	}
	for i := len(ps) - 1; i >= 0; i-- {
		b.AbandonTake(ps[i])
	}
	return got
}

// TestAbandonTakeKeepsOrder: pending takes and a batch put back last first leave
// the queue as it was, and every message is delivered once afterwards.
func TestAbandonTakeKeepsOrder(t *testing.T) {
	b := newTestBroker(t, Config{})
	putAppended(t, b, "q", "a", "b", "c", "d")
	one, err := b.TakeAppend([]string{"q"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := b.TakeBatchAppend([]string{"q"}, 2, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.AbandonTake(batch)
	b.AbandonTake(one)
	wantPayloads(t, takeAll(t, b, "q"), "a", "b", "c", "d")
}

// TestTakeAppendLostInCrashLeavesMessage: a take appended but never durable is lost
// in a crash, and the message is still there after the restart.
func TestTakeAppendLostInCrashLeavesMessage(t *testing.T) {
	store := &syncedStore{}
	b := newTestBroker(t, Config{Store: store})
	mustPut(t, b, "q", []byte("a"))
	if _, err := b.TakeAppend([]string{"q"}, 0); err != nil {
		t.Fatal(err)
	}
	if lost := store.lose(); lost != 1 {
		t.Fatalf("%d records lost in the crash, want the take alone", lost)
	}
	b = restart(t, b, &store.logStore)
	wantPayloads(t, takeAll(t, b, "q"), "a")
}

// TestReserveAppendFinishReserve leases two messages ahead of finishing them; the
// deliveries can be acked. A reserve whose owner is released before it finishes
// gives its leases back.
func TestReserveAppendFinishReserve(t *testing.T) {
	b := newTestBroker(t, Config{})
	putAppended(t, b, "q", "a", "b", "c")
	o := b.NewOwner()
	p, err := b.ReserveAppend([]string{"q"}, ReserveOptions{Max: 2, Owner: o})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := b.FinishReserve(context.Background(), p)
	if err != nil || len(ds) != 2 {
		t.Fatalf("reserve: %d deliveries, %v; want 2", len(ds), err)
	}
	for i, d := range ds {
		if want := string(rune('a' + i)); string(d.Payload) != want || d.Count != 1 {
			t.Fatalf("delivery %d: %q count %d, want %q count 1", i, d.Payload, d.Count, want)
		}
		if err := b.Ack(context.Background(), d.DeliveryID); err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
	}

	p, err = b.ReserveAppend([]string{"q"}, ReserveOptions{Owner: o})
	if err != nil {
		t.Fatal(err)
	}
	b.ReleaseOwner(o)
	if ds, err := b.FinishReserve(context.Background(), p); err == nil {
		t.Fatalf("reserve finished after its owner was released: %d deliveries", len(ds))
	}
	wantPayloads(t, takeAll(t, b, "q"), "c")
}
