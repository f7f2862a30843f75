package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/linger"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/warnlimit"
)

// outboxLen is how many replies a connection queues for its writer (the replies sent
// after the reader stopped reading); Config.MaxOutputBytes bounds their bytes.
const outboxLen = 256

// errStopping ends a read once the server has stopped reading the connection.
var errStopping = errors.New("server: connection stopped reading")

// conn is one client connection. Its reader goroutine (serve, readLoop) decodes and
// executes requests; its writer goroutine (writeLoop) writes the replies others
// queue. The reader writes its own replies itself while nothing is queued (see
// reply); wmu serializes the two.
type conn struct {
	s      *Server
	nc     net.Conn
	id     uint64 // the connection's number, in logs and as its metrics shard
	log    *slog.Logger
	remote string // the peer's host, the key of its warning rate limit

	// Owned by the reader.
	br          *bufio.Reader
	fr          *proto.Reader
	readTimeout time.Duration // the handshake's, then the idle timeout
	ctx         context.Context
	cancel      context.CancelFunc
	lastKey     string        // the key of the last request, reused by key
	batch       [][]byte      // a PUTBATCH's messages, the list reused for the next
	readAt      time.Duration // conn.clock when the last read from the network returned
	// readDeadlineSet is whether the reader left a read deadline on the connection.
	readDeadlineSet bool

	// Requests that wait run on their own goroutines (see blocked.go).
	waitCtx      context.Context
	cancelWaits  context.CancelCauseFunc
	blocked      sync.WaitGroup
	nblocked     atomic.Int64
	durableq     chan pending  // requests waiting for the disk; made on first use
	ndurable     atomic.Int64  // requests waiting for the disk (durable.go)
	durableFreed chan struct{} // the durable waiter pokes it after each reply
	lastDone     atomic.Int64  // unix nanoseconds when a request in progress last ended

	ownerMu sync.Mutex    // protects owner
	owner   *broker.Owner // binds the connection's leases; nil until the first

	// Guarded by wmu: the writer's, and the reader's while nothing is queued.
	wmu           sync.Mutex
	bw            *bufio.Writer
	fw            *proto.Writer
	num           [8]byte   // scratch for a reply's u64; on the stack it would escape
	writeDeadline time.Time // set on nc, see armWriteDeadline

	outbox   chan reply
	queued   atomic.Int64  // bytes of replies in the outbox or being written
	drained  chan struct{} // the writer pokes it after each reply it writes
	done     chan struct{} // closed when the writer stops
	stopping atomic.Bool   // set by Shutdown: read nothing more from the network
}

func newConn(s *Server, nc net.Conn, id uint64) *conn {
	c := &conn{
		s:            s,
		nc:           nc,
		id:           id,
		remote:       warnlimit.Host(nc.RemoteAddr()),
		readTimeout:  s.cfg.HandshakeTimeout,
		outbox:       make(chan reply, outboxLen),
		drained:      make(chan struct{}, 1),
		durableFreed: make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	c.log = s.log.With("conn", id, "remote", nc.RemoteAddr().String())
	c.br = bufio.NewReaderSize(idleReader{c}, bufferSize)
	c.fr = proto.NewReader(c.br, s.maxFrame)
	c.bw = bufio.NewWriterSize(nc, bufferSize)
	c.fw = proto.NewWriter(c.bw)
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	c.waitCtx, c.cancelWaits = context.WithCancelCause(c.ctx)
	return c
}

// idleReader reads from the connection with a deadline, so that a connection idle
// for the idle timeout is closed. Idle means no byte received and no request in
// progress (see busy): the clock starts at the last byte received or at the end of
// the last request in progress, whichever is later. A deadline that passes while a
// request is in progress is pushed back and the read goes on.
type idleReader struct{ c *conn }

func (r idleReader) Read(p []byte) (int, error) {
	c := r.c
	var idleSince time.Time
	if c.readTimeout > 0 {
		idleSince = time.Now()
	}
	for {
		var deadline time.Time // none: also clears the handshake's
		if c.readTimeout > 0 {
			deadline = idleSince.Add(c.readTimeout)
		}
		// With no idle timeout the deadline stays cleared once cleared: setting it
		// again would cost a call into the poller on every read.
		if !deadline.IsZero() || c.readDeadlineSet {
			c.nc.SetReadDeadline(deadline)
			c.readDeadlineSet = !deadline.IsZero()
		}
		// Checked after setting the deadline: stopReading sets the flag, then a
		// deadline in the past, so either we see the flag or its deadline overrides ours.
		if c.stopping.Load() {
			return 0, errStopping
		}
		n, err := c.nc.Read(p)
		if n > 0 || c.readTimeout <= 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		// busy is checked before lastDone: a request in progress stores its end
		// time before it stops counting as in progress (markDone).
		switch {
		case c.stopping.Load():
			return 0, errStopping
		case c.busy():
			idleSince = time.Now()
		case c.lastDone.Load() > idleSince.UnixNano():
			idleSince = time.Unix(0, c.lastDone.Load())
		default:
			return n, err
		}
	}
}

// busy reports whether the connection has a request in progress: waiting for a
// message, waiting for the disk, or with its reply not yet written.
func (c *conn) busy() bool {
	return c.nblocked.Load() > 0 || c.ndurable.Load() > 0 || c.queued.Load() > 0
}

// markDone records that a request in progress ends now, for the idle clock. Called
// before the request stops counting in busy.
// Without an idle timeout nobody reads the clock it would store.
func (c *conn) markDone() {
	if c.s.cfg.IdleTimeout > 0 {
		c.lastDone.Store(time.Now().UnixNano())
	}
}

// stopReading makes the reader stop reading from the network: it answers what it
// already holds and ends. Called by Shutdown, from any goroutine.
func (c *conn) stopReading() {
	c.stopping.Store(true)
	c.nc.SetReadDeadline(time.Unix(1, 0))
}

// serve runs the connection: handshake, then the reader here and the writer on its
// own goroutine, then the close.
func (c *conn) serve() {
	defer c.s.removeConn(c)
	defer c.cancel()
	c.s.connOpened()
	defer c.s.connClosed()

	if !c.handshake() {
		c.nc.Close()
		return
	}
	var writer sync.WaitGroup
	writer.Go(c.writeLoop)

	fatal := c.readLoop()
	c.closeDurable()
	cause := errClientGone
	if c.stopping.Load() {
		cause = errShutdown
	}
	c.endWaits(cause)
	c.releaseLeases()
	if c.stopping.Load() && !fatal {
		c.sayGoodbye()
	}
	close(c.outbox)
	writer.Wait()
	// A client may still be sending after a fatal error or a shutdown: close gently, or
	// the unread input turns the close into a reset that destroys the last replies.
	if fatal || c.stopping.Load() {
		linger.Close(c.nc)
		return
	}
	c.nc.Close()
}

// sayGoodbye sends, after the last reply of a connection that a shutdown ends, a
// ShuttingDown frame with request id 0: every request the server read has been
// answered by then, so the client knows that those it still waits for were never
// read, hence never run, and may be sent again elsewhere, rather than losing the
// connection with their outcome unknown.
func (c *conn) sayGoodbye() {
	rp := reply{op: proto.OpNone}
	rp.fail(proto.StatusShuttingDown,
		"server is shutting down; requests not answered were not run")
	c.send(rp)
}

// handshake reads the client hello and answers it. It returns false if the
// connection must close.
func (c *conn) handshake() bool {
	h, err := proto.ReadClientHello(c.br)
	if err != nil {
		if errors.Is(err, proto.ErrBadMagic) {
			c.warn("not a keyq client", "err", err)
		} else {
			c.log.Debug("handshake failed", "err", err)
		}
		return false
	}

	version := proto.Negotiate(h.Version)
	hello := proto.ServerHello{
		Version:    version,
		MaxMessage: uint32(c.s.broker.MaxMessageBytes()),
		MaxFrame:   uint32(c.s.maxFrame),
	}
	c.writeDeadline = time.Now().Add(c.s.cfg.HandshakeTimeout)
	c.nc.SetWriteDeadline(c.writeDeadline)
	c.bw.Write(hello.Append(nil))
	if err := c.bw.Flush(); err != nil {
		c.log.Debug("handshake failed", "err", err)
		return false
	}
	if version == 0 {
		c.log.Debug("no protocol version in common", "offered", h.Version)
		return false
	}
	c.readTimeout = c.s.cfg.IdleTimeout
	return true
}

// readLoop reads, executes and answers requests until the connection ends. It
// returns true when it ended on a fatal error, whose reply the client should get to
// read before the close.
func (c *conn) readLoop() (fatal bool) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("panic serving connection", "panic", v, "stack", string(debug.Stack()))
			fatal = false
		}
	}()

	for {
		// A request already in the buffer came with the read that brought it, so
		// it shares that read's clock reading: its time counts from its arrival.
		buffered := c.fr.FrameBuffered()
		f, err := c.fr.ReadFrame()
		if err != nil {
			return c.readFailed(err)
		}
		if !buffered || c.readAt == 0 {
			c.readAt = c.clock()
		}
		rp, wait, later := c.execute(f)
		if wait != nil {
			if later = c.startBlocked(wait); !later {
				refuseBlocked(&rp)
			}
		}
		if !later && keepsDurableOrder(f.Op) && !rp.status.Fatal() {
			later = c.queueRefused(rp)
		}
		if later {
			// A reply held back because this request had already come would
			// otherwise wait as long as this request does.
			if !c.fr.FrameBuffered() && !c.flushHeld() {
				return false
			}
			continue
		}
		rp.more = c.fr.FrameBuffered()
		if !c.reply(rp) {
			return false
		}
		if rp.status.Fatal() {
			c.warn("bad request from client, closing", "op", f.Op, "err", string(rp.body))
			return true
		}
	}
}

// readFailed handles the end of reading: a clean close, a timeout, a shutdown, or a
// frame that broke the protocol.
func (c *conn) readFailed(err error) (fatal bool) {
	if pe := proto.AsError(err); pe != nil {
		c.warn("bad frame from client, closing", "err", err)
		c.send(reply{op: proto.OpNone, status: pe.Code, body: []byte(pe.Text)})
		return true
	}

	switch {
	case c.stopping.Load():
		c.answerBuffered()
	case errors.Is(err, io.EOF):
		c.log.Debug("connection closed by client")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Debug("idle timeout, closing", "idle", c.readTimeout)
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.log.Debug("client disconnected in the middle of a frame")
	default:
		c.log.Debug("read failed", "err", err)
	}
	return false
}

// answerBuffered answers ShuttingDown to every whole request already received.
func (c *conn) answerBuffered() {
	for c.fr.FrameBuffered() {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		rp := reply{op: f.Op, id: f.ID}
		rp.fail(proto.StatusShuttingDown, "server is shutting down; request not run")
		if !c.send(rp) {
			return
		}
	}
}

// send queues rp for the writer, first waiting while the replies already queued are
// over the output cap. It returns false if the writer has stopped.
func (c *conn) send(rp reply) bool {
	c.observeReply(&rp, true)
	for c.queued.Load() > int64(c.s.cfg.MaxOutputBytes) {
		select {
		case <-c.drained:
		case <-c.done:
			return false
		}
	}

	c.queued.Add(int64(rp.size()))
	select {
	case c.outbox <- rp:
		return true
	case <-c.done:
		return false
	}
}

// reply sends rp: written at once, on the calling goroutine (the reader, a wait's,
// the durable waiter), when no reply is queued for the writer (so that it cannot
// overtake one), else queued as send does. Writing it here spares the handoff to the
// writer goroutine. It returns false if the connection can no longer be written to.
func (c *conn) reply(rp reply) bool {
	if c.queued.Load() != 0 {
		return c.send(rp)
	}
	c.wmu.Lock()
	if c.queued.Load() != 0 {
		c.wmu.Unlock()
		return c.send(rp)
	}
	c.observeReply(&rp, true)
	err := c.write(rp)
	if err == nil && !rp.more {
		err = c.flush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.writeFailed(err)
		return false
	}
	return true
}

// flushHeld flushes what the reader wrote or queued without a flush because more
// requests were coming: at once when nothing is queued, else through the writer.
func (c *conn) flushHeld() bool {
	c.wmu.Lock()
	if c.queued.Load() != 0 {
		c.wmu.Unlock()
		return c.send(flushReply)
	}
	err := c.flush()
	c.wmu.Unlock()
	if err != nil {
		c.writeFailed(err)
		return false
	}
	return true
}

// writeLoop writes the queued replies in order, flushing when the outbox is empty and
// the reader holds no further request, and ends when the outbox closes or a write
// fails; a failed write closes the connection, which ends the reader too.
func (c *conn) writeLoop() {
	defer close(c.done)
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("panic writing to connection", "panic", v, "stack", string(debug.Stack()))
			c.nc.Close()
		}
	}()

	for rp := range c.outbox {
		c.wmu.Lock()
		err := c.writeQueued(rp)
		c.wmu.Unlock()
		if err != nil {
			c.writeFailed(err)
			return
		}
	}
	c.wmu.Lock()
	err := c.flush()
	c.wmu.Unlock()
	if err != nil {
		c.writeFailed(err)
	}
}

// writeQueued writes rp, taken from the outbox, and flushes unless more replies are
// coming. Called with wmu held; the reply stops counting as queued once written, so
// that the reader, which looks at queued under wmu, never writes ahead of it.
func (c *conn) writeQueued(rp reply) error {
	if rp.flush {
		return c.flushIfIdle()
	}
	if err := c.write(rp); err != nil {
		return err
	}
	size := int64(rp.size())
	if c.queued.Load() == size {
		c.markDone() // the last reply queued: the idle clock starts now
	}
	c.queued.Add(-size)
	select {
	case c.drained <- struct{}{}:
	default:
	}
	if !rp.more && len(c.outbox) == 0 {
		return c.flush()
	}
	return nil
}

func (c *conn) write(rp reply) error {
	if rp.size() > c.bw.Available() {
		c.armWriteDeadline()
	}
	var err error
	if rp.hasNum {
		num := proto.AppendU64(c.num[:0], rp.num)
		err = c.fw.WriteReply(rp.op, rp.status, rp.id, num, rp.body)
	} else {
		err = c.fw.WriteReply(rp.op, rp.status, rp.id, rp.body)
	}
	// The payload is copied out (or written out) by now: its buffer may serve a put,
	// and a batch's body the next batch.
	rp.msg.Release()
	if rp.pooled {
		replyBodies.Put(rp.body)
	}
	return err
}

// flushIfIdle flushes unless more replies are already queued (they will flush).
func (c *conn) flushIfIdle() error {
	if len(c.outbox) > 0 {
		return nil
	}
	return c.flush()
}

func (c *conn) flush() error {
	if c.bw.Buffered() == 0 {
		return nil
	}
	c.armWriteDeadline()
	return c.bw.Flush()
}

// armWriteDeadline gives the next write WriteTimeout to make progress. It moves the
// deadline, a quarter beyond that, only when less than WriteTimeout is left, so that
// most flushes spare the clock read and the poller's timer update that setting it
// costs (a flush per request for a client with one request in flight). A write thus
// has between WriteTimeout and a quarter more. Called with wmu held.
func (c *conn) armWriteDeadline() {
	now := time.Now()
	if c.writeDeadline.Sub(now) >= c.s.cfg.WriteTimeout {
		return
	}
	c.writeDeadline = now.Add(c.s.cfg.WriteTimeout + c.s.cfg.WriteTimeout/4)
	c.nc.SetWriteDeadline(c.writeDeadline)
}

func (c *conn) writeFailed(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.warn("client does not read its replies, closing", "err", err)
	} else {
		c.log.Debug("write failed", "err", err)
	}
	c.nc.Close()
}

// warn logs client misbehaviour at warn level, at most once per interval for each
// client host, and at debug level otherwise.
func (c *conn) warn(msg string, args ...any) { c.s.warn.Warn(c.log, c.remote, msg, args...) }
