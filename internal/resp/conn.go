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

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/linger"
	"github.com/keyq/keyq/internal/warnlimit"
)

// flushAt is how many reply bytes a connection gathers before it writes them out
// even though more commands are waiting.
const flushAt = 64 << 10

// writeChunk is the most a flush writes under one write deadline, so that a slow
// but reading client is not dropped for a large reply.
const writeChunk = 256 << 10

// conn is one client connection. One goroutine serves it: it reads what the client
// sent, runs every whole command in it in order, gathering the replies in out, and
// writes them all at once when it has to read again (input.Read), so a pipeline
// costs one read and one write and no hand-off between goroutines. While a command
// blocks, a watcher reads on for it (see input.watch). Only active, busy and
// readClosed are shared with other goroutines.
type conn struct {
	s      *Server
	nc     net.Conn
	id     int64
	log    *slog.Logger
	remote string // the peer's host, the key of its warnings' rate limit

	// ctx ends when the client goes (a read saw EOF or an error) or the server
	// stops; blocking commands wait under it.
	ctx    context.Context
	cancel context.CancelFunc

	src input   // the connection's bytes, flushing replies before each read
	in  *guard  // the requests' framing and limits, over src
	rd  *reader // the commands, over in

	out           []byte
	replyAt       int       // where the reply of the command running starts in out
	writeErr      error     // sticky: once a write fails the connection ends
	writeDeadline time.Time // set on nc, see armWriteDeadline

	proto   int    // 2 or 3
	name    string // CLIENT SETNAME
	quit    bool
	lastKey string           // the key of the last list command, see key
	ranged  []broker.Message // LRANGE's slice, kept for the next one (maxKeptRange)

	// The last command looked up and its name as sent, see lookup.
	lastCmd     *command
	lastName    [maxCommandName]byte
	lastNameLen int

	// clock is when the last command ended, which is when the next one in the same
	// pipeline starts (see startTime); 0 when the connection reads or writes.
	clock time.Duration // since epoch; 0 when unknown

	tx     *transaction // non-nil between MULTI and EXEC or DISCARD
	inExec bool         // running EXEC's commands: blocking commands do not block

	// active is when the connection last completed a batch of commands (unix ns);
	// idle closes it IdleTimeout after that, unless busy says commands are running.
	active     atomic.Int64
	busy       atomic.Bool
	readClosed atomic.Bool // closeRead was called: reads fail from then on
	idle       *time.Timer
}

func newConn(s *Server, nc net.Conn) *conn {
	id := s.nextConnID.Add(1)
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{
		s:      s,
		nc:     nc,
		id:     id,
		log:    s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		remote: warnlimit.Host(nc.RemoteAddr()),
		ctx:    ctx,
		cancel: cancel,
		proto:  2,
	}
	c.src.c = c
	c.in = newGuard(&c.src, s.limits)
	c.rd = newGuardedReader(c.in)
	return c
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

	defer func() {
		if p := recover(); p != nil {
			c.log.Error("connection panicked", "err", p, "stack", string(debug.Stack()))
		}
		c.cancel()
		c.nc.Close()
		c.s.removeConn(c)
		c.log.Debug("connection closed")
	}()
	err := c.serveCommands()
	if err != nil && isProtocolError(err) {
		c.warn("protocol error, closing", "err", err)
		c.writeError("ERR " + err.Error())
		c.flush()
		linger.Close(c.nc)
	}
}

// serveCommands reads commands and runs them until the client goes, a write fails
// or QUIT, and returns the read error that ended it, if any. When the client goes it
// cancels the connection's context, so that no message is taken for a client that
// cannot receive it (C01).
func (c *conn) serveCommands() (err error) {
	defer c.cancel()
	defer func() {
		// A panic must end this connection only.
		if p := recover(); p != nil {
			c.log.Error("connection panicked", "err", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("serve commands: panic: %v", p)
		}
	}()

	running := false // commands ran since the last read
	for {
		args, err := c.rd.next()
		if err != nil {
			return err
		}
		if args == nil {
			if running {
				c.clock = 0
				if c.idle != nil {
					c.markActive() // a blocking command that waited long is not idleness
				}
				c.busy.Store(false)
				running = false
			}
			if err := c.rd.fill(); err != nil { // writes the replies first
				return err
			}
			continue
		}
		if !running {
			c.busy.Store(true)
			running = true
		}
		if c.run(args) {
			return nil
		}
	}
}

// run runs one command and tells whether the connection is done (QUIT or a failed
// write). Its reply waits in out until the connection reads again or enough replies
// gathered.
func (c *conn) run(args [][]byte) (done bool) {
	c.execute(args)
	if c.quit {
		c.flush()
		return true
	}
	if len(c.out) >= flushAt {
		c.flush()
	}
	return c.writeErr != nil
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
// A write error is kept and ends the connection.
func (c *conn) flush() {
	for out := c.out; len(out) > 0 && c.writeErr == nil; {
		n := min(len(out), writeChunk)
		c.armWriteDeadline()
		if _, err := c.nc.Write(out[:n]); err != nil {
			c.writeFailed(err)
		}
		out = out[n:]
	}
	c.replyAt = 0 // the reply of the command running, if any, starts afresh
	c.clock = 0
	if cap(c.out) > 4*flushAt {
		c.out = nil // give back the memory of one huge reply
	} else {
		c.out = c.out[:0]
	}
}

// armWriteDeadline gives the next write WriteTimeout to make progress: it moves
// the deadline a quarter beyond that when less than WriteTimeout is left, so that
// most flushes spare the poller's timer update. A write thus has between
// WriteTimeout and a quarter more.
func (c *conn) armWriteDeadline() {
	now := time.Now()
	if c.writeDeadline.Sub(now) >= c.s.writeTimeout {
		return
	}
	c.writeDeadline = now.Add(c.s.writeTimeout + c.s.writeTimeout/4)
	c.nc.SetWriteDeadline(c.writeDeadline)
}

// warn logs client misbehaviour at warn level, at most once per interval for each
// client host, and at debug level otherwise.
func (c *conn) warn(msg string, args ...any) { c.s.warn.Warn(c.log, c.remote, msg, args...) }

func (c *conn) writeFailed(err error) {
	c.writeErr = fmt.Errorf("write replies: %w", err)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.warn("client does not read its replies, closing", "err", err)
		return
	}
	c.log.Debug("write failed", "err", err)
}

func (c *conn) markActive() { c.active.Store(time.Now().UnixNano()) }

// checkIdle runs when the idle timer fires: it closes the connection if it completed
// no command for IdleTimeout and runs none, else sets the timer for the rest.
func (c *conn) checkIdle() {
	wait := c.s.idleTimeout
	if !c.busy.Load() {
		wait -= time.Since(time.Unix(0, c.active.Load()))
	}
	if wait > 0 {
		c.idle.Reset(wait)
		return
	}
	c.log.Debug("idle timeout, closing", "idle", c.s.idleTimeout)
	c.closeRead()
}

// closeRead makes the connection's next read fail as if the client had gone, so
// that it finishes the commands already read and closes. Any goroutine may call it.
func (c *conn) closeRead() {
	c.readClosed.Store(true)
	c.nc.SetReadDeadline(aLongTimeAgo)
}
