package bench

import (
	"context"
	"sync"
	"time"
)

// memDriver is a queue server inside the test: a map of slices behind one mutex. It
// can drop or duplicate every nth put, so tests can check the delivery verdict.
type memDriver struct {
	mu        sync.Mutex
	queues    map[string][][]byte
	puts      int
	dropEvery int
	dupEvery  int
	setUp     []string
}

func newMemDriver() *memDriver { return &memDriver{queues: map[string][][]byte{}} }

func (d *memDriver) Name() string { return "mem" }

func (d *memDriver) Setup(_ context.Context, queues []string) error {
	d.setUp = queues
	return nil
}

func (d *memDriver) Dial(context.Context) (Conn, error) { return &memConn{d: d}, nil }

type memConn struct{ d *memDriver }

func (c *memConn) Put(_ context.Context, queue string, msgs [][]byte) error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	for _, m := range msgs {
		c.d.puts++
		if c.d.dropEvery > 0 && c.d.puts%c.d.dropEvery == 0 {
			continue
		}
		copies := 1
		if c.d.dupEvery > 0 && c.d.puts%c.d.dupEvery == 0 {
			copies = 2
		}
		for range copies {
			c.d.queues[queue] = append(c.d.queues[queue], append([]byte(nil), m...))
		}
	}
	return nil
}

func (c *memConn) Get(ctx context.Context, queue string, n int, wait time.Duration) (
	[][]byte, error) {
	deadline := time.Now().Add(wait)
	for {
		c.d.mu.Lock()
		q := c.d.queues[queue]
		n = min(n, len(q))
		out := q[:n:n]
		c.d.queues[queue] = q[n:]
		c.d.mu.Unlock()
		if n > 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return out, ctx.Err()
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (c *memConn) Close() error { return nil }
