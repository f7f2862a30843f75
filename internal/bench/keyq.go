package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyq/keyq/client"
)

// KeyqDriver drives a keyq server through the public Go client, one client.Client
// per worker. A round of more than one request (a depth above one) goes through a
// client.Pipeline: written at once, its replies read together, as go-redis sends a
// pipeline. With a batch size above one each request is a PUTBATCH or GETBATCH;
// with MixPutReserveAck consumers reserve messages and then ack them all in one
// more round.
type KeyqDriver struct {
	Addr string // host:port of the server

	batch int    // from the run's Config
	mix   string // from the run's Config
}

// Name implements Driver.
func (d *KeyqDriver) Name() string { return "keyq" }

// Configure implements Configurer: keyq runs every depth, batch size and mix that
// Validate accepts.
func (d *KeyqDriver) Configure(cfg Config) error {
	d.batch, d.mix = cfg.Batch, cfg.Mix
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
	return &keyqConn{c: c, p: c.Pipeline(), batch: max(d.batch, 1),
		reserve: d.mix == MixPutReserveAck}, nil
}

// keyqConn is one client and the pipeline its rounds go through.
type keyqConn struct {
	c       *client.Client
	p       *client.Pipeline
	batch   int
	reserve bool
	queues  [1]string // the queue list of a GETBATCH or RESERVE, reused

	// The results of the round in progress, kept to reuse their slices.
	puts []*client.Result[uint64]
	gets []*client.Result[client.Message]
}

// Put implements Conn: one request per message, or per Batch messages, all in one
// round.
func (kc *keyqConn) Put(ctx context.Context, queue string, msgs [][]byte) error {
	if len(msgs) <= kc.batch {
		return kc.putOne(ctx, queue, msgs)
	}
	kc.p.Reset()
	ones := kc.puts[:0]
	var batches []*client.Result[[]uint64]
	for len(msgs) > 0 {
		chunk := msgs[:min(kc.batch, len(msgs))]
		msgs = msgs[len(chunk):]
		if len(chunk) == 1 {
			ones = append(ones, kc.p.Put(queue, chunk[0]))
		} else {
			batches = append(batches, kc.p.PutBatch(queue, chunk))
		}
	}
	kc.puts = ones
	if err := kc.p.Exec(ctx); err != nil {
		return err
	}
	for _, r := range ones {
		if err := r.Err(); err != nil {
			return err
		}
	}
	for _, r := range batches {
		if err := r.Err(); err != nil {
			return err
		}
	}
	return nil
}

// putOne puts msgs in one request, without a pipeline.
func (kc *keyqConn) putOne(ctx context.Context, queue string, msgs [][]byte) error {
	if len(msgs) == 1 {
		_, err := kc.c.Put(ctx, queue, msgs[0])
		return err
	}
	_, err := kc.c.PutBatch(ctx, queue, msgs)
	return err
}

// Get implements Conn. It sends one request per Batch messages of n, in one round;
// the first waits up to wait on the server, the others return at once when the
// queue is empty, so a short queue is not held up by requests that find nothing.
func (kc *keyqConn) Get(ctx context.Context, queue string, n int, wait time.Duration) (
	[][]byte, error) {
	kc.queues[0] = queue
	if kc.reserve {
		return kc.reserveAndAck(ctx, n, wait)
	}
	if n <= kc.batch {
		return kc.getOne(ctx, n, wait)
	}

	kc.p.Reset()
	ones := kc.gets[:0]
	var batches []*client.Result[[]client.Message]
	for i := 0; i < n; i += kc.batch {
		max, w := min(kc.batch, n-i), time.Duration(0)
		if i == 0 {
			w = wait
		}
		switch {
		case max == 1 && w > 0:
			ones = append(ones, kc.p.Get(queue, client.Wait(w)))
		case max == 1:
			ones = append(ones, kc.p.Get(queue)) // no option: nothing to allocate
		default:
			batches = append(batches, kc.p.GetBatch(kc.queues[:], max, w))
		}
	}
	kc.gets = ones
	if err := kc.p.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([][]byte, 0, n)
	var first error
	for _, r := range ones {
		m, err := r.Result()
		out, first = appendTaken(out, first, err, m)
	}
	for _, r := range batches {
		ms, err := r.Result()
		out, first = appendTaken(out, first, err, ms...)
	}
	return out, first
}

// appendTaken adds the data of msgs, which a request took unless err, to out, and
// keeps the first error that is not ErrEmpty.
func appendTaken(out [][]byte, first, err error, msgs ...client.Message) ([][]byte, error) {
	if err != nil {
		if first == nil && !errors.Is(err, client.ErrEmpty) {
			first = err
		}
		return out, first
	}
	for _, m := range msgs {
		out = append(out, m.Data)
	}
	return out, first
}

// getOne takes up to n messages in one request, without a pipeline.
func (kc *keyqConn) getOne(ctx context.Context, n int, wait time.Duration) ([][]byte,
	error) {
	if n == 1 {
		msg, err := kc.c.Get(ctx, kc.queues[0], client.Wait(wait))
		return appendTaken(nil, nil, err, msg)
	}
	msgs, err := kc.c.GetBatch(ctx, kc.queues[:], n, wait)
	return appendTaken(nil, nil, err, msgs...)
}

// reserveAndAck leases up to n messages, Batch per request, in one round, then acks
// every one in a second round.
func (kc *keyqConn) reserveAndAck(ctx context.Context, n int, wait time.Duration) (
	[][]byte, error) {
	kc.p.Reset()
	var reserves []*client.Result[[]client.Delivery]
	for i := 0; i < n; i += kc.batch {
		w := time.Duration(0)
		if i == 0 {
			w = wait
		}
		reserves = append(reserves, kc.p.Reserve(kc.queues[:],
			client.ReserveOptions{Max: min(kc.batch, n-i), Wait: w}))
	}
	if err := kc.p.Exec(ctx); err != nil {
		return nil, err
	}

	var first error
	var taken []client.Delivery
	for _, r := range reserves {
		ds, err := r.Result()
		taken = append(taken, ds...)
		_, first = appendTaken(nil, first, err)
	}
	if len(taken) == 0 {
		return nil, first
	}
	acks := make([]*client.Result[struct{}], len(taken))
	for i, d := range taken {
		acks[i] = kc.p.Ack(d.DeliveryID)
	}
	if err := kc.p.Exec(ctx); err != nil {
		return nil, err
	}
	var out [][]byte
	for i, d := range taken {
		if err := acks[i].Err(); err != nil {
			// The message will be delivered again; counting it here would hide that.
			first = cmp.Or(first, fmt.Errorf("ack delivery %d: %w", d.DeliveryID, err))
			continue
		}
		out = append(out, d.Data)
	}
	return out, first
}

// Close implements Conn.
func (kc *keyqConn) Close() error {
	if err := kc.c.Close(); err != nil {
		return fmt.Errorf("close keyq client: %w", err)
	}
	return nil
}
