package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyq/keyq/client"
)

// KeyqDriver drives a keyq server through the public Go client, one client.Client
// per worker. A Depth above one is reached by that many goroutines sharing the
// client, which pipelines their requests on the connection.
type KeyqDriver struct {
	Addr  string // host:port of the server
	Depth int    // requests in flight per connection; one goroutine each
}

// Name implements Driver.
func (d *KeyqDriver) Name() string { return "keyq" }

// Setup implements Driver: keyq creates a queue on its first put.
func (d *KeyqDriver) Setup(context.Context, []string) error { return nil }

// Dial implements Driver.
func (d *KeyqDriver) Dial(ctx context.Context) (Conn, error) {
	c, err := client.Dial(ctx, d.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial keyq %s: %w", d.Addr, err)
	}
	kc := &keyqConn{c: c}
	if d.Depth > 1 {
		kc.startHelpers(d.Depth)
	}
	return kc, nil
}

// keyqConn is one client plus, for pipelining, helper goroutines that each carry one
// request at a time, so that a round of n requests has n in flight.
type keyqConn struct {
	c       *client.Client
	jobs    chan keyqJob
	results chan keyqResult
	helpers sync.WaitGroup
	backoff time.Duration // current sleep between empty gets
}

type keyqJob struct {
	ctx   context.Context
	queue string
	put   []byte // nil for a get
}

type keyqResult struct {
	data []byte
	err  error
}

func (kc *keyqConn) startHelpers(n int) {
	kc.jobs = make(chan keyqJob, n)
	kc.results = make(chan keyqResult, n)
	for range n {
		kc.helpers.Go(kc.help)
	}
}

// help runs requests for Put and Get until Close closes jobs and waits for it.
func (kc *keyqConn) help() {
	for j := range kc.jobs {
		kc.results <- kc.do(j)
	}
}

func (kc *keyqConn) do(j keyqJob) keyqResult {
	if j.put != nil {
		_, err := kc.c.Put(j.ctx, j.queue, j.put)
		return keyqResult{err: err}
	}
	msg, err := kc.c.Get(j.ctx, j.queue)
	if errors.Is(err, client.ErrEmpty) {
		return keyqResult{}
	}
	return keyqResult{data: msg.Data, err: err}
}

// Put implements Conn.
func (kc *keyqConn) Put(ctx context.Context, queue string, msgs [][]byte) error {
	if kc.jobs == nil {
		for _, m := range msgs {
			if _, err := kc.c.Put(ctx, queue, m); err != nil {
				return err
			}
		}
		return nil
	}
	for _, m := range msgs {
		kc.jobs <- keyqJob{ctx: ctx, queue: queue, put: m}
	}
	var first error
	for range msgs {
		if r := <-kc.results; r.err != nil && first == nil {
			first = r.err
		}
	}
	return first
}

// Get implements Conn. keyq's get does not block yet, so an empty queue is polled
// with a sleep that grows from 20µs to 1ms.
//
// TODO: use the get wait option once the protocol has it, instead of polling.
func (kc *keyqConn) Get(ctx context.Context, queue string, n int, wait time.Duration) (
	[][]byte, error) {
	deadline := time.Now().Add(wait)
	for {
		out, err := kc.getRound(ctx, queue, n)
		if len(out) > 0 || err != nil {
			kc.backoff = 0
			return out, err
		}
		if !time.Now().Before(deadline) {
			return nil, nil
		}
		kc.backoff = min(max(2*kc.backoff, 20*time.Microsecond), time.Millisecond)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(kc.backoff):
		}
	}
}

// getRound sends n gets at once (one when there are no helpers) and returns the
// messages they took.
func (kc *keyqConn) getRound(ctx context.Context, queue string, n int) ([][]byte, error) {
	if kc.jobs == nil || n == 1 {
		r := kc.do(keyqJob{ctx: ctx, queue: queue})
		if r.data == nil {
			return nil, r.err
		}
		return [][]byte{r.data}, r.err
	}
	for range n {
		kc.jobs <- keyqJob{ctx: ctx, queue: queue}
	}
	var out [][]byte
	var first error
	for range n {
		r := <-kc.results
		if r.err != nil && first == nil {
			first = r.err
		}
		if r.data != nil {
			out = append(out, r.data)
		}
	}
	return out, first
}

// Close implements Conn.
func (kc *keyqConn) Close() error {
	if kc.jobs != nil {
		close(kc.jobs)
		kc.helpers.Wait()
	}
	if err := kc.c.Close(); err != nil {
		return fmt.Errorf("close keyq client: %w", err)
	}
	return nil
}
