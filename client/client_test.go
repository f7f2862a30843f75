package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/testutil"
)

func TestClientPutGetLenPingStats(t *testing.T) {
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx := context.Background()

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if c.MaxMessageBytes() != broker.DefaultMaxMessageBytes {
		t.Fatalf("max message = %d, want %d", c.MaxMessageBytes(), broker.DefaultMaxMessageBytes)
	}

	payloads := [][]byte{[]byte("first"), {}, make([]byte, c.MaxMessageBytes())}
	var ids []uint64
	for _, p := range payloads {
		id, err := c.Put(ctx, "images", p)
		if err != nil {
			t.Fatalf("put %d bytes: %v", len(p), err)
		}
		ids = append(ids, id)
	}
	if n, err := c.Len(ctx, "images"); err != nil || n != 3 {
		t.Fatalf("len = %d, %v; want 3", n, err)
	}

	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if s.Puts != 3 || s.Messages != 3 || s.Queues != 1 || len(s.QueueStats) != 1 ||
		s.QueueStats[0].Name != "images" || s.QueueStats[0].Messages != 3 ||
		s.Connections != 1 || s.Version == "" {
		t.Fatalf("stats = %+v", s)
	}

	for i, p := range payloads {
		msg, err := c.Get(ctx, "images")
		if err != nil {
			t.Fatalf("get #%d: %v", i, err)
		}
		if msg.ID != ids[i] || msg.Queue != "images" || string(msg.Data) != string(p) {
			t.Fatalf("get #%d = id %d, %d bytes; want id %d, %d bytes", i, msg.ID,
				len(msg.Data), ids[i], len(p))
		}
		if msg.Data == nil {
			t.Fatalf("get #%d: zero-byte message has nil Data", i)
		}
	}
	if _, err := c.Get(ctx, "images"); !errors.Is(err, ErrEmpty) {
		t.Fatalf("get of a drained queue: err = %v, want ErrEmpty", err)
	}
	if n, err := c.Len(ctx, "never-used"); err != nil || n != 0 {
		t.Fatalf("len of an unknown queue = %d, %v; want 0", n, err)
	}
}

// TestClientManyGoroutinesShareOneConnection has producers and consumers pipeline
// over one connection and checks that every message arrives exactly once, and that
// each consumer sees each producer's messages to a queue in the order put.
func TestClientManyGoroutinesShareOneConnection(t *testing.T) {
	const (
		producers = 16
		perEach   = 300
		queues    = 4
		consumers = 16
	)
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, producers+consumers)
	for p := range producers {
		wg.Go(func() {
			queue := fmt.Sprintf("q%d", p%queues)
			for i := range perEach {
				if _, err := c.Put(ctx, queue, fmt.Appendf(nil, "%d:%d", p, i)); err != nil {
					errs <- fmt.Errorf("producer %d put %d: %w", p, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	seen := make([]map[string]bool, consumers)
	cerrs := make(chan error, consumers)
	for g := range consumers {
		seen[g] = make(map[string]bool)
		wg.Go(func() { cerrs <- consume(ctx, c, queues, seen[g]) })
	}
	wg.Wait()
	close(cerrs)
	for err := range cerrs {
		if err != nil {
			t.Fatal(err)
		}
	}

	all := make(map[string]bool)
	for _, s := range seen {
		for m := range s {
			if all[m] {
				t.Fatalf("message %s delivered twice", m)
			}
			all[m] = true
		}
	}
	if len(all) != producers*perEach {
		t.Fatalf("%d distinct messages delivered, want %d", len(all), producers*perEach)
	}
	s, err := c.Stats(ctx)
	if err != nil || s.Puts != producers*perEach || s.Gets != producers*perEach ||
		s.Messages != 0 {
		t.Fatalf("stats after the drain = %+v, %v", s, err)
	}
}

// consume takes from every queue until all are empty, recording each message in
// seen, and checks that each producer's messages come in increasing order.
func consume(ctx context.Context, c *Client, queues int, seen map[string]bool) error {
	last := make(map[string]int) // producer -> last index seen
	for q := 0; q < queues; {
		msg, err := c.Get(ctx, fmt.Sprintf("q%d", q))
		if errors.Is(err, ErrEmpty) {
			q++
			continue
		}
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}

		var producer, i int
		if _, err := fmt.Sscanf(string(msg.Data), "%d:%d", &producer, &i); err != nil {
			return fmt.Errorf("message %q: %w", msg.Data, err)
		}
		key := fmt.Sprint(producer)
		if prev, ok := last[key]; ok && i <= prev {
			return fmt.Errorf("producer %d: message %d after %d", producer, i, prev)
		}
		last[key] = i
		seen[string(msg.Data)] = true
	}
	return nil
}

// TestClientCancellationsNeverCrossReplies cancels calls at random while others go
// on, and checks that every call that succeeds got its own answer.
func TestClientCancellationsNeverCrossReplies(t *testing.T) {
	const (
		workers = 12
		calls   = 300
	)
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx := context.Background()

	// Queue qN holds N messages, so a right answer to Len tells whose it is.
	for n := 1; n <= workers; n++ {
		for range n {
			if _, err := c.Put(ctx, fmt.Sprintf("q%d", n), nil); err != nil {
				t.Fatalf("put: %v", err)
			}
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 1; w <= workers; w++ {
		wg.Go(func() { errs <- lenWithCancels(c, w, calls) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after the cancellations: %v", err)
	}
}

func lenWithCancels(c *Client, n, calls int) error {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	queue := fmt.Sprintf("q%d", n)
	for range calls {
		ctx, cancel := context.WithCancel(context.Background())
		if rng.IntN(3) == 0 {
			go cancel() // races with the call, at any point of it
		}
		got, err := c.Len(ctx, queue)
		cancel()
		switch {
		case errors.Is(err, context.Canceled):
		case err != nil:
			return fmt.Errorf("len %s: %w", queue, err)
		case got != int64(n):
			return fmt.Errorf("len %s = %d, want %d: a reply went to the wrong call",
				queue, got, n)
		}
		if err := c.Ping(context.Background()); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
	return nil
}

func TestClientTypedErrorsLeaveConnectionUsable(t *testing.T) {
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx := context.Background()

	tests := []struct {
		name  string
		call  func() error
		code  Code
		words string
	}{
		{"EmptyKey", func() error { _, err := c.Put(ctx, "", nil); return err },
			CodeInvalidKey, "empty"},
		{"ControlCharacter", func() error { _, err := c.Get(ctx, "line\n"); return err },
			CodeInvalidKey, "control character"},
		{"InvalidUTF8", func() error { _, err := c.Len(ctx, "\xff\xfe"); return err },
			CodeInvalidKey, "UTF-8"},
		{"NUL", func() error { _, err := c.Put(ctx, "a\x00b", []byte("x")); return err },
			CodeInvalidKey, "control character"},
		{"KeyOver255Bytes", func() error {
			_, err := c.Get(ctx, strings.Repeat("k", 256))
			return err
		}, CodeInvalidKey, "longer than 255"},
		{"MessageOverLimit", func() error {
			_, err := c.Put(ctx, "q", make([]byte, c.MaxMessageBytes()+1))
			return err
		}, CodeMessageTooLarge, "over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Code != tt.code || e.Fatal || !strings.Contains(e.Text, tt.words) {
				t.Fatalf("err = %+v, want non-fatal %s saying %q", e, tt.code, tt.words)
			}
			if !errors.Is(err, &Error{Code: tt.code}) {
				t.Fatalf("errors.Is(%v, code %s) is false", err, tt.code)
			}
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("ping after the error: %v", err)
			}
		})
	}
}

// TestClientMessageTooLargeFromServer skips the client's own check, so that the
// server refuses the message (C24: the limit holds on the wire too).
func TestClientMessageTooLargeFromServer(t *testing.T) {
	srv := testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.MaxMessageBytes = 1000
	}))
	c := dialTest(t, srv.Addr)
	ctx := context.Background()
	c.maxMessage = 2000 // as if the server had announced more than it accepts

	_, err := c.Put(ctx, "q", make([]byte, 1001))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeMessageTooLarge || e.Fatal {
		t.Fatalf("put of 1001 bytes: err = %v, want non-fatal MessageTooLarge", err)
	}
	if !strings.Contains(e.Text, "1001") || !strings.Contains(e.Text, "1000") {
		t.Fatalf("error text %q does not name the size and the limit", e.Text)
	}
	if _, err := c.Put(ctx, "q", make([]byte, 1000)); err != nil {
		t.Fatalf("put of 1000 bytes after the refusal: %v", err)
	}
}

// TestClientRefusesABatchOverTheMaxFrame: a PutBatch whose messages each fit but
// whose frame does not is refused by the client, alone, through Client and through
// Pipeline; the server would have closed the connection that other calls share.
func TestClientRefusesABatchOverTheMaxFrame(t *testing.T) {
	srv := testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.MaxMessageBytes = 1024
	}))
	c := dialTest(t, srv.Addr)
	ctx := context.Background()
	msgs := make([][]byte, 20)
	for i := range msgs {
		msgs[i] = make([]byte, 1000) // each within the message limit, 20 KB in all
	}
	tooLarge := func(what string, err error) {
		t.Helper()
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeFrameTooLarge || e.Fatal ||
			!strings.Contains(e.Text, "split") {
			t.Fatalf("%s: err = %v, want a non-fatal FrameTooLarge asking to split", what, err)
		}
	}

	_, err := c.PutBatch(ctx, "q", msgs)
	tooLarge("PutBatch", err)

	p := c.Pipeline()
	before := p.Put("q", []byte("before"))
	batch := p.PutBatch("q", msgs)
	after := p.Put("q", []byte("after"))
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("pipeline exec: %v", err)
	}
	err = batch.Err()
	tooLarge("Pipeline.PutBatch", err)
	for _, r := range []*Result[uint64]{before, after} {
		if err := r.Err(); err != nil {
			t.Fatalf("a put in the same pipeline: %v", err)
		}
	}

	if _, err := c.PutBatch(ctx, "q", msgs[:4]); err != nil {
		t.Fatalf("a batch that fits, after the refusals: %v", err)
	}
	if n, err := c.Len(ctx, "q"); err != nil || n != 6 {
		t.Fatalf("len = %d, %v; want 6 (2 puts and a batch of 4)", n, err)
	}
}

func TestClientCloseFailsLaterCalls(t *testing.T) {
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)

	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := c.Put(context.Background(), "q", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: err = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestClientServerShutdownFailsCalls(t *testing.T) {
	srv := testutil.StartServer(t)
	c := dialTest(t, srv.Addr)
	ctx := context.Background()
	if _, err := c.Put(ctx, "q", []byte("x")); err != nil {
		t.Fatalf("put: %v", err)
	}

	sctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	if err := srv.Server.Shutdown(sctx); err != nil {
		t.Fatalf("shut down: %v", err)
	}
	for range 3 {
		if err := c.Ping(sctx); !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("ping after the server shut down: err = %v, want ErrConnectionLost", err)
		}
	}
}
