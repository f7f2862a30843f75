package main

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestServeMetricsCountNativeAndRESPRequests: requests over the native protocol and
// RESP show in the /metrics of the HTTP door, by door, op and result.
func TestServeMetricsCountNativeAndRESPRequests(t *testing.T) {
	useMemoryStorage(t)
	addr, log, _ := startServe(t, "--addr", "127.0.0.1:0")
	runCLI(t, "one", "put", "jobs", "--addr", addr).want(t, exitOK)
	runCLI(t, "two", "put", "jobs", "--addr", addr).want(t, exitOK)
	runCLI(t, "", "len", "jobs", "--addr", addr).want(t, exitOK)

	m := respAddrField.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("start line lacks resp_addr:\n%s", log)
	}
	rc := redis.NewClient(&redis.Options{Addr: m[1], Protocol: 2})
	defer rc.Close()
	ctx := context.Background()
	if n, err := rc.LLen(ctx, "jobs").Result(); err != nil || n != 2 {
		t.Fatalf("llen = %d, %v; want 2", n, err)
	}
	if err := rc.LPop(ctx, "none").Err(); err != redis.Nil {
		t.Fatalf("lpop of an empty list: %v, want nil", err)
	}
	rc.Do(ctx, "NOSUCHCOMMAND")

	scrape := scrapeServe(t, log)
	const series = "keyq_request_duration_seconds_count"
	for labels, want := range map[string]float64{
		`{door="native",op="put",result="ok"}`:      2,
		`{door="native",op="len",result="ok"}`:      1,
		`{door="resp",op="llen",result="ok"}`:       1,
		`{door="resp",op="lpop",result="empty"}`:    1,
		`{door="resp",op="unknown",result="error"}`: 1,
	} {
		if got := sampleValue(t, scrape, series+labels); got != want {
			t.Errorf("%s%s = %v, want %v", series, labels, got, want)
		}
	}
	if n := sampleValue(t, scrape, `keyq_connections_accepted_total{door="native"}`); n < 3 {
		t.Errorf(`keyq_connections_accepted_total{door="native"} = %v, want at least 3`, n)
	}
	if n := sampleValue(t, scrape, `keyq_connections{door="resp"}`); n < 1 {
		t.Errorf(`keyq_connections{door="resp"} = %v, want the client's connection open`, n)
	}
}
