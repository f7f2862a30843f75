package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// testTimeout bounds every wait of these tests; none should come near it.
const testTimeout = 10 * time.Second

// serveLimited serves an API built from cfg (its Broker set here) on its own
// listener through Server.Serve, as serve does, and returns the address.
func serveLimited(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	b, err := broker.New(broker.Config{SweepInterval: time.Hour})
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	cfg.Broker = b
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	s := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
	return s, ln.Addr().String()
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testTimeout))
	return nc
}

// readUntilClosed reads what the server sends until it closes the connection, and
// fails if that takes testTimeout.
func readUntilClosed(t *testing.T, nc net.Conn) string {
	t.Helper()
	data, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("server did not close the connection: %v (read %q)", err, data)
	}
	return string(data)
}

// TestHTTPStalledBodyFailsAfterIdleTimeout: a put whose body stops one part short
// of its Content-Length is answered 400 and closed after the idle timeout, rather
// than held open.
func TestHTTPStalledBodyFailsAfterIdleTimeout(t *testing.T) {
	s, addr := serveLimited(t, Config{IdleTimeout: 200 * time.Millisecond})
	nc := dialRaw(t, addr)
	fmt.Fprint(nc, "POST /v1/queues/a/messages HTTP/1.1\r\nHost: x\r\n"+
		"Content-Length: 100\r\n\r\nab")
	got := readUntilClosed(t, nc)
	if !strings.HasPrefix(got, "HTTP/1.1 400") || !strings.Contains(got, "no byte of the body") {
		t.Fatalf("stalled body answered %q, want 400 naming the stall", got)
	}
	if !strings.Contains(got, "\r\nConnection: close\r\n") {
		t.Errorf("stalled body answered %q, without Connection: close", got)
	}
	if n, _ := s.broker.Len("a"); n != 0 {
		t.Fatalf("queue holds %d messages after a failed put", n)
	}
}

// TestHTTPTimeoutsDerivedFromIdleTimeout: with no idle timeout a body still has
// DefaultBodyTimeout, so a stalled upload is never held forever.
func TestHTTPTimeoutsDerivedFromIdleTimeout(t *testing.T) {
	def := timeouts{readHeader: DefaultReadHeaderTimeout, keepAlive: DefaultKeepAlive,
		body: DefaultBodyTimeout}
	if got := newTimeouts(0); got != def {
		t.Fatalf("timeouts without an idle timeout = %+v, want %+v", got, def)
	}
	got := newTimeouts(time.Minute)
	want := timeouts{readHeader: DefaultReadHeaderTimeout, keepAlive: time.Minute,
		body: time.Minute}
	if got != want {
		t.Fatalf("timeouts for 1m = %+v, want %+v", got, want)
	}
}

// TestHTTPIdleAndHalfSentHeadersClosed: a keep-alive connection idle past the idle
// timeout, and one that never finishes its headers, are closed.
func TestHTTPIdleAndHalfSentHeadersClosed(t *testing.T) {
	_, addr := serveLimited(t, Config{IdleTimeout: 200 * time.Millisecond})

	idle := dialRaw(t, addr)
	fmt.Fprint(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := readUntilClosed(t, idle); !strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Fatalf("healthz on a kept-alive connection = %q", got)
	}

	half := dialRaw(t, addr)
	fmt.Fprint(half, "GET /healthz HTTP/1.1\r\nHo")
	readUntilClosed(t, half)
}

// TestHTTPWaitOutlivesIdleTimeout: a get that waits longer than the idle timeout,
// with or without a body, is not cut by it.
func TestHTTPWaitOutlivesIdleTimeout(t *testing.T) {
	_, addr := serveLimited(t, Config{IdleTimeout: 100 * time.Millisecond})
	for _, body := range []string{"", "x"} {
		start := time.Now()
		resp, err := http.Post("http://"+addr+"/v1/queues/w/get?wait=400ms", "",
			strings.NewReader(body))
		if err != nil {
			t.Fatalf("get with body %q: %v", body, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || time.Since(start) < 400*time.Millisecond {
			t.Fatalf("get with body %q = %d after %v, want 204 after the wait",
				body, resp.StatusCode, time.Since(start))
		}
	}
}

// TestHTTPMaxConnsRefusesOneMore: with MaxConns 2 a third connection is answered
// 503 too_many_connections; once one closes, a new one is served.
func TestHTTPMaxConnsRefusesOneMore(t *testing.T) {
	s, addr := serveLimited(t, Config{MaxConns: 2})
	first, second := dialRaw(t, addr), dialRaw(t, addr)
	for _, nc := range []net.Conn{first, second} {
		fmt.Fprint(nc, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz within the limit: %v", err)
		}
		resp.Body.Close()
	}

	third := dialRaw(t, addr)
	fmt.Fprint(third, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	got := readUntilClosed(t, third)
	if !strings.HasPrefix(got, "HTTP/1.1 503") || !strings.Contains(got, "too_many_connections") {
		t.Fatalf("connection over the limit answered %q", got)
	}

	first.Close()
	waitFor(t, testTimeout, "a slot to free", func() bool { return s.Connections() < 2 })
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after a slot freed = %d", resp.StatusCode)
	}
}
