package resp

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/keyq/keyq/internal/broker"
)

// TestRESPPipelineBehindBlockingPop sends a blocking pop and commands behind it in
// one write: the commands read while the pop waits run after it, in order.
func TestRESPPipelineBehindBlockingPop(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := dialRaw(t, ts.addr)
	rc.send(t, "BLPOP k 0\r\nPING\r\nRPUSH k after\r\nLPOP k\r\n")
	ts.waitBlocked(t, 1)

	if err := ts.client(t, 2).RPush(context.Background(), "k", "v").Err(); err != nil {
		t.Fatalf("rpush: %v", err)
	}
	want := []string{"*2", "$1", "k", "$1", "v", "+PONG", ":1", "$5", "after"}
	for _, w := range want {
		if got := rc.line(t); got != w {
			t.Fatalf("reply line = %q, want %q (replies %q)", got, w, want)
		}
	}
}

// TestRESPLongPipelineBehindBlockingPop has more commands wait behind a blocking
// pop than the watcher reads ahead (watchBytes): the rest wait in the socket, and
// every one runs, in order, once the pop returns.
func TestRESPLongPipelineBehindBlockingPop(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := dialRaw(t, ts.addr)
	const pushes = 10000 // about 4 watchBytes of requests
	var b strings.Builder
	b.WriteString("BLPOP k 0\r\n")
	for i := range pushes {
		fmt.Fprintf(&b, "*3\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$5\r\n%05d\r\n", i)
	}
	written := make(chan error, 1)
	go func() { // the server reads only part of it until BLPOP returns
		_, err := rc.nc.Write([]byte(b.String()))
		written <- err
	}()
	ts.waitBlocked(t, 1)

	if err := ts.client(t, 2).RPush(context.Background(), "k", "v").Err(); err != nil {
		t.Fatalf("rpush: %v", err)
	}
	for _, w := range []string{"*2", "$1", "k", "$1", "v"} {
		if got := rc.line(t); got != w {
			t.Fatalf("BLPOP reply line = %q, want %q", got, w)
		}
	}
	for i := range pushes {
		if got, want := rc.line(t), fmt.Sprintf(":%d", i+1); got != want {
			t.Fatalf("reply to push %d = %q, want %q", i, got, want)
		}
	}
	if err := <-written; err != nil {
		t.Fatalf("write the pipeline: %v", err)
	}
}

// TestRESPMultiKeepsQueuedArguments queues commands one round trip each, so that
// each is read where the one before it was: EXEC must run them with their own
// arguments, which MULTI copied out of the read buffer (array commands are parsed
// in place; inline ones are copied anyway).
func TestRESPMultiKeepsQueuedArguments(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := dialRaw(t, ts.addr)
	rc.send(t, "MULTI\r\n")
	if got := rc.line(t); got != "+OK" {
		t.Fatalf("MULTI = %q", got)
	}
	values := []string{"first", "2nd", "the-third"}
	for _, v := range values {
		rc.send(t, fmt.Sprintf("*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$%d\r\n%s\r\n",
			len(v), v))
		if got := rc.line(t); got != "+QUEUED" {
			t.Fatalf("RPUSH in MULTI = %q", got)
		}
	}
	rc.send(t, "EXEC\r\n")
	for _, w := range []string{"*3", ":1", ":2", ":3"} {
		if got := rc.line(t); got != w {
			t.Fatalf("EXEC reply line = %q, want %q", got, w)
		}
	}
	wantList(t, ts.client(t, 2), "k", values...)
}

// TestRESPPipelineAllocatesLittle: rounds of 16 LPUSH and 16 RPOP pipelined, as
// redis-benchmark -P 16 sends them, cost the server next to no allocation: the
// commands are parsed in place and the popped payloads' buffers go back to the
// broker for the next pushes. (Before, a round cost 91 allocations.)
func TestRESPPipelineAllocatesLittle(t *testing.T) {
	const depth = 16
	ts := startServer(t, broker.Config{})
	rc := dialRaw(t, ts.addr)
	var round []byte
	for range depth {
		round = append(round, "*3\r\n$5\r\nLPUSH\r\n$6\r\nallocs\r\n$3\r\nxyz\r\n"...)
	}
	for range depth {
		round = append(round, "*2\r\n$4\r\nRPOP\r\n$6\r\nallocs\r\n"...)
	}
	roundTrip := func() {
		rc.send(t, string(round))
		if err := skipReplies(rc.rd, 2*depth); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip() // the first round fills the pools and buffers

	// The client's part (the string conversion of round) may be one allocation, a
	// queue's ring resizing two more. Under the race detector sync.Pool drops some
	// buffers put back, which puts then allocate anew.
	bound := 8.0
	if raceEnabled {
		bound = 24
	}
	if allocs := testing.AllocsPerRun(200, roundTrip); allocs > bound {
		t.Fatalf("%.1f allocations per round of %d commands, want at most %v", allocs,
			2*depth, bound)
	}
}
