package client

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// testTimeout bounds every wait in these tests; none is expected to come near it.
const testTimeout = 20 * time.Second

func dialTest(t testing.TB, addr string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// result is what a call made in the background returned.
type result struct {
	msg Message
	n   int64
	err error
}

// goGet runs Get in the background.
func goGet(ctx context.Context, c *Client, queue string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		msg, err := c.Get(ctx, queue)
		ch <- result{msg: msg, err: err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(testTimeout):
		t.Fatalf("call did not return within %v", testTimeout)
		return result{}
	}
}

func getReplyBody(id uint64, data []byte) []byte {
	return append(proto.AppendU64(nil, id), data...)
}

func TestClientCancelledCallReturnsAndLateReplyIsDropped(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	ctx, cancel := context.WithCancel(context.Background())
	got := goGet(ctx, c, "jobs")
	req := fc.next(t) // the server holds the reply back
	cancel()

	r := wait(t, got)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled get: err = %v, want context.Canceled", r.err)
	}

	// The late reply must not reach the next call, which has its own id.
	lenDone := make(chan result, 1)
	go func() {
		n, err := c.Len(context.Background(), "jobs")
		lenDone <- result{n: n, err: err}
	}()
	lenReq := fc.next(t)
	if lenReq.ID == req.ID {
		t.Fatalf("len reused request id %d of a call still unanswered", req.ID)
	}
	fc.reply(t, proto.OpGet, proto.StatusOK, req.ID, getReplyBody(9, []byte("late")))
	fc.reply(t, proto.OpLen, proto.StatusOK, lenReq.ID, proto.AppendU64(nil, 5))

	lr := wait(t, lenDone)
	if lr.err != nil || lr.n != 5 {
		t.Fatalf("len after a dropped late reply = %d, %v; want 5, nil", lr.n, lr.err)
	}
}

func TestClientCallWithDoneContextSendsNothing(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, "jobs"); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a done context: err = %v, want context.Canceled", err)
	}

	// The next request on the wire is the ping, not the cancelled get.
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

func TestClientMatchesRepliesOutOfOrder(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	queues := []string{"a", "b", "c"}
	results := make(map[string]<-chan result)
	reqs := make(map[string]proto.Frame)
	for _, q := range queues {
		results[q] = goGet(context.Background(), c, q)
		req := fc.next(t)
		body := proto.NewBody(req.Body)
		key, err := body.Key()
		if err != nil {
			t.Fatalf("decode get body: %v", err)
		}
		reqs[key] = req
	}

	// Answer in reverse order, each with its queue's name as the message.
	for i := len(queues) - 1; i >= 0; i-- {
		q := queues[i]
		fc.reply(t, proto.OpGet, proto.StatusOK, reqs[q].ID, getReplyBody(uint64(i), []byte(q)))
	}
	for i, q := range queues {
		r := wait(t, results[q])
		if r.err != nil || string(r.msg.Data) != q || r.msg.ID != uint64(i) {
			t.Fatalf("get %s = %+v, %v; want message %d %q", q, r.msg, r.err, i, q)
		}
	}
}

func TestClientConnectionLossFailsPendingAndLaterCalls(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	pending := goGet(context.Background(), c, "jobs")
	fc.next(t)
	fc.conn.Close()

	r := wait(t, pending)
	if !errors.Is(r.err, ErrConnectionLost) {
		t.Fatalf("pending get: err = %v, want ErrConnectionLost", r.err)
	}
	_, err := c.Put(context.Background(), "jobs", []byte("x"))
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("put on a dead connection: err = %v, want ErrConnectionLost", err)
	}
}

func TestClientFatalFrameFailsEveryPendingCall(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	first := goGet(context.Background(), c, "a")
	fc.next(t)
	second := goGet(context.Background(), c, "b")
	fc.next(t)
	fc.reply(t, proto.OpNone, proto.StatusTooManyConnections, 0, []byte("too many connections"))

	for _, ch := range []<-chan result{first, second} {
		r := wait(t, ch)
		var e *Error
		if !errors.Is(r.err, ErrConnectionLost) || !errors.As(r.err, &e) {
			t.Fatalf("get after a fatal frame: err = %v, want ErrConnectionLost and *Error", r.err)
		}
		if e.Code != CodeTooManyConnections || !e.Fatal {
			t.Fatalf("error = %+v, want fatal TooManyConnections", e)
		}
	}
}

func TestClientFatalReplyEndsConnection(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	got := goGet(context.Background(), c, "jobs")
	req := fc.next(t)
	fc.reply(t, proto.OpGet, proto.StatusBadFrame, req.ID, []byte("key runs past the end"))

	r := wait(t, got)
	var e *Error
	if !errors.As(r.err, &e) || e.Code != CodeBadFrame || !e.Fatal || e.Op != "get" {
		t.Fatalf("get answered BadFrame: err = %#v, want fatal *Error BadFrame", r.err)
	}
	if err := c.Ping(context.Background()); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("ping after a fatal reply: err = %v, want ErrConnectionLost", err)
	}
}

func TestDialRefusesAPeerThatIsNotKeyq(t *testing.T) {
	fs := startFake(t, []byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	_, err := Dial(ctx, fs.addr())
	if !errors.Is(err, proto.ErrBadMagic) {
		t.Fatalf("dial a non-keyq peer: err = %v, want bad magic", err)
	}
}

func TestDialGivesUpWhenContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept() // accept, then never answer the hello
		if err == nil {
			defer conn.Close()
			buf := make([]byte, 64)
			for {
				if _, err := conn.Read(buf); err != nil {
					return
				}
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, ln.Addr().String())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial a silent server: err = %v, want context.DeadlineExceeded", err)
	}
}

func TestClientRefusesBeforeSending(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)
	ctx := context.Background()

	_, err := c.Put(ctx, "jobs", make([]byte, c.MaxMessageBytes()+1))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeMessageTooLarge || e.Fatal {
		t.Fatalf("put over the limit: err = %v, want MessageTooLarge", err)
	}
	long := string(bytes.Repeat([]byte("k"), 256))
	if _, err := c.Get(ctx, long); !errors.Is(err, &Error{Code: CodeInvalidKey}) {
		t.Fatalf("get with a 256-byte key: err = %v, want InvalidKey", err)
	}

	// Neither reached the wire: the first request the server sees is this ping.
	done := make(chan error, 1)
	go func() { done <- c.Ping(ctx) }()
	if req := fc.next(t); req.Op != proto.OpPing {
		t.Fatalf("first request on the wire is %s, want PING", req.Op)
	} else {
		fc.reply(t, proto.OpPing, proto.StatusOK, req.ID, req.Body)
	}
	if err := <-done; err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func TestCodesMatchProtocol(t *testing.T) {
	for code, st := range map[Code]proto.Status{
		CodeBadFrame:           proto.StatusBadFrame,
		CodeFrameTooLarge:      proto.StatusFrameTooLarge,
		CodeUnknownOp:          proto.StatusUnknownOp,
		CodeBadRequest:         proto.StatusBadRequest,
		CodeInvalidKey:         proto.StatusInvalidKey,
		CodeMessageTooLarge:    proto.StatusMessageTooLarge,
		CodeShuttingDown:       proto.StatusShuttingDown,
		CodeInternal:           proto.StatusInternal,
		CodeDiskFull:           proto.StatusDiskFull,
		CodeQueueFull:          proto.StatusQueueFull,
		CodeNotFound:           proto.StatusNotFound,
		CodeTooManyConnections: proto.StatusTooManyConnections,
		CodeServerFull:         proto.StatusServerFull,
	} {
		if uint8(code) != uint8(st) || code.String() != st.String() {
			t.Errorf("code %d (%s) differs from status %d (%s)", code, code, st, st)
		}
		if (code == CodeBadFrame || code == CodeFrameTooLarge ||
			code == CodeTooManyConnections) != st.Fatal() {
			t.Errorf("code %s: fatal mark differs from the protocol's", code)
		}
	}
}
