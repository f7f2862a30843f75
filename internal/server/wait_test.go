package server_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

// getWaitBody is the body of a GET on key that waits ms milliseconds.
func getWaitBody(t *testing.T, key string, ms uint64) []byte {
	t.Helper()
	b, err := proto.AppendKey(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = proto.AppendOptions(b, proto.U64Option(proto.OptGetWait, ms))
	return b
}

// replies reads c's replies on a goroutine and hands them over, until c closes.
func replies(c *testutil.Conn) <-chan proto.Frame {
	ch := make(chan proto.Frame, 64)
	go func() {
		defer close(ch)
		for {
			f, err := c.Recv()
			if err != nil {
				return
			}
			ch <- f
		}
	}()
	return ch
}

// next returns the next reply from ch, failing the test after timeout.
func next(t *testing.T, ch <-chan proto.Frame, timeout time.Duration) proto.Frame {
	t.Helper()
	select {
	case f, ok := <-ch:
		if !ok {
			t.Fatal("connection closed before the reply")
		}
		return f
	case <-time.After(timeout):
		t.Fatalf("no reply within %v", timeout)
	}
	return proto.Frame{}
}

func waiting(s *testutil.Server) int64 { return s.Broker.Stats(0).Waiting }

func TestServerGetWaitsForPut(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	got := replies(c)
	c.Send(proto.OpGet, 1, getWaitBody(t, "jobs", 30_000))
	c.Flush()
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == 1 })

	p := testutil.Dial(t, s.Addr)
	put(t, p, 1, "jobs", []byte("work"))
	f := next(t, got, 5*time.Second)
	want(t, f, proto.StatusOK, "")
	if f.ID != 1 || string(f.Body[8:]) != "work" {
		t.Fatalf("reply id %d body %q", f.ID, f.Body)
	}
}

// TestServerPipelinedWaitsAllServed pipelines several waiting GETs and then a PING on
// one connection: the PING is answered at once, and every GET is served by the puts
// that follow, each reply carrying its own request id.
func TestServerPipelinedWaitsAllServed(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	got := replies(c)
	const n = 5
	for i := range n {
		c.Send(proto.OpGet, uint32(10+i), getWaitBody(t, "q", 30_000))
	}
	c.Send(proto.OpPing, 99, []byte("hi"))
	c.Flush()

	f := next(t, got, 5*time.Second)
	if f.Op != proto.OpPing || f.ID != 99 {
		t.Fatalf("first reply %s id %d, want the PING", f.Op, f.ID)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == n })

	// Puts on the same connection run while the GETs wait, and wake them.
	for i := range n {
		c.Send(proto.OpPut, uint32(100+i), testutil.KeyBody(t, "q", []byte{byte('a' + i)}))
	}
	c.Flush()
	seen := map[uint32]bool{}
	payloads := map[string]bool{}
	for range 2 * n {
		f := next(t, got, 5*time.Second)
		want(t, f, proto.StatusOK, "")
		seen[f.ID] = true
		if f.Op == proto.OpGet {
			payloads[string(f.Body[8:])] = true
		}
	}
	for i := range n {
		if !seen[uint32(10+i)] || !seen[uint32(100+i)] {
			t.Fatalf("replies seen: %v", seen)
		}
	}
	if len(payloads) != n {
		t.Fatalf("gets received %v, want %d distinct messages", payloads, n)
	}
}

// TestServerBlockedGetCancelledOnCloseC01: a waiting GET whose client closes never
// takes a later message with it.
func TestServerBlockedGetCancelledOnCloseC01(t *testing.T) {
	s := testutil.StartServer(t)
	a := testutil.Dial(t, s.Addr)
	a.Send(proto.OpGet, 1, getWaitBody(t, "k", math.MaxUint64))
	a.Flush()
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == 1 })
	a.Close()
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == 0 })

	b := testutil.Dial(t, s.Addr)
	put(t, b, 1, "k", []byte("v"))
	if n := length(t, b, 2, "k"); n != 1 {
		t.Fatalf("len = %d, want 1", n)
	}
	if msg, ok := get(t, b, 3, "k"); !ok || string(msg) != "v" {
		t.Fatalf("get = %q, %v", msg, ok)
	}
}

// TestServerTinyWaitIsAWaitC05: a wait of 1 ms answers Empty soon, never blocks for
// good; a wait of 0 answers at once.
func TestServerTinyWaitIsAWaitC05(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	for _, ms := range []uint64{0, 1, 2} {
		start := time.Now()
		f := c.Do(proto.OpGet, 1, getWaitBody(t, "empty", ms))
		want(t, f, proto.StatusEmpty, "")
		if took := time.Since(start); took < time.Duration(ms)*time.Millisecond ||
			took > 5*time.Second {
			t.Fatalf("wait of %d ms took %v", ms, took)
		}
	}
	// A wait value that is not 8 bytes is refused, and the connection goes on.
	b, _ := proto.AppendKey(nil, "empty")
	b, _ = proto.AppendOptions(b, proto.Option{Tag: proto.OptGetWait, Value: []byte{1}})
	want(t, c.Do(proto.OpGet, 2, b), proto.StatusBadRequest, "8")
	c.Do(proto.OpPing, 3, nil)
}

// TestServerHugeWaitBlocksC06: waits far beyond any clock's range neither overflow
// nor time out early: they block until a put wakes them.
func TestServerHugeWaitBlocksC06(t *testing.T) {
	for _, maxWait := range []time.Duration{0, -1} { // the default bound, and none
		s := testutil.StartServer(t, testutil.WithServer(func(c *server.Config) {
			c.MaxWait = maxWait
		}))
		c := testutil.Dial(t, s.Addr)
		got := replies(c)
		waits := []uint64{1<<31/1000 + 1, 1 << 32, 1 << 53, 1e18, 9.2e18, math.MaxUint64}
		for i, ms := range waits {
			c.Send(proto.OpGet, uint32(i), getWaitBody(t, "huge", ms))
		}
		c.Flush()
		testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == int64(len(waits)) })
		select {
		case f := <-got:
			t.Fatalf("max wait %v: reply %s id %d status %v while all should wait",
				maxWait, f.Op, f.ID, f.Status())
		case <-time.After(time.Second):
		}

		p := testutil.Dial(t, s.Addr)
		for range waits {
			put(t, p, 1, "huge", []byte("m"))
		}
		for range waits {
			want(t, next(t, got, 5*time.Second), proto.StatusOK, "")
		}
	}
}

// TestServerStaggeredWaitsEachTimeOutC07: waiters on one queue with staggered waits,
// joined and left by others, each answer Empty at their own deadline.
func TestServerStaggeredWaitsEachTimeOutC07(t *testing.T) {
	s := testutil.StartServer(t)
	waits := []time.Duration{300 * time.Millisecond, 600 * time.Millisecond,
		900 * time.Millisecond, 1200 * time.Millisecond}
	type result struct {
		wait, took time.Duration
		st         proto.Status
	}
	results := make(chan result, len(waits))
	var wg sync.WaitGroup
	for _, w := range waits {
		c := testutil.Dial(t, s.Addr)
		wg.Go(func() {
			start := time.Now()
			c.Send(proto.OpGet, 1, getWaitBody(t, "foo", uint64(w.Milliseconds())))
			c.Flush()
			f, err := c.Recv()
			if err != nil {
				t.Error(err)
				return
			}
			results <- result{w, time.Since(start), f.Status()}
		})
	}
	// Late arrivals that leave again: they must not disturb the others' timers.
	for range 5 {
		c := testutil.Dial(t, s.Addr)
		c.Send(proto.OpGet, 1, getWaitBody(t, "foo", 60_000))
		c.Flush()
		c.Close()
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.st != proto.StatusEmpty || r.took < r.wait || r.took > r.wait+3*time.Second {
			t.Errorf("wait %v: status %v after %v", r.wait, r.st, r.took)
		}
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == 0 })
}

// TestServerWaitOnTimeUnderChurnC08: a 2 s wait answers on time while other clients
// connect and disconnect as fast as they can (a bounded loop).
func TestServerWaitOnTimeUnderChurnC08(t *testing.T) {
	s := testutil.StartServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	var churn sync.WaitGroup
	var conns [4]int
	for w := range conns {
		churn.Go(func() {
			for i := 0; i < 1500 && ctx.Err() == nil; i++ {
				c, err := testutil.DialRaw(s.Addr)
				if err != nil {
					continue
				}
				c.Close()
				conns[w]++
			}
		})
	}

	c := testutil.Dial(t, s.Addr)
	start := time.Now()
	f := c.Do(proto.OpGet, 1, getWaitBody(t, "q", 2000))
	took := time.Since(start)
	cancel()
	churn.Wait()
	want(t, f, proto.StatusEmpty, "")
	if took < 2*time.Second || took > 4500*time.Millisecond {
		t.Fatalf("a 2 s wait took %v under churn", took)
	}
	t.Logf("2 s wait took %v with %d connections churned",
		took, conns[0]+conns[1]+conns[2]+conns[3])
}

func TestServerShutdownEndsWaits(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	got := replies(c)
	c.Send(proto.OpGet, 7, getWaitBody(t, "q", math.MaxUint64))
	c.Flush()
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a waiting GET: %v", err)
	}
	f := next(t, got, 5*time.Second)
	if f.ID != 7 {
		t.Fatalf("reply id %d", f.ID)
	}
	want(t, f, proto.StatusShuttingDown, "")

	// Then the goodbye, after the last reply: requests not answered were not run.
	f = next(t, got, 5*time.Second)
	if f.Op != proto.OpNone || f.ID != 0 {
		t.Fatalf("after the last reply: %v frame %d, want the goodbye", f.Op, f.ID)
	}
	want(t, f, proto.StatusShuttingDown, "not run")
}

func TestServerRefusesTooManyWaits(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	const limit = 1024
	for i := range limit + 1 {
		c.Send(proto.OpGet, uint32(i), getWaitBody(t, "q", 60_000))
	}
	c.Flush()
	f, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != limit {
		t.Fatalf("first reply id %d, want %d", f.ID, limit)
	}
	want(t, f, proto.StatusBadRequest, "waiting")
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == limit })
}

// TestServerWaitersServedInArrivalOrderC02: 100 waiters on one queue, each on its own
// connection and confirmed waiting before the next comes; then 100 puts: each waiter
// gets exactly one message, in the order the waiters came.
func TestServerWaitersServedInArrivalOrderC02(t *testing.T) {
	s := testutil.StartServer(t)
	const n = 100
	got := make([]<-chan proto.Frame, n)
	for i := range n {
		c := testutil.Dial(t, s.Addr)
		got[i] = replies(c)
		c.Send(proto.OpGet, uint32(i), getWaitBody(t, "fair", 60_000))
		c.Flush()
		testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == int64(i+1) })
	}
	p := testutil.Dial(t, s.Addr)
	for i := range n {
		put(t, p, uint32(i), "fair", []byte(fmt.Sprint(i)))
	}
	for i := range n {
		f := next(t, got[i], 5*time.Second)
		want(t, f, proto.StatusOK, "")
		if string(f.Body[8:]) != fmt.Sprint(i) {
			t.Fatalf("waiter %d got message %q", i, f.Body[8:])
		}
	}
}

// TestServerReplyBeforeWaitIsFlushed: a reply held back because a further request
// was already received is flushed when that request goes off to wait.
func TestServerReplyBeforeWaitIsFlushed(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	got := replies(c)
	c.Send(proto.OpPut, 1, testutil.KeyBody(t, "a", []byte("x")))
	c.Send(proto.OpGet, 2, getWaitBody(t, "b", 60_000))
	c.Flush()
	f := next(t, got, 5*time.Second)
	if f.ID != 1 || f.Op != proto.OpPut {
		t.Fatalf("reply %s id %d, want the PUT", f.Op, f.ID)
	}
	want(t, f, proto.StatusOK, "")
}
