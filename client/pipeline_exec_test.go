package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/testutil"
)

func TestPipelineResultsInOrderWithMixedErrors(t *testing.T) {
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx := context.Background()

	p := c.Pipeline()
	var puts []*Result[uint64]
	for i := range 10 {
		puts = append(puts, p.Put("jobs", fmt.Appendf(nil, "job %d", i)))
	}
	badKey := p.Put("bad\nkey", []byte("x"))                // refused by the server
	longKey := p.Get(strings.Repeat("k", 256))              // refused before sending
	tooLarge := p.Put("jobs", make([]byte, c.maxMessage+1)) // refused before sending
	unknown := p.Ack(1 << 40)                               // no such delivery
	length := p.Len("jobs")
	if p.Queued() != 13 {
		t.Fatalf("queued = %d, want 13 (two were refused before sending)", p.Queued())
	}
	if err := length.Err(); !errors.Is(err, ErrNotExecuted) {
		t.Fatalf("result before Exec: err = %v, want ErrNotExecuted", err)
	}
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("exec: %v", err)
	}
	if p.Queued() != 0 {
		t.Fatalf("queued after Exec = %d, want 0", p.Queued())
	}

	for i := 1; i < len(puts); i++ {
		prev, _ := puts[i-1].Result()
		id, err := puts[i].Result()
		if err != nil || id <= prev {
			t.Fatalf("put %d = id %d, %v; want an id above %d", i, id, err, prev)
		}
	}
	for r, code := range map[interface{ Err() error }]Code{badKey: CodeInvalidKey,
		longKey: CodeInvalidKey, tooLarge: CodeMessageTooLarge, unknown: CodeNotFound} {
		if !isCode(r.Err(), code) {
			t.Errorf("err = %v, want %s", r.Err(), code)
		}
	}
	if n, err := length.Result(); err != nil || n != 10 {
		t.Fatalf("len = %d, %v; want 10", n, err)
	}

	// The next round reuses the pipeline: gets come back in the order put, then
	// ErrEmpty for the one too many.
	p.Reset()
	var gets []*Result[Message]
	for range 11 {
		gets = append(gets, p.Get("jobs"))
	}
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("exec: %v", err)
	}
	for i, g := range gets[:10] {
		m, err := g.Result()
		if err != nil || string(m.Data) != fmt.Sprintf("job %d", i) || m.Queue != "jobs" {
			t.Fatalf("get %d = %q from %q, %v; want job %d", i, m.Data, m.Queue, err, i)
		}
	}
	if err := gets[10].Err(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("get of an empty queue: err = %v, want ErrEmpty", err)
	}
}

func TestPipelineReserveAckBatches(t *testing.T) {
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx := context.Background()

	p := c.Pipeline()
	batch := p.PutBatch("work", [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	reserve := p.Reserve([]string{"work"}, ReserveOptions{Max: 2})
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("exec: %v", err)
	}
	if ids, err := batch.Result(); err != nil || len(ids) != 3 {
		t.Fatalf("put batch = %v, %v; want 3 ids", ids, err)
	}
	ds, err := reserve.Result()
	if err != nil || len(ds) != 2 || string(ds[0].Data) != "a" || string(ds[1].Data) != "b" {
		t.Fatalf("reserve = %+v, %v; want a and b", ds, err)
	}

	ack := p.Ack(ds[0].DeliveryID)
	touch := p.Touch(ds[1].DeliveryID, 0)
	nack := p.Nack(ds[1].DeliveryID, 0)
	rest := p.GetBatch([]string{"work"}, 10, 0)
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("exec: %v", err)
	}
	if err := ack.Err(); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if d, err := touch.Result(); err != nil || d.IsZero() {
		t.Fatalf("touch = %v, %v", d, err)
	}
	if err := nack.Err(); err != nil {
		t.Fatalf("nack: %v", err)
	}
	// The nacked b went back to the head, before c.
	if ms, err := rest.Result(); err != nil || len(ms) != 2 || string(ms[0].Data) != "b" ||
		string(ms[1].Data) != "c" {
		t.Fatalf("get batch = %+v, %v; want b and c", ms, err)
	}
}

// TestPipelineWaitingGetAnsweredOutOfOrder has the server answer a pipeline's
// requests in reverse, with a plain call's reply in between.
func TestPipelineWaitingGetAnsweredOutOfOrder(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	p := c.Pipeline()
	get := p.Get("jobs", Wait(testTimeout))
	length := p.Len("jobs")
	done := make(chan error, 1)
	go func() { done <- p.Exec(context.Background()) }()
	getReq, lenReq := fc.next(t), fc.next(t)
	if getReq.Op != proto.OpGet || lenReq.Op != proto.OpLen || getReq.ID == lenReq.ID {
		t.Fatalf("requests %s %d, %s %d; want GET and LEN with distinct ids",
			getReq.Op, getReq.ID, lenReq.Op, lenReq.ID)
	}

	plain := make(chan result, 1)
	go func() {
		n, err := c.Len(context.Background(), "other")
		plain <- result{n: n, err: err}
	}()
	plainReq := fc.next(t)
	fc.reply(t, proto.OpLen, proto.StatusOK, lenReq.ID, proto.AppendU64(nil, 7))
	fc.reply(t, proto.OpLen, proto.StatusOK, plainReq.ID, proto.AppendU64(nil, 3))
	fc.reply(t, proto.OpGet, proto.StatusOK, getReq.ID, getReplyBody(5, []byte("late")))

	if err := <-done; err != nil {
		t.Fatalf("exec: %v", err)
	}
	if m, err := get.Result(); err != nil || string(m.Data) != "late" || m.ID != 5 {
		t.Fatalf("get = %+v, %v; want message 5 late", m, err)
	}
	if n, err := length.Result(); err != nil || n != 7 {
		t.Fatalf("len = %d, %v; want 7", n, err)
	}
	if r := wait(t, plain); r.err != nil || r.n != 3 {
		t.Fatalf("plain len = %d, %v; want 3", r.n, r.err)
	}
}

func TestPipelineCancelMidExec(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	ctx, cancel := context.WithCancel(context.Background())
	p := c.Pipeline()
	first := p.Len("a")
	second := p.Get("b", Wait(testTimeout))
	done := make(chan error, 1)
	go func() { done <- p.Exec(ctx) }()
	firstReq, secondReq := fc.next(t), fc.next(t)
	fc.reply(t, proto.OpLen, proto.StatusOK, firstReq.ID, proto.AppendU64(nil, 4))
	testutil.WaitFor(t, testTimeout, func() bool { return pendingCalls(c) == 1 })
	cancel()

	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("exec: err = %v, want context.Canceled", err)
	}
	if n, err := first.Result(); err != nil || n != 4 {
		t.Fatalf("answered len = %d, %v; want 4", n, err)
	}
	if err := second.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("unanswered get: err = %v, want context.Canceled", err)
	}

	// The late reply is dropped; the next call gets its own.
	got := make(chan result, 1)
	go func() {
		n, err := c.Len(context.Background(), "c")
		got <- result{n: n, err: err}
	}()
	lenReq := fc.next(t)
	fc.reply(t, proto.OpGet, proto.StatusOK, secondReq.ID, getReplyBody(1, []byte("lost")))
	fc.reply(t, proto.OpLen, proto.StatusOK, lenReq.ID, proto.AppendU64(nil, 9))
	if r := wait(t, got); r.err != nil || r.n != 9 {
		t.Fatalf("len after the cancelled round = %d, %v; want 9", r.n, r.err)
	}
}

func TestPipelineConnectionLostMidExec(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	p := c.Pipeline()
	first := p.Put("a", []byte("x"))
	second := p.Put("a", []byte("y"))
	done := make(chan error, 1)
	go func() { done <- p.Exec(context.Background()) }()
	firstReq := fc.next(t)
	fc.next(t)
	fc.reply(t, proto.OpPut, proto.StatusOK, firstReq.ID, proto.AppendU64(nil, 1))
	testutil.WaitFor(t, testTimeout, func() bool { return pendingCalls(c) == 1 })
	fc.conn.Close()

	if err := <-done; !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("exec: err = %v, want ErrConnectionLost", err)
	}
	if id, err := first.Result(); err != nil || id != 1 {
		t.Fatalf("answered put = %d, %v; want 1", id, err)
	}
	if err := second.Err(); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("unanswered put: err = %v, want ErrConnectionLost", err)
	}
	p.Put("a", nil)
	if err := p.Exec(context.Background()); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("exec on a dead connection: err = %v, want ErrConnectionLost", err)
	}
}

func TestPipelineFatalReplyFailsTheRest(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	p := c.Pipeline()
	first := p.Get("a")
	second := p.Get("b")
	done := make(chan error, 1)
	go func() { done <- p.Exec(context.Background()) }()
	req := fc.next(t)
	fc.next(t)
	fc.reply(t, proto.OpGet, proto.StatusBadFrame, req.ID, []byte("key runs past the end"))

	var e *Error
	if err := <-done; !errors.As(err, &e) || e.Code != CodeBadFrame || !e.Fatal {
		t.Fatalf("exec: err = %v, want the fatal BadFrame", err)
	}
	if err := first.Err(); !isCode(err, CodeBadFrame) {
		t.Fatalf("first: err = %v, want BadFrame", err)
	}
	if err := second.Err(); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("second: err = %v, want ErrConnectionLost", err)
	}
}

func TestPipelineWithDoneContextSendsNothing(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := c.Pipeline()
	get := p.Get("jobs")
	if err := p.Exec(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("exec with a done context: err = %v, want context.Canceled", err)
	}
	if err := get.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("get: err = %v, want context.Canceled", err)
	}
	pingFirst(t, c, fc)
}

// TestClientAbandonedCallIsNeverSent cancels a call whose frame waits in the write
// buffer behind a busy writer: it must leave the buffer, not reach the server.
func TestClientAbandonedCallIsNeverSent(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	c.mu.Lock()
	c.writing = true // as if a write were in progress: nobody wakes the writer
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	got := goGet(ctx, c, "jobs")
	p := c.Pipeline()
	p.Get("jobs")
	p.Len("jobs")
	execDone := make(chan error, 1)
	go func() { execDone <- p.Exec(ctx) }()
	testutil.WaitFor(t, testTimeout, func() bool { return pendingCalls(c) == 3 })
	cancel()
	if r := wait(t, got); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("get: err = %v, want context.Canceled", r.err)
	}
	if err := <-execDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("exec: err = %v, want context.Canceled", err)
	}

	c.mu.Lock()
	left, unsent := len(c.wbuf), len(c.unsent)
	c.writing = false
	c.mu.Unlock()
	if left != 0 || unsent != 0 {
		t.Fatalf("%d bytes of %d abandoned calls left in the write buffer", left, unsent)
	}
	pingFirst(t, c, fc)
}

func TestPipelineMixesWithConcurrentPlainCalls(t *testing.T) {
	const (
		workers = 4
		rounds  = 50
		depth   = 16
	)
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		queue := fmt.Sprintf("q%d", w)
		wg.Go(func() { errs <- pipelineRounds(ctx, c, queue, rounds, depth) })
		wg.Go(func() { errs <- plainRounds(ctx, c, queue+"-plain", rounds) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// pipelineRounds puts depth numbered messages to queue per round and takes them
// back in the next round, checking that each comes back once and in order.
func pipelineRounds(ctx context.Context, c *Client, queue string, rounds, depth int) error {
	p := c.Pipeline()
	next := 0 // the number of the next message to take
	for round := range rounds {
		p.Reset()
		for i := range depth {
			p.Put(queue, fmt.Appendf(nil, "%d", round*depth+i))
		}
		var gets []*Result[Message]
		for range depth {
			gets = append(gets, p.Get(queue))
		}
		length := p.Len(queue)
		if err := p.Exec(ctx); err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		for _, g := range gets {
			m, err := g.Result()
			if err != nil {
				return fmt.Errorf("round %d: get: %w", round, err)
			}
			if string(m.Data) != fmt.Sprint(next) {
				return fmt.Errorf("round %d: got %q, want %d", round, m.Data, next)
			}
			next++
		}
		if n, err := length.Result(); err != nil || n != 0 {
			return fmt.Errorf("round %d: len = %d, %v; want 0", round, n, err)
		}
	}
	return nil
}

// plainRounds puts and takes one message at a time with plain calls.
func plainRounds(ctx context.Context, c *Client, queue string, rounds int) error {
	for i := range rounds {
		data := fmt.Appendf(nil, "plain %d", i)
		if _, err := c.Put(ctx, queue, data); err != nil {
			return fmt.Errorf("put: %w", err)
		}
		m, err := c.Get(ctx, queue)
		if err != nil || string(m.Data) != string(data) {
			return fmt.Errorf("get = %q, %v; want %q", m.Data, err, data)
		}
	}
	return nil
}

// pendingCalls returns the number of calls waiting for a reply.
func pendingCalls(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending.n
}

// pingFirst checks that the next request the fake server reads is a ping.
func pingFirst(t *testing.T, c *Client, fc *fakeConn) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Ping(context.Background()) }()
	req := fc.next(t)
	if req.Op != proto.OpPing {
		t.Fatalf("first request on the wire is %s, want PING", req.Op)
	}
	fc.reply(t, proto.OpPing, proto.StatusOK, req.ID, req.Body)
	if err := <-done; err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// TestClientCallsEndWithContextWhenServerStopsReading: a server that stops reading
// fills the socket's buffers; a call that then writes its own request must still
// return when its context ends, with a deadline or with a cancel, and never hang.
func TestClientCallsEndWithContextWhenServerStopsReading(t *testing.T) {
	for _, bounded := range []bool{true, false} {
		fs := startFake(t, fakeHello())
		c := dialTest(t, fs.addr())
		fc := fs.accept(t) // handshake done; it reads nothing more
		// Small socket buffers, so that the first request of 12 KiB already fills
		// them and its write blocks.
		fc.conn.(*net.TCPConn).SetReadBuffer(4 << 10)
		c.conn.(*net.TCPConn).SetWriteBuffer(4 << 10)

		payload := make([]byte, 12<<10) // under directWriteMax: written by the caller
		for i := range 5 {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			if !bounded {
				ctx, cancel = context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			done := make(chan error, 1)
			go func() { _, err := c.Put(ctx, "jobs", payload); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					t.Fatalf("put %d: err = %v, want the context's", i, err)
				}
			case <-time.After(testTimeout):
				t.Fatalf("put %d (deadline %v) still blocked after %v: the server stopped "+
					"reading and the call ignores its context", i, bounded, testTimeout)
			}
			cancel()
		}
	}
}
