package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/storage"
	"github.com/keyq/keyq/internal/testutil"
	"github.com/keyq/keyq/internal/wal"
)

// gatedStore is a durable log whose Wait blocks until the test opens its gate (a
// slow fsync), or fails with failWait. It remembers the ticket of every put and the
// highest ticket whose Wait has returned, so that a test can tell whether a put was
// acknowledged before it was durable.
type gatedStore struct {
	*wal.Log
	gate     chan struct{} // closed by open
	failWait error         // returned by Wait after the gate, if set

	appends atomic.Int64
	takes   atomic.Int64
	waits   atomic.Int64

	mu      sync.Mutex
	tickets map[uint64]storage.Ticket // of each put, by message ID
	taken   map[uint64]storage.Ticket // of each take, by message ID
	durable storage.Ticket            // the highest ticket whose Wait returned nil
}

func newGatedStore(t *testing.T, dir string) *gatedStore {
	t.Helper()
	l, err := wal.Open(dir, wal.Options{Fsync: wal.FsyncAlways})
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	return &gatedStore{Log: l, gate: make(chan struct{}), tickets: map[uint64]storage.Ticket{},
		taken: map[uint64]storage.Ticket{}}
}

func (g *gatedStore) open() { close(g.gate) }

func (g *gatedStore) Append(rec *storage.Record) (storage.Location, storage.Ticket, error) {
	loc, ticket, err := g.Log.Append(rec)
	if err == nil && rec.Op == storage.OpPut {
		g.mu.Lock()
		g.tickets[rec.ID] = ticket
		g.mu.Unlock()
		g.appends.Add(1)
	}
	if err == nil && rec.Op == storage.OpTake {
		g.mu.Lock()
		g.taken[rec.ID] = ticket
		g.mu.Unlock()
		g.takes.Add(1)
	}
	return loc, ticket, err
}

func (g *gatedStore) Wait(ctx context.Context, t storage.Ticket) error {
	g.waits.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	if g.failWait != nil {
		return g.failWait
	}
	if err := g.Log.Wait(ctx, t); err != nil {
		return err
	}
	g.mu.Lock()
	g.durable = max(g.durable, t)
	g.mu.Unlock()
	return nil
}

// durableBefore reports whether the put of message id was durable already.
func (g *gatedStore) durableBefore(id uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	ticket, ok := g.tickets[id]
	return ok && ticket <= g.durable
}

// takeDurableBefore reports whether the take of message id was durable already.
func (g *gatedStore) takeDurableBefore(id uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	ticket, ok := g.taken[id]
	return ok && ticket <= g.durable
}

// sendPuts pipelines n PUTs of "msg-i" on key, ids 0 to n-1, and flushes.
func sendPuts(t *testing.T, c *testutil.Conn, key string, n int) {
	t.Helper()
	for i := range n {
		body := testutil.KeyBody(t, key, fmt.Appendf(nil, "msg-%d", i))
		if err := c.Send(proto.OpPut, uint32(i), body); err != nil {
			t.Fatalf("send put %d: %v", i, err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// recvAll reads n replies and returns them by request id.
func recvAll(t *testing.T, ch <-chan proto.Frame, n int) map[uint32]proto.Frame {
	t.Helper()
	got := make(map[uint32]proto.Frame, n)
	for range n {
		f := next(t, ch, 10*time.Second)
		if _, dup := got[f.ID]; dup {
			t.Fatalf("two replies to request %d", f.ID)
		}
		got[f.ID] = f
	}
	return got
}

// TestServerPipelinedDurablePutsShareFsync holds the log's Wait (a slow fsync) while
// 64 puts are pipelined on one connection: all 64 are appended before any is
// acknowledged, every acknowledgement comes after its put was durable, and the 64
// share a few fsyncs.
func TestServerPipelinedDurablePutsShareFsync(t *testing.T) {
	const n = 64
	store := newGatedStore(t, t.TempDir())
	s := testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.Store = store
	}))
	c := testutil.Dial(t, s.Addr)

	type ack struct {
		f       proto.Frame
		durable bool
	}
	acks := make(chan ack, n)
	go func() {
		for range n {
			f, err := c.Recv()
			if err != nil {
				return
			}
			body := proto.NewBody(f.Body)
			id, err := body.U64()
			acks <- ack{f, err == nil && store.durableBefore(id)}
		}
	}()

	syncs := store.Stats().Syncs
	sendPuts(t, c, "q", n)
	testutil.WaitFor(t, 10*time.Second, func() bool { return store.appends.Load() == n })
	if len(acks) != 0 {
		t.Fatalf("%d puts acknowledged while the log's Wait was held", len(acks))
	}

	store.open()
	seen := map[uint32]bool{}
	for range n {
		var a ack
		select {
		case a = <-acks:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d puts acknowledged", len(seen), n)
		}
		want(t, a.f, proto.StatusOK, "")
		if !a.durable {
			t.Fatalf("put %d acknowledged before its Wait returned", a.f.ID)
		}
		seen[a.f.ID] = true
	}
	if len(seen) != n {
		t.Fatalf("replies to %d distinct requests, want %d", len(seen), n)
	}
	if got := store.Stats().Syncs - syncs; got >= n {
		t.Fatalf("%d fsyncs for %d pipelined puts, want them shared", got, n)
	}
}

// TestServerDurablePutsBoundedPerConnection holds the log's Wait while more puts than
// may wait are pipelined: the reader stops before the one over the bound, so no put
// after the bound is appended until the log moves; then every put is acknowledged.
func TestServerDurablePutsBoundedPerConnection(t *testing.T) {
	const n = server.MaxDurableWaits + 8
	store := newGatedStore(t, t.TempDir())
	s := testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.Store = store
	}))
	c := testutil.Dial(t, s.Addr)
	ch := replies(c)

	sendPuts(t, c, "q", n)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return store.appends.Load() >= server.MaxDurableWaits
	})
	if got := store.appends.Load(); got != server.MaxDurableWaits {
		t.Fatalf("%d puts appended with the log held, want %d", got, server.MaxDurableWaits)
	}

	store.open()
	for id, f := range recvAll(t, ch, n) {
		if f.Op != proto.OpPut {
			t.Fatalf("reply %s to put %d", f.Op, id)
		}
		want(t, f, proto.StatusOK, "")
	}
	if err := c.Send(proto.OpLen, n, testutil.Key(t, "q")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := u64(t, next(t, ch, 10*time.Second)); got != n {
		t.Fatalf("len = %d, want %d", got, n)
	}
}

// TestServerDurablePutWaitErrorsReachClient fails the log's Wait: pipelined PUT and
// PUTBATCH are answered DiskFull for a full disk and Internal for any other failure.
func TestServerDurablePutWaitErrorsReachClient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want proto.Status
	}{
		{fmt.Errorf("sync segment 1: %w", storage.ErrDiskFull), proto.StatusDiskFull},
		{errors.New("sync segment 1: input/output error"), proto.StatusInternal},
	} {
		t.Run(tc.want.String(), func(t *testing.T) {
			store := newGatedStore(t, t.TempDir())
			store.failWait = tc.err
			store.open()
			s := testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
				cfg.Store = store
			}))
			c := testutil.Dial(t, s.Addr)
			ch := replies(c)

			sendPuts(t, c, "q", 4)
			batch := putBatchBody(t, "q", "a", "b")
			if err := c.Send(proto.OpPutBatch, 4, batch); err != nil {
				t.Fatal(err)
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			for _, f := range recvAll(t, ch, 5) {
				want(t, f, tc.want, "sync segment 1")
			}
		})
	}
}

// putBatchBody is the body of a PUTBATCH of msgs on key.
func putBatchBody(t testing.TB, key string, msgs ...string) []byte {
	t.Helper()
	b, err := proto.AppendKey(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = proto.AppendOptions(b)
	b = proto.AppendU32(b, uint32(len(msgs)))
	for _, m := range msgs {
		b = proto.AppendU32(b, uint32(len(m)))
		b = append(b, m...)
	}
	return b
}

// TestServerPipelinedDurablePutsSurviveRestart pipelines puts on one connection to a
// broker on a write-ahead log, and after every one is acknowledged restarts the
// broker over the same directory: all are there, in the order they were sent.
func TestServerPipelinedDurablePutsSurviveRestart(t *testing.T) {
	const n = 500
	dir := t.TempDir()
	addr, stop := startOnLog(t, dir)
	c := testutil.Dial(t, addr)
	ch := replies(c)
	sendPuts(t, c, "q", n)
	for id, f := range recvAll(t, ch, n) {
		if f.Status() != proto.StatusOK {
			t.Fatalf("put %d: status %v (%q)", id, f.Status(), f.Body)
		}
	}
	c.Close()
	stop()

	addr, _ = startOnLog(t, dir)
	c = testutil.Dial(t, addr)
	for i := range n {
		msg, ok := get(t, c, uint32(i), "q")
		if !ok || string(msg) != fmt.Sprintf("msg-%d", i) {
			t.Fatalf("get %d after restart = %q, %v; want msg-%d", i, msg, ok, i)
		}
	}
}

// startOnLog starts a broker on a write-ahead log in dir (fsync always) and a server
// for it; stop shuts both down and closes the log. t.Cleanup stops them if the test
// did not.
func startOnLog(t *testing.T, dir string) (addr string, stop func()) {
	t.Helper()
	l, err := wal.Open(dir, wal.Options{Fsync: wal.FsyncAlways})
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	b, err := broker.New(broker.Config{Store: l})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	srv, err := server.New(server.Config{Broker: b})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shut down server: %v", err)
			}
			<-served
			if err := b.Close(); err != nil {
				t.Errorf("close broker: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// TestServerDurableRefusalsKeepTheOrderOfReplies: on a durable server the replies to
// PUT, PUTBATCH, ACK and NACK come in the order of their requests among themselves
// (PROTOCOL.md), refused ones included: a refusal waits behind an earlier put whose
// reply waits for the disk, where other requests (a PING) go ahead.
func TestServerDurableRefusalsKeepTheOrderOfReplies(t *testing.T) {
	store := newGatedStore(t, t.TempDir())
	s := testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.Store = store
		cfg.MaxMessageBytes = 100
	}))
	c := testutil.Dial(t, s.Addr)
	delivery := func(id uint64) []byte {
		b, _ := proto.AppendOptions(proto.AppendU64(nil, id))
		return b
	}

	reqs := []struct {
		op     proto.Op
		body   []byte
		status proto.Status
	}{
		{proto.OpPut, testutil.KeyBody(t, "q", []byte("first")), proto.StatusOK},
		{proto.OpPut, testutil.KeyBody(t, "q", make([]byte, 101)), proto.StatusMessageTooLarge},
		{proto.OpAck, delivery(12345), proto.StatusNotFound},
		{proto.OpPut, testutil.KeyBody(t, "q", []byte("second")), proto.StatusOK},
		{proto.OpNack, delivery(999), proto.StatusNotFound},
		{proto.OpPutBatch, testutil.KeyBody(t, "bad\x01key",
			proto.AppendBytes(proto.AppendU32(nil, 1), []byte("x"))), proto.StatusInvalidKey},
	}
	for i, r := range reqs {
		if err := c.Send(r.op, uint32(i+1), r.body); err != nil {
			t.Fatal(err)
		}
	}
	const pingID = 99
	if err := c.Send(proto.OpPing, pingID, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}

	// Once the PING is answered the reader has run every request before it.
	var order []uint32
	replies := map[uint32]proto.Frame{}
	c.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(order) < len(reqs)+1 {
		f, err := c.Recv()
		if err != nil {
			t.Fatalf("after replies to %v: %v", order, err)
		}
		order, replies[f.ID] = append(order, f.ID), f
		if f.ID == pingID {
			store.open()
		}
	}
	if want := []uint32{pingID, 1, 2, 3, 4, 5, 6}; !slices.Equal(order, want) {
		t.Fatalf("replies came in the order %v, want %v", order, want)
	}
	for i, r := range reqs {
		want(t, replies[uint32(i+1)], r.status, "")
	}
}
