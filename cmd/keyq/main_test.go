package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyq/keyq/client"
	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/storage"
	"github.com/keyq/keyq/internal/testutil"
)

const testTimeout = 20 * time.Second

// syncBuffer is a bytes.Buffer that a running server may write while a test reads.
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

// cli is the outcome of one in-process run of the keyq command.
type cli struct {
	code   int
	stdout string
	stderr string
}

func runCLI(t *testing.T, stdin string, args ...string) cli {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, streams{in: strings.NewReader(stdin), out: &stdout, err: &stderr})
	return cli{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r cli) want(t *testing.T, code int) cli {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	return r
}

// listenLine finds the address in serve's start line, in text or JSON.
var listenLine = regexp.MustCompile(`msg=listening addr=(\S+)|"msg":"listening","addr":"([^"]+)"`)

// useMemoryStorage makes serve keep messages in memory for the rest of the test,
// whatever storage backend the package plugs in.
func useMemoryStorage(t *testing.T) {
	old := newStorageBackend
	newStorageBackend = func() storageBackend { return memoryBackend{} }
	t.Cleanup(func() { newStorageBackend = old })
}

// startServe runs `keyq serve args...` in process until the test ends, and returns
// the address from its start line and its log. Storage is memory unless the test
// set a backend. The HTTP and RESP doors listen on free ports unless args say otherwise.
func startServe(t *testing.T, args ...string) (addr string, log *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log = &syncBuffer{}
	exit := make(chan int, 1)
	args = append([]string{"serve", "--http-addr", "127.0.0.1:0", "--resp-addr", "127.0.0.1:0"},
		args...)
	go func() {
		exit <- run(ctx, args, streams{
			in: strings.NewReader(""), out: &bytes.Buffer{}, err: log})
	}()
	code := -1
	stop = func() int {
		cancel()
		if code == -1 {
			code = <-exit
		}
		return code
	}
	t.Cleanup(func() { stop() })

	testutil.WaitFor(t, testTimeout, func() bool {
		if m := listenLine.FindStringSubmatch(log.String()); m != nil {
			addr = m[1] + m[2]
			return true
		}
		return false
	})
	return addr, log, stop
}

func TestServeLogsBoundAddressAndStopsOnSignal(t *testing.T) {
	useMemoryStorage(t)
	addr, log, stop := startServe(t, "--addr", "127.0.0.1:0", "--max-message-bytes", "1000",
		"--shutdown-timeout", "7s", "--metrics-max-queues", "12")
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("start line has address %s, not the bound port", addr)
	}
	if n := strings.Count(log.String(), "msg=listening"); n != 1 {
		t.Fatalf("%d start lines, want 1:\n%s", n, log)
	}
	for _, want := range []string{
		"max_message_bytes=1000", "shutdown_timeout=7s", "metrics_max_queues=12",
		"http_max_wait=",
	} {
		if !strings.Contains(log.String(), want) {
			t.Fatalf("start line lacks %s:\n%s", want, log)
		}
	}

	runCLI(t, "hello", "put", "jobs", "--addr", addr).want(t, exitOK)
	r := runCLI(t, "", "get", "jobs", "--addr", addr).want(t, exitOK)
	if r.stdout != "hello" {
		t.Fatalf("get wrote %q, want hello", r.stdout)
	}

	if code := stop(); code != exitOK {
		t.Fatalf("serve exited %d when its context ended, want 0:\n%s", code, log)
	}
	if !strings.Contains(log.String(), "msg=stopped") {
		t.Fatalf("no stop line in the log:\n%s", log)
	}
}

func TestServeJSONLog(t *testing.T) {
	useMemoryStorage(t)
	_, log, stop := startServe(t, "--addr", "127.0.0.1:0", "--log-format", "json")
	stop()

	var starts int
	for line := range strings.Lines(log.String()) {
		var entry struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if entry.Msg == "listening" && entry.Addr != "" {
			starts++
		}
	}
	if starts != 1 {
		t.Fatalf("%d start lines with an address, want 1:\n%s", starts, log)
	}
}

func TestServeRefusesBadSettings(t *testing.T) {
	for _, args := range [][]string{
		{"--log-format", "xml"},
		{"--log-level", "loud"},
		{"--max-message-bytes", "0"},
		{"--max-conns", "-1"},
		{"--shutdown-timeout", "0s"},
		{"extra-argument"},
	} {
		r := runCLI(t, "", append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
		r.want(t, exitUsage)
		if !strings.Contains(r.stderr, "keyq serve --help") {
			t.Fatalf("serve %v: stderr %q does not point to --help", args, r.stderr)
		}
	}
}

func TestServeAddressInUse(t *testing.T) {
	useMemoryStorage(t)
	srv := testutil.StartServer(t)
	r := runCLI(t, "", "serve", "--addr", srv.Addr).want(t, exitError)
	if !strings.Contains(r.stderr, srv.Addr) {
		t.Fatalf("stderr %q does not name the address", r.stderr)
	}
}

// fakeBackend stands in for the durable log's backend, to show that storage.go can
// plug one into serve.
type fakeBackend struct {
	dir        string
	configured bool
}

func (f *fakeBackend) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.dir, "fake-dir", "", "where the fake store would be")
}

func (f *fakeBackend) configure(cfg *broker.Config, _ *slog.Logger) ([]any, error) {
	f.configured = true
	cfg.Store = storage.Memory{}
	return []any{"storage", "fake", "dir", f.dir}, nil
}

func TestServeUsesPluggedStorage(t *testing.T) {
	fb := &fakeBackend{}
	old := newStorageBackend
	newStorageBackend = func() storageBackend { return fb }
	defer func() { newStorageBackend = old }()

	_, log, stop := startServe(t, "--addr", "127.0.0.1:0", "--fake-dir", "/data/keyq")
	stop()
	if !fb.configured || !strings.Contains(log.String(), "storage=fake dir=/data/keyq") {
		t.Fatalf("backend configured = %v; log:\n%s", fb.configured, log)
	}
}

func TestClientCommands(t *testing.T) {
	srv := testutil.StartServer(t)
	t.Setenv(addrEnv, srv.Addr)

	r := runCLI(t, "first", "put", "docs").want(t, exitOK)
	if !regexp.MustCompile(`^\d+\n$`).MatchString(r.stdout) {
		t.Fatalf("put printed %q, want an id", r.stdout)
	}
	runCLI(t, "", "put", "docs").want(t, exitOK) // the empty message
	if r := runCLI(t, "", "len", "docs").want(t, exitOK); r.stdout != "2\n" {
		t.Fatalf("len printed %q, want 2", r.stdout)
	}

	r = runCLI(t, "", "stats").want(t, exitOK)
	if !regexp.MustCompile(`(?m)^docs +2 +5 +2 +0 +0 +0$`).MatchString(r.stdout) {
		t.Fatalf("stats table:\n%s", r.stdout)
	}
	r = runCLI(t, "", "stats", "--json").want(t, exitOK)
	var s client.Stats
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Messages != 2 {
		t.Fatalf("stats --json %q: %+v, %v", r.stdout, s, err)
	}

	if r := runCLI(t, "", "get", "docs").want(t, exitOK); r.stdout != "first" {
		t.Fatalf("get printed %q, want first", r.stdout)
	}
	if r := runCLI(t, "", "get", "docs").want(t, exitOK); r.stdout != "" {
		t.Fatalf("get of the empty message printed %q", r.stdout)
	}
	r = runCLI(t, "", "get", "docs").want(t, exitEmpty)
	if r.stdout != "" || r.stderr != "keyq get: queue \"docs\" is empty\n" {
		t.Fatalf("empty get: stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestClientCommandErrors(t *testing.T) {
	srv := testutil.StartServer(t)
	t.Setenv(addrEnv, srv.Addr)

	r := runCLI(t, "x", "put", "a\tb").want(t, exitError)
	if r.stderr != "keyq put: invalid key: contains control character 0x09 at byte 1\n" {
		t.Fatalf("put to a key with a tab: stderr %q", r.stderr)
	}
	r = runCLI(t, "", "put", "q", "/no/such/file").want(t, exitError)
	if !strings.Contains(r.stderr, "/no/such/file") {
		t.Fatalf("put of a missing file: stderr %q", r.stderr)
	}
	// An output that cannot be written costs no message.
	runCLI(t, "kept", "put", "q").want(t, exitOK)
	r = runCLI(t, "", "get", "q", "-o", "/no/such/dir/out").want(t, exitError)
	if !strings.Contains(r.stderr, "/no/such/dir/out") {
		t.Fatalf("get -o into a missing directory: stderr %q", r.stderr)
	}
	if r := runCLI(t, "", "len", "q").want(t, exitOK); r.stdout != "1\n" {
		t.Fatalf("len after a get that could not write = %q, want 1", r.stdout)
	}

	r = runCLI(t, "", "len", "q", "--addr", "127.0.0.1:1").want(t, exitError)
	if !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Fatalf("len against a closed port: stderr %q", r.stderr)
	}
}

func TestVersionAndHelp(t *testing.T) {
	r := runCLI(t, "", "version").want(t, exitOK)
	if !strings.HasPrefix(r.stdout, "keyq "+keyqVersion()+" (go") {
		t.Fatalf("version printed %q", r.stdout)
	}
	for _, args := range [][]string{{"--help"}, {"get", "--help"}, {"completion", "bash"}} {
		if r := runCLI(t, "", args...).want(t, exitOK); r.stdout == "" {
			t.Fatalf("keyq %v printed nothing", args)
		}
	}
}

func TestQueueNamesComplete(t *testing.T) {
	srv := testutil.StartServer(t)
	t.Setenv(addrEnv, srv.Addr)
	for _, q := range []string{"images", "invoices", "tax_returns"} {
		runCLI(t, "x", "put", q).want(t, exitOK)
	}

	r := runCLI(t, "", "__complete", "get", "i").want(t, exitOK)
	if r.stdout != "images\ninvoices\n:4\n" {
		t.Fatalf("completions of get i = %q, want images, invoices, no files", r.stdout)
	}
	r = runCLI(t, "", "__complete", "put", "images", "").want(t, exitOK)
	if !strings.HasSuffix(r.stdout, ":0\n") {
		t.Fatalf("completions of put's FILE = %q, want the shell's default", r.stdout)
	}
}

func TestClientCommandOverConnectionLimit(t *testing.T) {
	srv := testutil.StartServer(t, testutil.WithServer(func(cfg *server.Config) {
		cfg.MaxConns = 1
	}))
	testutil.Dial(t, srv.Addr) // holds the only slot

	r := runCLI(t, "", "len", "q", "--addr", srv.Addr).want(t, exitError)
	if !strings.Contains(r.stderr, "TooManyConnections") ||
		!strings.Contains(r.stderr, srv.Addr) {
		t.Fatalf("len over the connection limit: stderr %q", r.stderr)
	}
}
