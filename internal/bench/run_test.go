package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountDeliversExactlyOnce(t *testing.T) {
	for _, cfg := range []Config{
		{Producers: 1, Consumers: 1, Count: 500},
		{Producers: 4, Consumers: 3, Queues: 5, Count: 1001, Depth: 8, MessageBytes: 64},
		{Producers: 2, Consumers: 4, Queues: 2, Count: 300, Depth: 64, MessageBytes: 4096},
	} {
		d := newMemDriver()
		res, err := Run(context.Background(), cfg, d)
		if err != nil {
			t.Fatalf("run %+v: %v", cfg, err)
		}
		if res.Put != cfg.Count || res.Delivered != cfg.Count {
			t.Errorf("put %d, delivered %d, want %d", res.Put, res.Delivered, cfg.Count)
		}
		if !res.ExactlyOnce || res.Errors != 0 {
			t.Errorf("result %+v, want exactly once and no errors", res)
		}
		if len(d.setUp) != max(cfg.Queues, 1) {
			t.Errorf("set up %d queues, want %d", len(d.setUp), cfg.Queues)
		}
		if res.PutLatency.Max == 0 || res.EndToEndLatency.P50 == 0 || res.MsgsPerSec == 0 {
			t.Errorf("latency or throughput missing: %+v", res)
		}
	}
}

func TestRunDetectsLossAndDuplicates(t *testing.T) {
	d := newMemDriver()
	d.dropEvery, d.dupEvery = 10, 7
	cfg := Config{Count: 140, DrainTimeout: 200 * time.Millisecond, GetWait: time.Millisecond}
	res, err := Run(context.Background(), cfg, d)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	// 14 of 140 puts dropped; of the 20 duplicated, 2 were also dropped.
	if res.Lost != 14 || res.Duplicates != 18 || res.ExactlyOnce {
		t.Fatalf("lost %d, duplicates %d, exactly once %v; want 14, 18, false",
			res.Lost, res.Duplicates, res.ExactlyOnce)
	}
}

func TestRunDurationStops(t *testing.T) {
	var progress atomic.Int64
	cfg := Config{
		Producers: 2, Consumers: 2, Queues: 2, Depth: 4, Duration: 100 * time.Millisecond,
		Progress: func(Progress) { progress.Add(1) },
	}
	done := make(chan *Result, 1)
	go func() {
		res, err := Run(context.Background(), cfg, newMemDriver())
		if err != nil {
			t.Errorf("run: %v", err)
		}
		done <- res
	}()
	select {
	case res := <-done:
		if res == nil || res.Put == 0 || !res.ExactlyOnce {
			t.Fatalf("result %+v, want puts delivered exactly once", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a 100ms run did not end within 30s")
	}
	if progress.Load() == 0 {
		t.Error("progress was never reported")
	}
}

func TestConfigRejectsUnsupported(t *testing.T) {
	for _, cfg := range []Config{
		{Mix: MixPutReserveAck},
		{Batch: 64},
	} {
		_, err := Run(context.Background(), cfg, newMemDriver())
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("config %+v: err %v, want ErrNotSupported", cfg, err)
		}
	}
	for _, cfg := range []Config{{MessageBytes: 10}, {Mix: "put-put"}, {Count: -1}} {
		if _, err := Run(context.Background(), cfg, newMemDriver()); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestOwnedCoversEveryQueue(t *testing.T) {
	queues := []string{"a", "b", "c", "d", "e"}
	for _, n := range []int{1, 2, 3, 5, 8} {
		covered := map[string]int{}
		for i := range n {
			for _, q := range owned(i, n, queues) {
				covered[q]++
			}
		}
		if len(covered) != len(queues) {
			t.Errorf("%d workers cover %v, want all of %v", n, covered, queues)
		}
	}
}

func TestResultWriters(t *testing.T) {
	res, err := Run(context.Background(), Config{Count: 10}, newMemDriver())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var text, js bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatalf("write text: %v", err)
	}
	if !strings.Contains(text.String(), "exactly once yes") {
		t.Errorf("text report lacks the verdict:\n%s", text.String())
	}
	if err := res.WriteJSON(&js); err != nil {
		t.Fatalf("write json: %v", err)
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Delivered != 10 {
		t.Errorf("json round trip: %v, delivered %d", err, back.Delivered)
	}
}

func TestRunRatePacesProducers(t *testing.T) {
	cfg := Config{Producers: 2, Consumers: 1, Count: 40, Rate: 200}
	start := time.Now()
	res, err := Run(context.Background(), cfg, newMemDriver())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	// 20 messages a producer at 100/s: the last is due 190ms after the start. Only
	// the lower bound is checked, which sleeping guarantees however slow the machine.
	if took := time.Since(start); took < 190*time.Millisecond || !res.ExactlyOnce {
		t.Fatalf("run took %v, exactly once %v; want at least 190ms", took, res.ExactlyOnce)
	}
	if res.Rate != 200 {
		t.Errorf("result rate %v, want 200", res.Rate)
	}
}

// hangDriver's puts block until their context ends, like a server that stopped
// answering.
type hangDriver struct{ memDriver }

func (d *hangDriver) Dial(context.Context) (Conn, error) { return hangConn{}, nil }

type hangConn struct{}

func (hangConn) Put(ctx context.Context, _ string, _ [][]byte) error {
	<-ctx.Done()
	return ctx.Err()
}

func (hangConn) Get(ctx context.Context, _ string, _ int, wait time.Duration) (
	[][]byte, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(wait):
		return nil, nil
	}
}

func (hangConn) Close() error { return nil }

func TestRunEndsWhenServerHangs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{Duration: 10 * time.Millisecond, DrainTimeout: 10 * time.Millisecond,
		GetWait: time.Millisecond}
	done := make(chan *Result, 1)
	go func() {
		res, _ := Run(ctx, cfg, &hangDriver{})
		done <- res
	}()
	// The run's own deadline (hangGrace past the drain timeout) ends it; cancelling
	// ctx after a while checks the same path without waiting the full grace.
	time.AfterFunc(100*time.Millisecond, cancel)
	select {
	case res := <-done:
		if res == nil || res.Put != 0 {
			t.Fatalf("result %+v, want a result with no puts", res)
		}
	case <-time.After(time.Minute):
		t.Fatal("run against a hung server did not end")
	}
}

func TestRunReportsDrainTimeout(t *testing.T) {
	d := newMemDriver()
	// One consumer that stops taking: a get that never finds the messages.
	res, err := Run(context.Background(), Config{Count: 50, Consumers: 1, Queues: 1,
		DrainTimeout: 50 * time.Millisecond, GetWait: time.Millisecond},
		&blindDriver{memDriver: d})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !res.DrainTimedOut || res.NotTaken != 50 || res.Lost != 0 || res.ExactlyOnce {
		t.Fatalf("timed out %v, not taken %d, lost %d, exactly once %v; "+
			"want true, 50, 0, false", res.DrainTimedOut, res.NotTaken, res.Lost,
			res.ExactlyOnce)
	}
}

// TestRunServerStoppedCountsNotTakenNotLost: when the server stops mid-run, the
// messages it still holds were not taken, not lost: the consumers never drained.
func TestRunServerStoppedCountsNotTakenNotLost(t *testing.T) {
	d := &stoppingDriver{memDriver: newMemDriver(), stopAfter: 10}
	res, err := Run(context.Background(), Config{Count: 50, Depth: 10, GetWait: time.Millisecond},
		d)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Errors == 0 || res.Lost != 0 || res.NotTaken != res.Put-res.Delivered ||
		res.NotTaken == 0 || res.ExactlyOnce {
		t.Fatalf("errors %d, lost %d, not taken %d (put %d, delivered %d), exactly once "+
			"%v; want errors, none lost, the rest not taken", res.Errors, res.Lost,
			res.NotTaken, res.Put, res.Delivered, res.ExactlyOnce)
	}

	var text bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("exactly once not known (consumers stopped before draining; "+
		"messages not taken may still be queued): 50 put, %d delivered, 0 duplicates, "+
		"0 lost, %d not taken, 0 corrupt, 0 taken without an acknowledged put\n",
		res.Delivered, res.NotTaken)
	if !strings.HasSuffix(text.String(), want) {
		t.Fatalf("text ends\n%s\nwant\n%s", text.String(), want)
	}
	var doc map[string]any
	if err := json.Unmarshal(mustJSON(t, res), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["not_taken"] != float64(res.NotTaken) || doc["lost"] != float64(0) {
		t.Fatalf("JSON not_taken %v, lost %v; want %d, 0", doc["not_taken"], doc["lost"],
			res.NotTaken)
	}
}

func mustJSON(t *testing.T, res *Result) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := res.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// stoppingDriver is memDriver until the server "stops" after handing out stopAfter
// messages: every get after that fails.
type stoppingDriver struct {
	*memDriver
	stopAfter int
	taken     int // guarded by memDriver.mu
}

func (d *stoppingDriver) Dial(ctx context.Context) (Conn, error) {
	c, _ := d.memDriver.Dial(ctx)
	return &stoppingConn{memConn: c.(*memConn), d: d}, nil
}

type stoppingConn struct {
	*memConn
	d *stoppingDriver
}

var errStopped = errors.New("server stopped")

func (c *stoppingConn) Get(ctx context.Context, queue string, n int, wait time.Duration) (
	[][]byte, error) {
	c.d.mu.Lock()
	stopped := c.d.taken >= c.d.stopAfter
	c.d.mu.Unlock()
	if stopped {
		return nil, errStopped
	}
	msgs, err := c.memConn.Get(ctx, queue, n, wait)
	c.d.mu.Lock()
	c.d.taken += len(msgs)
	c.d.mu.Unlock()
	return msgs, err
}

// blindDriver puts like memDriver but its gets never find anything.
type blindDriver struct{ *memDriver }

func (d *blindDriver) Dial(ctx context.Context) (Conn, error) {
	c, _ := d.memDriver.Dial(ctx)
	return blindConn{c.(*memConn)}, nil
}

type blindConn struct{ *memConn }

func (blindConn) Get(context.Context, string, int, time.Duration) ([][]byte, error) {
	return nil, nil
}
