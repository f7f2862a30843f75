package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/testutil"
)

// TestServeSecondSignalStopsAtOnceAndSaysSo: a second SIGTERM while an upload holds
// the graceful shutdown logs why the server stops now and exits 143 at once.
func TestServeSecondSignalStopsAtOnceAndSaysSo(t *testing.T) {
	useMemoryStorage(t)
	sigs := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	watch := &signalWatch{
		notify: func() (<-chan os.Signal, func()) { return sigs, func() {} },
		exit:   func(code int) { exited <- code },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--resp-addr", "",
			"--http-addr", "127.0.0.1:0", "--shutdown-timeout", "1m"},
			streams{in: strings.NewReader(""), out: &bytes.Buffer{}, err: log, signals: watch})
	}()
	logged := func(text string) func() bool {
		return func() bool { return strings.Contains(log.String(), text) }
	}
	testutil.WaitFor(t, testTimeout, logged("msg=listening"))

	nc := holdUpload(t, log)
	sigs <- syscall.SIGTERM // what main's NotifyContext hears too: it ends ctx
	cancel()
	testutil.WaitFor(t, testTimeout, logged(`msg="shutting down" component=http`))

	sigs <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != 143 {
			t.Errorf("second SIGTERM exited %d, want 143", code)
		}
	case <-time.After(testTimeout):
		t.Fatalf("second SIGTERM did not stop the server:\n%s", log)
	}
	want := `level=ERROR msg="second signal: stopping now without waiting for requests ` +
		`in progress" signal=SIGTERM exit_status=143`
	if !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}

	nc.Close() // the fake exit returned: let the graceful shutdown end
	<-done
}

// holdUpload starts an HTTP upload on serve's HTTP door whose body never ends, so a
// graceful shutdown waits for it.
func holdUpload(t *testing.T, log *syncBuffer) net.Conn {
	t.Helper()
	m := httpAddrField.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("start line lacks http_addr:\n%s", log)
	}
	nc := dialDoor(t, m[1])
	fmt.Fprintf(nc, "POST /v1/queues/a/messages HTTP/1.1\r\nHost: x\r\n"+
		"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n")
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("read 100 Continue: %q, %v", line, err)
	}
	fmt.Fprint(nc, "ab")
	return nc
}

// TestSignalWatchCountsASignalMissedBeforeIt: when ctx ended before the watch began,
// the signal that ended it went unheard, and the first one heard is the second.
func TestSignalWatchCountsASignalMissedBeforeIt(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	exited := make(chan int, 1)
	watch := &signalWatch{
		notify: func() (<-chan os.Signal, func()) { return sigs, func() {} },
		exit:   func(code int) { exited <- code },
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var log syncBuffer
	stop := watch.watch(ctx, newLogger(&log, "text", logLevel{}))
	defer stop()

	sigs <- os.Interrupt
	if code := <-exited; code != 130 {
		t.Fatalf("SIGINT exited %d, want 130", code)
	}
	if !strings.Contains(log.String(), "signal=SIGINT") {
		t.Fatalf("log lacks the signal:\n%s", log.String())
	}
}
