package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

// smallSendBuffers shrinks the kernel send buffer of every accepted connection, so
// that a client that does not read pushes back on the server after a few KiB rather
// than after megabytes of kernel memory.
func smallSendBuffers(ln net.Listener) net.Listener { return sendBufListener{ln} }

type sendBufListener struct{ net.Listener }

func (l sendBufListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return nc, err
}

// TestServerNonReadingClientsStayBoundedC24: 100 clients pipeline GETs and 1 KiB PINGs
// and never read. The server stops reading them once their queued replies pass the
// output cap, its heap stays bounded, and another client is still served.
func TestServerNonReadingClientsStayBoundedC24(t *testing.T) {
	const (
		clients   = 100
		perClient = 300 // of each: GET and PING
		outputCap = 64 << 10
	)
	s := testutil.StartServer(t, testutil.WithListener(smallSendBuffers),
		testutil.WithServer(func(c *server.Config) {
			c.MaxOutputBytes = outputCap
			c.WriteTimeout = time.Minute // keep them connected while we measure
		}))
	base := heapInUse()

	conns := make([]*testutil.Conn, clients)
	for i := range conns {
		conns[i] = testutil.Dial(t, s.Addr)
		conns[i].NetConn().(*net.TCPConn).SetReadBuffer(4 << 10)
	}
	ping := bytes.Repeat([]byte("p"), proto.MaxPingBytes)
	getBody := keyBody("nothing-here", nil)

	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.NetConn().SetWriteDeadline(time.Now().Add(3 * time.Second))
			for i := range perClient {
				c.Send(proto.OpGet, uint32(2*i), getBody)
				if c.Send(proto.OpPing, uint32(2*i+1), ping) != nil {
					return // the server stopped reading and the kernel is full
				}
			}
			c.Flush()
		})
	}
	wg.Wait()

	// Let the server go as far as it will: until its count of gets stops moving.
	var last uint64
	testutil.WaitFor(t, 20*time.Second, func() bool {
		n := s.Broker.Stats(0).EmptyGets
		settled := n == last && n > 0
		last = n
		if !settled {
			time.Sleep(100 * time.Millisecond)
		}
		return settled
	})
	grew := heapInUse() - base
	t.Logf("heap grew %d KiB with %d non-reading clients; %d of %d gets ran",
		grew>>10, clients, last, clients*perClient)
	if grew > 48<<20 {
		t.Fatalf("heap grew %d MiB with %d non-reading clients", grew>>20, clients)
	}
	if last >= clients*perClient {
		t.Fatalf("all %d gets ran: the server never pushed back", last)
	}

	other := testutil.Dial(t, s.Addr)
	put(t, other, 1, "q", []byte("still served"))
	if msg, ok := get(t, other, 2, "q"); !ok || string(msg) != "still served" {
		t.Fatalf("get = %q, %v", msg, ok)
	}
	for _, c := range conns {
		c.Close()
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return s.Server.Connections() == 1 })
}

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// TestServerDropsStuckReaderC28 has a client pipeline requests and then neither read
// nor send: its writes stop making progress and the write timeout drops it, request
// held back by the output cap included.
func TestServerDropsStuckReaderC28(t *testing.T) {
	s := testutil.StartServer(t, testutil.WithListener(smallSendBuffers),
		testutil.WithServer(func(c *server.Config) {
			c.MaxOutputBytes = 16 << 10
			c.WriteTimeout = 300 * time.Millisecond
		}))
	stuck := testutil.Dial(t, s.Addr)
	stuck.NetConn().(*net.TCPConn).SetReadBuffer(4 << 10)
	ping := bytes.Repeat([]byte("p"), proto.MaxPingBytes)
	stuck.NetConn().SetWriteDeadline(time.Now().Add(10 * time.Second))
	for i := range 200 {
		stuck.Send(proto.OpPing, uint32(i), ping)
	}
	if err := stuck.Flush(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) &&
		!isReset(err) {
		t.Fatal(err)
	}

	testutil.WaitFor(t, 20*time.Second, func() bool { return s.Server.Connections() == 0 })
	other := testutil.Dial(t, s.Addr)
	want(t, other.Do(proto.OpPing, 1), proto.StatusOK, "")
}

// TestServerStalledHugeHeadersC24: clients that announce a max-size frame, send a few
// bytes of it and stall cost the server memory in proportion to what they sent.
func TestServerStalledHugeHeadersC24(t *testing.T) {
	s := testutil.StartServer(t)
	const clients = 50
	base := heapInUse()

	conns := make([]*testutil.Conn, clients)
	for i := range conns {
		conns[i] = testutil.Dial(t, s.Addr)
		frame := proto.AppendFrame(nil, proto.OpPut, 0, 1, keyBody("q", []byte("start")))
		binary.BigEndian.PutUint32(frame, conns[i].Hello.MaxFrame)
		conns[i].SendRaw(frame)
		conns[i].Flush()
	}
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return s.Server.Connections() == clients
	})
	// Each connection's reader is now blocked inside the body of a 1 MiB frame.
	other := testutil.Dial(t, s.Addr)
	want(t, other.Do(proto.OpPing, 1), proto.StatusOK, "")

	grew := heapInUse() - base
	t.Logf("heap grew %d KiB with %d stalled max-size frames", grew>>10, clients)
	if grew > clients*(384<<10) { // a frame's worth each would be 1 MiB
		t.Fatalf("heap grew %d KiB: a stalled frame costs more than what was sent",
			grew>>10)
	}
}
