package resp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/storage"
)

// testServer is a broker and a RESP server on 127.0.0.1:0, stopped by t.Cleanup.
type testServer struct {
	b    *broker.Broker
	s    *Server
	addr string
}

func startServer(t testing.TB, cfg broker.Config) *testServer {
	t.Helper()
	return startServerConfig(t, cfg, Config{})
}

// startServerConfig is startServer with the RESP server's settings in rcfg (its
// broker and logger are filled in).
func startServerConfig(t testing.TB, cfg broker.Config, rcfg Config) *testServer {
	t.Helper()
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Hour
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.Logger = log
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	rcfg.Broker, rcfg.Version = b, "test"
	if rcfg.Logger == nil {
		rcfg.Logger = log
	}
	s := New(rcfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("serve = %v, want ErrServerClosed", err)
		}
		b.Close()
	})
	return &testServer{b: b, s: s, addr: ln.Addr().String()}
}

// client returns a go-redis client speaking the given protocol version (2 or 3),
// with one connection so that state such as CLIENT SETNAME stays put.
func (ts *testServer) client(t testing.TB, proto int) *redis.Client {
	t.Helper()
	rc := redis.NewClient(&redis.Options{
		Addr:            ts.addr,
		Protocol:        proto,
		PoolSize:        1,
		ReadTimeout:     -1, // blocking commands set their own deadline
		DisableIdentity: true,
	})
	t.Cleanup(func() { rc.Close() })
	return rc
}

// waitFor polls cond every millisecond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitBlocked waits until n connections sit in a blocking command and the broker
// has parked them.
func (ts *testServer) waitBlocked(t testing.TB, n int64) {
	t.Helper()
	waitFor(t, 5*time.Second, "blocked clients", func() bool {
		return ts.s.blocked.Load() == n && ts.b.Stats(1).Waiting == n
	})
}

// failingStore is the memory store that refuses puts on one queue, to raise an
// error after a blocked move wakes (C11).
type failingStore struct {
	storage.Memory
	queue string
}

var errPutRefused = errors.New("put refused by the test store")

func (f failingStore) Append(rec *storage.Record) (storage.Location, storage.Ticket, error) {
	if rec.Op != storage.OpTake && rec.Queue == f.queue {
		return storage.Location{}, 0, errPutRefused
	}
	return f.Memory.Append(rec)
}

func TestServerServesAfterShutdownReturnsClosed(t *testing.T) {
	b, err := broker.New(broker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := New(Config{Broker: b})
	s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("serve after close = %v, want ErrServerClosed", err)
	}
}

func TestServerShutdownEndsBlockedCommand(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	errc := make(chan error, 1)
	go func() {
		errc <- rc.BLPop(context.Background(), 0, "k").Err()
	}()
	ts.waitBlocked(t, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-errc; err == nil {
		t.Fatalf("blpop during shutdown succeeded, want an error")
	}
	if n := ts.s.connCount(); n != 0 {
		t.Fatalf("%d connections left after shutdown", n)
	}
}

// syncBuffer is a bytes.Buffer that a logger may write from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServerWarnsOncePerHostAboutProtocolErrors: a client that opens connection
// after connection and breaks the protocol on each gets each one closed with an
// error, but the log warns about its host once, not once per connection.
func TestServerWarnsOncePerHostAboutProtocolErrors(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ts := startServerConfig(t, broker.Config{}, Config{Logger: log})

	for i := range 20 {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write([]byte("*1\r\n$abc\r\n")); err != nil {
			t.Fatal(err)
		}
		reply, _ := io.ReadAll(nc) // the error, then the close
		nc.Close()
		if !strings.HasPrefix(string(reply), "-ERR Protocol error") {
			t.Fatalf("connection %d: reply %q, want a protocol error", i, reply)
		}
	}
	if n := strings.Count(out.String(), "protocol error, closing"); n != 1 {
		t.Fatalf("%d warnings about one host's 20 protocol errors, want 1:\n%s", n, out.String())
	}
}

// TestPanicClosesOnlyItsConnection: a command that panics (a bug, or bytes past a
// bug in the guard that make the parser index out of range) ends its own
// connection, and the server goes on serving everyone else.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	ts := startServer(t, broker.Config{})
	other := ts.client(t, 2)
	if err := other.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}

	echo := commands["echo"]
	run := echo.run
	echo.run = func(*conn, [][]byte) { panic("a bug in a command") }
	t.Cleanup(func() { echo.run = run })

	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte("*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := nc.Read(make([]byte, 64)); err == nil {
		t.Fatalf("read %d bytes after the panic, want the connection closed", n)
	}

	if err := other.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("another client after the panic: %v", err)
	}
	if err := other.RPush(context.Background(), "k", "v").Err(); err != nil {
		t.Fatalf("another client after the panic: %v", err)
	}
}
