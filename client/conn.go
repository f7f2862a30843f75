package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// call is one request on its way and, once answered, its reply. A plain call comes
// from callPool and is answered through done; a call of a Pipeline belongs to it and
// is answered under Client.mu (see Pipeline.answeredLocked).
type call struct {
	op    proto.Op
	id    uint32 // set by callTable.add
	frame []byte // the request frame of a plain call; reused

	// Where the frame sits in Client.wbuf while queued is set; guarded by Client.mu.
	start, end int
	queued     bool

	// The reply, written by the reader goroutine (or by fail) before the call is
	// answered.
	status proto.Status
	body   []byte // a copy of the reply's body: buf, or its own for takeBody
	buf    []byte // reused for the bodies that no decoder hands out
	err    error
	done   chan struct{} // buffered: signalled once when a plain call is answered

	pipe   *Pipeline    // set for a call of a pipeline
	result resultSetter // a pipeline's call: where Exec decodes the reply

	queue string // GET: the queue asked, for Message.Queue
	count int    // PUTBATCH: the messages sent
}

// keepBuffer is the largest frame or body buffer a recycled call keeps.
const keepBuffer = 64 << 10

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// getCall returns a plain call for op with an empty frame.
func getCall(op proto.Op) *call {
	cl := callPool.Get().(*call)
	cl.op = op
	cl.frame = cl.frame[:0]
	return cl
}

// putCall recycles a plain call that nothing else refers to any more: answered and
// read, or never registered, or forgotten before its reply was claimed.
func putCall(cl *call) {
	if cap(cl.frame) > keepBuffer {
		cl.frame = nil
	}
	if cap(cl.buf) > keepBuffer {
		cl.buf = nil
	}
	cl.body, cl.err, cl.queue, cl.count, cl.status = nil, nil, "", 0, 0
	callPool.Put(cl)
}

// takeBody hands the reply's body to the caller, who then owns it.
func (cl *call) takeBody() []byte {
	if !handsOutBody(cl.op) {
		return append([]byte{}, cl.body...) // cl.buf is reused
	}
	b := cl.body
	cl.body = nil
	return b
}

// handsOutBody reports whether replies to op are handed to the caller (as a
// message, a document) and so need a buffer of their own.
func handsOutBody(op proto.Op) bool {
	switch op {
	case proto.OpGet, proto.OpGetBatch, proto.OpReserve, proto.OpStats,
		proto.OpQueueSet, proto.OpQueueShow:
		return true
	}
	return false
}

// opName names an operation in errors: "put", "get".
func opName(op proto.Op) string { return opNames[op] }

// opNames holds opName's answers, so that a reply does not lower its name each time.
var opNames = func() (names [256]string) {
	for i := range names {
		names[i] = strings.ToLower(proto.Op(i).String())
	}
	return names
}()

// roundTrip sends cl and waits for its reply. It returns nil when cl holds a reply
// whose status is not an error (OK, Empty, ...): the caller decodes it and recycles
// cl with putCall. Otherwise it returns the error (an *Error for an error status)
// and cl is no longer the caller's.
func (c *Client) roundTrip(ctx context.Context, cl *call) error {
	op := opName(cl.op) // cl may be recycled before the errors below are made
	if err := ctx.Err(); err != nil {
		putCall(cl)
		return fmt.Errorf("keyq %s: %w", op, err)
	}
	if err := c.send(ctx, cl); err != nil {
		putCall(cl)
		return err
	}

	select {
	case <-cl.done:
		if err := cl.err; err != nil {
			putCall(cl)
			return err
		}
		return nil
	case <-ctx.Done():
		if c.forget(cl) {
			putCall(cl) // nobody else refers to it
		}
		return fmt.Errorf("keyq %s: %w", op, ctx.Err())
	}
}

// send registers cl and queues its frame, unless the connection is dead, then
// writes the queue itself if no write is in progress.
func (c *Client) send(ctx context.Context, cl *call) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.pending.add(cl)
	setFrameID(cl.frame, cl.id)
	cl.start = len(c.wbuf)
	c.wbuf = append(c.wbuf, cl.frame...)
	c.queuedLocked(cl)
	c.flushLocked(ctx)
	return nil
}

// directWriteMax is the most bytes a caller writes itself, rather than leaving them
// to the writer goroutine: few enough to fit the socket's buffer at once, so that
// the caller does not block in the write.
const directWriteMax = 16 << 10

// flushLocked gets c.wbuf written and unlocks c.mu. When no write is in progress
// and the queue is small, the caller writes it itself, as net/rpc does, which
// spares waking the writer goroutine for each call; otherwise the writer does.
//
// The caller's own write ends when ctx does, so that a server that stopped reading
// cannot hold a caller past its context: a ctx with a deadline bounds the write, and
// one that can end without a deadline leaves the write to the writer goroutine.
// Whatever a cut-short write left unsent goes to the writer, ahead of the rest.
func (c *Client) flushLocked(ctx context.Context) {
	if c.writing {
		c.mu.Unlock()
		return
	}
	c.writing = true
	deadline, bounded := ctx.Deadline()
	if len(c.wbuf) > directWriteMax || (ctx.Done() != nil && !bounded) {
		c.wake <- struct{}{} // buffered, and empty while writing was false
		c.mu.Unlock()
		return
	}
	buf := c.takeUnsentLocked()
	c.mu.Unlock()

	c.setWriteDeadline(deadline)
	n, err := c.conn.Write(buf)
	c.mu.Lock()
	switch {
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.err == nil:
		c.requeueUnwrittenLocked(buf[n:])
		c.wake <- struct{}{} // the writer goes on without the caller's deadline
	case err != nil:
		c.keepSpareLocked(buf)
		c.mu.Unlock()
		c.fail(fmt.Errorf("write requests: %w", err))
		return
	case len(c.wbuf) > 0 && c.err == nil:
		c.keepSpareLocked(buf)
		c.wake <- struct{}{} // more came meanwhile: the writer goroutine takes over
	default:
		c.keepSpareLocked(buf)
		c.writing = false
	}
	c.mu.Unlock()
}

// setWriteDeadline moves the connection's write deadline to d (zero: none) unless it
// is there already. Only the one who holds c.writing calls it.
func (c *Client) setWriteDeadline(d time.Time) {
	if !d.Equal(c.writeDeadline) {
		c.conn.SetWriteDeadline(d)
		c.writeDeadline = d
	}
}

// requeueUnwrittenLocked puts the bytes a cut-short write left, the tail of frames
// already marked sent, back at the front of c.wbuf for the writer.
func (c *Client) requeueUnwrittenLocked(rest []byte) {
	if len(rest) == 0 {
		return
	}
	c.wbuf = append(append(make([]byte, 0, len(rest)+len(c.wbuf)), rest...), c.wbuf...)
	for _, cl := range c.unsent {
		cl.start += len(rest)
		cl.end += len(rest)
	}
}

// queuedLocked records that cl's frame, at cl.start to cl.end, waits in c.wbuf.
func (c *Client) queuedLocked(cl *call) {
	cl.end = cl.start + frameLen(c.wbuf[cl.start:])
	cl.queued = true
	c.unsent = append(c.unsent, cl)
}

// forget drops a call whose caller has gone: a request not yet written is never
// sent, and a late reply is discarded. It reports whether cl was still waiting;
// if not, its reply has been claimed and cl may still be written to.
func (c *Client) forget(cl *call) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forgetLocked(cl)
}

func (c *Client) forgetLocked(cl *call) bool {
	if !c.pending.removeCall(cl) {
		return false
	}
	if cl.queued {
		c.unqueueLocked(cl)
	}
	return true
}

// unqueueLocked cuts cl's frame out of c.wbuf: the server will not take a message
// for nobody.
func (c *Client) unqueueLocked(cl *call) {
	i := slices.Index(c.unsent, cl)
	n := cl.end - cl.start
	c.wbuf = append(c.wbuf[:cl.start], c.wbuf[cl.end:]...)
	for _, later := range c.unsent[i+1:] {
		later.start -= n
		later.end -= n
	}
	c.unsent = slices.Delete(c.unsent, i, i+1)
	cl.queued = false
}

// writeLoop writes what callers queued in c.wbuf when they leave it to it, in the
// order queued. Callers append while a write is in progress, so a burst of calls
// from many goroutines, or a pipeline's round, leaves in one write.
func (c *Client) writeLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		for {
			buf, ok := c.takeUnsent()
			if !ok {
				break
			}
			c.setWriteDeadline(time.Time{}) // a caller's deadline is not the writer's
			_, err := c.conn.Write(buf)
			c.mu.Lock()
			c.keepSpareLocked(buf)
			c.mu.Unlock()
			if err != nil {
				c.fail(fmt.Errorf("write requests: %w", err))
				return
			}
		}
	}
}

// takeUnsent takes the queued frames, or reports false, and that the writer is
// idle, once nothing is queued.
func (c *Client) takeUnsent() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if len(c.wbuf) == 0 || c.err != nil {
		c.writing = false
		return nil, false
	}
	return c.takeUnsentLocked(), true
}

// takeUnsentLocked swaps the queued frames out of c.wbuf and marks their calls
// sent.
func (c *Client) takeUnsentLocked() []byte {
	buf := c.wbuf
	c.wbuf, c.spare = c.spare, nil
	for _, cl := range c.unsent {
		cl.queued = false
	}
	clear(c.unsent)
	c.unsent = c.unsent[:0]
	return buf
}

// keepWriteBuffer is the largest written buffer a Client keeps for the next swap:
// room for a pipeline's round of 64 messages of 4 KiB (with frames) and more.
const keepWriteBuffer = 1 << 20

// keepSpareLocked keeps buf, written, for the next swap.
func (c *Client) keepSpareLocked(buf []byte) {
	if c.spare == nil && cap(buf) <= keepWriteBuffer && c.err == nil {
		c.spare = buf[:0]
	}
}

// readLoop reads replies and hands each to the call with its request id, until the
// connection fails or is closed.
func (c *Client) readLoop(fr *proto.Reader) {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("server closed the connection")
			}
			c.fail(fmt.Errorf("read reply: %w", err))
			return
		}
		if err := c.dispatch(f); err != nil {
			c.fail(err)
			return
		}
	}
}

// dispatch answers the call that f replies to. A reply for a call that was given up
// is dropped. A fatal status, or a reply that answers no call, ends the connection
// before the call learns its outcome, so that no later call is sent on it.
func (c *Client) dispatch(f proto.Frame) error {
	c.mu.Lock()
	cl := c.pending.remove(f.ID)
	if cl != nil && cl.pipe != nil {
		// A pipeline's call is answered under mu, so that Exec, once it has taken
		// back its unanswered calls under mu, knows none is being written to.
		connErr := c.answer(cl, f)
		if connErr != nil {
			c.failLocked(connErr)
		}
		cl.pipe.answeredLocked()
		c.mu.Unlock()
		return connErr
	}
	c.mu.Unlock()

	if cl == nil {
		if f.Status().Fatal() || f.ID == 0 {
			return fatalError(f)
		}
		return nil // a late reply to a cancelled call
	}
	connErr := c.answer(cl, f)
	if connErr != nil {
		c.fail(connErr)
	}
	cl.done <- struct{}{}
	return connErr
}

// answer writes f into cl as its reply. It returns an error when the connection
// must end: a fatal status, or a reply whose opcode is not the request's.
func (c *Client) answer(cl *call, f proto.Frame) error {
	if f.Op != cl.op {
		err := fmt.Errorf("reply to %s request %d has opcode %s", cl.op, f.ID, f.Op)
		cl.err = &lostError{addr: c.addr, cause: err}
		return err
	}
	st := f.Status()
	cl.status = st
	if !st.IsError() {
		if handsOutBody(cl.op) {
			cl.body = append(make([]byte, 0, len(f.Body)), f.Body...)
		} else {
			cl.buf = append(cl.buf[:0], f.Body...)
			cl.body = cl.buf
		}
		return nil
	}
	e := &Error{Op: opName(cl.op), Code: Code(st), Text: string(f.Body), Fatal: st.Fatal()}
	cl.err = e
	if e.Fatal {
		return e
	}
	return nil
}

// fatalError is the error of a fatal frame that answers no pending call, such as
// TooManyConnections right after the handshake.
func fatalError(f proto.Frame) error {
	op := ""
	if f.Op != proto.OpNone {
		op = opName(f.Op)
	}
	return &Error{Op: op, Code: Code(f.Status()), Text: string(f.Body), Fatal: true}
}

// fail marks the connection dead because of cause, closes it, and fails every
// pending call. Only the first call has an effect.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	c.failLocked(cause)
	c.mu.Unlock()
}

func (c *Client) failLocked(cause error) {
	if c.err != nil {
		return
	}
	err := cause
	if !errors.Is(cause, ErrClosed) {
		err = &lostError{addr: c.addr, cause: cause}
	}
	c.err = err
	close(c.done)
	// Closing unblocks the reader and the writer; it does not wait for them.
	c.conn.Close()

	for _, cl := range c.unsent {
		cl.queued = false
	}
	c.unsent, c.wbuf = nil, nil
	for _, cl := range c.pending.drain() {
		cl.err = err
		if cl.pipe != nil {
			cl.pipe.answeredLocked()
		} else {
			cl.done <- struct{}{} // buffered and empty: an unanswered call's
		}
	}
}

// lostError is the error of every call on a connection that died of cause. It
// matches ErrConnectionLost and, through cause, the *Error of a fatal reply.
type lostError struct {
	addr  string
	cause error
}

func (e *lostError) Error() string {
	var se *Error
	if errors.As(e.cause, &se) {
		return fmt.Sprintf("keyq: connection to %s closed by the server: %s (%s)",
			e.addr, se.Text, se.Code)
	}
	return fmt.Sprintf("keyq: connection to %s lost: %v", e.addr, e.cause)
}

func (e *lostError) Unwrap() []error { return []error{ErrConnectionLost, e.cause} }
