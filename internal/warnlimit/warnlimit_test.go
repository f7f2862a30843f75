package warnlimit

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestLimiterLetsOneWarningPerHostPerInterval(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := New(time.Hour)
	for range 100 {
		w.Warn(log, "10.0.0.1", "bad frame")
	}
	w.Warn(log, "10.0.0.2", "bad frame")

	if n := strings.Count(out.String(), "level=WARN"); n != 2 {
		t.Fatalf("%d warnings for 101 from two hosts, want 2 (one per host):\n%s", n,
			out.String())
	}
	if n := strings.Count(out.String(), "level=DEBUG"); n != 99 {
		t.Fatalf("%d debug lines, want the 99 suppressed warnings", n)
	}
}

func TestLimiterForgetsHostsRatherThanGrow(t *testing.T) {
	w := New(time.Hour)
	for i := range 3 * prune {
		w.Allow(fmt.Sprintf("host-%d", i))
	}
	if n := len(w.last); n > prune {
		t.Fatalf("remembers %d hosts, want at most %d", n, prune)
	}
}

func TestHostDropsThePort(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}
	if got := Host(addr); got != "127.0.0.1" {
		t.Fatalf("Host(%v) = %q, want 127.0.0.1", addr, got)
	}
}
