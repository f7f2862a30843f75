package server_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/metrics"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

// recordingObserver is a server.Observer that counts what it hears.
type recordingObserver struct {
	mu       sync.Mutex
	requests map[string]int // "door op result"
	open     int
	opened   int
}

func (r *recordingObserver) ConnOpened(door string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open++
	r.opened++
}

func (r *recordingObserver) ConnRefused(string) {}

func (r *recordingObserver) ConnClosed(door string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open--
}

func (r *recordingObserver) RequestRecorder(door, op string) func(uint64, time.Duration,
	error) {
	return func(_ uint64, d time.Duration, err error) { r.observe(door, op, err) }
}

func (r *recordingObserver) observe(door, op string, err error) {
	result := "error"
	switch {
	case err == nil:
		result = "ok"
	case errors.Is(err, broker.ErrEmpty):
		result = "empty"
	case errors.Is(err, context.Canceled):
		result = "cancelled"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[door+" "+op+" "+result]++
}

func (r *recordingObserver) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[key]
}

func (r *recordingObserver) conns() (open, opened int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open, r.opened
}

func TestServerObserverHearsRequestsAndConnections(t *testing.T) {
	obs := &recordingObserver{requests: map[string]int{}}
	s := testutil.StartServer(t, testutil.WithServer(func(cfg *server.Config) {
		cfg.Observer = obs
	}))
	c := testutil.Dial(t, s.Addr)

	c.Do(proto.OpPut, 1, testutil.KeyBody(t, "jobs", []byte("one")))
	c.Do(proto.OpPut, 2, testutil.KeyBody(t, "jobs", []byte("two")))
	c.Do(proto.OpGet, 3, testutil.KeyBody(t, "jobs", nil))
	c.Do(proto.OpLen, 4, testutil.Key(t, "jobs"))
	c.Do(proto.OpGet, 5, testutil.KeyBody(t, "none", nil))
	c.Do(proto.OpGet, 6, getWaitBody(t, "none", 1))
	c.Do(proto.OpLen, 7, nil) // no key: BadRequest

	for key, want := range map[string]int{
		"native put ok":         2,
		"native get ok":         1,
		"native len ok":         1,
		"native get empty":      1,
		"native get_wait empty": 1,
		"native len error":      1,
	} {
		if got := obs.count(key); got != want {
			t.Errorf("%s: %d requests, want %d (all: %v)", key, got, want, obs.requests)
		}
	}
	if open, opened := obs.conns(); open != 1 || opened != 1 {
		t.Fatalf("connections: %d open, %d opened; want 1 and 1", open, opened)
	}

	c.Close()
	testutil.WaitFor(t, 10*time.Second, func() bool {
		open, _ := obs.conns()
		return open == 0
	})
}

func TestServerObserverHearsWaitOfClientThatLeft(t *testing.T) {
	obs := &recordingObserver{requests: map[string]int{}}
	s := testutil.StartServer(t, testutil.WithServer(func(cfg *server.Config) {
		cfg.Observer = obs
	}))
	c := testutil.Dial(t, s.Addr)
	if err := c.Send(proto.OpGet, 1, getWaitBody(t, "none", 60_000)); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return s.Broker.Stats(0).Waiting == 1 })
	c.Close()

	testutil.WaitFor(t, 10*time.Second, func() bool {
		return obs.count("native get_wait cancelled") == 1
	})
}

// BenchmarkServerPipelinedObserved is BenchmarkServerPipelined with the metrics of
// keyq serve as the Observer: its allocs/op must match.
func BenchmarkServerPipelinedObserved(b *testing.B) {
	const depth = 64
	m := metrics.New(metrics.Config{NoRuntime: true})
	s := testutil.StartServer(b, testutil.WithServer(func(cfg *server.Config) {
		cfg.Observer = m
	}))
	c := testutil.Dial(b, s.Addr)
	putBody := testutil.KeyBody(b, "bench", benchMessage)
	getBody := testutil.KeyBody(b, "bench", nil)

	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	sent, recvd := 0, 0
	for b.Loop() {
		op, body := proto.OpPut, putBody
		if sent%2 == 1 {
			op, body = proto.OpGet, getBody
		}
		if err := c.Send(op, uint32(sent), body); err != nil {
			b.Fatal(err)
		}
		sent++
		if sent-recvd >= depth {
			recvd += drain(b, c, depth/2)
		}
	}
	drain(b, c, sent-recvd)
}
