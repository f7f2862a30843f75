package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// TestServeShutdownTimeoutCutsSlowUploadAndExitsZero: an HTTP upload that never
// finishes its body holds the graceful shutdown until --shutdown-timeout; serve then
// closes it, logs how many connections it cut off and still exits 0.
func TestServeShutdownTimeoutCutsSlowUploadAndExitsZero(t *testing.T) {
	useMemoryStorage(t)
	_, log, stop := startServe(t, "--addr", "127.0.0.1:0", "--shutdown-timeout", "300ms")
	m := httpAddrField.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("start line lacks http_addr:\n%s", log)
	}
	nc, err := net.Dial("tcp", m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Expect: 100-continue makes the server say when the handler reads the body, so
	// that the shutdown surely finds the request in progress.
	fmt.Fprintf(nc, "POST /v1/queues/a/messages HTTP/1.1\r\nHost: x\r\n"+
		"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n")
	nc.SetReadDeadline(time.Now().Add(testTimeout))
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("read 100 Continue: %q, %v", line, err)
	}
	fmt.Fprint(nc, "ab")

	if code := stop(); code != exitOK {
		t.Fatalf("serve exited %d, want 0:\n%s", code, log)
	}
	out := log.String()
	if !strings.Contains(out, "shutdown timed out, connections closed forcibly") ||
		!strings.Contains(out, "door=http connections=1") {
		t.Fatalf("log lacks the warning naming the cut-off connection:\n%s", out)
	}
}

// TestShutdownDoorsForcesEveryDoorAfterTimeout: each door still busy at the timeout
// is cut off and counted; none of them makes the shutdown fail.
func TestShutdownDoorsForcesEveryDoorAfterTimeout(t *testing.T) {
	var running []*runningDoor
	for i, name := range []string{"native", "resp", "http"} {
		open := int64(i + 1)
		running = append(running, &runningDoor{
			name:  name,
			conns: func() int64 { return open },
			shutdown: func(ctx context.Context) error {
				<-ctx.Done()
				open = 0 // the door closes what is left
				return fmt.Errorf("shut down %s: %w", name, ctx.Err())
			},
		})
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if err := shutdownDoors(running, 50*time.Millisecond, log); err != nil {
		t.Fatalf("shutdownDoors = %v, want nil after a forced close", err)
	}
	for i, name := range []string{"native", "resp", "http"} {
		want := fmt.Sprintf("door=%s connections=%d", name, i+1)
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestShutdownDoorsReturnsOtherErrors: an error that is not the timeout is still
// reported.
func TestShutdownDoorsReturnsOtherErrors(t *testing.T) {
	failing := &runningDoor{
		name:     "resp",
		shutdown: func(context.Context) error { return fmt.Errorf("close listener: boom") },
	}
	log := slog.New(slog.DiscardHandler)
	if err := shutdownDoors([]*runningDoor{failing}, time.Second, log); err == nil {
		t.Fatal("shutdownDoors hid a door's failure")
	}
}
