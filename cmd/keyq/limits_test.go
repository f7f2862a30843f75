package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/testutil"
)

// doorAddrs returns the RESP and HTTP addresses of serve's start line.
func doorAddrs(t *testing.T, log *syncBuffer) (respAddr, httpAddr string) {
	t.Helper()
	r := respAddrField.FindStringSubmatch(log.String())
	h := httpAddrField.FindStringSubmatch(log.String())
	if r == nil || h == nil {
		t.Fatalf("start line lacks resp_addr or http_addr:\n%s", log)
	}
	return r[1], h[1]
}

func dialDoor(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testTimeout))
	return nc
}

// readToClose reads until the server closes nc, failing at the test's deadline.
func readToClose(t *testing.T, nc net.Conn) string {
	t.Helper()
	data, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("server kept the connection open: %v (read %q)", err, data)
	}
	return string(data)
}

// TestServeMaxConnsOnEveryDoor: --max-conns 1 lets each door hold one connection of
// its own, and refuses a second one on RESP and on HTTP.
func TestServeMaxConnsOnEveryDoor(t *testing.T) {
	useMemoryStorage(t)
	_, log, _ := startServe(t, "--addr", "127.0.0.1:0", "--max-conns", "1")
	respAddr, httpAddr := doorAddrs(t, log)

	held := dialDoor(t, respAddr)
	fmt.Fprint(held, "PING\r\n")
	if line, _ := bufio.NewReader(held).ReadString('\n'); line != "+PONG\r\n" {
		t.Fatalf("first RESP connection: PING = %q", line)
	}
	got := readToClose(t, dialDoor(t, respAddr))
	if !strings.Contains(got, "max number of clients") {
		t.Fatalf("second RESP connection got %q", got)
	}

	heldHTTP := dialDoor(t, httpAddr) // counted from its accept, before any request
	fmt.Fprint(heldHTTP, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if line, _ := bufio.NewReader(heldHTTP).ReadString('\n'); !strings.Contains(line, "200") {
		t.Fatalf("first HTTP connection: healthz = %q", line)
	}
	second := dialDoor(t, httpAddr)
	fmt.Fprint(second, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := readToClose(t, second); !strings.HasPrefix(got, "HTTP/1.1 503") {
		t.Fatalf("second HTTP connection got %q", got)
	}
}

// TestServeIdleTimeoutOnEveryDoor: --idle-timeout closes a half-sent RESP request
// and a stalled HTTP body, as it does a silent native connection.
func TestServeIdleTimeoutOnEveryDoor(t *testing.T) {
	useMemoryStorage(t)
	addr, log, _ := startServe(t, "--addr", "127.0.0.1:0", "--idle-timeout", "200ms")
	respAddr, httpAddr := doorAddrs(t, log)

	readToClose(t, dialDoor(t, addr))

	half := dialDoor(t, respAddr)
	fmt.Fprint(half, "*3\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$100000\r\nab")
	readToClose(t, half)

	body := dialDoor(t, httpAddr)
	fmt.Fprint(body, "POST /v1/queues/a/messages HTTP/1.1\r\nHost: x\r\n"+
		"Content-Length: 100\r\n\r\nab")
	if got := readToClose(t, body); !strings.HasPrefix(got, "HTTP/1.1 400") {
		t.Fatalf("stalled HTTP body answered %q, want 400", got)
	}
}

// TestServeMaxWaitLeavesRESPBlockingAlone: --max-wait caps native waits only; a RESP
// BLPOP waits as long as it asked, as in Redis (the documented choice).
func TestServeMaxWaitLeavesRESPBlockingAlone(t *testing.T) {
	useMemoryStorage(t)
	_, log, _ := startServe(t, "--addr", "127.0.0.1:0", "--max-wait", "100ms")
	respAddr, _ := doorAddrs(t, log)

	nc := dialDoor(t, respAddr)
	start := time.Now()
	fmt.Fprint(nc, "BLPOP nq 0.6\r\n")
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "*-1") {
		t.Fatalf("BLPOP = %q, %v", line, err)
	}
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Fatalf("BLPOP 0.6 returned after %v: cut by --max-wait 100ms", took)
	}
}

// TestServeMetricsCountRefusedConnections: a connection refused over --max-conns
// counts in keyq_connections_refused_total of its door, on each of the three doors.
func TestServeMetricsCountRefusedConnections(t *testing.T) {
	useMemoryStorage(t)
	addr, log, _ := startServe(t, "--addr", "127.0.0.1:0", "--max-conns", "1")
	respAddr, httpAddr := doorAddrs(t, log)

	dialDoor(t, addr) // holds the native door's one connection
	dialDoor(t, addr)
	dialDoor(t, respAddr)
	readToClose(t, dialDoor(t, respAddr))

	held := dialDoor(t, httpAddr)
	readToClose(t, dialDoor(t, httpAddr))
	held.Close() // frees the HTTP door for the scrape

	// No keep-alive: an idle connection kept by the client would hold the one slot.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var scrape string
	testutil.WaitFor(t, testTimeout, func() bool {
		resp, err := hc.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		scrape = string(body)
		return err == nil && resp.StatusCode == http.StatusOK &&
			sampleValue(t, scrape, `keyq_connections_refused_total{door="native"}`) >= 1
	})
	for _, door := range []string{"native", "resp"} {
		series := `keyq_connections_refused_total{door="` + door + `"}`
		if got := sampleValue(t, scrape, series); got != 1 {
			t.Errorf("%s = %v, want 1", series, got)
		}
	}
	// A scrape made before the server saw the held connection close is refused too.
	if got := sampleValue(t, scrape, `keyq_connections_refused_total{door="http"}`); got < 1 {
		t.Errorf(`keyq_connections_refused_total{door="http"} = %v, want at least 1`, got)
	}
}

// TestServeHelpSaysProbesShareMaxConns: the HTTP door applies --max-conns when it
// accepts a connection, so a health probe is refused at the limit like any request
// (TestServeMaxConnsOnEveryDoor); --help says so, for operators to leave room.
func TestServeHelpSaysProbesShareMaxConns(t *testing.T) {
	help := runCLI(t, "", "serve", "--help").want(t, exitOK).stdout
	for line := range strings.Lines(help) {
		if strings.Contains(line, "--max-conns int") {
			if !strings.Contains(line, "health probes and /metrics scrapes count too") {
				t.Fatalf("--max-conns help does not say probes share the limit: %s", line)
			}
			return
		}
	}
	t.Fatalf("serve --help lacks --max-conns:\n%s", help)
}
