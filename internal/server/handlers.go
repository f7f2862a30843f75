package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
)

// execute runs one request and returns its reply. It runs on the reader goroutine,
// so requests of one connection run in the order they came; except that a request
// that may wait for a message and finds none is returned as wait for the reader to
// run on its own goroutine (rp is then unused unless that is refused), and that on
// a durable store a request that changes the log (a put, or a take that found a
// message) is made here and replied later, off the reader, once durable (later is
// then true and rp unused; see durable.go).
func (c *conn) execute(f proto.Frame) (rp reply, wait blocked, later bool) {
	if c.s.testHookExecute != nil {
		c.s.testHookExecute(f)
	}
	rp = reply{op: f.Op, id: f.ID, start: c.readAt}
	switch {
	case !known(f.Op):
		rp.fail(proto.StatusUnknownOp, fmt.Sprintf("unknown opcode %#02x", uint8(f.Op)))
		return rp, nil, false
	case c.stopping.Load():
		rp.fail(proto.StatusShuttingDown, "server is shutting down; request not run")
		return rp, nil, false
	case f.Flags != 0:
		rp.fail(proto.StatusBadRequest,
			fmt.Sprintf("flags %#02x are not defined in version 1", f.Flags))
		return rp, nil, false
	}

	// Direct calls, not a table of funcs: through a func value rp and d would escape
	// to the heap on every request.
	d := proto.NewBody(f.Body)
	switch f.Op {
	case proto.OpPut:
		later = c.handlePut(&rp, &d)
	case proto.OpGet:
		wait, later = c.handleGet(&rp, &d)
	case proto.OpLen:
		c.handleLen(&rp, &d)
	case proto.OpPing:
		c.handlePing(&rp, &d)
	case proto.OpStats:
		c.handleStats(&rp, &d)
	case proto.OpReserve:
		wait, later = c.handleReserve(&rp, &d)
	case proto.OpAck:
		later = c.handleAck(&rp, &d)
	case proto.OpNack:
		later = c.handleNack(&rp, &d)
	case proto.OpTouch:
		c.handleTouch(&rp, &d)
	case proto.OpPutBatch:
		later = c.handlePutBatch(&rp, &d)
	case proto.OpGetBatch:
		wait, later = c.handleGetBatch(&rp, &d)
	case proto.OpQueueSet:
		c.handleQueueSet(&rp, &d)
	case proto.OpQueueShow:
		c.handleQueueShow(&rp, &d)
	}
	return rp, wait, later
}

// known reports whether op is an operation this server runs.
func known(op proto.Op) bool {
	return op >= proto.OpPut && op <= proto.OpQueueShow
}

// handlePut puts a message; on a durable store it reports true when the reply is
// left to the durable waiter.
func (c *conn) handlePut(rp *reply, d *proto.Body) (later bool) {
	key, err := c.key(d)
	if err != nil {
		rp.failErr(err)
		return false
	}
	opts, err := putOptions(rp.op, d)
	if err != nil {
		rp.failErr(err)
		return false
	}
	payload := d.Rest()
	if c.putDurable(rp, key, payload, opts) {
		return true
	}
	if rp.status != proto.StatusOK {
		return false // the append failed
	}
	var id uint64
	if opts == (broker.PutOptions{}) {
		id, err = c.s.broker.Put(c.ctx, key, payload)
	} else {
		id, err = c.s.broker.PutWith(c.ctx, key, payload, opts)
	}
	if err != nil {
		rp.failErr(err)
		return false
	}
	rp.ok(id, nil)
	return false
}

// handleGet takes a message if there is one, on the reader, and otherwise, with a
// wait, returns the wait to run off the reader. On a durable store a message taken
// is replied once its take is durable, by the durable waiter (later is then set).
func (c *conn) handleGet(rp *reply, d *proto.Body) (wait blocked, later bool) {
	key, w, err := c.getRequest(d)
	if err != nil {
		rp.failErr(err)
		return nil, false
	}
	durable := c.durableRoom()
	p, err := c.s.broker.TakeAppend([]string{key}, w)
	if errors.Is(err, broker.ErrEmpty) && w > 0 {
		op, id := rp.op, rp.id
		return func(ctx context.Context) reply {
			rp := reply{op: op, id: id}
			c.get(ctx, &rp, key, w)
			return rp
		}, false
	}
	return nil, c.settleTake(rp, pendingTake, p, err, durable)
}

// getRequest decodes a GET body: key, options (a wait), nothing after.
func (c *conn) getRequest(d *proto.Body) (key string, wait time.Duration, err error) {
	if key, err = c.key(d); err != nil {
		return "", 0, err
	}
	opts, err := d.Options()
	if err != nil {
		return "", 0, err
	}
	for tag, v := range opts.All() {
		if tag != proto.OptGetWait {
			return "", 0, unknownOption(proto.OpGet, tag)
		}
		if wait, err = c.waitOption(tag, v); err != nil {
			return "", 0, err
		}
	}
	return key, wait, d.End()
}

func (c *conn) get(ctx context.Context, rp *reply, key string, wait time.Duration) {
	msg, err := c.s.broker.Get(ctx, key, wait)
	getReply(rp, msg, err)
}

// getReply makes rp the reply to a GET that took msg, or failed with err.
func getReply(rp *reply, msg broker.Message, err error) {
	if err != nil {
		rp.failErr(err)
		return
	}
	rp.ok(msg.ID, msg.Payload)
	rp.msg = msg
}

// waitOption decodes a wait in milliseconds, cut to the server's max wait.
func (c *conn) waitOption(tag uint8, v []byte) (time.Duration, error) {
	ms, err := proto.OptionU64(tag, v)
	if err != nil {
		return 0, err
	}
	return proto.Duration(ms, c.s.cfg.MaxWait), nil
}

func unknownOption(op proto.Op, tag uint8) error {
	return proto.Errorf(proto.StatusBadRequest, "unknown option tag %d for %s", tag, op)
}

func (c *conn) handleLen(rp *reply, d *proto.Body) {
	key, err := c.key(d)
	if err == nil {
		err = d.End()
	}
	if err != nil {
		rp.failErr(err)
		return
	}
	n, err := c.s.broker.Len(key)
	if err != nil {
		rp.failErr(err)
		return
	}
	rp.ok(uint64(n), nil)
}

func (c *conn) handlePing(rp *reply, d *proto.Body) {
	if d.Len() > proto.MaxPingBytes {
		rp.fail(proto.StatusBadRequest, fmt.Sprintf("ping body of %d bytes is over %d",
			d.Len(), proto.MaxPingBytes))
		return
	}
	rp.status, rp.body = proto.StatusOK, bytes.Clone(d.Rest())
}

func (c *conn) handleStats(rp *reply, d *proto.Body) {
	if err := d.End(); err != nil {
		rp.failErr(err)
		return
	}
	doc, err := c.s.statsJSON(c.s.maxFrame - proto.HeaderSize)
	if err != nil {
		rp.failErr(err)
		return
	}
	rp.status, rp.body = proto.StatusOK, doc
}

// keyAndOptions decodes the key and options block that start PUT and GET bodies.
// Version 1 defines no option, so any tag is refused rather than ignored.
func keyAndOptions(op proto.Op, d *proto.Body) (string, error) {
	key, err := d.Key()
	if err != nil {
		return "", err
	}
	opts, err := d.Options()
	if err != nil {
		return "", err
	}
	for tag := range opts.All() {
		return "", unknownOption(op, tag)
	}
	return key, nil
}

// key consumes a request's key. It hands back the previous request's string when the
// key is the same, so that a connection working one queue does not allocate a key per
// request. Called by the reader only.
func (c *conn) key(d *proto.Body) (string, error) {
	b, err := d.KeyBytes()
	if err != nil {
		return "", err
	}
	if string(b) != c.lastKey {
		c.lastKey = string(b)
	}
	return c.lastKey, nil
}
