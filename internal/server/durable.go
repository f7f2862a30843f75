package server

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/storage"
)

// maxDurableWaits bounds the requests of one connection that wait for the disk at
// the same time. Before it makes one more, the reader waits until a reply goes out,
// so the connection reads nothing more meanwhile: no refusal, only back-pressure.
const maxDurableWaits = 1024

// On a durable store a request that changes the log (PUT, PUTBATCH, ACK, NACK, and
// a GET, GETBATCH or RESERVE that found a message) is split in two: the reader makes the
// change and appends its records, so that the requests of one connection reach the
// log in the order they came, and queues the reply-to-be for the connection's
// durable waiter (durableLoop), one goroutine that waits for the highest ticket
// queued and then sends every reply up to it, in order. The reader goes on with the
// next request meanwhile, so pipelined requests share one fsync. Their replies come
// in order among themselves but may come after the replies of later requests that
// do not wait for the disk, as a waiting GET's does.

// pendingKind says what a pending reply finishes.
type pendingKind uint8

const (
	pendingPut       pendingKind = iota // a put appended: reply once durable
	pendingSettle                       // an ACK or NACK appended (rp.num: the delivery)
	pendingTake                         // a GET: FinishTake
	pendingTakeBatch                    // a GETBATCH: FinishTakeBatch
	pendingReserve                      // a RESERVE: FinishReserve
	pendingAbandoned                    // a take put back: no message to send
	pendingRefused                      // a put, ack or nack refused: rp is its answer
)

// pending is a request whose reply waits for the log.
type pending struct {
	kind   pendingKind
	rp     reply
	ticket storage.Ticket
	take   broker.PendingTake
}

// durableRoom waits while maxDurableWaits requests of the connection wait for the
// disk, then reports whether a request that changes the log is to wait for it off
// the reader (the store keeps records). Called by the reader only, before it makes
// the request's change; waitDurable must follow if it made one.
func (c *conn) durableRoom() bool {
	if !c.s.broker.Durable() {
		return false
	}
	for c.ndurable.Load() >= maxDurableWaits {
		select {
		case <-c.durableFreed:
		case <-c.waitCtx.Done():
			// The connection is ending: the waiter takes nothing more; the request
			// runs on the reader and fails fast.
			return false
		}
	}
	return true
}

// keepsDurableOrder reports whether replies to op come in the order of their
// requests among the durable ones (PROTOCOL.md): a PUT, PUTBATCH, ACK or NACK.
func keepsDurableOrder(op proto.Op) bool {
	switch op {
	case proto.OpPut, proto.OpPutBatch, proto.OpAck, proto.OpNack:
		return true
	}
	return false
}

// queueRefused queues rp, the reply to a request that keepsDurableOrder but was
// refused before reaching the log (a bad option, a full queue, an unknown
// delivery), behind the replies still waiting for the disk, so that it does not
// overtake them. It reports false, queueing nothing, when none is waiting: rp can
// go at once.
func (c *conn) queueRefused(rp reply) bool {
	if c.ndurable.Load() == 0 || !c.durableRoom() {
		return false
	}
	c.waitDurable(pending{kind: pendingRefused, rp: rp})
	return true
}

// waitDurable queues p for the durable waiter, starting it on first use. Called by
// the reader only, after durableRoom, so it never blocks.
func (c *conn) waitDurable(p pending) {
	if c.durableq == nil {
		c.durableq = make(chan pending, maxDurableWaits+1)
		c.blocked.Go(c.durableLoop)
	}
	c.ndurable.Add(1)
	c.durableq <- p
}

// closeDurable ends the durable waiter once it has answered what is queued. Called
// by the reader when it is done.
func (c *conn) closeDurable() {
	if c.durableq != nil {
		close(c.durableq)
	}
}

// durableLoop is the connection's durable waiter: it takes what is queued, waits
// once for the highest ticket among it and sends the replies in order. A put waits
// until the connection or the server ends, not when the client stops sending: a
// client that closed its write side still gets the acknowledgements of its puts.
// Takes not yet answered when the connection ends go back to their queues.
func (c *conn) durableLoop() {
	batch := make([]pending, 0, 16)
	for p := range c.durableq {
		batch = append(batch[:0], p)
		batch = c.moreDurable(batch)
		err := c.s.broker.WaitDurable(c.ctx, lastTicket(batch))
		for i := range batch {
			if batch[i].isTake() && c.ending() {
				c.endDurable(batch[i:])
				return
			}
			c.finishDurable(&batch[i], err, i < len(batch)-1)
			batch[i] = pending{}
		}
	}
}

// isTake reports whether p holds messages taken for its reply.
func (p *pending) isTake() bool {
	return p.kind == pendingTake || p.kind == pendingTakeBatch || p.kind == pendingReserve
}

// ending reports whether the connection is ending: its waits were ended, or its
// writer stopped, so that no reply can go out.
func (c *conn) ending() bool {
	if c.waitCtx.Err() != nil {
		return true
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// lastTicket returns the highest ticket in batch.
func lastTicket(batch []pending) storage.Ticket {
	var last storage.Ticket
	for i := range batch {
		last = max(last, batch[i].ticket)
	}
	return last
}

// moreDurable appends to batch what else is queued already, up to maxDurableWaits.
func (c *conn) moreDurable(batch []pending) []pending {
	for len(batch) < maxDurableWaits {
		select {
		case p, ok := <-c.durableq:
			if !ok {
				return batch
			}
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// endDurable answers batch and whatever the reader still queues once the connection
// is ending: puts as usual, once durable; takes go back to their queues, the last
// taken first so that each message returns to its place, and are answered
// ShuttingDown when the server is stopping, not at all when the client has gone.
func (c *conn) endDurable(batch []pending) {
	for p := range c.durableq { // the reader ends soon, if it has not yet
		batch = append(batch, p)
	}
	err := c.s.broker.WaitDurable(c.ctx, lastTicket(batch))
	for i := len(batch) - 1; i >= 0; i-- {
		if batch[i].isTake() {
			c.s.broker.AbandonTake(batch[i].take)
		}
	}
	for i := range batch {
		p := &batch[i]
		if p.isTake() {
			p.kind = pendingAbandoned
		}
		c.finishDurable(p, err, false)
	}
}

// finishDurable sends the reply of p, whose records are durable unless err says
// otherwise, and releases its place; more says that further replies follow at once,
// so that it need not flush.
func (c *conn) finishDurable(p *pending, err error, more bool) {
	defer func() {
		c.markDone()
		c.ndurable.Add(-1)
		select {
		case c.durableFreed <- struct{}{}:
		default:
		}
	}()
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("panic serving connection", "panic", v, "stack", string(debug.Stack()))
			c.nc.Close()
		}
	}()

	rp := &p.rp
	switch p.kind {
	case pendingPut:
		if err != nil {
			rp.failErr(fmt.Errorf("%s not acknowledged: %w", rp.op, err))
		}
	case pendingSettle:
		if err != nil {
			rp.failErr(fmt.Errorf("%s %d: %w", rp.op, rp.num, err))
		}
	case pendingRefused: // answered already; it only keeps its place in line
	case pendingAbandoned:
		if context.Cause(c.waitCtx) != errShutdown {
			c.observeReply(rp, false) // the client has gone: nobody reads a reply
			return
		}
		rp.fail(proto.StatusShuttingDown, "server is shutting down; request not run")
	// A take is finished with the connection's context: the wait is over (err), and
	// those left when the client goes are given back by endDurable instead.
	case pendingTake, pendingTakeBatch, pendingReserve:
		c.finishTake(rp, p.kind, p.take)
	}
	rp.more = more
	c.reply(*rp)
}

// settleTake answers a GET, GETBATCH or RESERVE (kind) whose take the reader
// appended (p, or err), once a wait for an empty queue is ruled out: it fails rp on
// err; on a durable store (durable, from durableRoom) it queues the reply for the
// durable waiter and reports true (the reply comes later); else it finishes the
// take into rp at once.
func (c *conn) settleTake(
	rp *reply, kind pendingKind, p broker.PendingTake, err error, durable bool,
) (later bool) {
	switch {
	case err != nil:
		rp.failErr(err)
		return false
	case durable:
		c.waitDurable(pending{kind: kind, rp: *rp, ticket: p.Ticket(), take: p})
		return true
	}
	c.finishTake(rp, kind, p)
	return false
}

// finishTake finishes the take p of a request of the given kind and sets its reply.
func (c *conn) finishTake(rp *reply, kind pendingKind, p broker.PendingTake) {
	switch kind {
	case pendingTake:
		msg, err := c.s.broker.FinishTake(c.ctx, p)
		getReply(rp, msg, err)
	case pendingTakeBatch:
		msgs, err := c.s.broker.FinishTakeBatch(c.ctx, p)
		c.getBatchReply(c.ctx, rp, msgs, err)
	case pendingReserve:
		ds, err := c.s.broker.FinishReserve(c.ctx, p)
		c.reserveReply(c.ctx, rp, ds, err)
	default:
		panic(fmt.Sprintf("server: finishTake of a pending %d", kind))
	}
}

// putDurable appends a PUT and queues its reply for the durable waiter; it reports
// false, doing nothing, on a store that does not keep records (or with rp failed
// when the append failed).
func (c *conn) putDurable(rp *reply, key string, payload []byte, o broker.PutOptions) bool {
	if !c.durableRoom() {
		return false
	}
	id, ticket, err := c.s.broker.PutAppend(key, payload, o)
	if err != nil {
		rp.failErr(err)
		return false
	}
	rp.ok(id, nil)
	c.waitDurable(pending{kind: pendingPut, rp: *rp, ticket: ticket})
	return true
}

// putBatchDurable is putDurable for a PUTBATCH.
func (c *conn) putBatchDurable(
	rp *reply, key string, msgs [][]byte, o broker.PutOptions,
) bool {
	if !c.durableRoom() {
		return false
	}
	ids, ticket, err := c.s.broker.PutBatchAppend(key, msgs, o)
	if err != nil {
		rp.failErr(err)
		return false
	}
	rp.setBody(putBatchBody(ids))
	c.waitDurable(pending{kind: pendingPut, rp: *rp, ticket: ticket})
	return true
}
