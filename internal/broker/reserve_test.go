package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type reserveResult struct {
	ds  []Delivery
	err error
}

// startReserver begins a blocking reserve and returns once the broker counts it as
// waiting.
func startReserver(t *testing.T, b *Broker, ctx context.Context, queues []string,
	o ReserveOptions) <-chan reserveResult {
	t.Helper()
	before := b.Stats(0).Waiting
	ch := make(chan reserveResult, 1)
	go func() {
		ds, err := b.Reserve(ctx, queues, o)
		ch <- reserveResult{ds, err}
	}()
	waitUntil(t, "reserver to block", func() bool { return b.Stats(0).Waiting > before })
	return ch
}

func mustReserve(t testing.TB, b *Broker, queue string, o ReserveOptions) Delivery {
	t.Helper()
	ds, err := b.Reserve(context.Background(), []string{queue}, o)
	if err != nil || len(ds) != 1 {
		t.Fatalf("reserve %q: %d deliveries, %v", queue, len(ds), err)
	}
	return ds[0]
}

func TestReserveAckRemovesMessage(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	id := mustPut(t, b, "q", []byte("job"))
	d := mustReserve(t, b, "q", ReserveOptions{Lease: time.Minute})
	if d.ID != id || string(d.Payload) != "job" || d.Count != 1 || d.DeliveryID == 0 {
		t.Fatalf("delivery = %+v", d)
	}
	if s := b.Stats(0).QueueStats[0]; s.Messages != 0 || s.Inflight != 1 {
		t.Fatalf("stats = %+v, want 0 ready, 1 inflight", s)
	}
	if err := b.Ack(ctx, d.DeliveryID); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(ctx, d.DeliveryID); !errors.Is(err, ErrNoDelivery) {
		t.Fatalf("second ack = %v, want ErrNoDelivery", err)
	}
	if _, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("reserve after ack = %v, want ErrEmpty", err)
	}
	if s := b.Stats(0).QueueStats[0]; s.Inflight != 0 {
		t.Fatalf("inflight = %d after ack", s.Inflight)
	}
}

func TestReserveUnknownDeliveryRefused(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	if err := b.Ack(ctx, 12345); !errors.Is(err, ErrNoDelivery) {
		t.Fatalf("ack = %v", err)
	}
	if err := b.Nack(ctx, 12345, 0); !errors.Is(err, ErrNoDelivery) {
		t.Fatalf("nack = %v", err)
	}
	if _, err := b.Touch(ctx, 12345, time.Second); !errors.Is(err, ErrNoDelivery) {
		t.Fatalf("touch = %v", err)
	}
	if _, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Lease: -1}); !errors.Is(err,
		ErrInvalidOption) {
		t.Fatalf("negative lease = %v", err)
	}
}

// TestReserveLeaseExpiryRedeliversC13 is case C13: a lease that runs out returns its
// message at its deadline to a consumer already waiting, with a higher count, while
// the first consumer sits idle.
func TestReserveLeaseExpiryRedeliversC13(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroker(t, Config{})
		ctx := context.Background()
		mustPut(t, b, "q", []byte("job"))
		start := time.Now()
		first, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Wait: 5 * time.Second,
			Lease: 10 * time.Second})
		if err != nil || first[0].Count != 1 {
			t.Fatalf("first reserve: %v, %v", first, err)
		}

		var second []Delivery
		var at time.Time
		go func() {
			second, _ = b.Reserve(ctx, []string{"q"}, ReserveOptions{Wait: Forever,
				Lease: 10 * time.Second})
			at = time.Now()
		}()
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if len(second) != 1 || second[0].Count != 2 || string(second[0].Payload) != "job" {
			t.Fatalf("second reserve = %+v", second)
		}
		if got := at.Sub(start); got != 10*time.Second {
			t.Fatalf("redelivered after %v, want 10s", got)
		}
		if second[0].DeliveryID == first[0].DeliveryID {
			t.Fatal("delivery id reused")
		}
		if err := b.Ack(ctx, first[0].DeliveryID); !errors.Is(err, ErrNoDelivery) {
			t.Fatalf("ack of expired delivery = %v", err)
		}
		if err := b.Ack(ctx, second[0].DeliveryID); err != nil {
			t.Fatalf("ack of redelivery = %v", err)
		}
	})
}

func TestReserveTouchExtendsAndNackRequeues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroker(t, Config{})
		ctx := context.Background()
		mustPut(t, b, "q", []byte("a"))
		mustPut(t, b, "q", []byte("b"))
		d := mustReserve(t, b, "q", ReserveOptions{Lease: 10 * time.Second})
		time.Sleep(8 * time.Second)
		dl, err := b.Touch(ctx, d.DeliveryID, 0)
		if err != nil || !dl.Equal(time.Now().Add(10*time.Second)) {
			t.Fatalf("touch = %v, %v", dl, err)
		}
		time.Sleep(8 * time.Second) // past the first deadline, not the touched one
		synctest.Wait()
		if s := b.Stats(0).QueueStats[0]; s.Inflight != 1 || s.Messages != 1 {
			t.Fatalf("after touch: %+v", s)
		}
		// Nack puts it back at the head, before "b".
		if err := b.Nack(ctx, d.DeliveryID, 0); err != nil {
			t.Fatal(err)
		}
		if d2 := mustReserve(t, b, "q", ReserveOptions{}); string(d2.Payload) != "a" ||
			d2.Count != 2 {
			t.Fatalf("after nack: %+v", d2)
		}
		// Nack with a delay: not visible until then.
		d3 := mustReserve(t, b, "q", ReserveOptions{})
		if err := b.Nack(ctx, d3.DeliveryID, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{}); !errors.Is(err, ErrEmpty) {
			t.Fatalf("reserve of delayed nack = %v", err)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if d4 := mustReserve(t, b, "q", ReserveOptions{}); string(d4.Payload) != "b" ||
			d4.Count != 2 {
			t.Fatalf("after delayed nack: %+v", d4)
		}
	})
}

// TestReserveWaitersServedInArrivalOrderC02 is case C02(a) for reserve: 100
// reservers, then 100 puts; each gets one message, in arrival order.
func TestReserveWaitersServedInArrivalOrderC02(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	var waiters []<-chan reserveResult
	for range 100 {
		waiters = append(waiters, startReserver(t, b, ctx, []string{"K"},
			ReserveOptions{Wait: Forever}))
	}
	for i := range 100 {
		mustPut(t, b, "K", fmt.Appendf(nil, "%d", i))
	}
	for i, ch := range waiters {
		r := <-ch
		if r.err != nil || len(r.ds) != 1 || string(r.ds[0].Payload) != fmt.Sprint(i) {
			t.Fatalf("waiter %d got %+v, %v", i, r.ds, r.err)
		}
	}
	if s := b.Stats(0); s.Waiting != 0 || s.QueueStats[0].Inflight != 100 {
		t.Fatalf("stats = %+v", s)
	}
}

// TestBatchPutWakesEveryWaiterC02 is case C02(b): one batch put of 3 serves 3
// waiters, gets and reserves alike, none twice.
func TestBatchPutWakesEveryWaiterC02(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	g1 := startWaiter(t, b, ctx, []string{"K"}, Forever)
	r2 := startReserver(t, b, ctx, []string{"K"}, ReserveOptions{Wait: Forever})
	g3 := startWaiter(t, b, ctx, []string{"K"}, Forever)
	if _, err := b.PutBatch(ctx, "K", [][]byte{[]byte("a"), []byte("b"), []byte("c")},
		PutOptions{}); err != nil {
		t.Fatal(err)
	}
	got := []string{string((<-g1).m.Payload), string((<-r2).ds[0].Payload),
		string((<-g3).m.Payload)}
	if fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("waiters got %v, want [a b c]", got)
	}
}

// TestReserveCancelledWaiterNeverTakesC01 is case C01 for reserve.
func TestReserveCancelledWaiterNeverTakesC01(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	ch := startReserver(t, b, ctx, []string{"K"}, ReserveOptions{Wait: Forever})
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled reserver = %v", r.err)
	}
	mustPut(t, b, "K", []byte("v"))
	if s := b.Stats(0); s.Waiting != 0 || s.QueueStats[0].Messages != 1 ||
		s.QueueStats[0].Inflight != 0 {
		t.Fatalf("stats = %+v", s)
	}
	if d := mustReserve(t, b, "K", ReserveOptions{}); d.Count != 1 {
		t.Fatalf("count = %d, want 1", d.Count)
	}
}

// TestReserveCheckThenBlockC04 is case C04 for reserve: a reserve racing a put
// always gets the message.
func TestReserveCheckThenBlockC04(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	for i := range 300 {
		var wg sync.WaitGroup
		var ds []Delivery
		var err error
		wg.Go(func() {
			ds, err = b.Reserve(ctx, []string{"K"}, ReserveOptions{Wait: 5 * time.Second})
		})
		mustPut(t, b, "K", fmt.Appendf(nil, "%d", i))
		wg.Wait()
		if err != nil || string(ds[0].Payload) != fmt.Sprint(i) {
			t.Fatalf("round %d: %v, %v", i, ds, err)
		}
		if err := b.Ack(ctx, ds[0].DeliveryID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReserveWaitBoundsC05C06C07 covers cases C05 (a tiny wait times out), C06 (a
// huge wait blocks) and C07 (each waiter's timeout fires on its own) for reserve.
func TestReserveWaitBoundsC05C06C07(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroker(t, Config{})
		ctx := context.Background()
		if _, err := b.Reserve(ctx, []string{"K"},
			ReserveOptions{Wait: time.Nanosecond}); !errors.Is(err, ErrEmpty) {
			t.Fatalf("tiny wait = %v", err)
		}
		if _, err := b.Reserve(ctx, []string{"K"},
			ReserveOptions{Wait: -time.Second}); !errors.Is(err, ErrInvalidWait) {
			t.Fatalf("negative wait = %v", err)
		}

		ends := make([]time.Duration, 3)
		start := time.Now()
		var wg sync.WaitGroup
		for i, w := range []time.Duration{3 * time.Second, time.Second, 2 * time.Second} {
			wg.Go(func() {
				_, err := b.Reserve(ctx, []string{"K"}, ReserveOptions{Wait: w})
				if errors.Is(err, ErrEmpty) {
					ends[i] = time.Since(start)
				}
			})
		}
		huge := make(chan reserveResult, 1)
		go func() {
			ds, err := b.Reserve(ctx, []string{"K"}, ReserveOptions{Wait: 1 << 62})
			huge <- reserveResult{ds, err}
		}()
		wg.Wait()
		if fmt.Sprint(ends) != "[3s 1s 2s]" {
			t.Fatalf("timeouts at %v, want [3s 1s 2s]", ends)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		select {
		case r := <-huge:
			t.Fatalf("huge wait returned %v", r.err)
		default:
		}
		mustPut(t, b, "K", []byte("v"))
		if r := <-huge; r.err != nil || string(r.ds[0].Payload) != "v" {
			t.Fatalf("huge wait got %+v", r)
		}
	})
}

// TestReserveDelayedNeverLeasedEarlyC17 is case C17: a message put with a 5s delay
// is not leased before it is due, even by a consumer whose lease is shorter, and is
// delivered exactly once.
func TestReserveDelayedNeverLeasedEarlyC17(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroker(t, Config{})
		ctx := context.Background()
		start := time.Now()
		if _, err := b.PutWith(ctx, "q", []byte("eta"),
			PutOptions{Delay: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
		if s := b.Stats(0).QueueStats[0]; s.Deferred != 1 || s.Messages != 0 {
			t.Fatalf("stats = %+v", s)
		}
		var deliveries []time.Duration
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				ds, err := b.Reserve(ctx, []string{"q"},
					ReserveOptions{Wait: 8 * time.Second, Lease: 2 * time.Second})
				if err == nil {
					mu.Lock()
					deliveries = append(deliveries, time.Since(start))
					mu.Unlock()
					b.Ack(ctx, ds[0].DeliveryID)
				}
			})
		}
		wg.Wait()
		if len(deliveries) != 1 || deliveries[0] != 5*time.Second {
			t.Fatalf("deliveries at %v, want one at 5s", deliveries)
		}
	})
}

// TestReserveOwnerReleaseReturnsAtOnceC18 is case C18: a consumer dropped while
// holding leases: each message is ready again at once and delivered exactly once
// more; ready + leased + acked == published throughout.
func TestReserveOwnerReleaseReturnsAtOnceC18(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	for i := range 10 {
		mustPut(t, b, "q", fmt.Appendf(nil, "%d", i))
	}
	o := b.NewOwner()
	ds, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Max: 4, Lease: time.Hour, Owner: o})
	if err != nil || len(ds) != 4 {
		t.Fatalf("reserve 4 = %d, %v", len(ds), err)
	}
	check := func(ready, leased int64) {
		t.Helper()
		s := b.Stats(0).QueueStats[0]
		if s.Messages != ready || s.Inflight != leased {
			t.Fatalf("ready %d leased %d, want %d %d", s.Messages, s.Inflight, ready, leased)
		}
	}
	check(6, 4)
	b.ReleaseOwner(o)
	check(10, 0)
	if _, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Owner: o}); err == nil {
		t.Fatal("reserve with a released owner succeeded")
	}
	check(10, 0)

	seen := map[string]int{}
	for range 10 {
		d := mustReserve(t, b, "q", ReserveOptions{})
		seen[string(d.Payload)] = d.Count
		if err := b.Ack(ctx, d.DeliveryID); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		want := 1
		if i < 4 {
			want = 2
		}
		if seen[fmt.Sprint(i)] != want {
			t.Fatalf("message %d delivered with count %d, want %d", i, seen[fmt.Sprint(i)], want)
		}
	}
	for _, d := range ds {
		if err := b.Ack(ctx, d.DeliveryID); !errors.Is(err, ErrNoDelivery) {
			t.Fatalf("ack of released delivery = %v", err)
		}
	}
}

// TestReserveAckRacesExpiryC19 is case C19: acks raced against lease expiry. Each
// message is either acked once (and never seen again) or redelivered intact, never
// both, never empty.
func TestReserveAckRacesExpiryC19(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	const n = 300
	for i := range n {
		mustPut(t, b, "q", fmt.Appendf(nil, "msg-%d", i))
	}
	acked := map[string]bool{}
	deliveries := map[string]int{}
	for i := 0; len(acked) < n; i++ {
		if i > 5*n {
			t.Fatalf("%d acked after %d rounds", len(acked), i)
		}
		// Most leases are a millisecond, acked around their deadline; every fourth is
		// long, so the test ends however slow the machine.
		lease := time.Millisecond
		if i%4 == 3 {
			lease = time.Minute
		}
		ds, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Wait: 10 * time.Second,
			Lease: lease})
		if err != nil {
			t.Fatal(err)
		}
		d := ds[0]
		p := string(d.Payload)
		deliveries[p]++
		if acked[p] || len(p) < 5 || d.Count != deliveries[p] {
			t.Fatalf("delivered %q count %d after %d deliveries (acked %v)", p, d.Count,
				deliveries[p]-1, acked[p])
		}
		time.Sleep(time.Duration(i%3) * 500 * time.Microsecond) // ack at deadline ± 0.5ms
		if err := b.Ack(ctx, d.DeliveryID); err == nil {
			acked[p] = true
		} else if !errors.Is(err, ErrNoDelivery) {
			t.Fatal(err)
		}
	}
	if s := b.Stats(0).QueueStats[0]; s.Messages != 0 || s.Inflight != 0 {
		t.Fatalf("left over: %+v", s)
	}
}

// TestReserveQueueLeavesTableOnlyWhenDone: a queue stays in the table while it has
// leases or deferred messages, and leaves once they are acked.
func TestReserveQueueLeavesTableOnlyWhenDone(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	mustPut(t, b, "q", []byte("x"))
	b.PutWith(ctx, "later", []byte("y"), PutOptions{Delay: time.Hour})
	d := mustReserve(t, b, "q", ReserveOptions{})
	for range 3 {
		b.sweep()
	}
	if names := b.QueueNames(); fmt.Sprint(names) != "[later q]" {
		t.Fatalf("queues = %v while leased and deferred", names)
	}
	if err := b.Ack(ctx, d.DeliveryID); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b.sweep()
	}
	if names := b.QueueNames(); fmt.Sprint(names) != "[later]" {
		t.Fatalf("queues = %v after ack", names)
	}
}

func TestSetQueueRefusesBadSettings(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	bad := []QueueSettings{
		{MaxLength: -1},
		{DefaultLease: -time.Second},
		{Overflow: 7},
		{MaxDeliveries: 1, DeadLetter: "q"},
		{MaxDeliveries: 1, DeadLetter: "bad\nname"},
	}
	for _, s := range bad {
		if err := b.SetQueue(ctx, "q", s); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("SetQueue(%+v) = %v, want ErrInvalidOption", s, err)
		}
	}
	if _, err := b.PutWith(ctx, "q", nil, PutOptions{Delay: -1}); !errors.Is(err,
		ErrInvalidOption) {
		t.Errorf("negative delay = %v", err)
	}
	if err := b.Nack(ctx, 1, -time.Second); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("negative nack delay = %v", err)
	}
}

// TestUpdateQueueKeepsConcurrentChanges: admins changing different settings of one
// queue at the same time all get their change in; none is lost to a read of the
// settings made before another's write.
func TestUpdateQueueKeepsConcurrentChanges(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	edits := []func(s *QueueSettings, i int){
		func(s *QueueSettings, i int) { s.MaxLength = i },
		func(s *QueueSettings, i int) { s.MaxBytes = int64(i) },
		func(s *QueueSettings, i int) { s.DefaultLease = time.Duration(i) * time.Second },
		func(s *QueueSettings, i int) { s.MaxDeliveries = i },
		func(s *QueueSettings, i int) { s.DefaultTTL = time.Duration(i) * time.Minute },
	}
	const rounds = 200
	var wg sync.WaitGroup
	for _, edit := range edits {
		wg.Go(func() {
			for i := 1; i <= rounds; i++ {
				_, err := b.UpdateQueue(ctx, "q", func(s *QueueSettings) error {
					edit(s, i)
					return nil
				})
				if err != nil {
					t.Errorf("update: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()

	want := QueueSettings{MaxLength: rounds, MaxBytes: rounds,
		DefaultLease: rounds * time.Second, MaxDeliveries: rounds,
		DefaultTTL: rounds * time.Minute}
	if got, _ := b.QueueSettings("q"); got != want {
		t.Fatalf("settings = %+v, want every admin's last change: %+v", got, want)
	}

	refused := errors.New("refused")
	_, err := b.UpdateQueue(ctx, "q", func(s *QueueSettings) error {
		s.MaxLength = 1
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("update whose change fails = %v, want its error", err)
	}
	_, err = b.UpdateQueue(ctx, "q", func(s *QueueSettings) error {
		s.MaxLength = -1
		return nil
	})
	if !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("update to bad settings = %v, want ErrInvalidOption", err)
	}
	if got, _ := b.QueueSettings("q"); got != want {
		t.Fatalf("settings after refused updates = %+v, want unchanged %+v", got, want)
	}
}

// TestReserveWaiterBoundToOwnerReleased: a lease handed to a blocked reserve bound
// to an owner returns at once when the owner is released, with its count kept.
func TestReserveWaiterBoundToOwnerReleased(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	o := b.NewOwner()
	ch := startReserver(t, b, ctx, []string{"q"}, ReserveOptions{Wait: Forever,
		Lease: time.Hour, Owner: o})
	mustPut(t, b, "q", []byte("x"))
	r := <-ch
	if r.err != nil || r.ds[0].Count != 1 {
		t.Fatalf("reserve = %+v", r)
	}
	b.ReleaseOwner(o)
	d := mustReserve(t, b, "q", ReserveOptions{})
	if string(d.Payload) != "x" || d.Count != 2 {
		t.Fatalf("after release: %+v", d)
	}
	if err := b.Ack(ctx, r.ds[0].DeliveryID); !errors.Is(err, ErrNoDelivery) {
		t.Fatalf("ack of released lease = %v", err)
	}
}

// TestDurationsOverMaxRefused is case C06 for leases, delays and TTLs: a duration
// that would overflow a deadline is refused, never wrapped into the past.
func TestDurationsOverMaxRefused(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	huge := time.Duration(1 << 62)
	if _, err := b.PutWith(ctx, "q", nil, PutOptions{TTL: huge}); !errors.Is(err,
		ErrInvalidOption) {
		t.Errorf("huge ttl = %v", err)
	}
	mustPut(t, b, "q", []byte("x"))
	if _, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Lease: huge}); !errors.Is(err,
		ErrInvalidOption) {
		t.Errorf("huge lease = %v", err)
	}
	d := mustReserve(t, b, "q", ReserveOptions{Lease: MaxDuration})
	if !d.Deadline.After(time.Now().Add(MaxDuration - time.Hour)) {
		t.Fatalf("deadline %v not about %v away", d.Deadline, MaxDuration)
	}
	if _, err := b.Touch(ctx, d.DeliveryID, huge); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("huge touch = %v", err)
	}
	if err := b.SetQueue(ctx, "q", QueueSettings{DefaultTTL: huge}); !errors.Is(err,
		ErrInvalidOption) {
		t.Errorf("huge default ttl = %v", err)
	}
}

// TestReserveCancelRacesPut races a reserver's cancellation against a put: the
// message is either leased to the reserver or left ready with no delivery counted,
// never lost, never leased to nobody.
func TestReserveCancelRacesPut(t *testing.T) {
	b := newTestBroker(t, Config{})
	bg := context.Background()
	for i := range 300 {
		ctx, cancel := context.WithCancel(bg)
		ch := startReserver(t, b, ctx, []string{"K"}, ReserveOptions{Wait: Forever})
		var wg sync.WaitGroup
		wg.Go(cancel)
		wg.Go(func() { mustPut(t, b, "K", fmt.Appendf(nil, "%d", i)) })
		wg.Wait()
		r := <-ch
		s := b.Stats(0).QueueStats[0]
		switch {
		case r.err == nil && s.Messages == 0 && s.Inflight == 1:
			if err := b.Ack(bg, r.ds[0].DeliveryID); err != nil {
				t.Fatal(err)
			}
		case errors.Is(r.err, context.Canceled) && s.Messages == 1 && s.Inflight == 0:
			if d := mustReserve(t, b, "K", ReserveOptions{}); d.Count != 1 {
				t.Fatalf("round %d: count %d after a cancelled reserve", i, d.Count)
			} else if err := b.Ack(bg, d.DeliveryID); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("round %d: reserver %+v, %v with %+v", i, r.ds, r.err, s)
		}
	}
}

// TestUnreserveUndoesTheDelivery: a delivery given back unseen (it did not fit its
// reply) returns to the head with its count as before, so that with max deliveries
// 1 it is delivered again instead of dead-lettered, and counts no nack; across a
// restart too.
func TestUnreserveUndoesTheDelivery(t *testing.T) {
	store := &logStore{}
	b := newTestBroker(t, Config{Store: store})
	ctx := context.Background()
	if err := b.SetQueue(ctx, "q", QueueSettings{MaxDeliveries: 1}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "q", []byte("first"))
	mustPut(t, b, "q", []byte("second"))

	ds, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Max: 2, Lease: time.Hour})
	if err != nil || len(ds) != 2 {
		t.Fatalf("reserve = %d, %v; want 2", len(ds), err)
	}
	for i := len(ds) - 1; i >= 0; i-- { // last first, as the server does
		if err := b.Unreserve(ctx, ds[i].DeliveryID); err != nil {
			t.Fatalf("unreserve %d: %v", i, err)
		}
	}
	if err := b.Unreserve(ctx, ds[0].DeliveryID); !errors.Is(err, ErrNoDelivery) {
		t.Fatalf("second unreserve = %v, want ErrNoDelivery", err)
	}
	if qs, _ := b.QueueStats("q"); qs.Nacks != 0 || qs.Messages != 2 || qs.Inflight != 0 {
		t.Fatalf("stats after unreserve: %+v", qs)
	}

	b = restart(t, b, store)
	for _, want := range []string{"first", "second"} {
		d := mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour})
		if string(d.Payload) != want || d.Count != 1 || d.DeadLetter != nil {
			t.Fatalf("after unreserve and restart: %q count %d; want %q, count 1",
				d.Payload, d.Count, want)
		}
	}
	if n, _ := b.Len("q.dlq"); n != 0 {
		t.Fatalf("%d messages dead-lettered, want none", n)
	}
}
