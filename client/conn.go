package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/keyq/keyq/internal/proto"
)

// call is one request on its way: built by the caller, written by the writer
// goroutine, answered by the reader goroutine through reply.
type call struct {
	op   proto.Op
	id   uint32 // set by register
	body []byte // owned by the call: callers' data is copied in

	reply     chan reply  // buffered: the one send never blocks
	abandoned atomic.Bool // the caller has gone; the writer skips the request if unsent
}

// reply is the outcome of a call: a frame's status and a copy of its body, or err.
type reply struct {
	op     string
	status proto.Status
	body   []byte
	err    error
}

func newCall(op proto.Op, body []byte) *call {
	return &call{op: op, body: body, reply: make(chan reply, 1)}
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

// roundTrip sends cl and waits for its reply. An error status comes back as an
// *Error; an OK or Empty status as a reply for the caller to decode.
func (c *Client) roundTrip(ctx context.Context, cl *call) (reply, error) {
	if err := ctx.Err(); err != nil {
		return reply{}, fmt.Errorf("keyq %s: %w", opName(cl.op), err)
	}
	if err := c.register(cl); err != nil {
		return reply{}, err
	}

	select {
	case c.outbox <- cl:
	case <-ctx.Done():
		c.forget(cl)
		return reply{}, fmt.Errorf("keyq %s: %w", opName(cl.op), ctx.Err())
	case <-c.done:
		// The connection died after register: fail has answered cl.
	}

	select {
	case r := <-cl.reply:
		if r.err != nil {
			return r, r.err
		}
		return r, nil
	case <-ctx.Done():
		c.forget(cl)
		return reply{}, fmt.Errorf("keyq %s: %w", opName(cl.op), ctx.Err())
	}
}

// register gives cl a request id not in use and records it as pending, unless the
// connection is dead.
func (c *Client) register(cl *call) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.err != nil {
		return c.err
	}
	for {
		c.lastID++
		// Id 0 is what the server uses for errors that answer no request.
		if _, busy := c.pending[c.lastID]; c.lastID != 0 && !busy {
			break
		}
	}
	cl.id = c.lastID
	c.pending[cl.id] = cl
	return nil
}

// forget drops a call whose caller has gone: the writer skips it if it is not sent
// yet, and its late reply is discarded.
func (c *Client) forget(cl *call) {
	cl.abandoned.Store(true)
	c.mu.Lock()
	if c.pending[cl.id] == cl {
		delete(c.pending, cl.id)
	}
	c.mu.Unlock()
}

// claim removes and returns the pending call with the given id, or nil.
func (c *Client) claim(id uint32) *call {
	c.mu.Lock()
	defer c.mu.Unlock()

	cl := c.pending[id]
	delete(c.pending, id)
	return cl
}

// writeLoop writes requests from the outbox, in order, and flushes only when the
// outbox is empty, so that a burst of calls from many goroutines leaves in a few
// large writes.
func (c *Client) writeLoop(fw *proto.Writer) {
	for {
		select {
		case cl := <-c.outbox:
			if cl.abandoned.Load() {
				continue // never sent: the server will not take a message for nobody
			}
			if err := fw.WriteFrame(cl.op, 0, cl.id, cl.body); err != nil {
				c.fail(fmt.Errorf("write %s request: %w", cl.op, err))
				return
			}
			if len(c.outbox) > 0 {
				continue
			}
			if err := fw.Flush(); err != nil {
				c.fail(fmt.Errorf("write requests: %w", err))
				return
			}
		case <-c.done:
			return
		}
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
// is dropped. A fatal status, or a reply that answers no call, ends the connection.
func (c *Client) dispatch(f proto.Frame) error {
	st := f.Status()
	cl := c.claim(f.ID)
	if cl == nil {
		if st.Fatal() || f.ID == 0 {
			return fatalError(f)
		}
		return nil // a late reply to a cancelled call
	}
	if f.Op != cl.op {
		err := fmt.Errorf("reply to %s request %d has opcode %s", cl.op, f.ID, f.Op)
		cl.reply <- reply{err: &lostError{addr: c.addr, cause: err}}
		return err
	}

	r := reply{op: opName(cl.op), status: st, body: append([]byte{}, f.Body...)}
	if st.IsError() {
		e := &Error{Op: r.op, Code: Code(st), Text: string(f.Body), Fatal: st.Fatal()}
		r.err = e
		if e.Fatal {
			c.fail(e) // first, so that no later call is sent on a dying connection
		}
		cl.reply <- r
		return nil
	}
	cl.reply <- r
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
	err := cause
	if !errors.Is(cause, ErrClosed) {
		err = &lostError{addr: c.addr, cause: cause}
	}

	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	close(c.done)
	c.mu.Unlock()

	c.conn.Close()
	for _, cl := range pending {
		cl.reply <- reply{op: opName(cl.op), err: err}
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

// expectOK returns an error unless r has status OK.
func (r reply) expectOK() error {
	if r.status != proto.StatusOK {
		return r.badReply(fmt.Errorf("unexpected status %s", r.status))
	}
	return nil
}

// u64 decodes a reply whose body is exactly one u64.
func (r reply) u64() (uint64, error) {
	if err := r.expectOK(); err != nil {
		return 0, err
	}
	d := proto.NewBody(r.body)
	v, err := d.U64()
	if err == nil {
		err = d.End()
	}
	if err != nil {
		return 0, r.badReply(err)
	}
	return v, nil
}

// messageID decodes the reply to a put.
func (r reply) messageID() (uint64, error) { return r.u64() }

// badReply reports a reply that breaks the protocol.
func (r reply) badReply(err error) error {
	return fmt.Errorf("keyq %s: bad reply from server: %w", r.op, err)
}
