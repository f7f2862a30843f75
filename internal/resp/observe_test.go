package resp

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// recordingObserver is an Observer that counts what it hears.
type recordingObserver struct {
	mu       sync.Mutex
	requests map[string]int // "door op result"
	open     int
}

func (r *recordingObserver) ConnOpened(string)  { r.mu.Lock(); r.open++; r.mu.Unlock() }
func (r *recordingObserver) ConnClosed(string)  { r.mu.Lock(); r.open--; r.mu.Unlock() }
func (r *recordingObserver) ConnRefused(string) {}

func (r *recordingObserver) RequestRecorder(door, op string) recorder {
	return func(_ uint64, _ time.Duration, err error) { r.observe(door, op, err) }
}

func (r *recordingObserver) observe(door, op string, err error) {
	result := "error"
	switch {
	case err == nil:
		result = "ok"
	case errors.Is(err, broker.ErrEmpty):
		result = "empty"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[door+" "+op+" "+result]++
}

func (r *recordingObserver) snapshot() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.requests))
	for k, v := range r.requests {
		m[k] = v
	}
	return m, r.open
}

// startObservedServer is startServer's broker with a RESP server that reports to obs.
func startObservedServer(t *testing.T, obs Observer) string {
	t.Helper()
	ts := startServer(t, broker.Config{}) // for its broker and cleanup
	s := New(Config{Broker: ts.b, Observer: obs})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-served
	})
	return ln.Addr().String()
}

func TestServerObserverHearsCommandsAndConnections(t *testing.T) {
	for _, proto := range []int{2, 3} {
		obs := &recordingObserver{requests: map[string]int{}}
		addr := startObservedServer(t, obs)
		ts := &testServer{addr: addr}
		rc := ts.client(t, proto)
		ctx := context.Background()

		rc.RPush(ctx, "jobs", "a", "b")
		rc.LPop(ctx, "jobs")
		rc.LPop(ctx, "none")
		rc.Do(ctx, "BLPOP", "none", "0.01") // times out: a null reply
		rc.Do(ctx, "NOSUCH", "x")
		rc.Do(ctx, "LLEN") // wrong number of arguments

		got, open := obs.snapshot()
		for key, want := range map[string]int{
			"resp rpush ok":      1,
			"resp lpop ok":       1,
			"resp lpop empty":    1,
			"resp blpop empty":   1,
			"resp unknown error": 1,
			"resp llen error":    1,
		} {
			if got[key] != want {
				t.Errorf("RESP%d: %s: %d, want %d (all: %v)", proto, key, got[key], want, got)
			}
		}
		if open != 1 {
			t.Errorf("RESP%d: %d connections open, want 1", proto, open)
		}
		rc.Close()
		waitFor(t, 10*time.Second, "the connection's close", func() bool {
			_, open := obs.snapshot()
			return open == 0
		})
	}
}
