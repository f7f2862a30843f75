package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// DefaultLease is the lease of a reserve when neither the request nor the queue's
// settings give one.
const DefaultLease = 30 * time.Second

// errOwnerReleased is returned by a reserve whose owner was released meanwhile.
var errOwnerReleased = errors.New("broker: lease owner released")

// ReserveOptions say how a reserve waits and leases. Wait is as for GetAny; Lease 0
// means the queue's default lease (or the broker's); Max is the batch size (0 or 1:
// one); Owner nil means the leases live until acked or expired (HTTP, CLI). MaxBytes
// bounds a batch's payload bytes (0: no bound): the reserve stops before a message
// that would bring them over it, though the first message is taken whatever its size
// (a front door whose reply must fit a frame passes what fits).
type ReserveOptions struct {
	Wait     time.Duration
	Lease    time.Duration
	Max      int
	Owner    *Owner
	MaxBytes int
}

// Delivery is one message handed out under a lease.
type Delivery struct {
	Message
	DeliveryID uint64    // unique across the server and across restarts; never reused
	Count      int       // 1 on the first delivery, then +1 per redelivery
	Deadline   time.Time // when the lease runs out (for display; timing is monotonic)
}

// NewOwner returns an Owner to bind leases to.
func (b *Broker) NewOwner() *Owner { return &Owner{} }

// ReleaseOwner returns every lease of o still outstanding to the head of its queue,
// as if it had run out (in put order, see insertReturnedLocked), and makes o refuse
// new leases. It may be called again.
func (b *Broker) ReleaseOwner(o *Owner) {
	o.mu.Lock()
	o.released = true
	leases := make([]*lease, 0, len(o.leases))
	for l := range o.leases {
		leases = append(leases, l)
	}
	o.leases = nil
	o.mu.Unlock()

	// Each goes back among the returned messages at the head, in put order: the
	// last leased first, so that each insertion is usually at the front of them.
	slices.SortFunc(leases, func(x, y *lease) int { return cmp.Compare(y.id, x.id) })

	now := time.Now()
	for _, l := range leases {
		l.q.mu.Lock()
		if l.live {
			b.requeueLeaseLocked(l, now, 0)
		}
		l.q.mu.Unlock()
	}
}

// Reserve takes up to o.Max messages from the first non-empty queue among queues,
// in the order given, under a lease each; if all are empty it waits as GetAny does
// for a put on any of them. It returns ErrEmpty when the wait runs out. A message
// whose TTL ran out is never delivered, and one delivered as often as its queue's
// MaxDeliveries allows goes to the dead-letter queue instead.
func (b *Broker) Reserve(
	ctx context.Context, queues []string, o ReserveOptions,
) ([]Delivery, error) {
	if err := b.checkReserve(queues, o); err != nil {
		return nil, err
	}
	r := &reserveReq{lease: o.Lease, owner: o.Owner, maxBytes: o.MaxBytes}
	n := max(o.Max, 1)

	for _, name := range queues {
		q := b.lookup(name, false)
		if q == nil {
			continue
		}
		if ls, ticket, err := b.tryReserve(q, r, n, 0, false); len(ls) > 0 || err != nil {
			return b.deliver(ctx, ls, ticket, err, o.Owner)
		}
	}
	if o.Wait == 0 {
		b.emptyGets.Add(1)
		return nil, ErrEmpty
	}

	d, err := b.awaitDelivery(ctx, queues, o.Wait, false, r)
	if err != nil {
		return nil, err
	}
	if d.err != nil {
		return nil, d.err
	}
	ls, ticket := []*lease{d.lease}, d.ticket
	if n > 1 {
		more, t, err := b.tryReserve(d.lease.q, r, n-1, d.lease.e.size, true)
		return b.deliver(ctx, append(ls, more...), max(ticket, t), err, o.Owner)
	}
	return b.deliver(ctx, ls, ticket, nil, o.Owner)
}

// tryReserve leases up to n messages from the head of q without waiting, within
// r.maxBytes of payload counting used bytes already leased by this reserve (taken
// says whether it leased any, so that the first message is never refused).
func (b *Broker) tryReserve(
	q *Queue, r *reserveReq, n, used int, taken bool,
) (ls []*lease, ticket storage.Ticket, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dead {
		return nil, 0, nil
	}
	for len(ls) < n {
		b.dropUnfitLocked(q, false, true)
		if q.ready.len() == 0 {
			break
		}
		size := q.ready.at(0).size
		if r.maxBytes > 0 && (taken || len(ls) > 0) && used+size > r.maxBytes {
			break
		}
		used += size
		d := b.firstLocked(q, false, r)
		if d.err != nil {
			return ls, ticket, d.err
		}
		ls = append(ls, d.lease)
		ticket = max(ticket, d.ticket)
	}
	return ls, ticket, nil
}

// firstLocked takes the entry at one end of q, which must not be empty: a take,
// or a lease when r is set. If the store refuses, the entry stays and the delivery
// carries the error.
func (b *Broker) firstLocked(q *Queue, back bool, r *reserveReq) delivery {
	if r == nil {
		return b.takeLocked(q, back)
	}
	e := q.popLocked(back)
	d := delivery{queue: q.name, e: e}
	d.lease, d.ticket, d.err = b.leaseLocked(q, e, r, time.Now())
	if d.err != nil {
		q.pushLocked(e, !back)
		return d
	}
	q.gets.Add(1)
	return d
}

// dropUnfitLocked sets aside the messages at one end of q that must not be
// delivered: expired ones and, for a reserve, those delivered as often as q's
// MaxDeliveries allows (after a restart, or a change of settings).
func (b *Broker) dropUnfitLocked(q *Queue, back, reserving bool) {
	b.dropExpiredEndLocked(q, back)
	s := q.settings.Load()
	if !reserving || s == nil || s.MaxDeliveries <= 0 {
		return
	}
	for q.ready.len() > 0 {
		i := 0
		if back {
			i = q.ready.len() - 1
		}
		m := q.ready.at(i).meta
		if m == nil || m.count < s.MaxDeliveries {
			return
		}
		b.deadLetterLocked(q, q.popLocked(back), ReasonMaxDeliveries)
		b.dropExpiredEndLocked(q, back)
	}
}

// deliver waits until the leases are durable and returns their deliveries. If the
// wait fails, or the owner was released meanwhile, the leases are given back.
func (b *Broker) deliver(
	ctx context.Context, ls []*lease, ticket storage.Ticket, cause error, o *Owner,
) ([]Delivery, error) {
	if len(ls) == 0 {
		return nil, cause
	}
	if err := b.store.Wait(ctx, ticket); err != nil {
		b.unleaseAll(ls)
		return nil, fmt.Errorf("reserve from queue %q: %w", ls[0].q.name, err)
	}
	if o != nil && o.isReleased() {
		b.unleaseAll(ls)
		return nil, errOwnerReleased
	}

	out := make([]Delivery, 0, len(ls))
	for _, l := range ls {
		p, err := l.payload, error(nil)
		if p == nil {
			p, err = b.peekPayload(l.e) // l.e.payload is nil: this reads the store
		}
		if err != nil {
			b.unleaseAll(ls)
			return nil, err
		}
		l.payload = nil // the delivery owns it now
		m := Message{Queue: l.q.name, ID: l.e.id, Payload: p, DeadLetter: l.e.deadLetter()}
		m.own()
		out = append(out, Delivery{
			Message:    m,
			DeliveryID: l.id,
			Count:      l.count,
			Deadline:   l.deadline0,
		})
	}
	return out, cause
}

func (b *Broker) unleaseAll(ls []*lease) {
	for _, l := range ls {
		b.unlease(l)
	}
}

// lockLease returns the live lease of a delivery, locked by its queue's lock, or
// ErrNoDelivery.
func (b *Broker) lockLease(deliveryID uint64, now time.Time) (*lease, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	l := b.leases.get(deliveryID)
	if l == nil {
		return nil, fmt.Errorf("%w: %d", ErrNoDelivery, deliveryID)
	}
	l.q.mu.Lock()
	if !b.liveLeaseLocked(l, now) {
		l.q.mu.Unlock()
		return nil, fmt.Errorf("%w: %d", ErrNoDelivery, deliveryID)
	}
	return l, nil
}

// Ack ends the delivery: its message is gone for good. It returns ErrNoDelivery if
// the delivery is unknown, already acked or nacked, or its lease ran out; the
// message's next delivery is then none of its business.
func (b *Broker) Ack(ctx context.Context, deliveryID uint64) error {
	ticket, err := b.AckAppend(deliveryID)
	if err != nil {
		return err
	}
	if err := b.store.Wait(ctx, ticket); err != nil {
		return fmt.Errorf("ack %d: %w", deliveryID, err)
	}
	return nil
}

// Nack ends the delivery and returns its message to the head of its queue, among
// the returned messages there in message order, at once (delay 0) or once delay
// has passed, and returns once that is recorded. Errors as for Ack.
func (b *Broker) Nack(ctx context.Context, deliveryID uint64, delay time.Duration) error {
	ticket, err := b.NackAppend(deliveryID, delay)
	if err != nil {
		return err
	}
	if err := b.store.Wait(ctx, ticket); err != nil {
		return fmt.Errorf("nack %d: %w", deliveryID, err)
	}
	return nil
}

// Unreserve gives back a delivery its consumer never got (a front door could not fit
// it in the reply): its message returns to the head of its queue as if this
// delivery had not been made, its delivery count one less, so that it is neither
// dead-lettered nor counted as a nack for it. Errors as for Ack.
func (b *Broker) Unreserve(ctx context.Context, deliveryID uint64) error {
	now := time.Now()
	l, err := b.lockLease(deliveryID, now)
	if err != nil {
		return err
	}
	b.endLeaseLocked(l)
	e := l.e
	if e.meta != nil && e.meta.count > 0 {
		e.meta.count-- // before the return's record, which keeps the count
	}
	ticket := b.returnLocked(l.q, e, now, 0)
	l.q.mu.Unlock()
	if err := b.store.Wait(ctx, ticket); err != nil {
		return fmt.Errorf("unreserve %d: %w", deliveryID, err)
	}
	return nil
}

// Touch extends the delivery's lease to lease from now (0: the lease it was given)
// and returns the new deadline. Errors as for Ack. A touch is not logged: after a
// restart every lease has ended anyway.
func (b *Broker) Touch(
	ctx context.Context, deliveryID uint64, lease time.Duration,
) (time.Time, error) {
	if err := checkDuration("lease", lease); err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	l, err := b.lockLease(deliveryID, now)
	if err != nil {
		return time.Time{}, err
	}
	if lease == 0 {
		lease = l.dur
	}
	l.deadline = now.Add(lease)
	b.timers.schedule(&l.timer, l.deadline)
	l.q.mu.Unlock()
	return l.deadline, nil
}

// checkReserve refuses a reserve that no queue could serve: the checks of a get,
// then of o's counts and lease.
func (b *Broker) checkReserve(queues []string, o ReserveOptions) error {
	if err := b.checkGet(queues, o.Wait); err != nil {
		return err
	}
	if o.Max < 0 || o.MaxBytes < 0 {
		return fmt.Errorf("%w: max %d and max bytes %d must not be negative",
			ErrInvalidOption, o.Max, o.MaxBytes)
	}
	return checkDuration("lease", o.Lease)
}
