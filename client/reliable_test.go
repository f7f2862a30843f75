package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/testutil"
)

func isCode(err error, code Code) bool { return errors.Is(err, &Error{Code: code}) }

func TestClientGetWait(t *testing.T) {
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx := context.Background()

	// C05: a wait under a millisecond is still a wait, and answers Empty.
	for _, w := range []time.Duration{time.Microsecond, time.Millisecond} {
		if _, err := c.GetWait(ctx, "q", w); !errors.Is(err, ErrEmpty) {
			t.Fatalf("GetWait(%v) = %v, want ErrEmpty", w, err)
		}
	}
	if _, err := c.GetWait(ctx, "q", -time.Second); !isCode(err, CodeBadRequest) {
		t.Fatalf("negative wait: %v", err)
	}

	got := make(chan Message, 1)
	go func() {
		m, err := c.Get(ctx, "q", Wait(30*time.Second))
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	testutil.WaitFor(t, 5*time.Second, func() bool { return srv.Broker.Stats(0).Waiting == 1 })
	// The same client goes on while its Get waits.
	if _, err := c.Put(ctx, "q", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; string(m.Data) != "x" || m.Queue != "q" {
		t.Fatalf("got %+v", m)
	}
}

func TestClientPutDelayAndTTL(t *testing.T) {
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx := context.Background()

	start := time.Now()
	if _, err := c.Put(ctx, "later", []byte("d"), Delay(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "later"); !errors.Is(err, ErrEmpty) {
		t.Fatalf("a delayed message was delivered at once: %v", err)
	}
	m, err := c.GetWait(ctx, "later", 10*time.Second)
	if err != nil || string(m.Data) != "d" {
		t.Fatalf("GetWait = %+v, %v", m, err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("a message delayed 300ms was delivered after %v", took)
	}

	// Expired before it is due: never delivered, and counted.
	_, err = c.Put(ctx, "gone", []byte("t"), Delay(200*time.Millisecond), TTL(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetWait(ctx, "gone", 600*time.Millisecond); !errors.Is(err, ErrEmpty) {
		t.Fatalf("an expired message: %v", err)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		info, err := c.QueueInfo(ctx, "gone")
		return err == nil && info.Expired == 1
	})
	if _, err := c.Put(ctx, "q", nil, TTL(-1)); !isCode(err, CodeBadRequest) {
		t.Fatalf("negative ttl: %v", err)
	}
}

func TestClientReserveAckNackTouch(t *testing.T) {
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx := context.Background()
	if _, err := c.Put(ctx, "jobs", []byte("job")); err != nil {
		t.Fatal(err)
	}

	ds, err := c.Reserve(ctx, []string{"jobs"}, ReserveOptions{Lease: time.Minute})
	if err != nil || len(ds) != 1 {
		t.Fatalf("reserve = %+v, %v", ds, err)
	}
	d := ds[0]
	if d.Count != 1 || string(d.Data) != "job" || d.Queue != "jobs" ||
		time.Until(d.Deadline) < 30*time.Second {
		t.Fatalf("delivery = %+v", d)
	}
	if _, err := c.Reserve(ctx, []string{"jobs"}, ReserveOptions{}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("a leased message was delivered twice: %v", err)
	}
	deadline, err := c.Touch(ctx, d.DeliveryID, time.Hour)
	if err != nil || time.Until(deadline) < 50*time.Minute {
		t.Fatalf("touch = %v, %v", deadline, err)
	}

	if err := c.Nack(ctx, d.DeliveryID, 0); err != nil {
		t.Fatal(err)
	}
	ds, err = c.Reserve(ctx, []string{"jobs"}, ReserveOptions{})
	if err != nil || ds[0].Count != 2 || ds[0].ID != d.ID || ds[0].DeliveryID == d.DeliveryID {
		t.Fatalf("after nack: %+v, %v", ds, err)
	}
	if err := c.Ack(ctx, d.DeliveryID); !isCode(err, CodeNotFound) {
		t.Fatalf("ack of an ended delivery: %v", err)
	}
	if err := c.Ack(ctx, ds[0].DeliveryID); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(ctx, ds[0].DeliveryID); !isCode(err, CodeNotFound) {
		t.Fatalf("second ack: %v", err)
	}
	if _, err := c.Touch(ctx, ds[0].DeliveryID, 0); !isCode(err, CodeNotFound) {
		t.Fatalf("touch after ack: %v", err)
	}
	info, err := c.QueueInfo(ctx, "jobs")
	if err != nil || info.Messages != 0 || info.Inflight != 0 {
		t.Fatalf("queue after ack: %+v, %v", info, err)
	}
}

// dropConn records the connection a client dials, so that a test can drop it
// without a word, as a killed process would.
type dropConn struct {
	mu sync.Mutex
	nc net.Conn
}

func (d *dropConn) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, addr)
	d.mu.Lock()
	d.nc = nc
	d.mu.Unlock()
	return nc, err
}

func (d *dropConn) drop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nc.Close()
}

// TestClientKilledConsumerLeasesComeBackOnce: a consumer holding bound leases loses
// its connection; each of its messages is delivered again exactly once, at once
// (the lease is an hour long).
func TestClientKilledConsumerLeasesComeBackOnce(t *testing.T) {
	srv := testutil.StartServer(t)
	ctx := context.Background()
	producer := dialTest(t, srv.Addr)
	const n = 10
	for i := range n {
		if _, err := producer.Put(ctx, "work", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	var dc dropConn
	victim, err := Dial(ctx, srv.Addr, WithDialFunc(dc.dial))
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	held, err := victim.Reserve(ctx, []string{"work"}, ReserveOptions{Max: 6, Lease: time.Hour})
	if err != nil || len(held) != 6 {
		t.Fatalf("reserve = %d, %v", len(held), err)
	}

	other := dialTest(t, srv.Addr)
	seen := map[string]int{}
	first, err := other.Reserve(ctx, []string{"work"}, ReserveOptions{Max: n, Lease: time.Hour})
	if err != nil || len(first) != n-6 {
		t.Fatalf("the rest = %d, %v", len(first), err)
	}
	for _, d := range first {
		seen[string(d.Data)]++
	}
	dc.drop()

	for len(seen) < n {
		ds, err := other.Reserve(ctx, []string{"work"},
			ReserveOptions{Max: n, Wait: 10 * time.Second, Lease: time.Hour})
		if err != nil {
			t.Fatalf("after %d of %d: %v", len(seen), n, err)
		}
		for _, d := range ds {
			seen[string(d.Data)]++
			if d.Count != 2 {
				t.Errorf("%s redelivered with count %d, want 2", d.Data, d.Count)
			}
			if err := other.Ack(ctx, d.DeliveryID); err != nil {
				t.Fatal(err)
			}
		}
	}
	for m, k := range seen {
		if k != 1 {
			t.Fatalf("%s delivered %d times after the drop", m, k)
		}
	}
	if _, err := other.Reserve(ctx, []string{"work"},
		ReserveOptions{Wait: 200 * time.Millisecond}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("a further delivery: %v", err)
	}
}

func TestClientDetachedLeaseOutlivesConnection(t *testing.T) {
	srv := testutil.StartServer(t)
	ctx := context.Background()
	c := dialTest(t, srv.Addr)
	if _, err := c.Put(ctx, "q", []byte("x")); err != nil {
		t.Fatal(err)
	}
	ds, err := c.Reserve(ctx, []string{"q"}, ReserveOptions{Detached: true, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	c2 := dialTest(t, srv.Addr)
	testutil.WaitFor(t, 5*time.Second, func() bool { return srv.Server.Connections() == 1 })
	if _, err := c2.Get(ctx, "q"); !errors.Is(err, ErrEmpty) {
		t.Fatalf("a detached lease came back when its connection closed: %v", err)
	}
	if err := c2.Ack(ctx, ds[0].DeliveryID); err != nil {
		t.Fatalf("ack from another connection: %v", err)
	}
}

func TestClientBatches(t *testing.T) {
	srv := testutil.StartServer(t)
	ctx := context.Background()
	c := dialTest(t, srv.Addr)

	msgs := [][]byte{[]byte("a"), {}, []byte("c")}
	ids, err := c.PutBatch(ctx, "b", msgs)
	if err != nil || len(ids) != 3 || !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("put batch = %v, %v", ids, err)
	}
	if _, err := c.PutBatch(ctx, "b", nil); !isCode(err, CodeBadRequest) {
		t.Fatalf("empty batch: %v", err)
	}
	if _, err := c.Put(ctx, "a2", []byte("z")); err != nil {
		t.Fatal(err)
	}

	// The first non-empty queue in the order given.
	got, err := c.GetBatch(ctx, []string{"none", "b", "a2"}, 10, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("get batch = %+v, %v", got, err)
	}
	for i, m := range got {
		if m.Queue != "b" || m.ID != ids[i] || !bytes.Equal(m.Data, msgs[i]) {
			t.Fatalf("message %d = %+v", i, m)
		}
	}
	// The messages of one reply share its buffer: appending to one is the caller's
	// business and must not write over the next.
	room := cap(got[1].Data) - len(got[1].Data)
	_ = append(got[1].Data, bytes.Repeat([]byte("X"), room)...)
	if string(got[2].Data) != "c" {
		t.Fatalf("appending to message 1 changed message 2 to %q", got[2].Data)
	}
	got, err = c.GetBatch(ctx, []string{"b", "a2"}, 0, 0)
	if err != nil || len(got) != 1 || got[0].Queue != "a2" {
		t.Fatalf("get batch = %+v, %v", got, err)
	}
	if _, err := c.GetBatch(ctx, []string{"b"}, 1001, 0); !isCode(err, CodeBadRequest) {
		t.Fatalf("batch of 1001: %v", err)
	}
	if _, err := c.GetBatch(ctx, nil, 1, 0); !isCode(err, CodeBadRequest) {
		t.Fatalf("no queue: %v", err)
	}
}

// TestClientBatchPutWakesWaitersC02: three waiters, one batch put of three: each
// waiter gets one message, in the order they began to wait.
func TestClientBatchPutWakesWaitersC02(t *testing.T) {
	srv := testutil.StartServer(t)
	ctx := context.Background()
	got := make([]chan string, 3)
	for i := range got {
		got[i] = make(chan string, 1)
		w := dialTest(t, srv.Addr)
		go func() {
			m, err := w.GetWait(ctx, "k", 30*time.Second)
			if err != nil {
				t.Error(err)
			}
			got[i] <- string(m.Data)
		}()
		testutil.WaitFor(t, 5*time.Second, func() bool {
			return srv.Broker.Stats(0).Waiting == int64(i+1)
		})
	}
	p := dialTest(t, srv.Addr)
	if _, err := p.PutBatch(ctx, "k", [][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"a", "b", "c"} {
		if m := <-got[i]; m != want {
			t.Fatalf("waiter %d got %q, want %q", i+1, m, want)
		}
	}
}

func TestClientQueueSettings(t *testing.T) {
	srv := testutil.StartServer(t)
	ctx := context.Background()
	c := dialTest(t, srv.Addr)

	info, err := c.SetQueue(ctx, "s", SetMaxLength(2), SetMaxDeliveries(1),
		SetDefaultLease(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := QueueSettings{MaxLength: 2, MaxDeliveries: 1, DefaultLease: time.Minute,
		DeadLetter: "s.dlq"}
	if info.Settings != want {
		t.Fatalf("settings = %+v, want %+v", info.Settings, want)
	}
	// Only the settings named change.
	info, err = c.SetQueue(ctx, "s", SetDefaultTTL(time.Hour))
	if err != nil || info.Settings.MaxLength != 2 || info.Settings.DefaultTTL != time.Hour {
		t.Fatalf("after a second set: %+v, %v", info, err)
	}

	for i := range 2 {
		if _, err := c.Put(ctx, "s", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Put(ctx, "s", []byte("over")); !isCode(err, CodeQueueFull) {
		t.Fatalf("put into a full queue: %v", err)
	}

	// One delivery allowed: a nacked message goes to the dead-letter queue.
	ds, err := c.Reserve(ctx, []string{"s"}, ReserveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Nack(ctx, ds[0].DeliveryID, 0); err != nil {
		t.Fatal(err)
	}
	dead, err := c.GetBatch(ctx, []string{"s.dlq"}, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	dl := dead[0].DeadLetter
	if dl == nil || dl.Queue != "s" || dl.ID != ds[0].ID || dl.Reason != "max-deliveries" ||
		dl.Count != 1 || !bytes.Equal(dead[0].Data, ds[0].Data) {
		t.Fatalf("dead letter = %+v %+v", dead[0], dl)
	}
	info, err = c.QueueInfo(ctx, "s")
	if err != nil || info.DeadLettered != 1 || info.Messages != 1 {
		t.Fatalf("info = %+v, %v", info, err)
	}

	if _, err := c.SetQueue(ctx, "s"); err != nil {
		t.Fatalf("a set with no change: %v", err)
	}
	if _, err := c.SetQueue(ctx, "s", SetMaxLength(-1)); !isCode(err, CodeBadRequest) {
		t.Fatalf("negative max length: %v", err)
	}
	if _, err := c.SetQueue(ctx, "s", SetDeadLetter("bad\n")); !isCode(err, CodeInvalidKey) {
		t.Fatalf("bad dead-letter name: %v", err)
	}
}
