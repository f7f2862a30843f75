package client

import (
	"bufio"
	"net"
	"sync"
	"testing"

	"github.com/keyq/keyq/internal/proto"
)

// fakeServer is a scripted keyq server for the cases a real one will not produce on
// demand: replies held back, out of order, fatal frames, a dropped connection. Tests
// read each request with next and answer with reply.
type fakeServer struct {
	ln    net.Listener
	conns chan *fakeConn

	mu   sync.Mutex // protects open
	open []net.Conn
}

// fakeConn is one accepted connection, past the handshake.
type fakeConn struct {
	conn net.Conn
	r    *proto.Reader
	w    *proto.Writer
}

// startFake listens on 127.0.0.1:0 and accepts connections, answering each hello
// with hello (use fakeHello() for a normal one).
func startFake(t *testing.T, hello []byte) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	fs := &fakeServer{ln: ln, conns: make(chan *fakeConn, 4)}
	t.Cleanup(fs.close)

	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			fs.mu.Lock()
			fs.open = append(fs.open, conn)
			fs.mu.Unlock()
			br := bufio.NewReader(conn)
			if _, err := proto.ReadClientHello(br); err != nil {
				conn.Close()
				continue
			}
			if _, err := conn.Write(hello); err != nil {
				conn.Close()
				continue
			}
			fs.conns <- &fakeConn{
				conn: conn,
				r:    proto.NewReader(br, 1<<21),
				w:    proto.NewWriter(bufio.NewWriter(conn)),
			}
		}
	}()
	return fs
}

// fakeHello is the hello of a version-1 server with a 1 MiB message limit.
func fakeHello() []byte {
	return proto.ServerHello{
		Version:    proto.Version,
		MaxMessage: 1 << 20,
		MaxFrame:   uint32(proto.MaxFrameFor(1 << 20)),
	}.Append(nil)
}

func (fs *fakeServer) close() {
	fs.ln.Close()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, conn := range fs.open {
		conn.Close()
	}
}

func (fs *fakeServer) addr() string { return fs.ln.Addr().String() }

// accept returns the next connection that completed the handshake.
func (fs *fakeServer) accept(t *testing.T) *fakeConn {
	t.Helper()
	return <-fs.conns
}

// next reads the next request; its body is copied.
func (fc *fakeConn) next(t *testing.T) proto.Frame {
	t.Helper()
	f, err := fc.r.ReadFrame()
	if err != nil {
		t.Fatalf("fake server: read request: %v", err)
	}
	f.Body = append([]byte{}, f.Body...)
	return f
}

// reply writes and flushes one reply frame.
func (fc *fakeConn) reply(t *testing.T, op proto.Op, st proto.Status, id uint32, body ...[]byte) {
	t.Helper()
	if err := fc.w.WriteReply(op, st, id, body...); err != nil {
		t.Fatalf("fake server: write reply: %v", err)
	}
	if err := fc.w.Flush(); err != nil {
		t.Fatalf("fake server: flush: %v", err)
	}
}
