package server_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

// acceptTap passes each accepted connection on to the test as well as to the server.
type acceptTap struct {
	net.Listener
	accepted chan net.Conn
}

func (l acceptTap) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		l.accepted <- nc
	}
	return nc, err
}

// TestServerEnablesKeepAliveC28 checks the socket options of an accepted connection:
// keep-alive on, with the configured period rather than Go's listener default, so a
// peer that vanishes without a FIN is found even with no idle timeout.
func TestServerEnablesKeepAliveC28(t *testing.T) {
	accepted := make(chan net.Conn, 1)
	s := testutil.StartServer(t,
		testutil.WithListener(func(ln net.Listener) net.Listener {
			return acceptTap{ln, accepted}
		}),
		testutil.WithServer(func(c *server.Config) { c.KeepAlive = 7 * time.Second }))
	testutil.Dial(t, s.Addr)
	nc := <-accepted

	raw, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	opt := func(level, name int) int {
		var v int
		var serr error
		raw.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), level, name) })
		if serr != nil {
			t.Fatalf("getsockopt: %v", serr)
		}
		return v
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		return opt(syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE) == 7
	})
	if on := opt(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); on != 1 {
		t.Fatalf("SO_KEEPALIVE = %d", on)
	}
	if intvl := opt(syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL); intvl != 7 {
		t.Fatalf("TCP_KEEPINTVL = %d, want 7", intvl)
	}
	if cnt := opt(syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT); cnt != 4 {
		t.Fatalf("TCP_KEEPCNT = %d, want 4", cnt)
	}
}
