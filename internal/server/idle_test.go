package server_test

import (
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

// TestServerBlockedGetIsNeverIdleC28: a connection whose GET waits longer than the idle
// timeout is not idle; it gets its reply (Empty when the wait runs out, the message
// when one comes) and stays usable, while a silent connection is still closed.
func TestServerBlockedGetIsNeverIdleC28(t *testing.T) {
	const idle = 300 * time.Millisecond
	const wait = 5 * idle
	s := testutil.StartServer(t, testutil.WithServer(func(c *server.Config) {
		c.IdleTimeout = idle
	}))

	silent := testutil.Dial(t, s.Addr)
	empty := testutil.Dial(t, s.Addr)
	served := testutil.Dial(t, s.Addr)
	emptyReplies, servedReplies := replies(empty), replies(served)

	start := time.Now()
	empty.Send(proto.OpGet, 1, getWaitBody(t, "none", uint64(wait.Milliseconds())))
	empty.Flush()
	served.Send(proto.OpGet, 1, getWaitBody(t, "jobs", uint64(wait.Milliseconds())))
	served.Flush()
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == 2 })

	expectClosed(t, silent)

	// The point of the test is a wait past the idle timeout: nothing to poll for.
	time.Sleep(3 * idle)
	p := testutil.Dial(t, s.Addr)
	put(t, p, 1, "jobs", []byte("work"))
	f := next(t, servedReplies, 10*time.Second)
	want(t, f, proto.StatusOK, "")
	if f.ID != 1 || string(f.Body[8:]) != "work" {
		t.Fatalf("reply id %d body %q", f.ID, f.Body)
	}
	// Each connection is pinged at once after its reply: from then on it is idle, and
	// the idle timeout may close it.
	ping(t, served, servedReplies)

	f = next(t, emptyReplies, 10*time.Second)
	if f.Op != proto.OpGet || f.ID != 1 || f.Status() != proto.StatusEmpty {
		t.Fatalf("reply %s id %d status %v, want GET id 1 Empty", f.Op, f.ID, f.Status())
	}
	if d := time.Since(start); d < wait {
		t.Fatalf("the wait ended after %v, before its %v", d, wait)
	}
	ping(t, empty, emptyReplies)
}

// ping checks that c still answers.
func ping(t *testing.T, c *testutil.Conn, got <-chan proto.Frame) {
	t.Helper()
	c.Send(proto.OpPing, 2)
	c.Flush()
	want(t, next(t, got, 10*time.Second), proto.StatusOK, "")
}

// TestServerIdleClockStartsAfterLastRequestC28: once its last waiting request is
// answered, a connection that sends nothing more is closed after the idle timeout.
func TestServerIdleClockStartsAfterLastRequestC28(t *testing.T) {
	const idle = 200 * time.Millisecond
	s := testutil.StartServer(t, testutil.WithServer(func(c *server.Config) {
		c.IdleTimeout = idle
	}))
	c := testutil.Dial(t, s.Addr)
	got := replies(c)
	c.Send(proto.OpGet, 1, getWaitBody(t, "none", uint64(3*idle/time.Millisecond)))
	c.Flush()
	want(t, next(t, got, 10*time.Second), proto.StatusEmpty, "")
	select {
	case f, ok := <-got:
		if ok {
			t.Fatalf("frame %s id %d status %v after the wait", f.Op, f.ID, f.Status())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a silent connection with nothing in progress was not closed")
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return s.Server.Connections() == 0 })
}
