package main

import (
	"bytes"
	"context"
	"encoding/json"
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

func TestBenchCommandRefusesUnsupported(t *testing.T) {
	for _, flag := range []string{"--mix=put-reserve-ack", "--batch=64"} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"bench", "--addr", "127.0.0.1:1", flag},
			streams{in: strings.NewReader(""), out: &out, err: &errOut})
		if code == exitOK || !strings.Contains(errOut.String(), "not supported yet") {
			t.Errorf("%s: exit %d, stderr %q; want an error saying not supported yet",
				flag, code, errOut.String())
		}
	}
}
