package resp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// rawConn dials the server and bounds every read and write of the test.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
}

// wantClosed reads until the server closes nc and returns what it sent; a read that
// hits the test's deadline fails the test.
func wantClosed(t *testing.T, nc net.Conn) string {
	t.Helper()
	data, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("server did not close the connection: %v (read %q)", err, data)
	}
	return string(data)
}

// TestRESPIdleTimeoutClosesIdleAndHalfSent: with an idle timeout, a connection that
// sends nothing, and one that sends part of a request (a huge bulk announced, two
// bytes sent), are closed; their memory goes with them.
func TestRESPIdleTimeoutClosesIdleAndHalfSent(t *testing.T) {
	ts := startServerConfig(t, broker.Config{}, Config{IdleTimeout: 150 * time.Millisecond})

	idle := rawConn(t, ts.addr)
	fmt.Fprint(idle, "PING\r\n")
	if got := wantClosed(t, idle); got != "+PONG\r\n" {
		t.Fatalf("idle connection got %q, want only the PONG", got)
	}

	half := rawConn(t, ts.addr)
	fmt.Fprint(half, "*3\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$100000\r\nab")
	wantClosed(t, half)
	waitFor(t, 10*time.Second, "no connection",
		func() bool { return ts.s.Connections() == 0 })
}

// TestRESPIdleTimeoutSparesBlocked: a client blocked in BLPOP longer than the idle
// timeout is not idle: it gets its reply, and its connection still serves the next
// command.
func TestRESPIdleTimeoutSparesBlocked(t *testing.T) {
	ts := startServerConfig(t, broker.Config{}, Config{IdleTimeout: 300 * time.Millisecond})

	nc := rawConn(t, ts.addr)
	br := bufio.NewReader(nc)
	start := time.Now()
	fmt.Fprint(nc, "BLPOP nq 0.8\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "*-1") || time.Since(start) < 800*time.Millisecond {
		t.Fatalf("BLPOP 0.8 with an idle timeout of 300ms = %q, %v after %v",
			line, err, time.Since(start))
	}
	fmt.Fprint(nc, "PING\r\n")
	if line, err := br.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING right after a long BLPOP = %q, %v", line, err)
	}
}

// TestRESPMaxConnsRefusesOneMore: past MaxConns a connection gets Redis' maxclients
// error and is closed; once one closes, a new one is served.
func TestRESPMaxConnsRefusesOneMore(t *testing.T) {
	ts := startServerConfig(t, broker.Config{}, Config{MaxConns: 2})
	first, second := rawConn(t, ts.addr), rawConn(t, ts.addr)
	for _, nc := range []net.Conn{first, second} {
		fmt.Fprint(nc, "PING\r\n")
		if line, err := bufio.NewReader(nc).ReadString('\n'); err != nil || line != "+PONG\r\n" {
			t.Fatalf("PING within the limit = %q, %v", line, err)
		}
	}

	third := rawConn(t, ts.addr)
	if got := wantClosed(t, third); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("connection over the limit got %q", got)
	}

	first.Close()
	waitFor(t, 10*time.Second, "a freed slot",
		func() bool { return ts.s.Connections() == 1 })
	fourth := rawConn(t, ts.addr)
	fmt.Fprint(fourth, "PING\r\n")
	if line, err := bufio.NewReader(fourth).ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING after a slot freed = %q, %v", line, err)
	}
}
