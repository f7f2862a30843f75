package resp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"
)

// flushAt is how many reply bytes the executor gathers before it writes them out
// even though more commands are waiting.
const flushAt = 64 << 10

// inboxBatches bounds how many batches of parsed commands wait for the executor; a
// client that pipelines more is held back by TCP.
const inboxBatches = 64

// inboxBytes bounds the bytes of parsed commands waiting for the executor: over it
// the reader stops reading until the executor catches up (C24). The executor itself
// writes synchronously, so a client that does not read its replies stops it, and
// with it the reader, once flushAt bytes of replies are waiting.
const inboxBytes = 4 << 20

// writeChunk is the most a flush writes under one write deadline, so that a slow
// but reading client is not dropped for a large reply.
const writeChunk = 256 << 10

// lingerTimeout is how long a connection closed for a protocol error keeps reading
// (and discarding) what the client still sends, so that the close does not reset the
// connection before the client has read the error.
const lingerTimeout = 500 * time.Millisecond

// conn is one client connection. The reader goroutine owns rd; the executor owns
// everything else, and no field is shared between them but the inbox, done and the
// context.
type conn struct {
	s   *Server
	nc  net.Conn
	id  int64
	log *slog.Logger

	// ctx ends when the client goes (the reader saw EOF or an error) or the server
	// stops; blocking commands wait under it.
	ctx    context.Context
	cancel context.CancelFunc

	in      *guard // the connection's input, read by the reader only
	inbox   chan []redcon.Command
	queued  atomic.Int64  // bytes of the commands in inbox
	drained chan struct{} // the executor pokes it after each batch
	done    chan struct{} // closed when the executor returns
	readErr error         // set by the reader before it closes inbox

	out      []byte
	replyAt  int   // where the reply of the command running starts in out
	writeErr error // sticky: once a write fails the executor stops

	proto   int    // 2 or 3
	name    string // CLIENT SETNAME
	quit    bool
	lastKey string // the key of the last list command, see key

	tx     *transaction // non-nil between MULTI and EXEC or DISCARD
	inExec bool         // running EXEC's commands: blocking commands do not block

	// active is when the connection last completed a command, read or run (unix
	// ns); idle closes it IdleTimeout after that, unless commands are running.
	active atomic.Int64
	idle   *time.Timer
}

func newConn(s *Server, nc net.Conn) *conn {
	id := s.nextConnID.Add(1)
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{
		s:       s,
		nc:      nc,
		id:      id,
		log:     s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		ctx:     ctx,
		cancel:  cancel,
		in:      newGuard(nc, s.limits),
		inbox:   make(chan []redcon.Command, inboxBatches),
		drained: make(chan struct{}, 1),
		done:    make(chan struct{}),
		proto:   2,
	}
}

// serve runs the connection until the client goes, sends QUIT or the server stops.
func (c *conn) serve() {
	c.log.Debug("connection opened")
	if obs := c.s.observer; obs != nil {
		obs.ConnOpened(Door)
		defer obs.ConnClosed(Door)
	}
	if c.s.idleTimeout > 0 {
		c.markActive()
		// Made far off and then reset, so that checkIdle never runs before c.idle
		// is set.
		c.idle = time.AfterFunc(time.Duration(math.MaxInt64), c.checkIdle)
		c.idle.Reset(c.s.idleTimeout)
		defer c.idle.Stop()
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.readLoop()
	}()

	defer func() {
		if p := recover(); p != nil {
			c.log.Error("connection panicked", "err", p, "stack", string(debug.Stack()))
		}
		close(c.done)
		c.cancel()
		c.nc.Close()
		<-readerDone
		c.s.removeConn(c)
		c.log.Debug("connection closed")
	}()
	c.execLoop()
}

// readLoop parses commands and hands them to the executor. When the client goes it
// cancels the connection's context, so that a blocking command stops waiting and no
// message is taken for a client that cannot receive it (C01).
func (c *conn) readLoop() {
	defer close(c.inbox)
	defer c.cancel()
	defer func() {
		// redcon panics on some input (an index overflow before the guard); a panic
		// must end this connection only.
		if p := recover(); p != nil {
			c.log.Error("reader panicked", "err", p, "stack", string(debug.Stack()))
			c.readErr = fmt.Errorf("read commands: panic: %v", p)
		}
	}()

	rd := redcon.NewReader(c.in)
	for {
		if !c.waitInbox() {
			return
		}
		cmds, err := rd.ReadCommands()
		if errors.Is(err, errFreshReader) {
			rd = redcon.NewReader(c.in) // give back the buffer of a big request
			continue
		}
		if err != nil {
			c.readErr = err
			return
		}
		c.markActive()
		c.queued.Add(batchBytes(cmds))
		select {
		case c.inbox <- cmds:
		case <-c.done:
			return
		}
	}
}

// waitInbox waits while the commands waiting for the executor are over inboxBytes.
// It returns false if the executor has stopped.
func (c *conn) waitInbox() bool {
	for c.queued.Load() > inboxBytes {
		select {
		case <-c.drained:
		case <-c.done:
			return false
		}
	}
	return true
}

func batchBytes(cmds []redcon.Command) int64 {
	var n int64
	for _, cmd := range cmds {
		n += int64(len(cmd.Raw))
	}
	return n
}

// execLoop runs commands in the order they came and writes the replies, flushing
// when no command is waiting or enough bytes gathered.
func (c *conn) execLoop() {
	for cmds := range c.inbox {
		for _, cmd := range cmds {
			c.execute(cmd.Args)
			if c.quit {
				c.flush()
				return
			}
			if len(c.out) >= flushAt {
				c.flush()
			}
		}
		c.markActive() // a blocking command that waited long is not idleness
		c.queued.Add(-batchBytes(cmds))
		select {
		case c.drained <- struct{}{}:
		default:
		}

		if len(c.inbox) == 0 {
			c.flush()
		}
		if c.writeErr != nil {
			return
		}
	}

	if err := c.readErr; err != nil && isProtocolError(err) {
		c.log.Warn("protocol error, closing", "err", err)
		c.writeError("ERR " + err.Error())
		c.flush()
		lingerClose(c.nc)
	}
}

// isProtocolError tells parse errors (redcon's and the guard's), which deserve a
// reply, from the connection's end.
func isProtocolError(err error) bool {
	var pe *protocolError
	if errors.As(err, &pe) {
		return true
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) {
		return false
	}
	return strings.HasPrefix(err.Error(), "Protocol error")
}

// flush writes the gathered replies, each writeChunk under a fresh write deadline.
// A write error is kept and ends the executor.
func (c *conn) flush() {
	for out := c.out; len(out) > 0 && c.writeErr == nil; {
		n := min(len(out), writeChunk)
		c.nc.SetWriteDeadline(time.Now().Add(c.s.writeTimeout))
		if _, err := c.nc.Write(out[:n]); err != nil {
			c.writeFailed(err)
		}
		out = out[n:]
	}
	c.replyAt = 0 // the reply of the command running, if any, starts afresh
	if cap(c.out) > 4*flushAt {
		c.out = nil // give back the memory of one huge reply
	} else {
		c.out = c.out[:0]
	}
}

func (c *conn) writeFailed(err error) {
	c.writeErr = fmt.Errorf("write replies: %w", err)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.log.Warn("client does not read its replies, closing", "err", err)
		return
	}
	c.log.Debug("write failed", "err", err)
}

// lingerClose closes nc while the client may still be sending: it sends FIN, then
// reads and discards what the client still sends for a short while, so that the
// close does not reset the connection and destroy the last reply before the client
// reads it. Only the executor calls it, once the reader has returned.
func lingerClose(nc net.Conn) {
	defer nc.Close()
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	if err := tc.CloseWrite(); err != nil {
		return
	}
	nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, io.LimitReader(nc, 4<<20))
}

func (c *conn) markActive() { c.active.Store(time.Now().UnixNano()) }

// checkIdle runs when the idle timer fires: it closes the connection if it completed
// no command for IdleTimeout and runs none, else sets the timer for the rest.
func (c *conn) checkIdle() {
	wait := c.s.idleTimeout
	if c.queued.Load() == 0 {
		wait -= time.Since(time.Unix(0, c.active.Load()))
	}
	if wait > 0 {
		c.idle.Reset(wait)
		return
	}
	c.log.Debug("idle timeout, closing", "idle", c.s.idleTimeout)
	c.closeRead()
}

// closeRead makes the reader stop as if the client had gone, so that the executor
// finishes the commands already read and closes the connection.
func (c *conn) closeRead() {
	c.nc.SetReadDeadline(time.Now())
}
