package resp

import (
	"bufio"
	"bytes"
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
		{"SignedCount", "*+1\r\n", "invalid multibulk length"},
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

// inputBytes is how many bytes the server has read from its open connections.
func (ts *testServer) inputBytes() int64 {
	ts.s.mu.Lock()
	defer ts.s.mu.Unlock()
	var n int64
	for c := range ts.s.conns {
		n += c.in.passed.Load()
	}
	return n
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestRESPPartialRequestsStayBoundedC24 has 100 clients each send a request just
// under the limits and stall: the server holds about that much for each and no
// more, serves the others meanwhile, and runs each request once it is finished.
func TestRESPPartialRequestsStayBoundedC24(t *testing.T) {
	const clients = 100
	const maxMessage = 64 << 10
	ts := startServerConfig(t, broker.Config{MaxMessageBytes: maxMessage},
		Config{MaxRequestBytes: 256 << 10})
	healthy := ts.client(t, 2)
	wantServing(t, healthy)

	bulk := maxMessage + bulkSlack // the largest bulk string the limits allow
	partial := "*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n" + bulkHeader(bulk) +
		strings.Repeat("v", bulk-1)
	base := heapAlloc()
	rcs := make([]*rawClient, clients)
	for i := range rcs {
		rcs[i] = dialRaw(t, ts.addr)
		rcs[i].send(t, partial)
	}
	want := int64(clients * len(partial))
	waitFor(t, 30*time.Second, "the server to read the partial requests", func() bool {
		return ts.inputBytes() >= want
	})

	// redcon doubles its buffer, so each connection may hold twice its request.
	held := int64(heapAlloc()) - int64(base)
	if bound := int64(clients*4*len(partial) + 16<<20); held > bound {
		t.Fatalf("heap grew %d bytes for %d partial requests, want under %d", held,
			clients, bound)
	}
	t.Logf("heap grew %d bytes for %d partial requests of %d bytes", held, clients,
		len(partial))
	wantServing(t, healthy)

	// Finished, each is a valid request; the value is over the broker's limit.
	for _, rc := range rcs {
		rc.send(t, "v\r\n")
	}
	for _, rc := range rcs {
		if got := rc.line(t); !strings.HasPrefix(got, "-ERR message too large") {
			t.Fatalf("reply = %q, want -ERR message too large", got)
		}
	}
}

func TestRESPLargeValuesAndDeepPipelinesPass(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 2)
	ctx := context.Background()

	value := bytes.Repeat([]byte("0123456789abcdef"), broker.DefaultMaxMessageBytes/16)
	if err := rc.RPush(ctx, "big", value).Err(); err != nil {
		t.Fatalf("rpush of %d bytes: %v", len(value), err)
	}
	if got, err := rc.LPop(ctx, "big").Bytes(); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("lpop = %d bytes, %v; want the %d pushed", len(got), err, len(value))
	}

	const depth = 20000
	_, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range depth {
			p.RPush(ctx, "deep", strconv.Itoa(i))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	got, err := rc.LRange(ctx, "deep", 0, -1).Result()
	if err != nil || len(got) != depth {
		t.Fatalf("lrange = %d values, %v; want %d", len(got), err, depth)
	}
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("value %d = %q, want %d", i, v, i)
		}
	}
}

// TestRESPNonReadingClientsBoundedC24 has 100 clients pipeline LRANGE requests and
// never read the replies: the server's heap stays bounded while they stall, the
// others are served, and the write timeout drops them.
func TestRESPNonReadingClientsBoundedC24(t *testing.T) {
	const clients = 100
	ts := startServerConfig(t, broker.Config{}, Config{WriteTimeout: 2 * time.Second})
	healthy := ts.client(t, 2)
	ctx := context.Background()
	values := make([]any, 64)
	for i := range values {
		values[i] = strings.Repeat("r", 1<<10)
	}
	if err := healthy.RPush(ctx, "range", values...).Err(); err != nil {
		t.Fatalf("rpush: %v", err)
	}

	// 2000 requests ask for 130 MB of replies per client.
	requests := strings.Repeat("*4\r\n$6\r\nLRANGE\r\n$5\r\nrange\r\n$1\r\n0\r\n$2\r\n-1\r\n", 2000)
	base := heapAlloc()
	for range clients {
		rc := dialRaw(t, ts.addr)
		rc.nc.(*net.TCPConn).SetReadBuffer(4 << 10)
		rc.send(t, requests)
	}

	var peak int64
	waitFor(t, 60*time.Second, "the non-reading clients to be dropped", func() bool {
		peak = max(peak, int64(heapAlloc())-int64(base))
		return ts.s.connCount() == 1
	})
	if bound := int64(200 << 20); peak > bound {
		t.Fatalf("heap grew up to %d bytes for %d non-reading clients, want under %d",
			peak, clients, bound)
	}
	t.Logf("heap grew up to %d bytes for %d non-reading clients", peak, clients)
	wantServing(t, healthy)
}

// TestRESPBigRequestBufferReleasedC24 has 50 clients each echo a 1 MiB value and
// then idle: their connections must not keep buffers as large as that request.
func TestRESPBigRequestBufferReleasedC24(t *testing.T) {
	const clients = 50
	ts := startServer(t, broker.Config{})
	value := strings.Repeat("e", broker.DefaultMaxMessageBytes)
	request := "*2\r\n$4\r\nECHO\r\n" + bulkHeader(len(value)) + value + "\r\n"

	base := heapAlloc()
	for range clients {
		rc := dialRaw(t, ts.addr)
		rc.send(t, request)
		if got, want := rc.line(t), "$"+strconv.Itoa(len(value)); got != want {
			t.Fatalf("reply header = %q, want %q", got, want)
		}
		if _, err := io.ReadFull(rc.rd, make([]byte, len(value)+2)); err != nil {
			t.Fatalf("read reply: %v", err)
		}
	}
	// The reader lets its buffer go when it next reads, after the reply is written.
	var held int64
	bound := int64(clients*256<<10 + 8<<20)
	waitFor(t, 10*time.Second, "the big buffers to be released", func() bool {
		held = int64(heapAlloc()) - int64(base)
		return held < bound
	})
	t.Logf("heap grew %d bytes for %d idle clients after a 1 MiB request each", held,
		clients)
}
