package testutil

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procTimeout bounds each wait on the subprocess; a healthy one is far quicker.
const procTimeout = 60 * time.Second

func TestStartKeyqPutsEveryDoorOnAFreePort(t *testing.T) {
	bin := BuildKeyq(t)
	dir := t.TempDir()
	p := StartKeyq(t, bin, dir, procTimeout, "--data-dir", dir)

	if !regexp.MustCompile(`^127\.0\.0\.1:[1-9][0-9]*$`).MatchString(p.Addr) {
		t.Fatalf("Addr = %q, want a loopback address with a port", p.Addr)
	}
	for _, door := range []string{"http_addr", "resp_addr"} {
		m := regexp.MustCompile(`\b` + door + `=(\S+)`).FindStringSubmatch(p.Log())
		if m == nil {
			t.Fatalf("start line names no %s:\n%s", door, p.Log())
		}
		if strings.HasSuffix(m[1], ":7479") || strings.HasSuffix(m[1], ":7480") ||
			strings.HasSuffix(m[1], ":0") || m[1] == p.Addr {
			t.Fatalf("%s = %s, want its own free port", door, m[1])
		}
	}

	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, procTimeout); code != 0 {
		t.Fatalf("keyq serve exited %d after SIGTERM, want 0; log:\n%s", code, p.Log())
	}
}

func TestStartKeyqKillEndsTheProcess(t *testing.T) {
	bin := BuildKeyq(t)
	dir := t.TempDir()
	p := StartKeyq(t, bin, dir, procTimeout, "--data-dir", dir, "--http-addr", "",
		"--resp-addr", "")
	p.Kill(t, procTimeout)
	if code := p.Wait(t, procTimeout); code != -1 {
		t.Fatalf("exit code after SIGKILL = %d, want -1 (killed by a signal)", code)
	}
	if strings.Contains(p.Log(), "msg=stopped") {
		t.Fatalf("a killed server logged a clean stop:\n%s", p.Log())
	}
}
