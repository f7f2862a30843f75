package testutil

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// Conn is a raw native-protocol connection for tests: it sends frames exactly as
// asked (including ones a real client would refuse to build) and reads replies one by
// one. It is not safe for concurrent use, except Close.
type Conn struct {
	t     testing.TB
	nc    net.Conn
	bw    *bufio.Writer
	fw    *proto.Writer
	fr    *proto.Reader
	Hello proto.ServerHello // the server's answer to the handshake
}

// Dial connects to addr and completes the handshake, failing the test on error. The
// connection is closed by t.Cleanup.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := DialRaw(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.t = t
	t.Cleanup(func() { c.Close() })
	return c
}

// DialRaw is Dial without a test: it returns errors (for use in goroutines and
// benchmarks) and the caller closes the connection.
func DialRaw(addr string) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc, bw: bufio.NewWriterSize(nc, 32<<10)}
	c.fw = proto.NewWriter(c.bw)

	br := bufio.NewReaderSize(nc, 32<<10)
	c.bw.Write(proto.ClientHello{Version: proto.Version}.Append(nil))
	if err := c.bw.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	if c.Hello, err = proto.ReadServerHello(br); err != nil {
		nc.Close()
		return nil, err
	}
	c.fr = proto.NewReader(br, int(c.Hello.MaxFrame))
	return c, nil
}

// NetConn returns the underlying connection, to write raw bytes or close halfway.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// Send buffers one request frame with the given body; Flush sends it.
func (c *Conn) Send(op proto.Op, id uint32, body ...[]byte) error {
	return c.fw.WriteFrame(op, 0, id, body...)
}

// SendRaw buffers raw bytes, for malformed frames.
func (c *Conn) SendRaw(b []byte) error {
	_, err := c.bw.Write(b)
	return err
}

// Flush sends what Send and SendRaw buffered.
func (c *Conn) Flush() error { return c.bw.Flush() }

// Recv reads the next reply. Its Body is copied, so it stays valid.
func (c *Conn) Recv() (proto.Frame, error) {
	f, err := c.fr.ReadFrame()
	if err != nil {
		return f, err
	}
	f.Body = append([]byte(nil), f.Body...)
	return f, nil
}

// Do sends one request and reads its reply, failing the test on a network error or
// a reply that does not match the request.
func (c *Conn) Do(op proto.Op, id uint32, body ...[]byte) proto.Frame {
	c.t.Helper()
	if err := c.Send(op, id, body...); err != nil {
		c.t.Fatalf("send %s: %v", op, err)
	}
	if err := c.Flush(); err != nil {
		c.t.Fatalf("send %s: %v", op, err)
	}
	f, err := c.Recv()
	if err != nil {
		c.t.Fatalf("reply to %s: %v", op, err)
	}
	if f.ID != id || f.Op != op {
		c.t.Fatalf("reply %s id %d to %s id %d", f.Op, f.ID, op, id)
	}
	return f
}

// KeyBody returns a key followed by an empty options block and then rest: the body of
// a PUT (rest is the message) or a GET (no rest). Keys over 255 bytes fail the test.
func KeyBody(t testing.TB, key string, rest []byte) []byte {
	t.Helper()
	b, err := proto.AppendKey(nil, key)
	if err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	b, _ = proto.AppendOptions(b)
	return append(b, rest...)
}

// Key returns the body of a LEN: just the key.
func Key(t testing.TB, key string) []byte {
	t.Helper()
	b, err := proto.AppendKey(nil, key)
	if err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	return b
}
