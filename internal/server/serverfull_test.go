package server_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/keyq/keyq/client"
	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

// startLimited serves a broker that holds at most limit bytes and returns its
// address.
func startLimited(t *testing.T, limit int64) string {
	t.Helper()
	b, err := broker.New(broker.Config{MaxHeldBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s, err := server.New(server.Config{Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// A put over the server's memory limit is answered ServerFull; a get makes room.
func TestPutOverMemoryLimitIsServerFull(t *testing.T) {
	msg := make([]byte, 100)
	c := testutil.Dial(t, startLimited(t, 2*(100+broker.MessageOverhead)))
	put(t, c, 1, "q", msg)
	put(t, c, 2, "q", msg)

	f := c.Do(proto.OpPut, 3, testutil.KeyBody(t, "q", msg))
	want(t, f, proto.StatusServerFull, "server full")
	if _, ok := get(t, c, 4, "q"); !ok {
		t.Fatal("get found nothing")
	}
	put(t, c, 5, "q", msg)
}

// The Go client gets a typed error for it.
func TestClientGetsServerFull(t *testing.T) {
	ctx := context.Background()
	msg := make([]byte, 100)
	c, err := client.Dial(ctx, startLimited(t, 100+broker.MessageOverhead))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Put(ctx, "q", msg); err != nil {
		t.Fatal(err)
	}
	_, err = c.Put(ctx, "q", msg)
	if !errors.Is(err, &client.Error{Code: client.CodeServerFull}) {
		t.Fatalf("put over the limit = %v; want CodeServerFull", err)
	}
	if _, err := c.Get(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "q", msg); err != nil {
		t.Fatalf("put after a get = %v", err)
	}
}
