package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyq/keyq/internal/storage"
	"github.com/keyq/keyq/internal/wal"
)

// restart closes b and opens a new broker over the same store.
func restart(t *testing.T, b *Broker, store *logStore) *Broker {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return newTestBroker(t, Config{Store: store})
}

// TestReserveAckByRedeliveryRecipientSurvivesRestartC15 is case C15: a message
// redelivered after its lease ran out and acked by its second consumer stays acked
// across a restart.
func TestReserveAckByRedeliveryRecipientSurvivesRestartC15(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &logStore{}
		b := newTestBroker(t, Config{Store: store})
		ctx := context.Background()
		mustPut(t, b, "q", []byte("once"))
		mustReserve(t, b, "q", ReserveOptions{Lease: 2 * time.Second})
		time.Sleep(3 * time.Second)
		synctest.Wait()
		d := mustReserve(t, b, "q", ReserveOptions{Lease: 2 * time.Second})
		if d.Count != 2 {
			t.Fatalf("count = %d, want 2", d.Count)
		}
		if err := b.Ack(ctx, d.DeliveryID); err != nil {
			t.Fatal(err)
		}

		b = restart(t, b, store)
		if n, _ := b.Len("q"); n != 0 {
			t.Fatalf("len = %d after restart, want 0", n)
		}
		_, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Wait: 4 * time.Second})
		if !errors.Is(err, ErrEmpty) {
			t.Fatalf("reserve after restart = %v, want ErrEmpty", err)
		}
	})
}

// TestReserveLeasedRedeliveredAfterRestart: every message leased and not acked when
// the broker stops is delivered again, with its count kept (one more), at the head
// in its original order; acked ones never are; delivery IDs never repeat.
func TestReserveLeasedRedeliveredAfterRestart(t *testing.T) {
	for _, shuffle := range []bool{false, true} {
		t.Run(fmt.Sprintf("shuffle=%v", shuffle), func(t *testing.T) {
			store := &logStore{shuffle: shuffle}
			b := newTestBroker(t, Config{Store: store})
			ctx := context.Background()
			for i := range 6 {
				mustPut(t, b, "q", fmt.Appendf(nil, "m%d", i))
			}
			d0 := mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour})
			d1 := mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour})
			d2 := mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour})
			if err := b.Ack(ctx, d1.DeliveryID); err != nil {
				t.Fatal(err)
			}
			if err := b.Nack(ctx, d2.DeliveryID, 0); err != nil { // m2 back at the head
				t.Fatal(err)
			}
			d2 = mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour}) // m2, count 2
			maxID := d2.DeliveryID

			b = restart(t, b, store)
			var got []string
			for {
				ds, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Lease: time.Hour})
				if errors.Is(err, ErrEmpty) {
					break
				}
				d := ds[0]
				if d.DeliveryID <= maxID {
					t.Fatalf("delivery id %d not after %d", d.DeliveryID, maxID)
				}
				got = append(got, fmt.Sprintf("%s/%d", d.Payload, d.Count))
				b.Ack(ctx, d.DeliveryID)
			}
			// Leased messages come back to the head in their original order,
			// whatever the order of their leases (issue 4).
			want := "[m0/2 m2/3 m3/1 m4/1 m5/1]"
			if fmt.Sprint(got) != want {
				t.Fatalf("after restart got %v, want %s", got, want)
			}
			if err := b.Ack(ctx, d0.DeliveryID); !errors.Is(err, ErrNoDelivery) {
				t.Fatalf("ack of a delivery from before the restart = %v", err)
			}
		})
	}
}

// TestDeferredAndSettingsSurviveRestart: a delayed message stays deferred until
// its time across a restart, a TTL stays, and settings come back and show in stats.
func TestDeferredAndSettingsSurviveRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &logStore{}
		b := newTestBroker(t, Config{Store: store})
		ctx := context.Background()
		set := QueueSettings{MaxLength: 5, DefaultLease: time.Minute, MaxDeliveries: 3,
			DeadLetter: "dead", DefaultTTL: time.Hour, ExpiredToDLQ: true}
		if err := b.SetQueue(ctx, "q", set); err != nil {
			t.Fatal(err)
		}
		if err := b.SetQueue(ctx, "empty", QueueSettings{MaxBytes: 10}); err != nil {
			t.Fatal(err)
		}
		b.PutWith(ctx, "q", []byte("later"), PutOptions{Delay: 10 * time.Second})
		b.PutWith(ctx, "q", []byte("short"), PutOptions{TTL: 5 * time.Second})
		mustPut(t, b, "q", []byte("plain"))
		if b.sweep(); b.sweep() != 0 {
			t.Fatal("sweep dropped a queue with settings")
		}

		b = restart(t, b, store)
		if got, _ := b.QueueSettings("q"); got != set {
			t.Fatalf("settings = %+v, want %+v", got, set)
		}
		if s := b.Stats(0); len(s.QueueStats) != 2 || s.QueueStats[0].Settings.MaxBytes != 10 {
			t.Fatalf("stats = %+v", s.QueueStats)
		}
		d := mustReserve(t, b, "q", ReserveOptions{})
		if string(d.Payload) != "short" || !d.Deadline.Equal(time.Now().Add(time.Minute)) {
			t.Fatalf("first = %q deadline %v", d.Payload, d.Deadline)
		}
		b.Nack(ctx, d.DeliveryID, 0)
		time.Sleep(6 * time.Second) // "short" expires: to the dead-letter queue
		if m := mustReserve(t, b, "q", ReserveOptions{}); string(m.Payload) != "plain" {
			t.Fatalf("second = %q, want plain", m.Payload)
		}
		synctest.Wait()
		dl := mustReserve(t, b, "dead", ReserveOptions{})
		if dl.DeadLetter == nil || dl.DeadLetter.Reason != ReasonExpired ||
			dl.DeadLetter.Queue != "q" || dl.DeadLetter.Count != 1 {
			t.Fatalf("dead letter = %+v", dl.DeadLetter)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if m := mustReserve(t, b, "q", ReserveOptions{}); string(m.Payload) != "later" {
			t.Fatalf("third = %q, want later", m.Payload)
		}
		if err := b.SetQueue(ctx, "empty", QueueSettings{}); err != nil {
			t.Fatal(err)
		}
		b = restart(t, b, store)
		if got, _ := b.QueueSettings("empty"); got != (QueueSettings{}) {
			t.Fatalf("removed settings came back: %+v", got)
		}
	})
}

// TestMaxDeliveriesDeadLetters: a message that keeps failing is set aside in the
// dead-letter queue with its payload intact and its reason and count.
func TestMaxDeliveriesDeadLetters(t *testing.T) {
	store := &logStore{}
	b := newTestBroker(t, Config{Store: store})
	ctx := context.Background()
	if err := b.SetQueue(ctx, "q", QueueSettings{MaxDeliveries: 2}); err != nil {
		t.Fatal(err)
	}
	id := mustPut(t, b, "q", []byte("poison"))
	for range 2 {
		d := mustReserve(t, b, "q", ReserveOptions{})
		b.Nack(ctx, d.DeliveryID, 0)
	}
	if _, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("reserve after max deliveries = %v", err)
	}
	waitUntil(t, "dead letter", func() bool { n, _ := b.Len("q.dlq"); return n == 1 })
	b = restart(t, b, store)
	m := mustGet(t, b, "q.dlq")
	want := DeadLetter{Queue: "q", ID: id, Reason: ReasonMaxDeliveries, Count: 2}
	if string(m.Payload) != "poison" || m.DeadLetter == nil || *m.DeadLetter != want {
		t.Fatalf("dead letter = %q %+v", m.Payload, m.DeadLetter)
	}
	if s := b.Stats(0); s.Messages != 0 {
		t.Fatalf("messages left: %+v", s.QueueStats)
	}
}

func TestQueueFullRejectsOrDropsOldest(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	b.SetQueue(ctx, "r", QueueSettings{MaxLength: 2})
	b.SetQueue(ctx, "d", QueueSettings{MaxBytes: 4, Overflow: OverflowDropOldest})
	for _, p := range []string{"a", "b"} {
		mustPut(t, b, "r", []byte(p))
	}
	if _, err := b.Put(ctx, "r", []byte("c")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("put into full queue = %v", err)
	}
	if _, err := b.PutBatch(ctx, "r", [][]byte{[]byte("x")}, PutOptions{}); !errors.Is(err,
		ErrQueueFull) {
		t.Fatalf("batch into full queue = %v", err)
	}
	// A leased message leaves room; a nacked one comes back even over the limit.
	d := mustReserve(t, b, "r", ReserveOptions{})
	mustPut(t, b, "r", []byte("c"))
	if err := b.Nack(ctx, d.DeliveryID, 0); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Len("r"); n != 3 {
		t.Fatalf("len = %d, want 3", n)
	}

	for _, p := range []string{"aa", "bb", "cc"} {
		mustPut(t, b, "d", []byte(p))
	}
	if got := contents(t, b, "d"); fmt.Sprint(got) != "[bb cc]" {
		t.Fatalf("drop-oldest queue = %v", got)
	}
	if s := b.Stats(0).QueueStats[0]; s.Name != "d" || s.Dropped != 1 {
		t.Fatalf("stats = %+v", s)
	}
	if _, err := b.Put(ctx, "d", []byte("12345")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("put larger than the queue = %v", err)
	}
	// A put that cannot fit whatever is dropped drops nothing.
	if got := contents(t, b, "d"); fmt.Sprint(got) != "[bb cc]" {
		t.Fatalf("drop-oldest queue after a put that can never fit = %v, want [bb cc]", got)
	}
	b.SetQueue(ctx, "d2", QueueSettings{MaxLength: 2, Overflow: OverflowDropOldest})
	mustPut(t, b, "d2", []byte("x"))
	mustPut(t, b, "d2", []byte("y"))
	three := [][]byte{[]byte("1"), []byte("2"), []byte("3")}
	if _, err := b.PutBatch(ctx, "d2", three, PutOptions{}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("batch of 3 into a queue of at most 2 = %v", err)
	}
	if got := contents(t, b, "d2"); fmt.Sprint(got) != "[x y]" {
		t.Fatalf("drop-oldest queue after a batch that can never fit = %v, want [x y]", got)
	}
}

func TestPutTTLExpiredNeverDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroker(t, Config{})
		ctx := context.Background()
		b.PutWith(ctx, "q", []byte("old"), PutOptions{TTL: time.Second})
		mustPut(t, b, "q", []byte("new"))
		time.Sleep(time.Second)
		if m := mustGet(t, b, "q"); string(m.Payload) != "new" {
			t.Fatalf("get = %q, want new", m.Payload)
		}
		if s := b.Stats(0).QueueStats[0]; s.Expired != 1 || s.Messages != 0 {
			t.Fatalf("stats = %+v", s)
		}
	})
}

func TestGetBatchTakesUpToMax(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	b.PutBatch(ctx, "q", [][]byte{[]byte("a"), []byte("b"), []byte("c")}, PutOptions{})
	msgs, err := b.GetBatch(ctx, []string{"empty", "q"}, 2, 0)
	if err != nil || len(msgs) != 2 || string(msgs[1].Payload) != "b" {
		t.Fatalf("get batch = %v, %v", msgs, err)
	}
	ds, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Max: 5})
	if err != nil || len(ds) != 1 || string(ds[0].Payload) != "c" {
		t.Fatalf("reserve batch = %v, %v", ds, err)
	}
	ch := make(chan []Message, 1)
	go func() {
		msgs, _ := b.GetBatch(ctx, []string{"w"}, 3, Forever)
		ch <- msgs
	}()
	waitUntil(t, "waiter", func() bool { return b.Stats(0).Waiting == 1 })
	b.PutBatch(ctx, "w", [][]byte{[]byte("1"), []byte("2")}, PutOptions{})
	if msgs := <-ch; len(msgs) != 2 {
		t.Fatalf("blocked batch got %d messages, want 2", len(msgs))
	}
}

// TestReserveOverWAL runs leases, a delayed message and settings through the real
// log and a restart.
func TestReserveOverWAL(t *testing.T) {
	dir := t.TempDir()
	open := func() *Broker {
		l, err := wal.Open(dir, wal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return newTestBroker(t, Config{Store: l})
	}
	b := open()
	ctx := context.Background()
	b.SetQueue(ctx, "q", QueueSettings{MaxDeliveries: 5})
	for i := range 4 {
		mustPut(t, b, "q", fmt.Appendf(nil, "m%d", i))
	}
	b.PutWith(ctx, "q", []byte("delayed"), PutOptions{Delay: time.Hour})
	d0 := mustReserve(t, b, "q", ReserveOptions{})
	d1 := mustReserve(t, b, "q", ReserveOptions{})
	b.Ack(ctx, d1.DeliveryID)
	b.Close()

	b = open()
	if s, _ := b.QueueSettings("q"); s.MaxDeliveries != 5 {
		t.Fatalf("settings = %+v", s)
	}
	got := []string{}
	for {
		ds, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{})
		if err != nil {
			break
		}
		if ds[0].DeliveryID <= d1.DeliveryID {
			t.Fatalf("delivery id %d reused", ds[0].DeliveryID)
		}
		got = append(got, fmt.Sprintf("%s/%d", ds[0].Payload, ds[0].Count))
		b.Ack(ctx, ds[0].DeliveryID)
	}
	if fmt.Sprint(got) != "[m0/2 m2/1 m3/1]" || d0.Count != 1 {
		t.Fatalf("after restart: %v", got)
	}
	if s := b.Stats(0).QueueStats[0]; s.Deferred != 1 {
		t.Fatalf("deferred = %d, want 1", s.Deferred)
	}
}

// TestDeadLetterRefusedStaysInQueue: when the dead-letter queue refuses a message
// (its store fails), the message goes back to the queue it left, never nowhere.
func TestDeadLetterRefusedStaysInQueue(t *testing.T) {
	store := newListStore()
	b := newListBroker(t, Config{Store: store})
	ctx := context.Background()
	b.SetQueue(ctx, "q", QueueSettings{MaxDeliveries: 1})
	mustPut(t, b, "q", []byte("poison"))
	store.setFailPutOn("q.dlq")
	d := mustReserve(t, b, "q", ReserveOptions{})
	if err := b.Nack(ctx, d.DeliveryID, 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "message back", func() bool { n, _ := b.Len("q"); return n == 1 })
	if s := b.Stats(0).QueueStats[0]; s.DeadLettered != 0 {
		t.Fatalf("dead-lettered = %d, want 0", s.DeadLettered)
	}

	store.setFailPutOn("")
	if _, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("reserve = %v, want ErrEmpty (the message is due for the dlq)", err)
	}
	waitUntil(t, "dead letter", func() bool { n, _ := b.Len("q.dlq"); return n == 1 })
	if m := mustGet(t, b, "q.dlq"); string(m.Payload) != "poison" {
		t.Fatalf("dead letter = %q", m.Payload)
	}
}

// TestReserveCrashOverWAL kills a broker over the real log without closing either
// (its files copied as a crashed process leaves them) and starts another on the
// copy: every message leased and not acked is delivered again, once, with its
// count kept; acked ones never are, and nor is a message acked by its second
// consumer (C15).
func TestReserveCrashOverWAL(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBroker(t, Config{Store: l})
	ctx := context.Background()
	for i := range 6 {
		mustPut(t, b, "q", fmt.Appendf(nil, "m%d", i))
	}
	var ds []Delivery
	for range 4 {
		ds = append(ds, mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour}))
	}
	b.Ack(ctx, ds[0].DeliveryID)                      // m0 done
	b.Nack(ctx, ds[1].DeliveryID, 0)                  // m1 back, count 1
	again := mustReserve(t, b, "q", ReserveOptions{}) // m1, count 2
	b.Ack(ctx, again.DeliveryID)                      // m1 done by its second consumer
	// m2 and m3 stay leased: the consumer and the broker die.

	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(crashed, "LOCK")) // the dead process held the lock
	l2, err := wal.Open(crashed, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b2 := newTestBroker(t, Config{Store: l2})
	var got []string
	for {
		ds, err := b2.Reserve(ctx, []string{"q"}, ReserveOptions{})
		if errors.Is(err, ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s/%d", ds[0].Payload, ds[0].Count))
		b2.Ack(ctx, ds[0].DeliveryID)
	}
	if want := "[m2/2 m3/2 m4/1 m5/1]"; fmt.Sprint(got) != want {
		t.Fatalf("after the crash got %v, want %s", got, want)
	}
}

// TestStateRecordsSurviveCompaction: the log copies live state records forward as
// it does puts, so a lease's count, a deferred message and settings written long
// ago survive the segments they were written in being dropped.
func TestStateRecordsSurviveCompaction(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentBytes: 4096, ReadGrace: time.Millisecond}
	l, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBroker(t, Config{Store: l})
	ctx := context.Background()
	b.SetQueue(ctx, "q", QueueSettings{MaxDeliveries: 9})
	mustPut(t, b, "q", []byte("leased"))
	mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour})
	b.PutWith(ctx, "q", []byte("later"), PutOptions{Delay: time.Hour})

	// 60 KiB of churn fill 15 segments; compaction drops the first ones, which held
	// the state records, copying those forward.
	payload := make([]byte, 200)
	for range 250 {
		mustPut(t, b, "churn", payload)
		mustGet(t, b, "churn")
	}
	waitUntil(t, "old segments dropped", func() bool {
		mustPut(t, b, "churn", payload) // compaction looks again as the log grows
		mustGet(t, b, "churn")
		return l.Stats().Segments <= 3
	})
	b.Close()

	l, err = wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	b = newTestBroker(t, Config{Store: l})
	if s, _ := b.QueueSettings("q"); s.MaxDeliveries != 9 {
		t.Fatalf("settings = %+v", s)
	}
	if d := mustReserve(t, b, "q", ReserveOptions{}); string(d.Payload) != "leased" ||
		d.Count != 2 {
		t.Fatalf("after compaction: %q count %d", d.Payload, d.Count)
	}
	if s := b.Stats(0); s.Deferred != 1 {
		t.Fatalf("deferred = %d, want 1", s.Deferred)
	}
}

// syncedStore is a logStore whose Wait marks what is durable; lose drops every
// record appended after the last one waited for, as a crash before an fsync does.
type syncedStore struct {
	logStore
	synced int
}

func (s *syncedStore) Append(rec *storage.Record) (storage.Location, storage.Ticket, error) {
	loc, _, err := s.logStore.Append(rec)
	return loc, storage.Ticket(loc.Offset), err
}

func (s *syncedStore) Wait(_ context.Context, t storage.Ticket) error {
	s.mu.Lock()
	s.synced = max(s.synced, int(t))
	s.mu.Unlock()
	return nil
}

func (s *syncedStore) lose() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	lost := len(s.records) - s.synced
	s.records = s.records[:s.synced]
	return lost
}

// TestReserveExpiryLostInCrashStillRedelivers: a lease that ran out was put back by
// the timer, and the crash lost that record (nobody waited for it): the message is
// delivered again all the same, count kept, ahead of those behind it.
func TestReserveExpiryLostInCrashStillRedelivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &syncedStore{}
		b := newTestBroker(t, Config{Store: store})
		ctx := context.Background()
		mustPut(t, b, "q", []byte("m0"))
		mustPut(t, b, "q", []byte("m1"))
		mustReserve(t, b, "q", ReserveOptions{Lease: time.Second})
		time.Sleep(2 * time.Second)
		synctest.Wait()

		b.closed.Store(true) // crash: the goroutines stop, nothing more is written
		close(b.done)
		b.wg.Wait()
		if lost := store.lose(); lost == 0 {
			t.Fatal("the expiry wrote nothing unsynced: the test tests nothing")
		}

		b = newTestBroker(t, Config{Store: store})
		var got []string
		for range 2 {
			d := mustReserve(t, b, "q", ReserveOptions{})
			got = append(got, fmt.Sprintf("%s/%d", d.Payload, d.Count))
			if err := b.Ack(ctx, d.DeliveryID); err != nil {
				t.Fatal(err)
			}
		}
		if fmt.Sprint(got) != "[m0/2 m1/1]" {
			t.Fatalf("after the crash got %v", got)
		}
	})
}

// TestDeleteTakesDeferredMessagesToo: a queue's Delete takes its delayed puts and
// its messages nacked with a delay along with the ready ones, for good: none comes
// due later, nor after a restart. A message out under a lease stays its consumer's.
func TestDeleteTakesDeferredMessagesToo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &logStore{}
		b := newTestBroker(t, Config{Store: store})
		ctx := context.Background()
		mustPut(t, b, "q", []byte("nacked"))
		mustPut(t, b, "q", []byte("leased"))
		d := mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour})
		if err := b.Nack(ctx, d.DeliveryID, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		leased := mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour})
		if _, err := b.PutWith(ctx, "q", []byte("later"),
			PutOptions{Delay: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
		mustPut(t, b, "q", []byte("ready"))

		n, err := b.Delete(ctx, "q")
		if err != nil || n != 3 {
			t.Fatalf("delete = %d, %v; want 3 (ready, delayed, nacked with a delay)", n, err)
		}
		qs, _ := b.QueueStats("q")
		if qs.Messages != 0 || qs.Deferred != 0 || qs.Inflight != 1 {
			t.Fatalf("after delete: %+v; want nothing but the lease", qs)
		}
		time.Sleep(time.Minute) // past every delay
		synctest.Wait()
		if n, _ := b.Len("q"); n != 0 {
			t.Fatalf("len = %d once the delays passed, want 0", n)
		}
		if err := b.Ack(ctx, leased.DeliveryID); err != nil {
			t.Fatalf("ack of the lease held through the delete: %v", err)
		}

		b = restart(t, b, store)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n, _ := b.Len("q"); n != 0 {
			t.Fatalf("len = %d after a restart, want 0", n)
		}
	})
}
