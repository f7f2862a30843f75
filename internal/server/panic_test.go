package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
)

// TestServerRecoversPanicPerConnection makes one request panic: that connection is
// closed, the server and another connection go on.
func TestServerRecoversPanicPerConnection(t *testing.T) {
	b, err := broker.New(broker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, err := New(Config{Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	s.testHookExecute = func(f proto.Frame) {
		if string(f.Body) == "boom" {
			panic("boom")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()

	doomed, doomedR := rawDial(t, ln.Addr().String())
	other, otherR := rawDial(t, ln.Addr().String())

	doomed.Write(proto.AppendFrame(nil, proto.OpPing, 0, 1, []byte("boom")))
	if f, err := doomedR.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the panic: %+v, %v; want the connection closed", f, err)
	}
	other.Write(proto.AppendFrame(nil, proto.OpPing, 0, 2, []byte("fine")))
	if f, err := otherR.ReadFrame(); err != nil || string(f.Body) != "fine" {
		t.Fatalf("other connection: %+v, %v", f, err)
	}
}

func rawDial(t *testing.T, addr string) (net.Conn, *proto.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.Write(proto.ClientHello{Version: proto.Version}.Append(nil))
	br := bufio.NewReader(nc)
	if _, err := proto.ReadServerHello(br); err != nil {
		t.Fatal(err)
	}
	return nc, proto.NewReader(br, 1<<20)
}
