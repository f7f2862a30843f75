package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyq/keyq/internal/bench"
	"github.com/keyq/keyq/internal/testutil"
)

func TestBenchCommandJSON(t *testing.T) {
	srv := testutil.StartServer(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"bench", "--addr", srv.Addr, "--count", "500",
		"--producers", "2", "--consumers", "2", "--queues", "2", "--depth", "8", "--json"},
		streams{in: strings.NewReader(""), out: &out, err: &errOut})
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut.String())
	}
	var res bench.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("parse %q: %v", out.String(), err)
	}
	if res.Delivered != 500 || !res.ExactlyOnce || res.Depth != 8 {
		t.Errorf("result %+v, want 500 delivered exactly once at depth 8", res)
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr is not a terminal, yet got %q", errOut.String())
	}
}

func TestBenchCommandBatchAndReserve(t *testing.T) {
	srv := testutil.StartServer(t)
	for _, flags := range [][]string{
		{"--batch", "16", "--depth", "2"},
		{"--mix", "put-reserve-ack", "--depth", "4"},
		{"--mix", "put-reserve-ack", "--batch", "8"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"bench", "--addr", srv.Addr, "--count", "300", "--json"},
			flags...)
		code := run(context.Background(), args,
			streams{in: strings.NewReader(""), out: &out, err: &errOut})
		if code != exitOK {
			t.Fatalf("%v: exit %d, stderr: %s", flags, code, errOut.String())
		}
		var res bench.Result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%v: parse %q: %v", flags, out.String(), err)
		}
		if res.Delivered != 300 || !res.ExactlyOnce {
			t.Errorf("%v: result %+v, want 300 delivered exactly once", flags, res)
		}
	}
}

func TestBenchCommandRefusesBadFlags(t *testing.T) {
	for _, flag := range []string{"--mix=put-put", "--batch=-1", "--size=4"} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"bench", "--addr", "127.0.0.1:1", flag},
			streams{in: strings.NewReader(""), out: &out, err: &errOut})
		if code == exitOK || !strings.HasPrefix(errOut.String(), "keyq bench: ") ||
			strings.Contains(errOut.String(), "bench: bench:") {
			t.Errorf("%s: exit %d, stderr %q; want one bench error", flag, code, errOut.String())
		}
	}
}

func TestBenchCommandWritesProfileAndTraceAtRate(t *testing.T) {
	srv := testutil.StartServer(t)
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	tr := filepath.Join(t.TempDir(), "trace.out")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"bench", "--addr", srv.Addr, "--count", "200",
		"--rate", "2000", "--producers", "2", "--json", "--cpuprofile", prof, "--trace", tr},
		streams{in: strings.NewReader(""), out: &out, err: &errOut})
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut.String())
	}
	var res bench.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("parse %q: %v", out.String(), err)
	}
	if !res.ExactlyOnce || res.PaceLag == nil || res.PutService == nil {
		t.Errorf("result %+v, want exactly once with a pace lag and a put service", res)
	}
	for _, path := range []string{prof, tr} {
		if st, err := os.Stat(path); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v, want a non-empty file", path, err)
		}
	}
}

// TestBenchVerdictSaysWhatFailed: run puts "keyq bench: " before the verdict, so the
// verdict does not start with "bench: " again, and messages the consumers never got
// to are "not taken", not lost.
func TestBenchVerdictSaysWhatFailed(t *testing.T) {
	for _, c := range []struct {
		res  bench.Result
		want string
	}{
		{bench.Result{Errors: 4, NotTaken: 9}, "4 requests failed"},
		{bench.Result{Lost: 2, Duplicates: 1},
			"delivery broken: 2 lost, 1 duplicates, 0 corrupt"},
		{bench.Result{NotTaken: 3, DrainTimedOut: true},
			"3 messages not taken before --drain-timeout ran out"},
		{bench.Result{NotTaken: 5}, "5 messages not taken: the consumers stopped before draining"},
	} {
		err := benchVerdict(&c.res)
		if err == nil || err.Error() != c.want {
			t.Errorf("verdict of %+v = %v, want %q", c.res, err, c.want)
		}
	}
	if err := benchVerdict(&bench.Result{ExactlyOnce: true}); err != nil {
		t.Errorf("verdict of a clean run = %v, want nil", err)
	}
}
