package bench

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestPacerWaitsUntilDue(t *testing.T) {
	p := newPacer()
	defer p.close()
	if runtime.GOOS == "linux" && p.fine == nil {
		t.Fatal("no fine timer on linux")
	}
	// Under and over coarseMargin, so that both timers are used. Only the lower
	// bound is checked: a slow machine wakes late, never early.
	for _, wait := range []time.Duration{300 * time.Microsecond, 5 * time.Millisecond} {
		due := time.Now().Add(wait)
		if !p.waitUntil(context.Background(), due) {
			t.Fatalf("wait of %v reported the context ended", wait)
		}
		if now := time.Now(); now.Before(due) {
			t.Fatalf("wait of %v returned %v before it was due", wait, due.Sub(now))
		}
	}
	if !p.waitUntil(context.Background(), time.Now().Add(-time.Second)) {
		t.Fatal("a due time in the past reported the context ended")
	}
}

func TestPacerStopsWhenContextEnds(t *testing.T) {
	p := newPacer()
	defer p.close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool, 1)
	go func() { done <- p.waitUntil(ctx, time.Now().Add(time.Hour)) }()
	cancel()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("wait for an hour reported success after its context ended")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not return after its context ended")
	}
}

func TestRunRateReportsPaceLagAndService(t *testing.T) {
	res, err := Run(context.Background(), Config{Producers: 2, Count: 40, Rate: 400},
		newMemDriver())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.PaceLag == nil || res.PutService == nil {
		t.Fatalf("pace lag %v, put service %v; want both with a rate",
			res.PaceLag, res.PutService)
	}
	// Both are parts of the put latency, which counts from when each put was due.
	if res.PutService.P50 > res.PutLatency.Max || res.PaceLag.P50 > res.PutLatency.Max {
		t.Errorf("service p50 %v or lag p50 %v above the put latency's max %v",
			res.PutService.P50, res.PaceLag.P50, res.PutLatency.Max)
	}
	var text strings.Builder
	if err := res.WriteText(&text); err != nil {
		t.Fatalf("write text: %v", err)
	}
	if !strings.Contains(text.String(), "pace lag") || !strings.Contains(text.String(),
		"put service") {
		t.Errorf("text report lacks the pace lag or put service:\n%s", text.String())
	}

	unpaced, err := Run(context.Background(), Config{Count: 10}, newMemDriver())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if unpaced.PaceLag != nil || unpaced.PutService != nil {
		t.Errorf("unpaced run reports pace lag %v, put service %v; want neither",
			unpaced.PaceLag, unpaced.PutService)
	}
}
