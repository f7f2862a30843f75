// Package e2e tests keyq from the outside: it builds the keyq binary, runs
// `keyq serve` as a subprocess and drives it through the CLI with real files.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/testutil"
)

// cmdTimeout bounds every command the tests run; none comes near it on a good day.
const cmdTimeout = 60 * time.Second

// maxMessage is the server's default message limit, 1 MiB.
const maxMessage = 1 << 20

func TestCLIEndToEnd(t *testing.T) {
	bin := testutil.BuildKeyq(t)
	// Every listener on a free port: the HTTP API's default is a fixed one.
	srv := testutil.StartKeyq(t, bin, t.TempDir(), cmdTimeout,
		"--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	k := &keyq{t: t, bin: bin, addr: srv.Addr}

	t.Run("FilesRoundTripInOrder", func(t *testing.T) { testFilesRoundTrip(t, k.with(t)) })
	t.Run("StdinAndOutputFlag", func(t *testing.T) { testStdinAndOutput(t, k.with(t)) })
	t.Run("EmptyGetExits3", func(t *testing.T) { testEmptyGet(t, k.with(t)) })
	t.Run("TooLargeFileRefused", func(t *testing.T) { testTooLarge(t, k.with(t)) })
	t.Run("KeyqAddrHonoured", func(t *testing.T) { testKeyqAddr(t, k.with(t)) })
	t.Run("InvalidKeyRefused", func(t *testing.T) { testInvalidKey(t, k.with(t)) })
	t.Run("LenAndStats", func(t *testing.T) { testLenAndStats(t, k.with(t)) })
	t.Run("UsageErrorExits2", func(t *testing.T) { testUsage(t, k.with(t)) })

	// Last: it stops the server.
	t.Run("SIGTERMExitsZero", func(t *testing.T) { testSIGTERM(t, srv) })
}

// testFilesRoundTrip puts generated binary files of many sizes, including empty and
// exactly the limit, and takes them back in order, byte for byte.
func testFilesRoundTrip(t *testing.T, k *keyq) {
	files := writeFiles(t, 0, 1, 7, 4096, 65537, 300_000, maxMessage)

	var lastID uint64
	for _, f := range files {
		out := k.ok("put", "e2e-files", f.path)
		id, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
		if err != nil {
			t.Fatalf("put %s printed %q, want a message id", f.path, out)
		}
		if id <= lastID && lastID != 0 {
			t.Fatalf("put %s: id %d not above the previous %d", f.path, id, lastID)
		}
		lastID = id
	}
	if got := k.ok("len", "e2e-files"); got != strconv.Itoa(len(files))+"\n" {
		t.Fatalf("len after %d puts = %q", len(files), got)
	}

	for i, f := range files {
		got := k.okBytes("get", "e2e-files")
		if !bytes.Equal(got, f.data) {
			t.Fatalf("get #%d: %d bytes differ from %s (%d bytes)", i, len(got), f.path,
				len(f.data))
		}
	}
	k.want(3, "get", "e2e-files")
}

// testStdinAndOutput puts from standard input and gets into a file with --output.
func testStdinAndOutput(t *testing.T, k *keyq) {
	data := randomBytes(3, 100_000)
	k.run(bytes.NewReader(data), "put", "e2e-stdin").expect(t, 0)
	k.run(bytes.NewReader(nil), "put", "e2e-stdin", "-").expect(t, 0)

	dst := filepath.Join(t.TempDir(), "out.bin")
	k.ok("get", "e2e-stdin", "--output", dst)
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get --output wrote %d bytes (err %v), want the %d put", len(got), err,
			len(data))
	}

	// The empty message is a message: exit 0, nothing on stdout.
	if got := k.okBytes("get", "e2e-stdin"); len(got) != 0 {
		t.Fatalf("get of the empty message wrote %d bytes", len(got))
	}
	empty := filepath.Join(t.TempDir(), "none.bin")
	k.want(3, "get", "e2e-stdin", "-o", empty)
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("get -o of an empty queue created the file (stat err %v)", err)
	}
}

func testEmptyGet(t *testing.T, k *keyq) {
	r := k.want(3, "get", "e2e-never-used")
	if len(r.stdout) != 0 {
		t.Fatalf("empty get wrote %q to stdout, want nothing", r.stdout)
	}
	if !strings.Contains(r.stderr, `queue "e2e-never-used" is empty`) {
		t.Fatalf("empty get stderr = %q, want it to say the queue is empty", r.stderr)
	}
}

// testTooLarge puts a file of the limit plus one byte, from a path and from stdin.
func testTooLarge(t *testing.T, k *keyq) {
	big := writeFiles(t, maxMessage+1)[0]

	r := k.want(1, "put", "e2e-big", big.path)
	if !strings.Contains(r.stderr, "message too large") ||
		!strings.Contains(r.stderr, strconv.Itoa(maxMessage)) {
		t.Fatalf("put of %d bytes: stderr = %q, want a too-large error naming the limit",
			len(big.data), r.stderr)
	}
	r = k.run(bytes.NewReader(big.data), "put", "e2e-big")
	r.expect(t, 1)
	if !strings.Contains(r.stderr, "message too large") {
		t.Fatalf("put of %d bytes from stdin: stderr = %q", len(big.data), r.stderr)
	}
	if got := k.ok("len", "e2e-big"); got != "0\n" {
		t.Fatalf("len after refused puts = %q, want 0", got)
	}
}

// testKeyqAddr checks the address order: --addr, then $KEYQ_ADDR, then the default.
func testKeyqAddr(t *testing.T, k *keyq) {
	dead := closedAddr(t)

	env := k.withEnv("KEYQ_ADDR=" + k.addr)
	env.addr = "" // no --addr
	env.ok("put", "e2e-env", writeFiles(t, 10)[0].path)
	if got := env.ok("len", "e2e-env"); got != "1\n" {
		t.Fatalf("len through KEYQ_ADDR = %q, want 1", got)
	}

	// --addr wins over KEYQ_ADDR.
	wrongEnv := k.withEnv("KEYQ_ADDR=" + dead)
	if got := wrongEnv.ok("len", "e2e-env"); got != "1\n" {
		t.Fatalf("len with --addr and a wrong KEYQ_ADDR = %q, want 1", got)
	}

	// KEYQ_ADDR alone, pointing nowhere, is an error that names the address.
	wrongEnv.addr = ""
	r := wrongEnv.want(1, "len", "e2e-env")
	if !strings.Contains(r.stderr, dead) {
		t.Fatalf("len against %s: stderr = %q, want it to name the address", dead, r.stderr)
	}
}

func testInvalidKey(t *testing.T, k *keyq) {
	r := k.want(1, "put", "bad\nkey", writeFiles(t, 1)[0].path)
	if !strings.Contains(r.stderr, "invalid key") || !strings.Contains(r.stderr, "control") {
		t.Fatalf("put to a key with a newline: stderr = %q", r.stderr)
	}
}

func testLenAndStats(t *testing.T, k *keyq) {
	k.run(strings.NewReader("hello"), "put", "e2e-stats").expect(t, 0)
	if got := k.ok("len", "e2e-stats"); got != "1\n" {
		t.Fatalf("len = %q, want 1", got)
	}

	table := k.ok("stats")
	if !regexp.MustCompile(`(?m)^e2e-stats +1 +5 +1 +0( |$)`).MatchString(table) {
		t.Fatalf("stats table has no row for e2e-stats with 1 message of 5 bytes:\n%s", table)
	}
	js := k.ok("stats", "--json")
	if !strings.Contains(js, `"name": "e2e-stats"`) || !strings.Contains(js, `"uptime_seconds"`) {
		t.Fatalf("stats --json:\n%s", js)
	}
}

func testUsage(t *testing.T, k *keyq) {
	for _, args := range [][]string{
		{"get"},
		{"put", "a", "b", "c"},
		{"len", "--no-such-flag", "q"},
		{"no-such-command"},
	} {
		r := k.run(nil, args...)
		r.expect(t, 2)
		if !strings.Contains(r.stderr, "--help") {
			t.Fatalf("keyq %v: stderr = %q, want a pointer to --help", args, r.stderr)
		}
	}
	for _, cmd := range []string{"serve", "put", "get", "len", "stats", "version"} {
		r := k.run(nil, cmd, "--help")
		r.expect(t, 0)
		if !strings.Contains(string(r.stdout), "Usage:") {
			t.Fatalf("keyq %s --help printed no usage:\n%s", cmd, r.stdout)
		}
	}
}

func testSIGTERM(t *testing.T, srv *testutil.KeyqProc) {
	srv.Signal(t, syscall.SIGTERM)
	if code := srv.Wait(t, cmdTimeout); code != 0 {
		t.Fatalf("keyq serve exited %d after SIGTERM, want 0; log:\n%s", code, srv.Log())
	}
	if !strings.Contains(srv.Log(), "msg=stopped") {
		t.Fatalf("keyq serve log has no stop line:\n%s", srv.Log())
	}
}

// keyq runs client commands against one server.
type keyq struct {
	t    *testing.T
	bin  string
	addr string // passed as --addr unless empty
	env  []string
}

func (k *keyq) with(t *testing.T) *keyq {
	c := *k
	c.t = t
	return &c
}

func (k *keyq) withEnv(env ...string) *keyq {
	c := *k
	c.env = append(append([]string{}, k.env...), env...)
	return &c
}

// ran is the outcome of one command.
type ran struct {
	args   []string
	code   int
	stdout []byte
	stderr string
}

func (r ran) expect(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("keyq %q exited %d, want %d; stderr: %s", r.args, r.code, code, r.stderr)
	}
}

// clientCommands are the commands that take --addr.
var clientCommands = map[string]bool{"put": true, "get": true, "len": true, "stats": true}

// run runs keyq with args (after --addr if set) and stdin (none if nil).
func (k *keyq) run(stdin io.Reader, args ...string) ran {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()

	full := args
	if k.addr != "" && len(args) > 0 && clientCommands[args[0]] {
		full = append(append([]string{}, args...), "--addr", k.addr)
	}
	cmd := exec.CommandContext(ctx, k.bin, full...)
	cmd.Env = append(withoutKeyqAddr(os.Environ()), k.env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		k.t.Fatalf("run keyq %q: %v", full, err)
	}
	return ran{args: full, code: cmd.ProcessState.ExitCode(), stdout: stdout.Bytes(),
		stderr: stderr.String()}
}

// want runs keyq without stdin and checks its exit status.
func (k *keyq) want(code int, args ...string) ran {
	k.t.Helper()
	r := k.run(nil, args...)
	r.expect(k.t, code)
	return r
}

func (k *keyq) okBytes(args ...string) []byte {
	k.t.Helper()
	return k.want(0, args...).stdout
}

func (k *keyq) ok(args ...string) string {
	k.t.Helper()
	return string(k.okBytes(args...))
}

func withoutKeyqAddr(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KEYQ_ADDR=") {
			out = append(out, kv)
		}
	}
	return out
}

// file is a generated test file.
type file struct {
	path string
	data []byte
}

// writeFiles writes one file of random bytes per size into a temporary directory.
func writeFiles(t *testing.T, sizes ...int) []file {
	t.Helper()
	dir := t.TempDir()
	files := make([]file, len(sizes))
	for i, size := range sizes {
		f := file{
			path: filepath.Join(dir, fmt.Sprintf("file-%02d-%d.bin", i, size)),
			data: randomBytes(uint64(i), size),
		}
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatalf("write %s: %v", f.path, err)
		}
		files[i] = f
	}
	return files
}

func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(n)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
