package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// httpAddrField finds the HTTP door's address in serve's text start line.
var httpAddrField = regexp.MustCompile(`http_addr=(\S+)`)

// TestServeHTTPDoorSharesQueuesWithNative: a message put over HTTP is got by the
// native protocol and the other way round, and /metrics and /readyz answer.
func TestServeHTTPDoorSharesQueuesWithNative(t *testing.T) {
	useMemoryStorage(t)
	addr, log, _ := startServe(t, "--addr", "127.0.0.1:0")
	m := httpAddrField.FindStringSubmatch(log.String())
	if m == nil || strings.HasSuffix(m[1], ":0") {
		t.Fatalf("start line lacks the bound http_addr:\n%s", log)
	}
	base := "http://" + m[1]

	resp, err := http.Post(base+"/v1/queues/mixed/messages", "", strings.NewReader("via http"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("http put = %d", resp.StatusCode)
	}
	if r := runCLI(t, "", "get", "mixed", "--addr", addr).want(t, exitOK); r.stdout != "via http" {
		t.Fatalf("native get = %q, want the http put", r.stdout)
	}

	runCLI(t, "via native", "put", "mixed", "--addr", addr).want(t, exitOK)
	status, body := httpCall(t, "POST", base+"/v1/queues/mixed/get")
	if status != http.StatusOK || body != "via native" {
		t.Fatalf("http get = %d %q, want the native put", status, body)
	}

	status, body = httpCall(t, "GET", base+"/metrics")
	if status != http.StatusOK || !strings.Contains(body, `keyq_queue_puts_total{queue="mixed"}`) {
		t.Fatalf("/metrics = %d, lacks the queue's series", status)
	}
	if status, _ := httpCall(t, "GET", base+"/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz = %d", status)
	}
	if status, _ := httpCall(t, "GET", base+"/debug/pprof/"); status != http.StatusNotFound {
		t.Fatalf("pprof without --pprof = %d, want 404", status)
	}
}

func TestServeHTTPDoorOff(t *testing.T) {
	useMemoryStorage(t)
	_, log, stop := startServe(t, "--addr", "127.0.0.1:0", "--http-addr", "")
	if code := stop(); code != exitOK {
		t.Fatalf("serve exited %d:\n%s", code, log)
	}
	if strings.Contains(log.String(), "http_addr") {
		t.Fatalf("--http-addr '' still started the HTTP door:\n%s", log)
	}
}

func TestServeHTTPDoorRefusesBadSettings(t *testing.T) {
	useMemoryStorage(t)
	for _, args := range [][]string{
		{"--http-addr", "127.0.0.1:http-port"},
	} {
		serve := append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)
		r := runCLI(t, "", serve...).want(t, exitError)
		if !strings.Contains(r.stderr, strings.TrimPrefix(args[0], "--")) &&
			!strings.Contains(r.stderr, args[1]) {
			t.Fatalf("serve %v: stderr %q names neither the flag nor the value", args, r.stderr)
		}
	}
}

// TestServeBadDoorSettingsAreUsageErrors: a negative count or a wait that is not
// positive is refused while the command line is parsed, with exit status 2 and the flag
// named, like every other such flag.
func TestServeBadDoorSettingsAreUsageErrors(t *testing.T) {
	useMemoryStorage(t)
	for _, args := range [][]string{
		{"--metrics-max-queues", "-5"},
		{"--http-max-wait", "0s"},
		{"--http-max-wait", "-1s"},
	} {
		serve := append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)
		r := runCLI(t, "", serve...).want(t, exitUsage)
		if !strings.Contains(r.stderr, strings.TrimPrefix(args[0], "--")) {
			t.Fatalf("serve %v: stderr %q does not name the flag", args, r.stderr)
		}
	}
}

func httpCall(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}
