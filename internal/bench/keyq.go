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
// per worker. A depth above one is reached by that many goroutines sharing the
// client, which pipelines their requests on the connection. With a batch size above
// one each request is a PUTBATCH or GETBATCH; with MixPutReserveAck consumers
// reserve messages and ack each one.
type KeyqDriver struct {
	Addr string // host:port of the server

	depth, batch int    // from the run's Config
	mix          string // from the run's Config
}

// Name implements Driver.
func (d *KeyqDriver) Name() string { return "keyq" }

// Configure implements Configurer: keyq runs every depth, batch size and mix that
// Validate accepts.
func (d *KeyqDriver) Configure(cfg Config) error {
	d.depth, d.batch, d.mix = cfg.Depth, cfg.Batch, cfg.Mix
	return nil
}

// Setup implements Driver: keyq creates a queue on its first put.
func (d *KeyqDriver) Setup(context.Context, []string) error { return nil }

// Dial implements Driver.
func (d *KeyqDriver) Dial(ctx context.Context) (Conn, error) {
	c, err := client.Dial(ctx, d.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial keyq %s: %w", d.Addr, err)
	}
	kc := &keyqConn{c: c, batch: max(d.batch, 1), reserve: d.mix == MixPutReserveAck}
	if d.depth > 1 {
		kc.startHelpers(d.depth)
	}
	return kc, nil
}

// keyqConn is one client plus, for pipelining, helper goroutines that each carry one
// request at a time, so that a round of n requests has n in flight.
type keyqConn struct {
	c       *client.Client
	batch   int
	reserve bool

	requests chan func() keyqResult
	results  chan keyqResult
	helpers  sync.WaitGroup
}

// keyqResult is what one request gave: the messages it took, if any.
type keyqResult struct {
	msgs [][]byte
	err  error
}

func (kc *keyqConn) startHelpers(n int) {
	kc.requests = make(chan func() keyqResult, n)
	kc.results = make(chan keyqResult, n)
	for range n {
		kc.helpers.Go(kc.help)
	}
}

// help runs requests until Close closes the channel and waits for it.
func (kc *keyqConn) help() {
	for req := range kc.requests {
		kc.results <- req()
	}
}

// do runs reqs, concurrently when there are helpers, and returns the messages they
// took and the first error.
func (kc *keyqConn) do(reqs []func() keyqResult) ([][]byte, error) {
	var out [][]byte
	var first error
	collect := func(r keyqResult) {
		out = append(out, r.msgs...)
		if r.err != nil && first == nil {
			first = r.err
		}
	}
	if kc.requests == nil || len(reqs) == 1 {
		for _, req := range reqs {
			collect(req())
		}
		return out, first
	}
	for _, req := range reqs {
		kc.requests <- req
	}
	for range reqs {
		collect(<-kc.results)
	}
	return out, first
}

// Put implements Conn: one request per message, or per Batch messages.
func (kc *keyqConn) Put(ctx context.Context, queue string, msgs [][]byte) error {
	reqs := make([]func() keyqResult, 0, (len(msgs)+kc.batch-1)/kc.batch)
	for len(msgs) > 0 {
		chunk := msgs[:min(kc.batch, len(msgs))]
		msgs = msgs[len(chunk):]
		reqs = append(reqs, func() keyqResult {
			return keyqResult{err: kc.put(ctx, queue, chunk)}
		})
	}
	_, err := kc.do(reqs)
	return err
}

func (kc *keyqConn) put(ctx context.Context, queue string, msgs [][]byte) error {
	if len(msgs) == 1 {
		_, err := kc.c.Put(ctx, queue, msgs[0])
		return err
	}
	_, err := kc.c.PutBatch(ctx, queue, msgs)
	return err
}

// Get implements Conn. It sends one request per Batch messages of n; the first
// waits up to wait on the server, the others return at once when the queue is
// empty, so a short queue is not held up by requests that find nothing.
func (kc *keyqConn) Get(ctx context.Context, queue string, n int, wait time.Duration) (
	[][]byte, error) {
	reqs := make([]func() keyqResult, 0, (n+kc.batch-1)/kc.batch)
	for i := 0; i < n; i += kc.batch {
		max, w := min(kc.batch, n-i), time.Duration(0)
		if i == 0 {
			w = wait
		}
		reqs = append(reqs, func() keyqResult { return kc.take(ctx, queue, max, w) })
	}
	return kc.do(reqs)
}

// take runs one GET, GETBATCH or RESERVE and, for the last, acks what it leased.
func (kc *keyqConn) take(ctx context.Context, queue string, max int, wait time.Duration) (
	r keyqResult) {
	defer func() {
		if errors.Is(r.err, client.ErrEmpty) {
			r.err = nil
		}
	}()
	if kc.reserve {
		return kc.reserveAndAck(ctx, queue, max, wait)
	}
	if max == 1 {
		msg, err := kc.c.Get(ctx, queue, client.Wait(wait))
		if err != nil {
			return keyqResult{err: err}
		}
		return keyqResult{msgs: [][]byte{msg.Data}}
	}
	msgs, err := kc.c.GetBatch(ctx, []string{queue}, max, wait)
	r.err = err
	for _, m := range msgs {
		r.msgs = append(r.msgs, m.Data)
	}
	return r
}

// reserveAndAck leases up to max messages and acks them, all acks in flight at once.
func (kc *keyqConn) reserveAndAck(ctx context.Context, queue string, max int,
	wait time.Duration) keyqResult {
	ds, err := kc.c.Reserve(ctx, []string{queue}, client.ReserveOptions{Max: max, Wait: wait})
	if err != nil {
		return keyqResult{err: err}
	}
	errs := make([]error, len(ds))
	var acks sync.WaitGroup
	for i, d := range ds {
		acks.Go(func() { errs[i] = kc.c.Ack(ctx, d.DeliveryID) })
	}
	acks.Wait()

	var r keyqResult
	for i, d := range ds {
		if errs[i] != nil {
			// The message will be delivered again; counting it here would hide that.
			r.err = fmt.Errorf("ack delivery %d: %w", d.DeliveryID, errs[i])
			continue
		}
		r.msgs = append(r.msgs, d.Data)
	}
	return r
}

// Close implements Conn.
func (kc *keyqConn) Close() error {
	if kc.requests != nil {
		close(kc.requests)
		kc.helpers.Wait()
	}
	if err := kc.c.Close(); err != nil {
		return fmt.Errorf("close keyq client: %w", err)
	}
	return nil
}
