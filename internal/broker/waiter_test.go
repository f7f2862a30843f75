package broker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// waitUntil polls cond until it holds or a generous deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type result struct {
	m   Message
	err error
}

// startWaiter begins a blocking get and returns once the broker counts it as waiting.
func startWaiter(t *testing.T, b *Broker, ctx context.Context, queues []string,
	wait time.Duration) <-chan result {
	t.Helper()
	before := b.Stats(0).Waiting
	ch := make(chan result, 1)
	go func() {
		m, err := b.GetAny(ctx, queues, wait)
		ch <- result{m, err}
	}()
	waitUntil(t, "waiter to block", func() bool { return b.Stats(0).Waiting > before })
	return ch
}

// TestBrokerWaitersServedInArrivalOrderC02 is case C02(a): waiters are served in the
// order they blocked, one message each.
func TestBrokerWaitersServedInArrivalOrderC02(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()

	var waiters []<-chan result
	for range 100 {
		waiters = append(waiters, startWaiter(t, b, ctx, []string{"K"}, Forever))
	}
	for i := range 100 {
		mustPut(t, b, "K", fmt.Appendf(nil, "%d", i))
	}
	for i, ch := range waiters {
		r := <-ch
		if r.err != nil || string(r.m.Payload) != fmt.Sprint(i) {
			t.Fatalf("waiter %d got %q, %v; want %d", i, r.m.Payload, r.err, i)
		}
	}
	if n, _ := b.Len("K"); n != 0 {
		t.Fatalf("len = %d, want 0", n)
	}
	waitUntil(t, "no waiters", func() bool { return b.Stats(0).Waiting == 0 })
}

// TestBrokerCancelledWaiterNeverTakesC01 is case C01: a waiter whose context ends (its
// connection closed) is gone at once, and a later put stays in the queue.
func TestBrokerCancelledWaiterNeverTakesC01(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	ch := startWaiter(t, b, ctx, []string{"K"}, Forever)
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled waiter = %v, want context.Canceled", r.err)
	}
	if w := b.Stats(0).Waiting; w != 0 {
		t.Fatalf("waiting = %d after cancel, want 0", w)
	}

	mustPut(t, b, "K", []byte("V"))
	if n, _ := b.Len("K"); n != 1 {
		t.Fatalf("len = %d, want 1", n)
	}
	if m := mustGet(t, b, "K"); string(m.Payload) != "V" {
		t.Fatalf("get = %q, want V", m.Payload)
	}
}

// TestBrokerCancelRacesPut races a waiter's cancellation against a put many times: the
// message is either delivered to the waiter or left in the queue, never lost.
func TestBrokerCancelRacesPut(t *testing.T) {
	b := newTestBroker(t, Config{})
	for i := range 300 {
		ctx, cancel := context.WithCancel(context.Background())
		ch := startWaiter(t, b, ctx, []string{"K"}, Forever)
		var wg sync.WaitGroup
		wg.Go(cancel)
		wg.Go(func() { mustPut(t, b, "K", fmt.Appendf(nil, "%d", i)) })
		wg.Wait()
		r := <-ch
		n, _ := b.Len("K")
		switch {
		case r.err == nil && n == 0:
		case errors.Is(r.err, context.Canceled) && n == 1:
			mustGet(t, b, "K")
		default:
			t.Fatalf("round %d: waiter %q, %v with %d left", i, r.m.Payload, r.err, n)
		}
	}
}

// TestBrokerCheckThenBlockC04 is case C04: a get that finds the queue empty and a put
// that races it must never leave the get waiting while the message sits in the queue.
func TestBrokerCheckThenBlockC04(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	for i := range 500 {
		var wg sync.WaitGroup
		var got Message
		var err error
		wg.Go(func() { got, err = b.Get(ctx, "K", 5*time.Second) })
		wg.Go(func() { mustPut(t, b, "K", fmt.Appendf(nil, "%d", i)) })
		wg.Wait()
		if err != nil || string(got.Payload) != fmt.Sprint(i) {
			t.Fatalf("round %d: get = %q, %v", i, got.Payload, err)
		}
	}
}

// TestBrokerTimeoutsAreIndependentC07 is case C07: waiters with staggered timeouts each
// time out on their own, whoever else joins or leaves.
func TestBrokerTimeoutsAreIndependentC07(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	start := time.Now()
	var chans []<-chan result
	for i := range 5 {
		chans = append(chans, startWaiter(t, b, ctx, []string{"foo"},
			time.Duration(50*(i+1))*time.Millisecond))
	}
	for i, ch := range chans {
		r := <-ch
		if !errors.Is(r.err, ErrEmpty) {
			t.Fatalf("waiter %d = %v, want ErrEmpty", i, r.err)
		}
		if el := time.Since(start); el < time.Duration(50*(i+1))*time.Millisecond {
			t.Fatalf("waiter %d returned after %v, before its timeout", i, el)
		}
	}
	waitUntil(t, "no waiters", func() bool { return b.Stats(0).Waiting == 0 })
}

// TestBrokerHugeWaitBlocksC06 is case C06: a huge wait never overflows into "return at
// once"; Forever and the largest Duration both block until a put.
func TestBrokerHugeWaitBlocksC06(t *testing.T) {
	b := newTestBroker(t, Config{})
	for _, wait := range []time.Duration{Forever, Forever - 1, 1 << 62, 2148 * time.Second} {
		ch := startWaiter(t, b, context.Background(), []string{"K"}, wait)
		select {
		case r := <-ch:
			t.Fatalf("wait %v returned early: %v", wait, r.err)
		case <-time.After(20 * time.Millisecond):
		}
		mustPut(t, b, "K", []byte("v"))
		if r := <-ch; r.err != nil {
			t.Fatalf("wait %v: %v", wait, r.err)
		}
	}
}

// TestBrokerTinyWaitTimesOutC05 is case C05 at the broker: a wait of 1ns is a wait, not
// "forever".
func TestBrokerTinyWaitTimesOutC05(t *testing.T) {
	b := newTestBroker(t, Config{})
	if _, err := b.Get(context.Background(), "K", time.Nanosecond); !errors.Is(err, ErrEmpty) {
		t.Fatalf("get with 1ns wait = %v, want ErrEmpty", err)
	}
}

// TestBrokerGetAnyServesFirstNonEmptyInOrder: a get on several queues takes from the
// first one, in the order given, that has a message.
func TestBrokerGetAnyServesFirstNonEmptyInOrder(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	mustPut(t, b, "key2", []byte("2"))
	mustPut(t, b, "key1", []byte("1"))
	m, err := b.GetAny(ctx, []string{"key1", "key2"}, 0)
	if err != nil || m.Queue != "key1" {
		t.Fatalf("GetAny = %+v, %v; want from key1", m, err)
	}

	ch := startWaiter(t, b, ctx, []string{"a", "b", "c"}, Forever)
	mustPut(t, b, "c", []byte("from c"))
	if r := <-ch; r.err != nil || r.m.Queue != "c" || string(r.m.Payload) != "from c" {
		t.Fatalf("waiter on a,b,c got %+v, %v", r.m, r.err)
	}
	mustPut(t, b, "a", []byte("stays"))
	if n, _ := b.Len("a"); n != 1 {
		t.Fatalf("len a = %d after the waiter left, want 1", n)
	}
	waitUntil(t, "no waiters", func() bool {
		s := b.Stats(0)
		for _, q := range s.QueueStats {
			if q.Waiting != 0 {
				return false
			}
		}
		return s.Waiting == 0
	})
}

func TestBrokerCloseWakesWaiters(t *testing.T) {
	b, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ch := startWaiter(t, b, context.Background(), []string{"K"}, Forever)
	b.Close()
	if r := <-ch; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("waiter after close = %v, want ErrClosed", r.err)
	}
}

// startPop begins a blocking pop from the heads (or, with back, the tails) of queues
// and returns once the broker counts it as waiting.
func startPop(t *testing.T, b *Broker, queues []string, back bool) <-chan result {
	t.Helper()
	before := b.Stats(0).Waiting
	ch := make(chan result, 1)
	go func() {
		var r result
		if back {
			r.m, r.err = b.PopBackAny(context.Background(), queues, 10*time.Second)
		} else {
			r.m, r.err = b.GetAny(context.Background(), queues, 10*time.Second)
		}
		ch <- r
	}()
	waitUntil(t, "waiter to block", func() bool { return b.Stats(0).Waiting > before })
	return ch
}

func wantResult(t *testing.T, ch <-chan result, queue, payload string) {
	t.Helper()
	r := <-ch
	if r.err != nil || r.m.Queue != queue || string(r.m.Payload) != payload {
		t.Fatalf("waiter got %s/%q, %v; want %s/%q", r.m.Queue, r.m.Payload, r.err,
			queue, payload)
	}
}

// TestBrokerHoldServesFirstOwnQueueC09 is case C09 as RESP's EXEC runs it: pushes
// on key2 then key1 under one hold serve the waiter from key1, its first key.
func TestBrokerHoldServesFirstOwnQueueC09(t *testing.T) {
	b := newListBroker(t, Config{})
	a := startPop(t, b, []string{"key1", "key2"}, false)

	h := b.HoldWaiters([]string{"key2", "key1"})
	pushAll(t, b, "key2", Back, "1", "2", "3", "4")
	pushAll(t, b, "key1", Back, "5", "6", "7")
	wantContents(t, b, "key2", "1", "2", "3", "4") // nothing handed over yet
	wantContents(t, b, "key1", "5", "6", "7")
	h.Release()
	h.Release() // idempotent

	wantResult(t, a, "key1", "5")
	wantContents(t, b, "key2", "1", "2", "3", "4")
	wantContents(t, b, "key1", "6", "7")
	waitUntil(t, "no waiters", func() bool { return b.Stats(0).Waiting == 0 })
}

// TestBrokerPutWakesWaiterOnKeyItHitC09 is the other half of C09: without a hold, a
// single push wakes the waiter on whichever of its keys it hit.
func TestBrokerPutWakesWaiterOnKeyItHitC09(t *testing.T) {
	b := newListBroker(t, Config{})
	a := startPop(t, b, []string{"key1", "key2"}, false)
	pushAll(t, b, "key2", Back, "x")
	wantResult(t, a, "key2", "x")
}

// TestBrokerHoldServesQueueByQueue: on release, the queues that received messages
// are served in the order they first did, each queue's waiters oldest first, and
// each waiter from the first of its own queues with a message, from its own end.
func TestBrokerHoldServesQueueByQueue(t *testing.T) {
	b := newListBroker(t, Config{})
	w1 := startPop(t, b, []string{"a"}, false)
	w2 := startPop(t, b, []string{"b", "a"}, false)
	w3 := startPop(t, b, []string{"a"}, true)
	w4 := startPop(t, b, []string{"c"}, false)

	h := b.HoldWaiters([]string{"a", "b", "a", ""})
	pushAll(t, b, "a", Back, "x")
	pushAll(t, b, "a", Back, "y", "z")
	pushAll(t, b, "b", Back, "v")
	wantContents(t, b, "a", "x", "y", "z")
	h.Release()

	wantResult(t, w1, "a", "x")
	wantResult(t, w2, "b", "v")
	wantResult(t, w3, "a", "z")
	wantContents(t, b, "a", "y")
	if n := b.Stats(0).Waiting; n != 1 {
		t.Fatalf("waiting = %d, want 1 (the waiter on c)", n)
	}
	pushAll(t, b, "c", Back, "w")
	wantResult(t, w4, "c", "w")
}

// TestBrokerHoldServesFirstFilledQueueFirst: the waiter on a, the queue filled
// first, is served first, and from b, its own first queue, though another waiter
// on b began to wait before it; that one is left waiting and a keeps its message,
// as Redis 7.2 serves blocked clients.
func TestBrokerHoldServesFirstFilledQueueFirst(t *testing.T) {
	b := newListBroker(t, Config{})
	w1 := startPop(t, b, []string{"b"}, false)
	w2 := startPop(t, b, []string{"b", "a"}, false)

	h := b.HoldWaiters([]string{"a", "b"})
	pushAll(t, b, "a", Back, "x")
	pushAll(t, b, "b", Back, "v")
	h.Release()

	wantResult(t, w2, "b", "v")
	wantContents(t, b, "a", "x")
	if n := b.Stats(0).Waiting; n != 1 {
		t.Fatalf("waiting = %d, want 1 (the waiter on b alone)", n)
	}
	pushAll(t, b, "b", Back, "u")
	wantResult(t, w1, "b", "u")
}

// TestBrokerHeldQueueSurvivesSweep: a queue held while empty and without waiters
// stays in the table, so pushes made under the hold land in the held queue.
func TestBrokerHeldQueueSurvivesSweep(t *testing.T) {
	b := newTestBroker(t, Config{SweepInterval: time.Millisecond})
	h := b.HoldWaiters([]string{"k"})
	q := b.lookup("k", false)
	time.Sleep(20 * time.Millisecond) // several sweeps; there is nothing to poll for
	if b.lookup("k", false) != q {
		t.Fatal("held queue was dropped from the table")
	}
	h.Release()
	waitUntil(t, "released queue to leave the table", func() bool {
		return b.lookup("k", false) == nil
	})
}

// TestBrokerRequeueReturnsToEndTakenFrom: a message whose waiter has gone goes back
// to the end it was taken from, the tail for a pop from the back.
func TestBrokerRequeueReturnsToEndTakenFrom(t *testing.T) {
	for _, back := range []bool{false, true} {
		b := newListBroker(t, Config{})
		pushAll(t, b, "k", Back, "a", "b", "c")
		d, ok := b.tryTake(b.lookup("k", false), back)
		if !ok || d.err != nil {
			t.Fatalf("take (back=%v) = %v, %v", back, ok, d.err)
		}
		b.requeue(d)
		wantContents(t, b, "k", "a", "b", "c")
	}
}

// TestBrokerBackWaiterCancelRacesPush races a BRPOP-style waiter's cancellation
// against a push of several values: the tail value is delivered or, requeued, goes
// back to the tail; the queue's order never changes.
func TestBrokerBackWaiterCancelRacesPush(t *testing.T) {
	b := newListBroker(t, Config{})
	for i := range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		ch := make(chan result, 1)
		go func() {
			m, err := b.PopBackAny(ctx, []string{"k"}, Forever)
			ch <- result{m, err}
		}()
		waitWaiting(t, b, 1)
		var wg sync.WaitGroup
		wg.Go(cancel)
		wg.Go(func() { pushAll(t, b, "k", Back, "x", "y", "z") })
		wg.Wait()
		r := <-ch
		waitWaiting(t, b, 0)

		got := contents(t, b, "k")
		switch {
		case r.err == nil && string(r.m.Payload) == "z" && slices.Equal(got, []string{"x", "y"}):
		case errors.Is(r.err, context.Canceled) &&
			slices.Equal(got, []string{"x", "y", "z"}):
		default:
			t.Fatalf("round %d: waiter %q, %v; queue %q", i, r.m.Payload, r.err, got)
		}
		if _, err := b.Delete(context.Background(), "k"); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkPutGetWaiting measures the hand-off: each put finds a get already
// waiting and gives it the message directly.
func BenchmarkPutGetWaiting(b *testing.B) {
	br := newTestBroker(b, Config{})
	ctx := context.Background()
	payload := make([]byte, 100)
	got := make(chan error)
	go func() {
		for {
			if _, err := br.Get(ctx, "q", Forever); err != nil {
				got <- err
				return
			}
			got <- nil
		}
	}()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		for br.waiting.Load() == 0 {
			runtime.Gosched()
		}
		if _, err := br.Put(ctx, "q", payload); err != nil {
			b.Fatal(err)
		}
		if err := <-got; err != nil {
			b.Fatal(err)
		}
	}
	br.Close()
	<-got
}
