package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestLoggerPrintsDurationsAsStrings: both formats print a duration as "15m0s", in
// groups too, never as nanoseconds.
func TestLoggerPrintsDurationsAsStrings(t *testing.T) {
	for _, format := range []logFormat{"text", "json"} {
		t.Run(string(format), func(t *testing.T) {
			var buf bytes.Buffer
			log := newLogger(&buf, format, logLevel{})
			log.WithGroup("door").Info("listening", "max_wait", 15*time.Minute,
				"took", time.Duration(1500)*time.Microsecond)
			out := buf.String()
			if strings.Contains(out, "900000000000") {
				t.Fatalf("duration printed in nanoseconds: %s", out)
			}
			for _, want := range []string{"15m0s", "1.5ms"} {
				if !strings.Contains(out, want) {
					t.Fatalf("log lacks %q: %s", want, out)
				}
			}
		})
	}
}

// TestServeJSONStartLineDurations: serve's JSON start line gives max_wait and
// idle_timeout as duration strings.
func TestServeJSONStartLineDurations(t *testing.T) {
	useMemoryStorage(t)
	_, log, stop := startServe(t, "--addr", "127.0.0.1:0", "--log-format", "json",
		"--idle-timeout", "90s")
	stop()

	for line := range strings.Lines(log.String()) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if entry["msg"] != "listening" {
			continue
		}
		if entry["max_wait"] != "15m0s" || entry["idle_timeout"] != "1m30s" {
			t.Fatalf("start line max_wait=%v idle_timeout=%v, want 15m0s and 1m30s",
				entry["max_wait"], entry["idle_timeout"])
		}
		return
	}
	t.Fatalf("no start line:\n%s", log)
}
