package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// --max-memory (or $KEYQ_MAX_MEMORY) bounds what the server holds: a put over it is
// refused, and a get makes room again.
func TestServeMaxMemoryRefusesPuts(t *testing.T) {
	t.Setenv("KEYQ_MAX_MEMORY", "1KiB")
	addr, log, _ := startServe(t, "--addr", "127.0.0.1:0", "--storage", "memory")
	if !strings.Contains(log.String(), "max_memory=1024") {
		t.Fatalf("start line does not follow $KEYQ_MAX_MEMORY:\n%s", log)
	}
	msg := strings.Repeat("x", 400)
	runCLI(t, msg, "put", "q", "--addr", addr).want(t, exitOK)
	runCLI(t, msg, "put", "q", "--addr", addr).want(t, exitOK)
	r := runCLI(t, msg, "put", "q", "--addr", addr).want(t, exitError)
	if !strings.Contains(r.stderr, "server full") {
		t.Fatalf("put over --max-memory: stderr %q does not say server full", r.stderr)
	}
	runCLI(t, "", "get", "q", "--addr", addr).want(t, exitOK)
	runCLI(t, msg, "put", "q", "--addr", addr).want(t, exitOK)

	// Two messages of 400+64 bytes, and the 4 bytes (1/256 of the limit) that the
	// queue keeps reserved.
	r = runCLI(t, "", "stats", "--addr", addr).want(t, exitOK)
	if !strings.Contains(r.stdout, "held bytes   932 of 1024 (--max-memory)") {
		t.Fatalf("stats do not show held bytes and the limit:\n%s", r.stdout)
	}
}

// Unset, the limit is half the machine's memory with --storage memory and none with
// disk; the flag wins over both.
func TestServeMaxMemoryDefaults(t *testing.T) {
	half := physicalMemory() / 2
	if runtime.GOOS == "linux" && half <= 0 {
		t.Fatalf("physicalMemory() = %d on Linux", physicalMemory())
	}
	_, log, _ := startServe(t, "--addr", "127.0.0.1:0", "--storage", "memory")
	if want := fmt.Sprintf("max_memory=%d", half); !strings.Contains(log.String(), want) {
		t.Fatalf("memory storage: start line lacks %q:\n%s", want, log)
	}

	dir := filepath.Join(t.TempDir(), "data")
	_, log, _ = startServe(t, "--addr", "127.0.0.1:0", "--storage", "disk", "--data-dir", dir)
	if !strings.Contains(log.String(), "max_memory=0") {
		t.Fatalf("disk storage: start line lacks max_memory=0:\n%s", log)
	}

	_, log, _ = startServe(t, "--addr", "127.0.0.1:0", "--storage", "memory",
		"--max-memory", "2MiB")
	if !strings.Contains(log.String(), "max_memory=2097152") {
		t.Fatalf("--max-memory 2MiB: start line lacks max_memory=2097152:\n%s", log)
	}
}

func TestServeMaxMemoryRefusesBadValues(t *testing.T) {
	for _, v := range []string{"-1", "lots", "1XB"} {
		runCLI(t, "", "serve", "--addr", "127.0.0.1:0", "--max-memory", v).want(t, exitUsage)
	}
}

// The Go runtime's soft limit follows the broker's with room to spare, is left to
// GOMEMLIMIT when that is set, and is put back by restore.
func TestSetGoMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)

	limit, restore := setGoMemoryLimit(12 << 30)
	if want := int64(18 << 30); limit != want || debug.SetMemoryLimit(-1) != want {
		t.Fatalf("held limit 12 GiB: Go limit %d, runtime has %d; want %d",
			limit, debug.SetMemoryLimit(-1), want)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("after restore the runtime's limit is %d, want %d", got, before)
	}

	limit, restore = setGoMemoryLimit(1 << 10)
	restore()
	if want := int64(1<<10 + goHeadroom); limit != want {
		t.Fatalf("held limit 1 KiB: Go limit %d, want %d (the headroom's floor)", limit, want)
	}

	if limit, restore = setGoMemoryLimit(0); limit != 0 {
		t.Fatalf("no held limit: Go limit %d, want none", limit)
	}
	restore()

	t.Setenv("GOMEMLIMIT", "1GiB")
	if limit, restore = setGoMemoryLimit(12 << 30); limit != 0 {
		t.Fatalf("with GOMEMLIMIT set: Go limit %d, want it left alone", limit)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("the runtime's limit moved to %d with GOMEMLIMIT set", got)
	}
}

// "auto" asks for the default explicitly, so that a flag can override an inherited
// KEYQ_MAX_MEMORY; and with GOMEMLIMIT set, the start line shows the runtime's limit.
func TestServeMaxMemoryAuto(t *testing.T) {
	t.Setenv("KEYQ_MAX_MEMORY", "1KiB")
	_, log, _ := startServe(t, "--addr", "127.0.0.1:0", "--storage", "memory",
		"--max-memory", "auto")
	if want := fmt.Sprintf("max_memory=%d", physicalMemory()/2); !strings.Contains(
		log.String(), want) {
		t.Fatalf("--max-memory auto: start line lacks %q:\n%s", want, log)
	}

	t.Setenv("KEYQ_MAX_MEMORY", "auto")
	t.Setenv("GOMEMLIMIT", "3GiB")
	before := debug.SetMemoryLimit(3 << 30)
	defer debug.SetMemoryLimit(before)
	_, log, _ = startServe(t, "--addr", "127.0.0.1:0", "--storage", "memory")
	if want := fmt.Sprintf("go_memory_limit=%d", 3<<30); !strings.Contains(log.String(), want) {
		t.Fatalf("with GOMEMLIMIT=3GiB: start line lacks %q:\n%s", want, log)
	}
}
