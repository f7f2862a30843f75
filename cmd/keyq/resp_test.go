package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// respAddrField finds the RESP door's address in serve's text start line.
var respAddrField = regexp.MustCompile(`resp_addr=(\S+)`)

// TestServeRESPDoorSharesQueuesWithNative: RPUSH over RESP is a put the native
// protocol gets, and a native put is what LPOP returns.
func TestServeRESPDoorSharesQueuesWithNative(t *testing.T) {
	useMemoryStorage(t)
	addr, log, _ := startServe(t, "--addr", "127.0.0.1:0", "--resp-addr", "127.0.0.1:0")
	m := respAddrField.FindStringSubmatch(log.String())
	if m == nil || strings.HasSuffix(m[1], ":0") {
		t.Fatalf("start line lacks the bound resp_addr:\n%s", log)
	}
	rc := redis.NewClient(&redis.Options{Addr: m[1]})
	defer rc.Close()
	ctx := context.Background()

	if err := rc.RPush(ctx, "mixed", "via resp").Err(); err != nil {
		t.Fatalf("rpush: %v", err)
	}
	if r := runCLI(t, "", "get", "mixed", "--addr", addr).want(t, exitOK); r.stdout != "via resp" {
		t.Fatalf("native get = %q, want the resp push", r.stdout)
	}
	runCLI(t, "via native", "put", "mixed", "--addr", addr).want(t, exitOK)
	if v, err := rc.LPop(ctx, "mixed").Result(); err != nil || v != "via native" {
		t.Fatalf("lpop = %q, %v; want the native put", v, err)
	}
}

func TestServeRESPDoorOff(t *testing.T) {
	useMemoryStorage(t)
	_, log, stop := startServe(t, "--addr", "127.0.0.1:0", "--resp-addr", "")
	if code := stop(); code != exitOK {
		t.Fatalf("serve exited %d:\n%s", code, log)
	}
	if strings.Contains(log.String(), "resp_addr=") {
		t.Fatalf("resp door started with --resp-addr empty:\n%s", log)
	}
}
