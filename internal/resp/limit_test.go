package resp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyq/keyq/internal/broker"
)

// rawClient is a plain TCP connection to the server, for requests no client
// library would send.
type rawClient struct {
	nc net.Conn
	rd *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{nc: nc, rd: bufio.NewReader(nc)}
}

func (rc *rawClient) send(t testing.TB, data string) {
	t.Helper()
	rc.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(rc.nc, data); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// line reads one reply line, CRLF excluded.
func (rc *rawClient) line(t testing.TB) string {
	t.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := rc.rd.ReadString('\n')
	if err != nil {
		t.Fatalf("read reply: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// wantProtocolError reads the protocol error the server answers with, then the
// close.
func (rc *rawClient) wantProtocolError(t testing.TB, text string) {
	t.Helper()
	if got, want := rc.line(t), "-ERR Protocol error: "+text; got != want {
		t.Fatalf("reply = %q, want %q", got, want)
	}
	rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	// A reset is a close too: the server may close with input it did not read.
	n, err := io.Copy(io.Discard, rc.rd)
	if (err != nil && !errors.Is(err, syscall.ECONNRESET)) || n != 0 {
		t.Fatalf("after the error: read %d bytes, err %v; want the close", n, err)
	}
}

// wantServing checks that a well-behaved client is served exactly.
func wantServing(t testing.TB, rc *redis.Client) {
	t.Helper()
	ctx := context.Background()
	if got, err := rc.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("ping = %q, %v", got, err)
	}
	if err := rc.RPush(ctx, "healthy", "a", "b").Err(); err != nil {
		t.Fatalf("rpush: %v", err)
	}
	for _, want := range []string{"a", "b"} {
		if got, err := rc.LPop(ctx, "healthy").Result(); err != nil || got != want {
			t.Fatalf("lpop = %q, %v; want %q", got, err, want)
		}
	}
}

func bulkHeader(n int) string { return "$" + strconv.Itoa(n) + "\r\n" }

func TestRESPLimitsRefuseRequestC24(t *testing.T) {
	ts := startServerConfig(t, broker.Config{MaxMessageBytes: 96 << 10},
		Config{MaxRequestBytes: 128 << 10})
	healthy := ts.client(t, 2)
	bulkCap := (96 << 10) + bulkSlack
	rpushHead := "*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n"

	cases := []struct {
		name, send, want string
	}{
		{"Elements", "*1048577\r\n", "invalid multibulk length"},
		{"HugeCount", "*4294967295\r\n", "invalid multibulk length"},
		{"CountWithoutEnd", "*99999999999", "invalid multibulk length"},
		{"Bulk", "*1\r\n" + bulkHeader(bulkCap+1), "invalid bulk length"},
		{"HugeBulk", "*1\r\n$1073741824\r\n", "invalid bulk length"},
		// redcon alone panics here: its index overflows.
		{"OverflowingBulk", "*1\r\n$9223372036854775807\r\n", "invalid bulk length"},
		{"Request", rpushHead + bulkHeader(bulkCap), "request larger than 131072 bytes"},
		{"ManySmallBulks", "*8192\r\n" + strings.Repeat(bulkHeader(20)+
			strings.Repeat("x", 20)+"\r\n", 6000), "request larger than 131072 bytes"},
		{"Inline", strings.Repeat("a", maxInline+1), "too big inline request"},
		{"CountLine", "*" + strings.Repeat("0", maxInline+1), "too big mbulk count string"},
		{"BulkLine", "*1\r\n$" + strings.Repeat("0", maxInline+1), "too big bulk count string"},
		{"NotBulk", "*1\r\n+x\r\n", "expected '$', got '+'"},
		{"NegativeCount", "*-1\r\n", "invalid multibulk length"},
		{"BadBulkEnd", "*1\r\n$1\r\nxy\r\n", "invalid bulk length"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			rc.send(t, tc.send)
			rc.wantProtocolError(t, tc.want)
			wantServing(t, healthy)
		})
	}
}

func TestRESPLimitsAnswerCommandsBeforeTheBadOneC24(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := dialRaw(t, ts.addr)
	rc.send(t, "PING\r\n*1\r\n$4\r\nPING\r\n*4294967295\r\n")
	for range 2 {
		if got := rc.line(t); got != "+PONG" {
			t.Fatalf("reply = %q, want +PONG", got)
		}
	}
	rc.wantProtocolError(t, "invalid multibulk length")
}

// TestRESPHugeHeaderAllocatesNothingC24 sends headers that declare gigabytes and
// then streams data: the server must answer at once and allocate about nothing.
func TestRESPHugeHeaderAllocatesNothingC24(t *testing.T) {
	ts := startServer(t, broker.Config{})
	healthy := ts.client(t, 2)
	wantServing(t, healthy)

	for _, tc := range []struct{ header, want string }{
		{"*4294967295\r\n", "invalid multibulk length"},
		{"*1\r\n$1073741824\r\n", "invalid bulk length"},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)

		rc := dialRaw(t, ts.addr)
		rc.send(t, tc.header)
		var streamer sync.WaitGroup
		streamer.Go(func() {
			chunk := make([]byte, 64<<10)
			for range 256 { // 16 MiB, or until the server closes
				if _, err := rc.nc.Write(chunk); err != nil {
					return
				}
			}
		})
		rc.wantProtocolError(t, tc.want)
		rc.nc.Close()
		streamer.Wait()

		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
			t.Errorf("%q: allocated %d bytes, want under 4 MiB", tc.header, got)
		}
		wantServing(t, healthy)
	}
}
