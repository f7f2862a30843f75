package client

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

func TestWaitBeforeLeavesRoomForTheReply(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		left, wait, want time.Duration
	}{
		{2 * time.Second, time.Hour, 2*time.Second - 250*time.Millisecond},
		{200 * time.Millisecond, 5 * time.Second, 175 * time.Millisecond},
		{10 * time.Millisecond, time.Second, 5 * time.Millisecond},
		{3 * time.Millisecond, time.Second, 0},
		{-time.Second, time.Second, 0},
		{2 * time.Second, 100 * time.Millisecond, 100 * time.Millisecond},
	} {
		if got := waitBefore(now.Add(c.left), now, c.wait); got != c.want {
			t.Errorf("wait %v with %v left: %v, want %v", c.wait, c.left, got, c.want)
		}
	}
	if got := waitWithin(context.Background(), time.Hour); got != time.Hour {
		t.Errorf("wait of an hour without a deadline: %v", got)
	}
}

// A waiting get asks the server to wait no longer than its ctx allows, less a margin
// for the reply: a wait that outlived its caller would take a message for nobody,
// and lose it (a tester's case: GetWait with a 200 ms ctx and a 5 s wait lost the
// next message put). Get, GetBatch and Reserve all cut their waits.
func TestWaitingCallsEndBeforeTheirDeadline(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	const long = time.Hour
	calls := map[string]func(ctx context.Context){
		"get": func(ctx context.Context) { c.GetWait(ctx, "q", long) },
		"getbatch": func(ctx context.Context) {
			c.GetBatch(ctx, []string{"q"}, 10, long)
		},
		"reserve": func(ctx context.Context) {
			c.Reserve(ctx, []string{"q"}, ReserveOptions{Wait: long})
		},
	}
	for name, call := range calls {
		for _, deadline := range []bool{true, false} {
			ctx, cancel := context.WithCancel(context.Background())
			if deadline {
				ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				call(ctx)
			}()

			req := fc.next(t)
			got := requestWait(t, req)
			switch {
			case deadline && (got >= time.Minute || got < 30*time.Second):
				t.Errorf("%s with a minute left asked the server to wait %v", name, got)
			case !deadline && got != long:
				t.Errorf("%s without a deadline asked to wait %v, not %v", name, got, long)
			}
			fc.reply(t, req.Op, proto.StatusEmpty, req.ID)
			<-done
			cancel()
		}
	}
}

// requestWait returns the wait option of a GET, GETBATCH or RESERVE request.
func requestWait(t *testing.T, req proto.Frame) time.Duration {
	t.Helper()
	body := proto.NewBody(req.Body)
	if req.Op == proto.OpGet {
		if _, err := body.Key(); err != nil {
			t.Fatalf("decode %v: %v", req.Op, err)
		}
	} else if _, err := body.Keys(); err != nil {
		t.Fatalf("decode %v: %v", req.Op, err)
	}
	opts, err := body.Options()
	if err != nil {
		t.Fatalf("decode %v options: %v", req.Op, err)
	}
	for tag, v := range opts.All() {
		if tag == proto.OptGetWait {
			return time.Duration(binary.BigEndian.Uint64(v)) * time.Millisecond
		}
	}
	return 0
}

// A server that shuts down answers every request it read, then sends a ShuttingDown
// frame with id 0: the calls still waiting were never run, and their error says so.
func TestGoodbyeFailsUnansweredCallsAsNotRun(t *testing.T) {
	fs := startFake(t, fakeHello())
	c := dialTest(t, fs.addr())
	fc := fs.accept(t)

	errs := make(chan error, 1)
	go func() {
		_, err := c.Put(context.Background(), "q", []byte("m"))
		errs <- err
	}()
	fc.next(t)
	fc.reply(t, proto.OpNone, proto.StatusShuttingDown, 0,
		[]byte("server is shutting down; requests not answered were not run"))

	err := <-errs
	var e *Error
	if !errors.Is(err, ErrConnectionLost) || !errors.As(err, &e) || e.Code != CodeShuttingDown {
		t.Fatalf("unanswered put at a shutdown: %v; want connection lost with ShuttingDown", err)
	}
	if _, err := c.Len(context.Background(), "q"); !errors.As(err, &e) ||
		e.Code != CodeShuttingDown {
		t.Fatalf("call after the goodbye: %v", err)
	}
}
