package server

import (
	"context"
	"fmt"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/storage"
)

// maxDurableWaits bounds the puts of one connection that wait for the disk at the
// same time. A put over it waits on the reader, as every put did before, so the
// connection reads nothing more until it is durable: no refusal, only back-pressure.
const maxDurableWaits = 1024

// A put on a durable store is split in two: the reader appends it (so the puts of
// one connection reach the log in the order they came) and a goroutine of its own
// waits until it is durable and only then sends the reply. The reader goes on with
// the next request meanwhile, so many pipelined puts share one fsync. The reply may
// thus come after the replies of later requests, as a waiting GET's does.

// reserveDurable takes one of the connection's durable-wait slots, or reports false
// when all are taken. Called by the reader only; releaseDurable gives it back.
func (c *conn) reserveDurable() bool {
	if !c.s.broker.Durable() {
		return false
	}
	if c.ndurable.Add(1) > maxDurableWaits {
		c.ndurable.Add(-1)
		return false
	}
	return true
}

func (c *conn) releaseDurable() {
	c.markDone()
	c.ndurable.Add(-1)
}

// ackWhenDurable sends rp, the reply to a put already appended, once ticket is
// durable, or an error reply if the log cannot make it so. It runs on its own
// goroutine and owns the slot reserveDurable took. The wait ends early only when
// the connection or the server ends, not when the client stops sending: a client
// that closed its write side still gets the acknowledgements of its puts.
func (c *conn) ackWhenDurable(rp reply, ticket storage.Ticket) {
	wait := func(context.Context) reply {
		if err := c.s.broker.WaitDurable(c.ctx, ticket); err != nil {
			rp.failErr(fmt.Errorf("%s not acknowledged: %w", rp.op, err))
		}
		return rp
	}
	c.blocked.Go(func() {
		defer c.releaseDurable()
		if rp, ok := c.runBlocked(wait); ok {
			c.send(rp)
		}
	})
}

// putDurable appends a PUT and hands its reply to ackWhenDurable; it reports false,
// doing nothing, when the put is to be served in order instead.
func (c *conn) putDurable(rp *reply, key string, payload []byte, o broker.PutOptions) bool {
	if !c.reserveDurable() {
		return false
	}
	id, ticket, err := c.s.broker.PutAppend(key, payload, o)
	if err != nil {
		c.releaseDurable()
		rp.failErr(err)
		return false
	}
	rp.ok(id, nil)
	c.ackWhenDurable(*rp, ticket)
	return true
}

// putBatchDurable is putDurable for a PUTBATCH.
func (c *conn) putBatchDurable(
	rp *reply, key string, msgs [][]byte, o broker.PutOptions,
) bool {
	if !c.reserveDurable() {
		return false
	}
	ids, ticket, err := c.s.broker.PutBatchAppend(key, msgs, o)
	if err != nil {
		c.releaseDurable()
		rp.failErr(err)
		return false
	}
	rp.status, rp.body = proto.StatusOK, putBatchBody(ids)
	c.ackWhenDurable(*rp, ticket)
	return true
}
