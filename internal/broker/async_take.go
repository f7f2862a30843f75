package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// A take (GET, GETBATCH) or a lease (RESERVE) is split in two as puts are (see
// PutAppend): TakeAppend, TakeBatchAppend and ReserveAppend take the messages and
// append their records without waiting for the store, and FinishTake,
// FinishTakeBatch and FinishReserve wait until those records are durable and hand
// the messages out. A front door appends a connection's requests in the order they
// came and lets many of them wait for one fsync together, off its reader.

// PendingTake is what a take or a lease appended but not yet known durable holds:
// the messages already off their queues. It must be finished exactly once, by the
// Finish method matching the Append that made it: that either hands the messages
// out or, if its context ended first, puts them back where they were.
type PendingTake struct {
	d      delivery   // a TakeAppend
	ds     []delivery // a TakeBatchAppend
	ls     []*lease   // a ReserveAppend
	owner  *Owner
	cause  error // for a reserve: why the batch stopped early, if it did
	ticket storage.Ticket
}

// Ticket returns the point in the store's log the take waits for: once the store
// reached it (WaitDurable), finishing the take does not wait.
func (p *PendingTake) Ticket() storage.Ticket { return p.ticket }

// TakeAppend is the first half of GetAny: it takes the first message of the first
// non-empty queue among queues, without waiting, and returns it pending. When all
// are empty it returns ErrEmpty, and counts an empty get only if wait is 0: a caller
// with a wait goes on to GetAny, which counts it if its wait runs out.
func (b *Broker) TakeAppend(queues []string, wait time.Duration) (PendingTake, error) {
	if err := b.checkGet(queues, wait); err != nil {
		return PendingTake{}, err
	}
	for _, name := range queues {
		q := b.lookup(name, false)
		if q == nil {
			continue
		}
		if d, ok := b.tryTake(q, false); ok {
			return PendingTake{d: d, ticket: d.ticket}, nil
		}
	}
	return PendingTake{}, b.noMessage(wait)
}

// FinishTake is the second half of TakeAppend: it waits until the take is durable
// and returns the message. If ctx ends first, the message goes back to the head of
// its queue, as a get whose caller left does (nobody received it).
func (b *Broker) FinishTake(ctx context.Context, p PendingTake) (Message, error) {
	return b.finish(ctx, p.d)
}

// TakeBatchAppend is the first half of GetBatchWithin: it takes up to count messages
// (0: one) within maxBytes of payload from the first non-empty queue among queues,
// without waiting. Empty queues give ErrEmpty, counted as TakeAppend does.
func (b *Broker) TakeBatchAppend(
	queues []string, count, maxBytes int, wait time.Duration,
) (PendingTake, error) {
	if err := b.checkGet(queues, wait); err != nil {
		return PendingTake{}, err
	}
	if count < 0 {
		return PendingTake{}, fmt.Errorf("%w: max %d is negative", ErrInvalidOption, count)
	}
	n := max(count, 1)
	for _, name := range queues {
		q := b.lookup(name, false)
		if q == nil {
			continue
		}
		ds := b.takeN(deliveries.Get(n), q, n, maxBytes, 0, false)
		if len(ds) == 0 {
			deliveries.Put(ds)
			continue
		}
		p := PendingTake{ds: ds}
		for _, d := range ds {
			p.ticket = max(p.ticket, d.ticket)
		}
		return p, nil
	}
	return PendingTake{}, b.noMessage(wait)
}

// FinishTakeBatch is the second half of TakeBatchAppend, as FinishTake is of
// TakeAppend: if ctx ends first, every message goes back where it was, in order.
func (b *Broker) FinishTakeBatch(ctx context.Context, p PendingTake) ([]Message, error) {
	return b.finishBatch(ctx, p.ds)
}

// ReserveAppend is the first half of Reserve: it leases up to o.Max messages from
// the first non-empty queue among queues, without waiting (o.Wait only decides
// whether an empty result counts as an empty get, as for TakeAppend).
func (b *Broker) ReserveAppend(queues []string, o ReserveOptions) (PendingTake, error) {
	if err := b.checkReserve(queues, o); err != nil {
		return PendingTake{}, err
	}
	r := &reserveReq{lease: o.Lease, owner: o.Owner, maxBytes: o.MaxBytes}
	n := max(o.Max, 1)
	for _, name := range queues {
		q := b.lookup(name, false)
		if q == nil {
			continue
		}
		ls, ticket, err := b.tryReserve(q, r, n, 0, false)
		if len(ls) > 0 {
			return PendingTake{ls: ls, owner: o.Owner, cause: err, ticket: ticket}, nil
		}
		if err != nil {
			return PendingTake{}, err
		}
	}
	return PendingTake{}, b.noMessage(o.Wait)
}

// FinishReserve is the second half of ReserveAppend: it waits until the leases are
// durable and returns their deliveries. If ctx ends first, or the owner was
// released meanwhile, the leases are given back.
func (b *Broker) FinishReserve(ctx context.Context, p PendingTake) ([]Delivery, error) {
	return b.deliver(ctx, p.ls, p.ticket, p.cause, p.owner)
}

// noMessage is the error of a take that found every queue empty.
func (b *Broker) noMessage(wait time.Duration) error {
	if wait == 0 {
		b.emptyGets.Add(1)
	}
	return ErrEmpty
}

// AbandonTake puts back what p took, without waiting: each message goes back to the
// end of its queue it was taken from, in its order, and each lease is given back as
// if it had never been handed out. A front door calls it instead of finishing p
// when nobody is left to receive the messages.
func (b *Broker) AbandonTake(p PendingTake) {
	switch {
	case p.ls != nil:
		b.unleaseAll(p.ls)
	case p.ds != nil:
		b.requeueAll(p.ds)
		deliveries.Put(p.ds)
	default:
		b.requeue(p.d)
	}
}
