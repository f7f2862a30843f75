package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// PutOptions are the optional parts of a put.
type PutOptions struct {
	Delay time.Duration // not delivered before now+Delay (0: at once)
	TTL   time.Duration // expires after this long (0: the queue's default TTL, if any)
}

// PutWith is Put with options.
func (b *Broker) PutWith(
	ctx context.Context, queue string, payload []byte, o PutOptions,
) (uint64, error) {
	ids, err := b.PutBatch(ctx, queue, [][]byte{payload}, o)
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// PutBatch stores all payloads or none, under one hold of the queue's lock and one
// wait for the store, and returns their IDs in order. Each message goes to a waiting
// consumer if there is one, so a batch of three wakes three waiters. With a Delay,
// no message of the batch is delivered before it.
func (b *Broker) PutBatch(
	ctx context.Context, queue string, payloads [][]byte, o PutOptions,
) ([]uint64, error) {
	ids, ticket, err := b.PutBatchAppend(queue, payloads, o)
	if err != nil {
		return nil, err
	}
	if err := b.store.Wait(ctx, ticket); err != nil {
		return nil, fmt.Errorf("put %d messages on queue %q: %w", len(ids), queue, err)
	}
	return ids, nil
}

func (b *Broker) checkBatch(queue string, payloads [][]byte, o PutOptions) error {
	if len(payloads) == 0 {
		return fmt.Errorf("%w: a batch needs at least one message", ErrInvalidOption)
	}
	for _, p := range payloads {
		if err := b.checkPut(queue, p); err != nil {
			return err
		}
	}
	if err := checkDuration("delay", o.Delay); err != nil {
		return err
	}
	return checkDuration("ttl", o.TTL)
}

// putBatchLocked records every entry of es as put on q, then hands them on. If the
// store refuses one, those recorded before it are taken back, so that none stays.
func (b *Broker) putBatchLocked(
	q *Queue, es []entry, size int64, o PutOptions, now time.Time,
) (storage.Ticket, error) {
	if err := b.reserveHeldLocked(q, len(es), size); err != nil {
		return 0, err
	}
	s := q.settings.Load()
	if s != nil {
		if err := b.makeRoomLocked(q, s, len(es), size); err != nil {
			return 0, err
		}
	}
	ttl := o.TTL
	if ttl == 0 && s != nil {
		ttl = s.DefaultTTL
	}
	var due time.Time
	if o.Delay > 0 {
		due = now.Add(o.Delay)
	}

	var last storage.Ticket
	for i := range es {
		es[i].id = b.nextID.Add(1) - 1
		t, err := b.recordPutLocked(q, &es[i], ttl, due, now)
		if err != nil {
			b.undoPutsLocked(q, es[:i+1])
			return 0, err
		}
		last = max(last, t)
	}

	for _, e := range es {
		if o.Delay > 0 {
			b.deferLocked(q, e, due)
		} else {
			b.admitLocked(q, e, false)
		}
	}
	return last, nil
}

// recordPutLocked records e as put at q's tail, with a state record when it has a
// TTL or a due time.
func (b *Broker) recordPutLocked(
	q *Queue, e *entry, ttl time.Duration, due, now time.Time,
) (storage.Ticket, error) {
	// A due time needs a state record, hence meta, only when the store keeps one;
	// in memory a delayed message carries nothing but its timer.
	if ttl > 0 || !due.IsZero() && b.durable {
		m := metaOf(e, 0)
		if ttl > 0 {
			m.expiresAt = now.Add(ttl)
		}
	}
	ticket, err := b.appendPutLocked(q, e, false)
	if err != nil || e.meta == nil {
		return ticket, err
	}
	t, err := b.appendStateLocked(q, e, storage.OpDefer, 0, due)
	return max(ticket, t), err
}

// undoPutsLocked takes back the puts of a batch the store refused part of. The
// store takes takes even when it refuses puts (a full disk).
func (b *Broker) undoPutsLocked(q *Queue, es []entry) {
	for _, e := range es {
		if e.loc.IsZero() && b.durable {
			continue // never stored
		}
		if _, err := b.recordTakeLocked(q, e); err != nil {
			b.log.Error("cannot take back a refused batch", "queue", q.name,
				"msg_id", e.id, "err", err)
			b.unhold(&e) // the caller drops it all the same
		}
		b.releaseCache(e)
	}
}

// GetBatch takes up to max messages from the first non-empty queue among queues, in
// the order given, waiting as GetAny does when all are empty.
func (b *Broker) GetBatch(
	ctx context.Context, queues []string, max int, wait time.Duration,
) ([]Message, error) {
	return b.GetBatchWithin(ctx, queues, max, 0, wait)
}

// GetBatchWithin is GetBatch with a bound on the batch's payload bytes (0: none): it
// stops before a message that would bring them over maxBytes, though the first
// message is taken whatever its size (a front door whose reply must fit a frame
// passes what fits).
func (b *Broker) GetBatchWithin(
	ctx context.Context, queues []string, max, maxBytes int, wait time.Duration,
) ([]Message, error) {
	if err := b.checkGet(queues, wait); err != nil {
		return nil, err
	}
	if max < 0 {
		return nil, fmt.Errorf("%w: max %d is negative", ErrInvalidOption, max)
	}
	n := max
	if n == 0 {
		n = 1
	}

	for _, name := range queues {
		if q := b.lookup(name, false); q != nil {
			ds := b.takeN(deliveries.Get(n), q, n, maxBytes, 0, false)
			if len(ds) > 0 {
				return b.finishBatch(ctx, ds)
			}
			deliveries.Put(ds)
		}
	}
	if wait == 0 {
		b.emptyGets.Add(1)
		return nil, ErrEmpty
	}

	d, err := b.awaitDelivery(ctx, queues, wait, false, nil)
	if err != nil {
		return nil, err
	}
	ds := append(deliveries.Get(n), d)
	if d.err == nil && n > 1 {
		if q := b.lookup(d.queue, false); q != nil {
			ds = b.takeN(ds, q, n-1, maxBytes, d.e.size, true)
		}
	}
	return b.finishBatch(ctx, ds)
}

// takeN takes up to n messages from the head of q without waiting, within maxBytes
// of payload (0: no bound) counting used bytes already taken by this batch (taken
// says whether it took any, so that the first message is never refused), and
// appends their deliveries to ds. A take the store refuses ends the batch, its
// delivery carrying the error.
func (b *Broker) takeN(
	ds []delivery, q *Queue, n, maxBytes, used int, taken bool,
) []delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	for added := 0; added < n && !q.dead; added++ {
		b.dropExpiredEndLocked(q, false)
		if q.ready.len() == 0 {
			break
		}
		size := q.ready.at(0).size
		if maxBytes > 0 && (taken || added > 0) && used+size > maxBytes {
			break
		}
		used += size
		d := b.takeLocked(q, false)
		ds = append(ds, d)
		if d.err != nil {
			break
		}
	}
	return ds
}

// finishBatch waits once until every take of ds is durable and returns their
// messages. If the caller leaves first, every message goes back to the end it was
// taken from, in its order; a message that cannot be read ends the batch there, and
// those after it go back. ds is recycled: the caller must not use it again.
func (b *Broker) finishBatch(ctx context.Context, ds []delivery) ([]Message, error) {
	defer deliveries.Put(ds)

	var last storage.Ticket
	for _, d := range ds {
		last = max(last, d.ticket)
	}
	if err := b.store.Wait(ctx, last); err != nil {
		if ctx.Err() != nil {
			b.requeueAll(ds)
		}
		return nil, fmt.Errorf("get %d messages from queue %q: %w", len(ds), ds[0].queue, err)
	}

	msgs := messages.Get(len(ds))
	for i, d := range ds {
		err := d.err
		var m Message
		if err == nil {
			m, err = b.takenMessage(d)
		}
		if err != nil {
			b.requeueAll(ds[i+1:])
			if len(msgs) > 0 {
				return msgs, nil // the error comes again on the next call
			}
			messages.Put(msgs)
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// requeueAll puts the messages of ds back where they were taken from. Each goes to
// the same end its predecessors left from, so the last goes back first.
func (b *Broker) requeueAll(ds []delivery) {
	for i := len(ds) - 1; i >= 0; i-- {
		b.requeue(ds[i])
	}
}
