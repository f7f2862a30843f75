package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// ErrNotExecuted is the error of a Result whose request has not been sent yet:
// its Pipeline's Exec has not run since the request was queued.
var ErrNotExecuted = errors.New("keyq: pipeline not executed")

// Pipeline queues requests and sends them together: Exec writes every queued
// request in one write and waits for all their replies. Each method queues one
// request and returns its *Result, which holds the outcome once Exec has returned.
// Results come back in whatever order the server answers (a Get that waits may be
// answered after the requests behind it); each is matched to its request by id.
//
// A Pipeline shares its Client's connection: plain calls from other goroutines, and
// other pipelines, may run at the same time. A Pipeline itself is for one goroutine
// at a time. After Exec it is empty and may queue the next round; Reset lets it
// reuse the memory of earlier rounds' results.
//
//	p := c.Pipeline()
//	put := p.Put("jobs", job)
//	got := p.Get("done", client.Wait(time.Second))
//	if err := p.Exec(ctx); err != nil {
//		return err // the connection died or ctx ended
//	}
//	id, err := put.Result()
//	msg, err := got.Result() // may be ErrEmpty
type Pipeline struct {
	c     *Client
	buf   []byte  // the frames of the queued requests, one after another
	calls []*call // the queued requests, in order

	// Storage reused after Reset, in chunks that never move.
	callSlab slab[call]
	ids      slab[Result[uint64]]
	msgs     slab[Result[Message]]
	lens     slab[Result[int64]]
	nones    slab[Result[struct{}]]
	times    slab[Result[time.Time]]
	idLists  slab[Result[[]uint64]]
	msgLists slab[Result[[]Message]]
	dels     slab[Result[[]Delivery]]

	waiting int           // calls of the running Exec not yet answered; under c.mu
	done    chan struct{} // buffered: signalled when waiting drops to 0
}

// Result is the outcome of one request queued on a Pipeline. It is set when the
// Pipeline's Exec returns; until then Err is ErrNotExecuted. A Result stays valid
// until its Pipeline's Reset.
type Result[T any] struct {
	val    T
	err    error
	decode func(*call) (T, error)
}

// Result returns the request's value and error: the same ones the Client's method
// of the same name returns (ErrEmpty for a Get that found nothing, an *Error for a
// refusal).
func (r *Result[T]) Result() (T, error) { return r.val, r.err }

// Val returns the request's value; the zero value if it failed.
func (r *Result[T]) Val() T { return r.val }

// Err returns the request's error, or nil.
func (r *Result[T]) Err() error { return r.err }

func (r *Result[T]) set(cl *call) {
	if cl.err != nil {
		r.err = cl.err
		return
	}
	r.val, r.err = r.decode(cl)
}

func (r *Result[T]) fail(err error) { r.err = err }

// resultSetter is how Exec fills a call's Result, whatever its type.
type resultSetter interface {
	set(cl *call)
	fail(err error)
}

// Pipeline returns an empty pipeline that sends its requests on c.
func (c *Client) Pipeline() *Pipeline {
	return &Pipeline{c: c, done: make(chan struct{}, 1)}
}

// Queued returns the number of requests queued for the next Exec.
func (p *Pipeline) Queued() int { return len(p.calls) }

// Put queues a Put of data to queue; see Client.Put. Data is copied at once.
func (p *Pipeline) Put(queue string, data []byte, opts ...PutOption) *Result[uint64] {
	r := newResult(&p.ids, decodeU64)
	start := len(p.buf)
	err := p.c.checkSize("put", len(data))
	if err == nil {
		p.buf, err = encodePut(p.buf, queue, data, opts)
	}
	p.queue(proto.OpPut, r, start, err)
	return r
}

// Get queues a Get from queue; see Client.Get. With the Wait option, the server
// answers it once a message comes or the wait is over, possibly after the requests
// queued behind it.
func (p *Pipeline) Get(queue string, opts ...GetOption) *Result[Message] {
	r := newResult(&p.msgs, decodeGet)
	start := len(p.buf)
	var err error
	p.buf, err = encodeGet(p.buf, queue, getOptionsOf(opts).wait)
	if cl := p.queue(proto.OpGet, r, start, err); cl != nil {
		cl.queue = queue
	}
	return r
}

// Len queues a Len of queue; see Client.Len.
func (p *Pipeline) Len(queue string) *Result[int64] {
	r := newResult(&p.lens, decodeLen)
	start := len(p.buf)
	var err error
	p.buf, err = encodeLen(p.buf, queue)
	p.queue(proto.OpLen, r, start, err)
	return r
}

// PutBatch queues a PutBatch of msgs to queue; see Client.PutBatch.
func (p *Pipeline) PutBatch(queue string, msgs [][]byte, opts ...PutOption) *Result[[]uint64] {
	r := newResult(&p.idLists, decodeIDs)
	start := len(p.buf)
	var err error
	p.buf, err = encodePutBatch(p.buf, queue, msgs, opts)
	if cl := p.queue(proto.OpPutBatch, r, start, err); cl != nil {
		cl.count = len(msgs)
	}
	return r
}

// GetBatch queues a GetBatch; see Client.GetBatch.
func (p *Pipeline) GetBatch(queues []string, max int, wait time.Duration) *Result[[]Message] {
	r := newResult(&p.msgLists, decodeMessages)
	start := len(p.buf)
	var err error
	p.buf, err = encodeTake(p.buf, proto.OpGetBatch, queues, max, wait)
	p.queue(proto.OpGetBatch, r, start, err)
	return r
}

// Reserve queues a Reserve; see Client.Reserve.
func (p *Pipeline) Reserve(queues []string, o ReserveOptions) *Result[[]Delivery] {
	r := newResult(&p.dels, decodeDeliveries)
	start := len(p.buf)
	var err error
	p.buf, err = encodeReserve(p.buf, queues, o)
	p.queue(proto.OpReserve, r, start, err)
	return r
}

// Ack queues an Ack of a delivery; see Client.Ack.
func (p *Pipeline) Ack(deliveryID uint64) *Result[struct{}] {
	return p.delivery(proto.OpAck, deliveryID, 0, 0)
}

// Nack queues a Nack of a delivery; see Client.Nack.
func (p *Pipeline) Nack(deliveryID uint64, delay time.Duration) *Result[struct{}] {
	return p.delivery(proto.OpNack, deliveryID, proto.OptNackDelay, delay)
}

// Touch queues a Touch of a delivery; see Client.Touch. Its value is the new
// deadline.
func (p *Pipeline) Touch(deliveryID uint64, lease time.Duration) *Result[time.Time] {
	r := newResult(&p.times, decodeDeadline)
	start := len(p.buf)
	var err error
	p.buf, err = encodeDelivery(p.buf, proto.OpTouch, deliveryID, proto.OptTouchLease, lease)
	p.queue(proto.OpTouch, r, start, err)
	return r
}

func (p *Pipeline) delivery(op proto.Op, id uint64, tag uint8, d time.Duration,
) *Result[struct{}] {
	r := newResult(&p.nones, decodeNone)
	start := len(p.buf)
	var err error
	p.buf, err = encodeDelivery(p.buf, op, id, tag, d)
	p.queue(op, r, start, err)
	return r
}

// queue records the request whose frame was appended to p.buf from start, or, if
// encoding it failed with err, sets its result's error: it will not be sent. It
// returns the request's call, or nil.
func (p *Pipeline) queue(op proto.Op, r resultSetter, start int, err error) *call {
	if err == nil {
		if err = p.c.checkFrame(op, len(p.buf)-start); err != nil {
			p.buf = p.buf[:start]
		}
	}
	if err != nil {
		r.fail(err)
		return nil
	}
	cl := p.callSlab.take() // as an earlier round left it: its buf is reused
	if cap(cl.buf) > keepBuffer {
		cl.buf = nil
	}
	cl.op, cl.start, cl.end, cl.queued = op, start, len(p.buf), false
	cl.status, cl.body, cl.err = 0, nil, nil
	cl.pipe, cl.result, cl.queue, cl.count = p, r, "", 0
	p.calls = append(p.calls, cl)
	return cl
}

// Exec sends the queued requests in one write, waits for every reply, and sets each
// Result. It returns nil when every request was answered, whatever the answer: each
// Result holds its own outcome (a value, ErrEmpty, an *Error). It returns an error
// when the round was cut short: ctx ended (the Results not answered by then hold
// ctx's error, and late replies are discarded), or the connection died (they hold
// an error matching ErrConnectionLost, or ErrClosed). As with Client.Get, a message
// that a Get or GetBatch of an abandoned round took is lost.
//
// Afterwards the Pipeline is empty; a Result queued before stays valid until Reset.
func (p *Pipeline) Exec(ctx context.Context) error {
	calls := p.calls
	defer func() {
		clear(calls)
		p.calls, p.buf = calls[:0], p.buf[:0]
	}()
	if len(calls) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return p.failAll(ctx, calls)
	}
	if err := p.c.sendPipeline(ctx, p, calls); err != nil {
		for _, cl := range calls {
			cl.result.fail(err)
		}
		return err
	}

	select {
	case <-p.done:
	case <-ctx.Done():
		p.c.abandon(ctx, p, calls)
	}
	var first error
	for _, cl := range calls {
		cl.result.set(cl)
		if first == nil && cutShort(cl.err) {
			first = cl.err
		}
	}
	return first
}

// failAll sets every call's result to ctx's error, and returns Exec's.
func (p *Pipeline) failAll(ctx context.Context, calls []*call) error {
	for _, cl := range calls {
		cl.result.fail(fmt.Errorf("keyq %s: %w", opName(cl.op), ctx.Err()))
	}
	return fmt.Errorf("keyq pipeline: %w", ctx.Err())
}

// cutShort reports whether err ended the connection, or the call's wait.
func cutShort(err error) bool {
	if err == nil {
		return false // before e below, which escapes
	}
	var e *Error
	return errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &e) && e.Fatal
}

// Reset empties the pipeline and drops the results of earlier rounds, so that it
// reuses their memory. A Result handed out before Reset must not be used after it.
func (p *Pipeline) Reset() {
	clear(p.calls)
	p.calls, p.buf = p.calls[:0], p.buf[:0]
	p.callSlab.reset()
	p.ids.reset()
	p.msgs.reset()
	p.lens.reset()
	p.nones.reset()
	p.times.reset()
	p.idLists.reset()
	p.msgLists.reset()
	p.dels.reset()
}

// answeredLocked counts one call of the running Exec as answered. Client.mu is held.
func (p *Pipeline) answeredLocked() {
	p.waiting--
	if p.waiting == 0 {
		p.done <- struct{}{} // buffered, and drained before each Exec
	}
}

// sendPipeline registers p's calls and queues p.buf, their frames, in one piece,
// unless the connection is dead, and gets them written.
func (c *Client) sendPipeline(ctx context.Context, p *Pipeline, calls []*call) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	select {
	case <-p.done: // left by a round that was abandoned as it completed
	default:
	}
	p.waiting = len(calls)
	base := len(c.wbuf)
	for _, cl := range calls {
		c.pending.add(cl)
		setFrameID(p.buf[cl.start:], cl.id)
		cl.start += base
	}
	if base == 0 {
		// Nothing else queued: hand p.buf over rather than copy it.
		c.wbuf, p.buf = p.buf, c.wbuf
	} else {
		c.wbuf = append(c.wbuf, p.buf...)
	}
	for _, cl := range calls {
		c.queuedLocked(cl)
	}
	c.flushLocked(ctx)
	return nil
}

// abandon takes back the calls of p that are still unanswered as ctx ends: they
// get ctx's error, those not yet written are never sent, and late replies are
// dropped. Calls are answered under c.mu, so none is written to afterwards.
func (c *Client) abandon(ctx context.Context, p *Pipeline, calls []*call) {
	c.mu.Lock()
	defer c.mu.Unlock()

	for _, cl := range calls {
		if c.forgetLocked(cl) {
			cl.err = fmt.Errorf("keyq %s: %w", opName(cl.op), ctx.Err())
		}
	}
	p.waiting = 0
}

// newResult takes a zeroed Result from s, not yet executed, decoded by decode.
func newResult[T any](s *slab[Result[T]], decode func(*call) (T, error)) *Result[T] {
	r := s.next()
	r.err, r.decode = ErrNotExecuted, decode
	return r
}

// slabChunk is how many values a slab allocates at once.
const slabChunk = 64

// slab hands out pointers to values allocated in chunks that never move, and hands
// the same ones out again after reset.
type slab[T any] struct {
	chunks [][]T
	n      int
}

// next returns a zeroed value.
func (s *slab[T]) next() *T {
	v := s.take()
	var zero T
	*v = zero
	return v
}

// take returns a value as an earlier round left it.
func (s *slab[T]) take() *T {
	i, j := s.n/slabChunk, s.n%slabChunk
	if i == len(s.chunks) {
		s.chunks = append(s.chunks, make([]T, slabChunk))
	}
	s.n++
	return &s.chunks[i][j]
}

func (s *slab[T]) reset() { s.n = 0 }
