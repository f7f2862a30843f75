package main

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// scrapeServe fetches /metrics from the HTTP door named in serve's start line.
func scrapeServe(t *testing.T, log *syncBuffer) string {
	t.Helper()
	m := httpAddrField.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("start line lacks http_addr:\n%s", log)
	}
	status, body := httpCall(t, "GET", "http://"+m[1]+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics = %d", status)
	}
	return body
}

// sampleValue returns the value of the series that starts with series in a text
// scrape, or -1 when there is none.
func sampleValue(t *testing.T, scrape, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(scrape)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("series %s: value %q: %v", series, m[1], err)
	}
	return v
}

// TestServeMetricsCountLogFsyncs: the durable log of serve reports its fsyncs to the
// metrics that the HTTP door serves.
func TestServeMetricsCountLogFsyncs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	addr, log, _ := startServe(t, "--addr", "127.0.0.1:0", "--storage", "disk",
		"--data-dir", dir, "--fsync", "always")
	for range 3 {
		runCLI(t, "job", "put", "jobs", "--addr", addr).want(t, exitOK)
	}

	scrape := scrapeServe(t, log)
	if n := sampleValue(t, scrape, "keyq_fsync_duration_seconds_count"); n < 3 {
		t.Fatalf("keyq_fsync_duration_seconds_count = %v after 3 puts under --fsync always, "+
			"want at least 3", n)
	}
	if n := sampleValue(t, scrape, `keyq_queue_messages{queue="jobs"}`); n != 3 {
		t.Fatalf(`keyq_queue_messages{queue="jobs"} = %v, want 3`, n)
	}
}

// TestServeMetricsMaxQueuesZeroSumsEveryQueue: --metrics-max-queues 0 gives no queue
// series of its own.
func TestServeMetricsMaxQueuesZeroSumsEveryQueue(t *testing.T) {
	useMemoryStorage(t)
	addr, log, _ := startServe(t, "--addr", "127.0.0.1:0", "--metrics-max-queues", "0")
	runCLI(t, "job", "put", "jobs", "--addr", addr).want(t, exitOK)

	scrape := scrapeServe(t, log)
	if strings.Contains(scrape, `queue="jobs"`) {
		t.Fatal("queue jobs has series of its own under --metrics-max-queues 0")
	}
	if n := sampleValue(t, scrape, `keyq_queue_messages{queue="_other"}`); n != 1 {
		t.Fatalf(`keyq_queue_messages{queue="_other"} = %v, want 1`, n)
	}
}
