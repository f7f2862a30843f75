package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/testutil"
)

// TestReserveAckNackCommands runs the reliable-queue commands end to end against a
// server: reserve writes the message and prints its delivery id, nack gives it back,
// touch extends it, ack removes it; an ended delivery is refused.
func TestReserveAckNackCommands(t *testing.T) {
	srv := testutil.StartServer(t)
	t.Setenv(addrEnv, srv.Addr)
	dir := t.TempDir()
	out := filepath.Join(dir, "job")

	runCLI(t, "resize photo 1", "put", "jobs").want(t, exitOK)
	r := runCLI(t, "", "reserve", "--lease", "30s", "-o", out, "jobs").want(t, exitOK)
	if !regexp.MustCompile(`^\d+\n$`).MatchString(r.stdout) {
		t.Fatalf("reserve printed %q, want a delivery id", r.stdout)
	}
	first := strings.TrimSpace(r.stdout)
	if b, err := os.ReadFile(out); err != nil || string(b) != "resize photo 1" {
		t.Fatalf("reserved file = %q, %v", b, err)
	}
	// The lease outlives the command: the message is neither in the queue nor lost.
	if r := runCLI(t, "", "len", "jobs").want(t, exitOK); r.stdout != "0\n" {
		t.Fatalf("len while leased = %q", r.stdout)
	}
	r = runCLI(t, "", "queue", "show", "jobs").want(t, exitOK)
	if !regexp.MustCompile(`(?m)^inflight +1$`).MatchString(r.stdout) {
		t.Fatalf("queue show:\n%s", r.stdout)
	}

	r = runCLI(t, "", "touch", "--lease", "1h", first).want(t, exitOK)
	deadline, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(r.stdout))
	if err != nil || time.Until(deadline) < 50*time.Minute {
		t.Fatalf("touch printed %q (%v)", r.stdout, err)
	}
	runCLI(t, "", "nack", first).want(t, exitOK)
	r = runCLI(t, "", "ack", first).want(t, exitError)
	if !strings.Contains(r.stderr, "keyq ack:") {
		t.Fatalf("ack of a nacked delivery: %q", r.stderr)
	}

	r = runCLI(t, "", "reserve", "-o", out, "jobs").want(t, exitOK)
	second := strings.TrimSpace(r.stdout)
	if second == first {
		t.Fatal("a redelivery has the same delivery id")
	}
	runCLI(t, "", "ack", second).want(t, exitOK)
	runCLI(t, "", "ack", second).want(t, exitError)

	r = runCLI(t, "", "reserve", "-o", out, "jobs").want(t, exitEmpty)
	if r.stderr != "keyq reserve: queue \"jobs\" is empty\n" {
		t.Fatalf("empty reserve: stderr %q", r.stderr)
	}
	runCLI(t, "", "reserve", "jobs").want(t, exitUsage) // -o is required
	runCLI(t, "", "ack", "twelve").want(t, exitUsage)
}

func TestWaitDelayAndQueueCommands(t *testing.T) {
	srv := testutil.StartServer(t)
	t.Setenv(addrEnv, srv.Addr)

	start := time.Now()
	runCLI(t, "soon", "put", "--delay", "300ms", "--ttl", "1h", "later").want(t, exitOK)
	runCLI(t, "", "get", "later").want(t, exitEmpty)
	r := runCLI(t, "", "get", "--wait", "10s", "later").want(t, exitOK)
	if r.stdout != "soon" || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("get --wait printed %q after %v", r.stdout, time.Since(start))
	}
	runCLI(t, "", "get", "--wait", "50ms", "later").want(t, exitEmpty)

	r = runCLI(t, "", "queue", "set", "q", "--max-deliveries", "3", "--dead-letter", "q.failed",
		"--max-length", "100", "--overflow", "drop-oldest", "--lease", "45s", "--ttl", "2h").
		want(t, exitOK)
	for _, row := range []string{`max_deliveries +3`, `dead_letter +q\.failed`,
		`max_length +100`, `overflow +drop-oldest`, `default_lease +45s`, `default_ttl +2h0m0s`} {
		if !regexp.MustCompile(`(?m)^` + row + `$`).MatchString(r.stdout) {
			t.Fatalf("queue set output lacks %s:\n%s", row, r.stdout)
		}
	}
	r = runCLI(t, "", "queue", "show", "--json", "q").want(t, exitOK)
	if !strings.Contains(r.stdout, `"max_deliveries": 3`) {
		t.Fatalf("queue show --json:\n%s", r.stdout)
	}
	runCLI(t, "", "queue", "set", "q").want(t, exitUsage)
	runCLI(t, "", "queue", "set", "q", "--overflow", "sometimes").want(t, exitUsage)
	runCLI(t, "", "put", "--delay", "-1s", "q").want(t, exitUsage)
}
