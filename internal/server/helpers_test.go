package server_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/testutil"
)

// want fails the test unless f has status st (and, for error statuses, a text
// containing substr).
func want(t *testing.T, f proto.Frame, st proto.Status, substr string) {
	t.Helper()
	if f.Status() != st {
		t.Fatalf("%s id %d: status %v (%q), want %v", f.Op, f.ID, f.Status(), f.Body, st)
	}
	if substr != "" && !strings.Contains(string(f.Body), substr) {
		t.Fatalf("%s id %d: text %q does not contain %q", f.Op, f.ID, f.Body, substr)
	}
}

// u64 decodes the u64 that starts an OK reply to PUT, GET or LEN.
func u64(t *testing.T, f proto.Frame) uint64 {
	t.Helper()
	d := proto.NewBody(f.Body)
	v, err := d.U64()
	if err != nil {
		t.Fatalf("%s id %d: %v", f.Op, f.ID, err)
	}
	return v
}

// put puts msg on key and returns the message id.
func put(t *testing.T, c *testutil.Conn, id uint32, key string, msg []byte) uint64 {
	t.Helper()
	f := c.Do(proto.OpPut, id, testutil.KeyBody(t, key, msg))
	want(t, f, proto.StatusOK, "")
	return u64(t, f)
}

// get takes a message from key; ok is false when the queue was empty.
func get(t *testing.T, c *testutil.Conn, id uint32, key string) (msg []byte, ok bool) {
	t.Helper()
	f := c.Do(proto.OpGet, id, testutil.KeyBody(t, key, nil))
	if f.Status() == proto.StatusEmpty {
		return nil, false
	}
	want(t, f, proto.StatusOK, "")
	return f.Body[8:], true
}

func length(t *testing.T, c *testutil.Conn, id uint32, key string) uint64 {
	t.Helper()
	f := c.Do(proto.OpLen, id, testutil.Key(t, key))
	want(t, f, proto.StatusOK, "")
	return u64(t, f)
}

// expectClosed reads from c until the server closes it, failing if a frame other
// than the fatal error frames arrives.
func expectClosed(t *testing.T, c *testutil.Conn) {
	t.Helper()
	for {
		f, err := c.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
				!isReset(err) {
				t.Fatalf("waiting for close: %v", err)
			}
			return
		}
		if !f.Status().Fatal() {
			t.Fatalf("frame %s id %d status %v after the end", f.Op, f.ID, f.Status())
		}
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") ||
		strings.Contains(err.Error(), "broken pipe"))
}

// dialTCP opens a plain TCP connection, closed by t.Cleanup.
func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}
