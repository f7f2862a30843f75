package server

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/keyq/keyq/internal/proto"
)

// maxBlocked bounds the requests of one connection that wait at the same time; one
// more is refused with BadRequest, so a client cannot pile up goroutines at will.
const maxBlocked = 1024

// Causes of the end of a connection's waits.
var (
	// errClientGone: the client closed its side (or broke the protocol, or went idle).
	// Waits it left behind end without a reply: there is no one to read it.
	errClientGone = errors.New("server: client gone")

	// errShutdown: the server is shutting down. Waits end with ShuttingDown.
	errShutdown = errors.New("server: shutting down")
)

// blocked is a request that may wait for a message. It runs off the reader, on its
// own goroutine, with a context that ends when the connection does, and returns its
// reply.
type blocked func(ctx context.Context) reply

// startBlocked runs fn on its own goroutine and queues its reply when it is done, so
// that the reader goes on with the next request meanwhile; that reply may thus come
// after the replies of later requests. It returns false, running nothing, when the
// connection already has maxBlocked requests waiting.
func (c *conn) startBlocked(fn blocked) bool {
	if c.nblocked.Add(1) > maxBlocked {
		c.nblocked.Add(-1)
		return false
	}
	c.blocked.Go(func() {
		defer func() {
			c.markDone()
			c.nblocked.Add(-1)
		}()
		start := c.clock()
		rp, ok := c.runBlocked(fn)
		rp.start, rp.waited = start, true
		if !ok {
			c.observeReply(&rp, false)
			return
		}
		c.reply(rp)
	})
	return true
}

// runBlocked runs fn and reports whether its reply is to be sent: not when the wait
// ended because the client left.
func (c *conn) runBlocked(fn blocked) (rp reply, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("panic serving connection", "panic", v, "stack", string(debug.Stack()))
			c.nc.Close()
			ok = false
		}
	}()

	rp = fn(c.waitCtx)
	if c.waitCtx.Err() != nil && rp.status == proto.StatusShuttingDown {
		// The wait was cut short by the end of the connection, not by the broker.
		if context.Cause(c.waitCtx) == errClientGone {
			return rp, false
		}
		rp.fail(proto.StatusShuttingDown, "server is shutting down; the wait ended")
	}
	return rp, true
}

// endWaits ends every wait still in progress, for cause, and waits until their
// goroutines are done. A waiter cancelled this way never takes a message with it
// (the broker puts back one it was handed at that moment).
func (c *conn) endWaits(cause error) {
	c.cancelWaits(cause)
	c.blocked.Wait()
}

// refuseBlocked fills rp with the refusal of one request over maxBlocked.
func refuseBlocked(rp *reply) {
	rp.fail(proto.StatusBadRequest, fmt.Sprintf(
		"this connection already has %d requests waiting; no more may wait", maxBlocked))
}
