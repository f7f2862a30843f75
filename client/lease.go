package client

import (
	"context"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// ReserveOptions say how Reserve waits and leases.
type ReserveOptions struct {
	// Wait is how long to wait for a message when every queue is empty (0: not at
	// all). The server may cut a long wait to its own maximum.
	Wait time.Duration
	// Lease is how long the consumer has to ack: after that the message goes back
	// to its queue for another delivery. 0 means the queue's default lease (30 s
	// unless set with SetQueue).
	Lease time.Duration
	// Max is the most messages to take at once (0 or 1: one; at most 1000).
	Max int
	// Detached leaves the leases alive when this Client's connection closes: they
	// then last until acked or expired. By default they are bound to the
	// connection, and their messages go back to their queues at once when it
	// closes (a crashed consumer's work is redelivered without waiting).
	Detached bool
}

// Delivery is a message taken under a lease, by Reserve. Ack it when done with it,
// Nack it to give it back, Touch it to keep it longer.
type Delivery struct {
	Message
	// DeliveryID names this delivery in Ack, Nack and Touch; it is unique across the
	// server and its restarts.
	DeliveryID uint64
	// Count is 1 on the message's first delivery, then one more each time.
	Count int
	// Deadline is when the lease runs out, by the server's clock.
	Deadline time.Time
}

// Reserve takes up to o.Max messages from the first of queues that has any, looked at
// in the order given, each under a lease; when all are empty it waits up to o.Wait
// for a message, then returns ErrEmpty. A message not acked before its lease runs
// out (or, for a bound lease, before the connection closes) is delivered again.
//
// The wait ends before ctx's deadline, as Get's does. If ctx ends anyway after the
// request was sent, Reserve returns ctx's error, and a message the server leased
// meanwhile comes back when that lease runs out or this Client closes.
func (c *Client) Reserve(
	ctx context.Context, queues []string, o ReserveOptions,
) ([]Delivery, error) {
	cl := getCall(proto.OpReserve)
	var err error
	o.Wait = waitWithin(ctx, o.Wait)
	if cl.frame, err = encodeReserve(cl.frame, queues, o); err != nil {
		putCall(cl)
		return nil, err
	}
	return do(c, ctx, cl, decodeDeliveries)
}

// Ack ends a delivery: its message is removed for good. A delivery that is unknown,
// already ended or whose lease ran out gives an *Error with CodeNotFound (its
// message is, or will be, delivered again).
func (c *Client) Ack(ctx context.Context, deliveryID uint64) error {
	_, err := c.deliveryCall(ctx, proto.OpAck, deliveryID, 0, 0)
	return err
}

// Nack ends a delivery and gives its message back: to the head of its queue when
// delay is 0, else ready again once delay has passed. Errors as for Ack.
func (c *Client) Nack(ctx context.Context, deliveryID uint64, delay time.Duration) error {
	_, err := c.deliveryCall(ctx, proto.OpNack, deliveryID, proto.OptNackDelay, delay)
	return err
}

// Touch extends a delivery's lease to lease from now (0: the length it was given)
// and returns the new deadline. Errors as for Ack.
func (c *Client) Touch(
	ctx context.Context, deliveryID uint64, lease time.Duration,
) (time.Time, error) {
	return c.deliveryCall(ctx, proto.OpTouch, deliveryID, proto.OptTouchLease, lease)
}

// deliveryCall sends an ACK, NACK or TOUCH for id, with d as option tag when both
// are set, and checks for an OK reply: empty, or TOUCH's deadline.
func (c *Client) deliveryCall(
	ctx context.Context, op proto.Op, id uint64, tag uint8, d time.Duration,
) (time.Time, error) {
	cl := getCall(op)
	var err error
	if cl.frame, err = encodeDelivery(cl.frame, op, id, tag, d); err != nil {
		putCall(cl)
		return time.Time{}, err
	}
	if op == proto.OpTouch {
		return do(c, ctx, cl, decodeDeadline)
	}
	_, err = do(c, ctx, cl, decodeNone)
	return time.Time{}, err
}
