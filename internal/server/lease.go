package server

import (
	"context"
	"errors"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/storage"
)

// reserveRequest is a decoded RESERVE.
type reserveRequest struct {
	queues []string
	opts   broker.ReserveOptions
	bound  bool
}

// handleReserve takes messages under a lease as handleGet takes one: on the reader
// when there are some, else, with a wait, off the reader. Leases are bound to the
// connection unless the request says otherwise.
func (c *conn) handleReserve(rp *reply, d *proto.Body) (wait blocked, later bool) {
	req, err := c.reserveRequest(d)
	if err != nil {
		rp.failErr(err)
		return nil, false
	}
	opts := c.reserveOptions(req)
	durable := c.durableRoom()
	p, err := c.s.broker.ReserveAppend(req.queues, opts)
	if errors.Is(err, broker.ErrEmpty) && req.opts.Wait > 0 {
		op, id := rp.op, rp.id
		return func(ctx context.Context) reply {
			rp := reply{op: op, id: id}
			c.reserve(ctx, &rp, req)
			return rp
		}, false
	}
	return nil, c.settleTake(rp, pendingReserve, p, err, durable)
}

func (c *conn) reserveRequest(d *proto.Body) (reserveRequest, error) {
	req := reserveRequest{bound: true}
	var err error
	if req.queues, err = d.Keys(); err != nil {
		return req, err
	}
	opts, err := d.Options()
	if err != nil {
		return req, err
	}
	for tag, v := range opts.All() {
		switch tag {
		case proto.OptGetWait:
			req.opts.Wait, err = c.waitOption(tag, v)
		case proto.OptGetMax:
			req.opts.Max, err = maxOption(tag, v)
		case proto.OptReserveLease:
			req.opts.Lease, err = durationOption(tag, v)
		case proto.OptReserveBound:
			req.bound, err = boolOption(tag, v)
		default:
			err = unknownOption(proto.OpReserve, tag)
		}
		if err != nil {
			return req, err
		}
	}
	return req, d.End()
}

// reserveOptions completes the options of req: its owner and its byte budget.
func (c *conn) reserveOptions(req reserveRequest) broker.ReserveOptions {
	o := req.opts
	if req.bound {
		o.Owner = c.leaseOwner()
	}
	o.MaxBytes = c.payloadBudget(req.queues, max(o.Max, 1), true)
	return o
}

func (c *conn) reserve(ctx context.Context, rp *reply, req reserveRequest) {
	ds, err := c.s.broker.Reserve(ctx, req.queues, c.reserveOptions(req))
	c.reserveReply(ctx, rp, ds, err)
}

// reserveReply makes rp the reply to a RESERVE that leased ds, or failed with err.
func (c *conn) reserveReply(
	ctx context.Context, rp *reply, ds []broker.Delivery, err error,
) {
	if len(ds) == 0 {
		rp.failErr(orEmpty(err))
		return
	}
	// With deliveries, an error means the batch stopped early: send what came.

	items := replyItems.Get(len(ds))[:len(ds)]
	for i, dv := range ds {
		items[i] = proto.Item{
			Queue:      dv.Queue,
			ID:         dv.ID,
			DeliveryID: dv.DeliveryID,
			Count:      uint32(dv.Count),
			Deadline:   uint64(dv.Deadline.UnixMilli()),
			DeadLetter: deadLetterItem(dv.DeadLetter),
			Payload:    dv.Payload,
		}
	}
	fit := c.fitItems(items, true)
	// What does not fit in one reply (only dead-lettered messages, whose extra
	// fields the budget does not count, can overflow it) goes back, last first, so
	// that the queue's order is kept, and uncounted: its consumer never saw it.
	for i := len(ds) - 1; i >= fit; i-- {
		err := c.s.broker.Unreserve(context.WithoutCancel(ctx), ds[i].DeliveryID)
		if err != nil {
			c.log.Warn("cannot return a delivery over the reply size",
				"queue", ds[i].Queue, "msg_id", ds[i].ID, "err", err)
		}
	}
	rp.setBody(encodeItems(items[:fit], true))
	replyItems.Put(items)
	for i := range ds {
		ds[i].Release() // copied into the body, or given back
	}
}

// leaseOwner returns the Owner that binds this connection's leases, made on first
// use; the leases go back to their queues when the connection closes.
func (c *conn) leaseOwner() *broker.Owner {
	c.ownerMu.Lock()
	defer c.ownerMu.Unlock()
	if c.owner == nil {
		c.owner = c.s.broker.NewOwner()
	}
	return c.owner
}

// releaseLeases returns the connection's bound leases to their queues. It runs after
// every request of the connection has ended.
func (c *conn) releaseLeases() {
	c.ownerMu.Lock()
	o := c.owner
	c.ownerMu.Unlock()
	if o != nil {
		c.s.broker.ReleaseOwner(o)
	}
}

// handleAck ends a delivery; on a durable store it reports true when the reply is
// left to the durable waiter.
func (c *conn) handleAck(rp *reply, d *proto.Body) (later bool) {
	req, err := deliveryRequest(proto.OpAck, d, 0)
	if err != nil {
		rp.failErr(err)
		return false
	}
	if c.durableRoom() {
		ticket, err := c.s.broker.AckAppend(req.id)
		return c.settleDurable(rp, req.id, ticket, err)
	}
	if err := c.s.broker.Ack(c.ctx, req.id); err != nil {
		rp.failErr(err)
		return false
	}
	rp.status = proto.StatusOK
	return false
}

// handleNack returns a delivery's message, as handleAck ends it.
func (c *conn) handleNack(rp *reply, d *proto.Body) (later bool) {
	req, err := deliveryRequest(proto.OpNack, d, proto.OptNackDelay)
	if err != nil {
		rp.failErr(err)
		return false
	}
	if c.durableRoom() {
		ticket, err := c.s.broker.NackAppend(req.id, req.duration)
		return c.settleDurable(rp, req.id, ticket, err)
	}
	if err := c.s.broker.Nack(c.ctx, req.id, req.duration); err != nil {
		rp.failErr(err)
		return false
	}
	rp.status = proto.StatusOK
	return false
}

// settleDurable queues the reply to an ACK or NACK of delivery id, appended with
// ticket or refused with err, for the durable waiter; it reports false, with rp
// failed, when the append was refused.
func (c *conn) settleDurable(rp *reply, id uint64, ticket storage.Ticket, err error) bool {
	if err != nil {
		rp.failErr(err)
		return false
	}
	rp.status, rp.num = proto.StatusOK, id
	c.waitDurable(pending{kind: pendingSettle, rp: *rp, ticket: ticket})
	return true
}

func (c *conn) handleTouch(rp *reply, d *proto.Body) {
	req, err := deliveryRequest(proto.OpTouch, d, proto.OptTouchLease)
	if err != nil {
		rp.failErr(err)
		return
	}
	deadline, err := c.s.broker.Touch(c.ctx, req.id, req.duration)
	if err != nil {
		rp.failErr(err)
		return
	}
	rp.ok(uint64(deadline.UnixMilli()), nil)
}

// delivery is a decoded ACK, NACK or TOUCH: a delivery id and, for the last two, a
// duration option.
type delivery struct {
	id       uint64
	duration time.Duration
}

// deliveryRequest decodes a u64 delivery id and an options block in which only the
// tag durationTag (if not 0) is allowed.
func deliveryRequest(op proto.Op, d *proto.Body, durationTag uint8) (delivery, error) {
	var req delivery
	var err error
	if req.id, err = d.U64(); err != nil {
		return req, err
	}
	opts, err := d.Options()
	if err != nil {
		return req, err
	}
	for tag, v := range opts.All() {
		if tag != durationTag || durationTag == 0 {
			return req, unknownOption(op, tag)
		}
		if req.duration, err = durationOption(tag, v); err != nil {
			return req, err
		}
	}
	return req, d.End()
}

func deadLetterItem(dl *broker.DeadLetter) *proto.DeadLetter {
	if dl == nil {
		return nil
	}
	return &proto.DeadLetter{
		Queue: dl.Queue, ID: dl.ID, Count: uint32(dl.Count), Reason: dl.Reason,
	}
}
