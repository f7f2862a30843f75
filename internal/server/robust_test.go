package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

// TestServerDropsGarbageClientOthersExact has one client break the protocol in the
// middle of a pipelined stream while good clients pipeline: the bad client gets its
// replies up to the break, one fatal error frame and a close; the others are exact.
func TestServerDropsGarbageClientOthersExact(t *testing.T) {
	breaks := []struct {
		name string
		raw  []byte
		code proto.Status
		op   proto.Op
	}{
		{"oversized length", []byte{0x7f, 0xff, 0xff, 0xff, 1, 0, 0, 0}, proto.StatusFrameTooLarge,
			proto.OpNone},
		{"length under header", []byte{0, 0, 0, 2, 0xde, 0xad}, proto.StatusBadFrame, proto.OpNone},
		{"key past body", proto.AppendFrame(nil, proto.OpPut, 0, 999, []byte{200, 'x'}),
			proto.StatusBadFrame, proto.OpPut},
		{"text garbage", []byte("SET key value\r\nGET key\r\n"), proto.StatusFrameTooLarge,
			proto.OpNone},
	}
	for _, br := range breaks {
		t.Run(br.name, func(t *testing.T) {
			s := testutil.StartServer(t)
			const good, perClient = 4, 200

			var wg sync.WaitGroup
			errs := make(chan error, good)
			for i := range good {
				wg.Go(func() { errs <- pipelineClient(s.Addr, i, perClient) })
			}

			bad := testutil.Dial(t, s.Addr)
			for i := range 50 {
				bad.Send(proto.OpPut, uint32(i), testutil.KeyBody(t, "bad", []byte("m")))
			}
			bad.SendRaw(br.raw)
			for i := range 50 { // after the break: must never run
				bad.Send(proto.OpPut, uint32(100+i), testutil.KeyBody(t, "bad", []byte("m")))
			}
			bad.Flush()

			for i := range 50 {
				f, err := bad.Recv()
				if err != nil || f.ID != uint32(i) || f.Status() != proto.StatusOK {
					t.Fatalf("bad client reply %d: %+v, %v", i, f, err)
				}
			}
			f, err := bad.Recv()
			if err != nil || f.Status() != br.code || f.Op != br.op || len(f.Body) == 0 {
				t.Fatalf("error frame = %+v (%q), %v; want %v on %v", f, f.Body, err, br.code,
					br.op)
			}
			expectClosed(t, bad)

			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n, _ := s.Broker.Len("bad"); n != 50 {
				t.Fatalf("bad queue len = %d, want the 50 puts before the break", n)
			}
			testutil.WaitFor(t, 10*time.Second, func() bool {
				return s.Server.Connections() == 0
			})
		})
	}
}

// TestServerClientDisconnectsMidFrame closes a connection halfway through a frame, in
// its header and in its body: the server drops it and goes on.
func TestServerClientDisconnectsMidFrame(t *testing.T) {
	s := testutil.StartServer(t)
	frame := proto.AppendFrame(nil, proto.OpPut, 0, 1, keyBody("q", make([]byte, 1000)))

	for _, cut := range []int{2, 7, 500} {
		c := testutil.Dial(t, s.Addr)
		c.Send(proto.OpPut, 0, keyBody("q", []byte("whole")))
		c.SendRaw(frame[:cut])
		c.Flush()
		if f, err := c.Recv(); err != nil || f.Status() != proto.StatusOK {
			t.Fatalf("cut %d: whole put = %+v, %v", cut, f, err)
		}
		c.Close()
	}

	testutil.WaitFor(t, 10*time.Second, func() bool { return s.Server.Connections() == 0 })
	c := testutil.Dial(t, s.Addr)
	if n := length(t, c, 1, "q"); n != 3 {
		t.Fatalf("len = %d, want 3: no half frame may run", n)
	}
}

// TestServerShutdownWithRequestsInFlight shuts the server down while clients pipeline:
// every request gets OK or ShuttingDown, or no reply at all once the connection
// closes; the OKs are exactly the messages stored; nothing hangs.
func TestServerShutdownWithRequestsInFlight(t *testing.T) {
	s := testutil.StartServer(t)
	const clients = 8

	var started, wg sync.WaitGroup
	oks := make(chan int, clients)
	errs := make(chan error, clients)
	started.Add(clients)
	for i := range clients {
		wg.Go(func() {
			n, err := flood(s.Addr, fmt.Sprintf("q%d", i), &started)
			oks <- n
			errs <- err
		})
	}
	started.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	wg.Wait()
	close(oks)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	total := 0
	for n := range oks {
		total += n
	}
	if st := s.Broker.Stats(0); st.Messages != int64(total) || total == 0 {
		t.Fatalf("%d puts answered OK, %d messages stored", total, st.Messages)
	}
	if s.Server.Connections() != 0 {
		t.Fatalf("%d connections after shutdown", s.Server.Connections())
	}
	if _, err := testutil.DialRaw(s.Addr); err == nil {
		t.Fatal("dial after shutdown succeeded")
	}
}

// flood pipelines puts to key until the server closes the connection, reading replies
// as they come, and returns how many were answered OK. It marks started once the
// first reply is in.
func flood(addr, key string, started *sync.WaitGroup) (oks int, err error) {
	c, err := testutil.DialRaw(addr)
	if err != nil {
		started.Done()
		return 0, err
	}
	defer c.Close()

	go func() {
		for i := range 1_000_000 {
			if c.Send(proto.OpPut, uint32(i), keyBody(key, []byte("m"))) != nil {
				return
			}
			if i%64 == 63 && c.Flush() != nil {
				return
			}
		}
	}()

	first := true
	for i := 0; ; i++ {
		f, err := c.Recv()
		if first {
			started.Done()
			first = false
		}
		if err != nil {
			if errors.Is(err, io.EOF) || isReset(err) {
				return oks, nil
			}
			return oks, fmt.Errorf("%s reply %d: %w", key, i, err)
		}
		switch {
		case f.Op == proto.OpNone && f.ID == 0 && f.Status() == proto.StatusShuttingDown:
			// The goodbye: every request read was answered before it, so none may
			// come after it.
			if f, err := c.Recv(); err == nil {
				return oks, fmt.Errorf("%s: %v frame %d after the goodbye", key, f.Op, f.ID)
			}
			return oks, nil
		case f.ID != uint32(i):
			return oks, fmt.Errorf("%s reply %d has id %d", key, i, f.ID)
		case f.Status() == proto.StatusOK:
			oks++
		case f.Status() != proto.StatusShuttingDown:
			return oks, fmt.Errorf("%s reply %d: status %v", key, i, f.Status())
		}
	}
}

// TestServerConnectionLimit opens one connection over the limit: it gets the hello, a
// TooManyConnections error frame and a close, while the others work; once one
// closes, a new connection is accepted.
func TestServerConnectionLimit(t *testing.T) {
	s := testutil.StartServer(t, testutil.WithServer(func(c *server.Config) {
		c.MaxConns = 2
	}))
	a := testutil.Dial(t, s.Addr)
	b := testutil.Dial(t, s.Addr)

	over, err := testutil.DialRaw(s.Addr)
	if err != nil {
		t.Fatalf("over the limit, the handshake still completes: %v", err)
	}
	defer over.Close()
	f, err := over.Recv()
	if err != nil || f.Op != proto.OpNone || f.ID != 0 ||
		f.Status() != proto.StatusTooManyConnections {
		t.Fatalf("over the limit got %+v, %v", f, err)
	}
	want(t, f, proto.StatusTooManyConnections, "limit of 2")
	expectClosed(t, over)

	want(t, a.Do(proto.OpPing, 1), proto.StatusOK, "")
	want(t, b.Do(proto.OpPing, 1), proto.StatusOK, "")

	a.Close()
	testutil.WaitFor(t, 10*time.Second, func() bool { return s.Server.Connections() == 1 })
	c := testutil.Dial(t, s.Addr)
	want(t, c.Do(proto.OpPing, 1), proto.StatusOK, "")
}

// TestServerIdleTimeoutC28 closes a connection that sends nothing, whether it went
// silent after the handshake or in the middle of a frame, and keeps one that pings.
func TestServerIdleTimeoutC28(t *testing.T) {
	const idle = time.Second
	s := testutil.StartServer(t, testutil.WithServer(func(c *server.Config) {
		c.IdleTimeout = idle
	}))

	silent := testutil.Dial(t, s.Addr)
	midFrame := testutil.Dial(t, s.Addr)
	midFrame.SendRaw([]byte{0, 0, 0, 20, byte(proto.OpPing)})
	midFrame.Flush()
	busy := testutil.Dial(t, s.Addr)

	done := make(chan struct{})
	pinged := make(chan error, 1)
	go func() { pinged <- pingUntil(busy, idle/20, done) }()

	expectClosed(t, silent)
	expectClosed(t, midFrame)
	testutil.WaitFor(t, 10*time.Second, func() bool { return s.Server.Connections() == 1 })
	close(done)
	if err := <-pinged; err != nil {
		t.Fatalf("the busy connection: %v", err)
	}
	want(t, busy.Do(proto.OpPing, 0), proto.StatusOK, "")
}

// pingUntil pings c every interval until done is closed.
func pingUntil(c *testutil.Conn, interval time.Duration, done <-chan struct{}) error {
	for i := uint32(1); ; i++ {
		select {
		case <-done:
			return nil
		case <-time.After(interval):
		}
		c.Send(proto.OpPing, i)
		if err := c.Flush(); err != nil {
			return err
		}
		f, err := c.Recv()
		if err != nil {
			return err
		}
		if f.ID != i || f.Status() != proto.StatusOK {
			return fmt.Errorf("ping %d: %+v", i, f)
		}
	}
}

// TestServerNoIdleTimeoutOutlivesHandshakeTimeout: with no idle timeout, the
// handshake's deadline must not carry over to the connection.
func TestServerNoIdleTimeoutOutlivesHandshakeTimeout(t *testing.T) {
	const handshake = 100 * time.Millisecond
	s := testutil.StartServer(t, testutil.WithServer(func(c *server.Config) {
		c.HandshakeTimeout = handshake
	}))
	c := testutil.Dial(t, s.Addr)
	want(t, c.Do(proto.OpPing, 1), proto.StatusOK, "")

	// Nothing to poll for: the failure is a close that would happen after the deadline.
	time.Sleep(3 * handshake)
	want(t, c.Do(proto.OpPing, 2), proto.StatusOK, "")
}
