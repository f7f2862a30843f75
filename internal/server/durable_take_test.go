package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/storage"
	"github.com/keyq/keyq/internal/testutil"
	"github.com/keyq/keyq/internal/wal"
)

// sendGets pipelines n GETs of key (with a wait of waitMS milliseconds if not 0),
// ids first to first+n-1, and flushes.
func sendGets(t *testing.T, c *testutil.Conn, key string, first, n int, waitMS uint64) {
	t.Helper()
	body := testutil.KeyBody(t, key, nil)
	if waitMS > 0 {
		body = getWaitBody(t, key, waitMS)
	}
	for i := range n {
		if err := c.Send(proto.OpGet, uint32(first+i), body); err != nil {
			t.Fatalf("send get %d: %v", first+i, err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// TestServerPipelinedDurableGetsShareFsync holds the log's Wait while 64 puts and
// then 64 GETs (with and without a wait) are pipelined on one connection: every get
// takes its message before any reply, no get is answered before its take is durable,
// the gets' replies come in request order with the messages in put order, and the
// 128 requests share a few fsyncs.
func TestServerPipelinedDurableGetsShareFsync(t *testing.T) {
	const n = 64
	store := newGatedStore(t, t.TempDir())
	s := testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.Store = store
	}))
	c := testutil.Dial(t, s.Addr)

	type reply struct {
		f       proto.Frame
		durable bool
	}
	replies := make(chan reply, 2*n)
	go func() {
		for range 2 * n {
			f, err := c.Recv()
			if err != nil {
				return
			}
			durable := false
			if f.Op == proto.OpGet && f.Status() == proto.StatusOK {
				d := proto.NewBody(f.Body)
				if id, err := d.U64(); err == nil {
					durable = store.takeDurableBefore(id)
				}
			}
			replies <- reply{f, durable}
		}
	}()

	syncs := store.Stats().Syncs
	sendPuts(t, c, "q", n)
	sendGets(t, c, "q", n, n/2, 0)
	sendGets(t, c, "q", n+n/2, n/2, 60_000)
	testutil.WaitFor(t, 10*time.Second, func() bool { return store.takes.Load() == n })
	if len(replies) != 0 {
		t.Fatalf("%d replies while the log's Wait was held", len(replies))
	}

	store.open()
	nextGet := n
	for range 2 * n {
		var r reply
		select {
		case r = <-replies:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d gets of %d answered", nextGet-n, n)
		}
		want(t, r.f, proto.StatusOK, "")
		if r.f.Op != proto.OpGet {
			continue
		}
		if int(r.f.ID) != nextGet {
			t.Fatalf("reply to get %d, want get %d first", r.f.ID, nextGet)
		}
		if msg := fmt.Sprintf("msg-%d", nextGet-n); string(r.f.Body[8:]) != msg {
			t.Fatalf("get %d took %q, want %q", r.f.ID, r.f.Body[8:], msg)
		}
		if !r.durable {
			t.Fatalf("get %d answered before its take was durable", r.f.ID)
		}
		nextGet++
	}
	if got := store.Stats().Syncs - syncs; got >= n {
		t.Fatalf("%d fsyncs for %d pipelined puts and gets, want them shared", got, 2*n)
	}
	if l := s.Broker.Stats(0).Messages; l != 0 {
		t.Fatalf("%d messages left after the gets, want 0", l)
	}
}

// TestServerDurableGetsGoBackWhenClientLeaves takes messages with pipelined GETs and
// a GETBATCH, and leases two with a RESERVE, while the log's Wait is held, and
// closes the connection before the takes are durable: nobody is left to receive
// them, so once the log moves every message is back in its queue, in order, and is
// delivered once to the next consumer.
func TestServerDurableGetsGoBackWhenClientLeaves(t *testing.T) {
	const n = 6
	store := newGatedStore(t, t.TempDir())
	s := testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.Store = store
	}))
	c := testutil.Dial(t, s.Addr)
	sendPuts(t, c, "q", n)
	if err := c.Send(proto.OpPutBatch, n, putBatchBody(t, "r", "r-0", "r-1")); err != nil {
		t.Fatal(err)
	}
	sendGets(t, c, "q", n+1, 4, 0)
	if err := c.Send(proto.OpGetBatch, n+5, batchBody(t, "q", 2)); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(proto.OpReserve, n+6, batchBody(t, "r", 2)); err != nil {
		t.Fatal(err)
	}
	// A wait on another queue shows when the server has seen the client leave: it
	// ends then, with the connection's other waits.
	sendGets(t, c, "other", n+7, 1, 60_000)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		st := s.Broker.Stats(0)
		return store.takes.Load() == n && st.Waiting == 1 && st.Messages == 0
	})
	c.Close()
	testutil.WaitFor(t, 10*time.Second, func() bool { return s.Broker.Stats(0).Waiting == 0 })

	store.open()
	c2 := testutil.Dial(t, s.Addr)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return length(t, c2, 0, "q") == n && length(t, c2, 0, "r") == 2
	})
	for key, msgs := range map[string][]string{
		"q": {"msg-0", "msg-1", "msg-2", "msg-3", "msg-4", "msg-5"},
		"r": {"r-0", "r-1"},
	} {
		for i, m := range msgs {
			msg, ok := get(t, c2, uint32(i), key)
			if !ok || string(msg) != m {
				t.Fatalf("get %d from %s after the client left = %q, %v; want %s",
					i, key, msg, ok, m)
			}
		}
		if msg, ok := get(t, c2, 99, key); ok {
			t.Fatalf("get from %s after its %d messages = %q, want empty", key, len(msgs), msg)
		}
	}
}

// batchBody is the body of a GETBATCH or RESERVE of up to max messages from key,
// without a wait (the two share their layout).
func batchBody(t testing.TB, key string, max uint32) []byte {
	t.Helper()
	b, err := proto.AppendKeys(nil, []string{key})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = proto.AppendOptions(b, proto.U32Option(proto.OptGetMax, max))
	return b
}

// switchStore is a durable log whose Wait blocks while the test holds it.
type switchStore struct {
	*wal.Log
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func (s *switchStore) hold() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *switchStore) release() {
	s.mu.Lock()
	close(s.gate)
	s.gate = nil
	s.mu.Unlock()
}

func (s *switchStore) Wait(ctx context.Context, t storage.Ticket) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Log.Wait(ctx, t)
}

// TestServerPipelinedDurableAcksShareFsync leases eight messages, then holds the
// log's Wait while four ACKs and four NACKs are pipelined with a PING behind them:
// the PING is answered first (the acks wait off the reader), then the eight in
// order once the log moves, sharing fsyncs; the nacked messages are back.
func TestServerPipelinedDurableAcksShareFsync(t *testing.T) {
	const n = 8
	l, err := wal.Open(t.TempDir(), wal.Options{Fsync: wal.FsyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	store := &switchStore{Log: l}
	s := testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.Store = store
	}))
	c := testutil.Dial(t, s.Addr)
	for i := range n {
		put(t, c, uint32(i), "q", fmt.Appendf(nil, "msg-%d", i))
	}
	its := items(t, c.Do(proto.OpReserve, n, reserveBody(t, []string{"q"},
		proto.U32Option(proto.OptGetMax, n))), true)
	if len(its) != n {
		t.Fatalf("%d items leased, want %d", len(its), n)
	}

	ch := replies(c)
	store.hold()
	syncs := store.Stats().Syncs
	for i, it := range its {
		op := proto.OpAck
		if i%2 == 1 {
			op = proto.OpNack
		}
		if err := c.Send(op, uint32(100+i), idBody(it.DeliveryID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Send(proto.OpPing, 200, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if f := next(t, ch, 10*time.Second); f.ID != 200 {
		t.Fatalf("first reply is to %s id %d, want the PING", f.Op, f.ID)
	}
	store.release()
	for i := range n {
		f := next(t, ch, 10*time.Second)
		want(t, f, proto.StatusOK, "")
		if f.ID != uint32(100+i) {
			t.Fatalf("reply to %s id %d, want id %d next", f.Op, f.ID, 100+i)
		}
	}
	if got := store.Stats().Syncs - syncs; got >= n {
		t.Fatalf("%d fsyncs for %d pipelined acks and nacks, want them shared", got, n)
	}
	if err := c.Send(proto.OpLen, 300, testutil.Key(t, "q")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := u64(t, next(t, ch, 10*time.Second)); got != n/2 {
		t.Fatalf("len %d after the nacks, want %d", got, n/2)
	}
}

// TestServerDurableGetsAtShutdownGoBack shuts the server down while pipelined GETs
// wait for the log: the puts before them are acknowledged once durable, the GETs
// are answered ShuttingDown, and their messages are back in the queue, in order.
func TestServerDurableGetsAtShutdownGoBack(t *testing.T) {
	store := newGatedStore(t, t.TempDir())
	s := testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.Store = store
	}))
	c := testutil.Dial(t, s.Addr)
	ch := replies(c)
	sendPuts(t, c, "q", 2)
	sendGets(t, c, "q", 2, 2, 0)
	sendGets(t, c, "other", 4, 1, 60_000) // ends when the shutdown ends the waits
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return store.takes.Load() == 2 && s.Broker.Stats(0).Waiting == 1
	})

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Server.Shutdown(ctx)
	}()
	testutil.WaitFor(t, 10*time.Second, func() bool { return s.Broker.Stats(0).Waiting == 0 })
	store.open()
	for id, f := range recvAll(t, ch, 5) {
		switch {
		case id < 2:
			want(t, f, proto.StatusOK, "")
		default:
			want(t, f, proto.StatusShuttingDown, "")
		}
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for i, wantMsg := range []string{"msg-0", "msg-1"} {
		m, err := s.Broker.Get(context.Background(), "q", 0)
		if err != nil || string(m.Payload) != wantMsg {
			t.Fatalf("get %d after the shutdown = %q, %v; want %s", i, m.Payload, err, wantMsg)
		}
	}
}
