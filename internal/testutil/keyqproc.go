package testutil

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

// buildTimeout bounds `go build` of cmd/keyq; a cold build on a busy machine is far quicker.
const buildTimeout = 5 * time.Minute

// BuildKeyq builds cmd/keyq into a temporary directory of t and returns the binary's path.
// The Go build cache makes every build after the first a link step.
func BuildKeyq(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keyq")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()

	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin,
		"github.com/keyq/keyq/cmd/keyq").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/keyq: %v\n%s", err, out)
	}
	return bin
}

// KeyqProc is a `keyq serve` subprocess started by StartKeyq. Its stderr log is kept in
// memory for Log; the process is killed when the test ends if it is still running.
type KeyqProc struct {
	// Addr is the native protocol's address, taken from the start line of the log.
	Addr string

	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and its log is read

	mu  sync.Mutex // protects log
	log bytes.Buffer
}

// doorsOnFreePorts puts every front door on a free port; flags given after it win.
var doorsOnFreePorts = []string{
	"--addr", "127.0.0.1:0", "--resp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
}

// listenLine matches the start line that serve logs once every door listens.
var listenLine = regexp.MustCompile(`msg=listening .*\baddr=(\S+)`)

// StartKeyq runs `bin serve args...` in the working directory dir (where a default data
// directory would go) and waits up to timeout for its start line. Every front door
// listens on a free port unless args say otherwise (a later flag wins, and an empty
// address turns a door off), so no fixed port is ever bound.
func StartKeyq(t testing.TB, bin, dir string, timeout time.Duration, args ...string) *KeyqProc {
	t.Helper()
	args = append(append([]string{"serve"}, doorsOnFreePorts...), args...)
	p := &KeyqProc{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Dir = dir
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatalf("stderr pipe: %v", err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start keyq serve: %v", err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})

	addrc := make(chan string, 1)
	go p.readLog(stderr, addrc)
	select {
	case p.Addr = <-addrc:
	case <-p.exited:
		t.Fatalf("keyq serve exited before listening:\n%s", p.Log())
	case <-time.After(timeout):
		t.Fatalf("keyq serve logged no start line within %v:\n%s", timeout, p.Log())
	}
	return p
}

// readLog keeps the server's log, sends the address of its start line, and waits
// for the process once the log ends.
func (p *KeyqProc) readLog(r io.Reader, addrc chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.log.WriteString(line + "\n")
		p.mu.Unlock()
		if m := listenLine.FindStringSubmatch(line); m != nil {
			select {
			case addrc <- m[1]:
			default:
			}
		}
	}
	// A line past the scanner's limit ends the scan; keep the pipe drained so the
	// process never blocks on a full stderr.
	io.Copy(io.Discard, r)
	p.cmd.Wait()
	close(p.exited)
}

// Log returns what the server has written to stderr so far.
func (p *KeyqProc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Signal sends sig to the server.
func (p *KeyqProc) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to keyq serve: %v", sig, err)
	}
}

// Wait waits up to timeout for the server to exit and returns its exit code.
func (p *KeyqProc) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("keyq serve still running after %v:\n%s", timeout, p.Log())
	}
	return p.cmd.ProcessState.ExitCode()
}

// Kill sends SIGKILL and waits up to timeout for the process to be gone.
func (p *KeyqProc) Kill(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill keyq serve: %v", err)
	}
	p.Wait(t, timeout)
}
