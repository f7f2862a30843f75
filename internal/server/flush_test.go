package server_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

// writeCounter counts the writes the server makes to its accepted connections.
type writeCounter struct {
	net.Listener
	writes *atomic.Int64
}

func (l writeCounter) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{nc, l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestServerFlushesOncePerPipelinedBatch sends 200 requests in one write: the replies
// come back in order in far fewer writes than replies, not one write each.
func TestServerFlushesOncePerPipelinedBatch(t *testing.T) {
	var writes atomic.Int64
	s := testutil.StartServer(t, testutil.WithListener(func(ln net.Listener) net.Listener {
		return writeCounter{ln, &writes}
	}))
	c := testutil.Dial(t, s.Addr)
	afterHello := writes.Load()

	const n = 200
	for i := range n {
		c.Send(proto.OpPing, uint32(i), []byte("x"))
	}
	c.Flush()
	for i := range n {
		f, err := c.Recv()
		if err != nil || f.ID != uint32(i) || string(f.Body) != "x" {
			t.Fatalf("reply %d: %+v, %v", i, f, err)
		}
	}
	if got := writes.Load() - afterHello; got > n/10 {
		t.Fatalf("%d replies took %d writes", n, got)
	}
}

// TestServerShutdownGivesUpAtDeadline: a client that never reads holds a reply the
// server cannot send; Shutdown returns the context's error at its deadline, and the
// connection is closed all the same.
func TestServerShutdownGivesUpAtDeadline(t *testing.T) {
	s := testutil.StartServer(t, testutil.WithListener(smallSendBuffers),
		testutil.WithServer(func(c *server.Config) {
			c.MaxOutputBytes = 16 << 10
			c.WriteTimeout = time.Minute
		}))
	stuck := testutil.Dial(t, s.Addr)
	stuck.NetConn().(*net.TCPConn).SetReadBuffer(4 << 10)
	ping := make([]byte, proto.MaxPingBytes)
	stuck.NetConn().SetWriteDeadline(time.Now().Add(5 * time.Second))
	for i := range 300 {
		stuck.Send(proto.OpPing, uint32(i), ping)
	}
	stuck.Flush()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.Server.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown = %v, want the deadline", err)
	}
	if n := s.Server.Connections(); n != 0 {
		t.Fatalf("%d connections after a forced shutdown", n)
	}
}
