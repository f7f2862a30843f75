package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyq/keyq/internal/wal"
)

// drainPayloads takes every ready message of queue and returns their payloads,
// space-separated.
func drainPayloads(t *testing.T, b *Broker, queue string) string {
	t.Helper()
	var got []string
	for {
		m, err := b.Get(context.Background(), queue, 0)
		if errors.Is(err, ErrEmpty) {
			return strings.Join(got, " ")
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m.Payload))
	}
}

// putNumbered puts m1..mn on queue.
func putNumbered(t *testing.T, b *Broker, queue string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		mustPut(t, b, queue, fmt.Appendf(nil, "m%d", i))
	}
}

// reserveBatch reserves up to n messages of queue under lease.
func reserveBatch(t *testing.T, b *Broker, queue string, n int, lease time.Duration) []Delivery {
	t.Helper()
	ds, err := b.Reserve(context.Background(), []string{queue},
		ReserveOptions{Max: n, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

const inOrder = "m1 m2 m3 m4 m5 m6 m7 m8"

// TestReserveExpiredLeasesReturnInOrder is issue 4's repro: leases that run out,
// whichever runs out first, give their messages back in their original order,
// ahead of those never delivered.
func TestReserveExpiredLeasesReturnInOrder(t *testing.T) {
	for _, tc := range []struct {
		name          string
		first, second time.Duration
		one           bool
		durable       bool
	}{
		{name: "batches", first: 2 * time.Second, second: 3 * time.Second},
		{name: "later-batch-first", first: 3 * time.Second, second: 2 * time.Second},
		{name: "together", first: 2 * time.Second, second: 2 * time.Second},
		{name: "one-by-one", first: 3 * time.Second, second: 2 * time.Second, one: true},
		{name: "durable", first: 2 * time.Second, second: 3 * time.Second, durable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := Config{}
				if tc.durable {
					cfg.Store = &logStore{}
				}
				b := newTestBroker(t, cfg)
				putNumbered(t, b, "q", 8)
				for _, lease := range []time.Duration{tc.first, tc.second} {
					if !tc.one {
						reserveBatch(t, b, "q", 3, lease)
						continue
					}
					for range 3 {
						mustReserve(t, b, "q", ReserveOptions{Lease: lease})
						time.Sleep(time.Millisecond) // distinct deadlines
					}
				}
				time.Sleep(5 * time.Second)
				synctest.Wait()
				if got := drainPayloads(t, b, "q"); got != inOrder {
					t.Fatalf("after the leases ran out got %q, want %q", got, inOrder)
				}
			})
		})
	}
}

// TestReserveNackedReturnInOrder: nacks without delay, in any order, give the
// messages back in their original order, ahead of those never delivered.
func TestReserveNackedReturnInOrder(t *testing.T) {
	for _, reverse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reverse=%v", reverse), func(t *testing.T) {
			b := newTestBroker(t, Config{Store: &logStore{}})
			ctx := context.Background()
			putNumbered(t, b, "q", 8)
			ds := append(reserveBatch(t, b, "q", 3, time.Hour),
				reserveBatch(t, b, "q", 3, time.Hour)...)
			for i := range ds {
				d := ds[i]
				if reverse {
					d = ds[len(ds)-1-i]
				}
				if err := b.Nack(ctx, d.DeliveryID, 0); err != nil {
					t.Fatal(err)
				}
			}
			if got := drainPayloads(t, b, "q"); got != inOrder {
				t.Fatalf("after the nacks got %q, want %q", got, inOrder)
			}
		})
	}
}

// TestReserveReturnJoinsReturnedAtHead: a message coming back takes its place
// among those that came back before it and are still at the head, and a restart
// keeps that order.
func TestReserveReturnJoinsReturnedAtHead(t *testing.T) {
	store := &logStore{}
	b := newTestBroker(t, Config{Store: store})
	ctx := context.Background()
	putNumbered(t, b, "q", 8)
	ds := reserveBatch(t, b, "q", 6, time.Hour) // m1..m6
	for _, i := range []int{4, 1, 5} {          // m5, m2, m6 back
		if err := b.Nack(ctx, ds[i].DeliveryID, 0); err != nil {
			t.Fatal(err)
		}
	}
	again := mustReserve(t, b, "q", ReserveOptions{Lease: time.Hour}) // m2 again
	if string(again.Payload) != "m2" {
		t.Fatalf("reserve = %s, want m2", again.Payload)
	}
	for _, d := range []Delivery{again, ds[2]} { // m2 and m3 back
		if err := b.Nack(ctx, d.DeliveryID, 0); err != nil {
			t.Fatal(err)
		}
	}
	// m1 and m4 are still leased: the restart returns them too.
	b = restart(t, b, store)
	if got := drainPayloads(t, b, "q"); got != inOrder {
		t.Fatalf("after the restart got %q, want %q", got, inOrder)
	}
}

// TestReserveLeasedReturnInOrderAfterRestart: the repro over a restart, and over
// a second one after some of the returned messages were leased again.
func TestReserveLeasedReturnInOrderAfterRestart(t *testing.T) {
	store := &logStore{shuffle: true}
	b := newTestBroker(t, Config{Store: store})
	putNumbered(t, b, "q", 8)
	reserveBatch(t, b, "q", 3, time.Hour)
	reserveBatch(t, b, "q", 3, time.Hour)
	b = restart(t, b, store)

	reserveBatch(t, b, "q", 1, time.Hour) // m1
	reserveBatch(t, b, "q", 2, time.Hour) // m2, m3
	b = restart(t, b, store)
	ds := reserveBatch(t, b, "q", 8, time.Hour)
	var got []string
	for _, d := range ds {
		got = append(got, fmt.Sprintf("%s/%d", d.Payload, d.Count))
	}
	want := "m1/3 m2/3 m3/3 m4/2 m5/2 m6/2 m7/1 m8/1"
	if strings.Join(got, " ") != want {
		t.Fatalf("after two restarts got %q, want %q", strings.Join(got, " "), want)
	}
}

// TestReserveLeasedReturnInOrderAfterCrash: the repro over a crash of a broker
// over the write-ahead log.
func TestReserveLeasedReturnInOrderAfterCrash(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBroker(t, Config{Store: l})
	putNumbered(t, b, "q", 8)
	reserveBatch(t, b, "q", 3, time.Hour)
	reserveBatch(t, b, "q", 3, time.Hour)

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
	if got := drainPayloads(t, b2, "q"); got != inOrder {
		t.Fatalf("after the crash got %q, want %q", got, inOrder)
	}
}

// TestReserveManyExpiredLeasesReturnInOrder: a thousand leases with distinct
// deadlines, run out one after another, give their messages back in order.
func TestReserveManyExpiredLeasesReturnInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroker(t, Config{})
		const n = 1000
		for i := range n + 10 {
			mustPut(t, b, "q", fmt.Appendf(nil, "%d", i))
		}
		for range n {
			mustReserve(t, b, "q", ReserveOptions{Lease: time.Second})
			time.Sleep(time.Microsecond)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		for i := range n + 10 {
			m := mustGet(t, b, "q")
			if string(m.Payload) != fmt.Sprint(i) {
				t.Fatalf("message %d = %s", i, m.Payload)
			}
		}
	})
}

// nackDelayed reserves the next n messages of queue and nacks them with delays[i]
// apiece, in the order reserved.
func nackDelayed(t *testing.T, b *Broker, queue string, delays ...time.Duration) {
	t.Helper()
	ds := reserveBatch(t, b, queue, len(delays), time.Hour)
	if len(ds) != len(delays) {
		t.Fatalf("reserved %d messages, want %d", len(ds), len(delays))
	}
	for i, d := range ds {
		if err := b.Nack(context.Background(), d.DeliveryID, delays[i]); err != nil {
			t.Fatalf("nack %s: %v", d.Payload, err)
		}
	}
}

// TestNackDelayReturnsToHead is the repro: a message nacked with a delay
// comes back to the head of its queue when the delay ends, not to the tail.
func TestNackDelayReturnsToHead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroker(t, Config{})
		putNumbered(t, b, "q", 3)
		nackDelayed(t, b, "q", time.Second)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if got := drainPayloads(t, b, "q"); got != "m1 m2 m3" {
			t.Fatalf("got %q, want %q", got, "m1 m2 m3")
		}
	})
}

// TestNackDelaysEndingInReverseReturnInOrder: messages nacked with delays that end
// last message first still come back in message order, ahead of those never
// delivered, and a put delayed as long still goes to the tail.
func TestNackDelaysEndingInReverseReturnInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroker(t, Config{})
		putNumbered(t, b, "q", 6)
		nackDelayed(t, b, "q", 3*time.Second, 2*time.Second, time.Second)
		if _, err := b.PutBatch(context.Background(), "q", [][]byte{[]byte("m7")},
			PutOptions{Delay: time.Second}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if got := drainPayloads(t, b, "q"); got != "m3 m4 m5 m6 m7" {
			t.Fatalf("after the first delay got %q, want %q", got, "m3 m4 m5 m6 m7")
		}
		putNumbered(t, b, "r", 6)
		nackDelayed(t, b, "r", 3*time.Second, 2*time.Second, time.Second)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if got := drainPayloads(t, b, "r"); got != "m1 m2 m3 m4 m5 m6" {
			t.Fatalf("got %q, want %q", got, "m1 m2 m3 m4 m5 m6")
		}
	})
}

// TestNackDelayReturnsToHeadAfterRestart: the repro over restarts of a broker on a
// record log kept in compaction order: one while the delays are pending, one after
// they ended while the broker was down, and one after the messages came back.
func TestNackDelayReturnsToHeadAfterRestart(t *testing.T) {
	const want = "m1 m2 m3 m4 m5 m6"
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, b *Broker, store *logStore) *Broker
	}{
		{"pending", func(t *testing.T, b *Broker, store *logStore) *Broker {
			b = restart(t, b, store)
			time.Sleep(4 * time.Second)
			synctest.Wait()
			return b
		}},
		{"due while down", func(t *testing.T, b *Broker, store *logStore) *Broker {
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(4 * time.Second)
			return newTestBroker(t, Config{Store: store})
		}},
		{"come back", func(t *testing.T, b *Broker, store *logStore) *Broker {
			time.Sleep(4 * time.Second)
			synctest.Wait()
			return restart(t, b, store)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := &logStore{shuffle: true}
				b := newTestBroker(t, Config{Store: store})
				putNumbered(t, b, "q", 6)
				nackDelayed(t, b, "q", 3*time.Second, 2*time.Second, time.Second)
				b = tc.run(t, b, store)
				if got := drainPayloads(t, b, "q"); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			})
		})
	}
}

// TestNackDelayReturnsToHeadOverWAL: the repro over the write-ahead log, with a
// restart while the delay is pending; the broker's own timer brings the message
// back, so the test polls for it with a deadline.
func TestNackDelayReturnsToHeadOverWAL(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBroker(t, Config{Store: l})
	putNumbered(t, b, "q", 4)
	nackDelayed(t, b, "q", 600*time.Millisecond, 400*time.Millisecond, 200*time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err = wal.Open(dir, wal.Options{}); err != nil {
		t.Fatal(err)
	}
	b = newTestBroker(t, Config{Store: l})
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats(0).Deferred > 0 {
		if time.Now().After(deadline) {
			t.Fatal("nacked messages still deferred after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := drainPayloads(t, b, "q"); got != "m1 m2 m3 m4" {
		t.Fatalf("got %q, want %q", got, "m1 m2 m3 m4")
	}
}
