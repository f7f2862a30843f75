package resp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tidwall/redcon"
)

// flushAt is how many reply bytes the executor gathers before it writes them out
// even though more commands are waiting.
const flushAt = 64 << 10

// inboxBatches bounds how many batches of parsed commands wait for the executor; a
// client that pipelines more is held back by TCP.
const inboxBatches = 64

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

	inbox   chan []redcon.Command
	done    chan struct{} // closed when the executor returns
	readErr error         // set by the reader before it closes inbox

	out      []byte
	writeErr error // sticky: once a write fails the executor stops

	proto int    // 2 or 3
	name  string // CLIENT SETNAME
	quit  bool

	tx     *transaction // non-nil between MULTI and EXEC or DISCARD
	inExec bool         // running EXEC's commands: blocking commands do not block
}

func newConn(s *Server, nc net.Conn) *conn {
	id := s.nextConnID.Add(1)
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{
		s:      s,
		nc:     nc,
		id:     id,
		log:    s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		ctx:    ctx,
		cancel: cancel,
		inbox:  make(chan []redcon.Command, inboxBatches),
		done:   make(chan struct{}),
		proto:  2,
	}
}

// serve runs the connection until the client goes, sends QUIT or the server stops.
func (c *conn) serve() {
	c.log.Debug("connection opened")
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

	rd := redcon.NewReader(c.nc)
	for {
		cmds, err := rd.ReadCommands()
		if err != nil {
			c.readErr = err
			return
		}
		select {
		case c.inbox <- cmds:
		case <-c.done:
			return
		}
	}
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
	}
}

// isProtocolError tells redcon's parse errors, which deserve a reply, from the
// connection's end.
func isProtocolError(err error) bool {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) {
		return false
	}
	return strings.HasPrefix(err.Error(), "Protocol error")
}

// flush writes the gathered replies. A write error is kept and ends the executor.
func (c *conn) flush() {
	if len(c.out) == 0 || c.writeErr != nil {
		c.out = c.out[:0]
		return
	}
	if _, err := c.nc.Write(c.out); err != nil {
		c.writeErr = fmt.Errorf("write replies: %w", err)
		c.log.Debug("write failed", "err", err)
	}
	if cap(c.out) > 4*flushAt {
		c.out = nil // give back the memory of one huge reply
	} else {
		c.out = c.out[:0]
	}
}

// closeRead makes the reader stop as if the client had gone, so that the executor
// finishes the commands already read and closes the connection.
func (c *conn) closeRead() {
	c.nc.SetReadDeadline(time.Now())
}
