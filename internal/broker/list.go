package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// This file holds the operations that treat a queue as a deque, reached from both
// ends and read in place: what the RESP front door needs for Redis' list commands.

// End names one end of a queue: Front is the head, where Get takes, and Back the
// tail, where Put appends.
type End uint8

// The two ends of a queue.
const (
	Front End = iota
	Back
)

// String names the end the way Redis does.
func (e End) String() string {
	if e == Back {
		return "RIGHT"
	}
	return "LEFT"
}

// Push adds payloads to one end of the named queue, one after the other, under one
// hold of the queue's lock, and returns the queue's length after the pushes as
// Redis' LPUSH and RPUSH count it: messages handed straight to waiting consumers
// count as pushed. With ifExists set, it pushes only onto a queue that holds
// messages and otherwise returns 0 (LPUSHX, RPUSHX). Every payload is checked
// before any is pushed.
//
// Waiters are served once all payloads are in, as Redis serves blocked clients
// after a command: each takes from the end it asked for, so LPUSH k a b c wakes
// three BLPOP waiters with c, b and a, in the order they began to wait.
func (b *Broker) Push(
	ctx context.Context, queue string, payloads [][]byte, at End, ifExists bool,
) (int, error) {
	var size int64
	for _, p := range payloads {
		if err := b.checkPut(queue, p); err != nil {
			return 0, err
		}
		size += int64(len(p))
	}
	if ifExists && b.lookup(queue, false) == nil {
		return 0, nil
	}

	q := b.lockLive(queue)
	n := q.ready.len()
	if ifExists && n == 0 {
		b.unlockQueue(q)
		return 0, nil
	}
	if err := b.reserveHeldLocked(q, len(payloads), size); err != nil {
		b.unlockQueue(q)
		return 0, err
	}
	// One payload goes straight to a waiter, as a put does; several are held until
	// the last is in.
	several := len(payloads) > 1
	if several {
		q.held++
	}
	var last storage.Ticket
	var err error
	for _, p := range payloads {
		e := entry{id: b.nextID.Add(1) - 1, payload: copyPayload(p), size: len(p)}
		if last, err = b.offerLocked(q, e, at == Front); err != nil {
			break
		}
		n++
	}
	if several {
		q.held--
		if q.held == 0 {
			q.heldFirstPut = 0
			b.serveLocked(q)
		}
	}
	b.unlockQueue(q)
	if err != nil {
		return 0, err
	}

	if err := b.store.Wait(ctx, last); err != nil {
		return 0, fmt.Errorf("push on queue %q: %w", queue, err)
	}
	return n, nil
}

// PopN takes up to n messages from one end of the named queue, in the order they
// leave it, or returns ErrEmpty if it holds none.
func (b *Broker) PopN(ctx context.Context, queue string, n int, from End) ([]Message, error) {
	if err := b.checkGet([]string{queue}, 0); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("pop %d messages from queue %q: count must be positive", n, queue)
	}
	q := b.lookup(queue, false)
	if q == nil {
		return nil, ErrEmpty
	}

	q.mu.Lock()
	var taken []delivery
	var err error
	now := time.Now()
	for len(taken) < n && !q.dead {
		b.dropExpiredLocked(q, from == Back, now)
		if q.ready.len() == 0 {
			break
		}
		d := b.takeLocked(q, from == Back)
		if d.err != nil {
			err = d.err
			break
		}
		taken = append(taken, d)
	}
	q.mu.Unlock()

	if len(taken) == 0 {
		if err == nil {
			err = ErrEmpty
		}
		return nil, err
	}
	return b.finishAll(ctx, taken, err)
}

// PopAnyN takes up to n messages from one end of the first non-empty queue among
// queues, in the order given (Redis' LMPOP). If all are empty it waits, as GetAny
// does, for a put on any of them, then takes up to n from that queue. It returns the
// queue the messages came from. A push of several values serves such a waiter its
// whole count before the next waiter, as Redis does.
func (b *Broker) PopAnyN(
	ctx context.Context, queues []string, n int, from End, wait time.Duration,
) (string, []Message, error) {
	if err := b.checkGet(queues, wait); err != nil {
		return "", nil, err
	}
	for _, name := range queues {
		msgs, err := b.PopN(ctx, name, n, from)
		if !errors.Is(err, ErrEmpty) {
			return name, msgs, err
		}
	}
	if wait == 0 {
		b.emptyGets.Add(1)
		return "", nil, ErrEmpty
	}

	w := newWaiter(queues, from == Back, nil)
	w.count = n
	d, err := b.awaitWaiter(ctx, w, wait)
	if err != nil {
		return "", nil, err
	}
	first, err := b.finish(ctx, d)
	if err != nil {
		return "", nil, err
	}
	msgs := []Message{first}
	for _, e := range d.more {
		// As the first: each owns its buffer, so that Release recycles it.
		m, err := b.takenMessage(delivery{queue: first.Queue, e: e})
		if err != nil {
			return first.Queue, msgs, err
		}
		msgs = append(msgs, m)
	}
	// A waiter that found a message itself, or was handed one put, takes the rest now.
	if len(msgs) < n {
		more, err := b.PopN(ctx, first.Queue, n-len(msgs), from)
		if err != nil && !errors.Is(err, ErrEmpty) {
			return first.Queue, msgs, err
		}
		msgs = append(msgs, more...)
	}
	return first.Queue, msgs, nil
}

// finishAll waits until the takes behind ds are durable and returns their messages.
// A cause already met (a take the store refused) is returned with the messages
// taken before it.
func (b *Broker) finishAll(ctx context.Context, ds []delivery, cause error) ([]Message, error) {
	last := ds[len(ds)-1]
	if err := b.store.Wait(ctx, last.ticket); err != nil {
		return nil, fmt.Errorf("pop from queue %q: %w", last.queue, err)
	}

	msgs := make([]Message, 0, len(ds))
	for _, d := range ds {
		m, err := b.takenMessage(d)
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
	return msgs, cause
}

// Range returns copies of the messages of the named queue from index start to stop,
// both included, without taking them. Indexes count from 0 at the head; negative
// ones count from the tail (-1 is the last), and out-of-range ones are clamped, as in
// Redis' LRANGE. An unknown queue has no messages.
func (b *Broker) Range(queue string, start, stop int) ([]Message, error) {
	return b.RangeAppend(nil, queue, start, stop)
}

// RangeAppend is Range appending to dst, so that a caller serving many ranges can
// reuse one slice. The messages share one buffer for their payloads: they own no
// pooled buffer, and Release does nothing.
func (b *Broker) RangeAppend(dst []Message, queue string, start, stop int) ([]Message, error) {
	if err := ValidateKey(queue); err != nil {
		return dst, err
	}
	q := b.lookup(queue, false)
	if q == nil {
		return dst, nil
	}

	// The queued buffers may be taken and reused once the lock is released, so the
	// payloads are copied now, into one buffer for the whole range: a copy from the
	// pools per message (and a slice of entries besides) cost LRANGE of 500 messages
	// 6 times what Redis takes.
	type later struct {
		i int // in dst
		e entry
	}
	var dropped []later // payloads the cache dropped, read back after the lock
	q.mu.Lock()
	start, stop = clampRange(start, stop, q.ready.len())
	size := 0
	for i := start; i <= stop; i++ {
		size += len(q.ready.at(i).payload)
	}
	slab := make([]byte, 0, size)
	dst = slices.Grow(dst, max(stop-start+1, 0))
	for i := start; i <= stop; i++ {
		e := q.ready.at(i)
		m := Message{Queue: queue, ID: e.id, Payload: []byte{}}
		switch {
		case e.payload != nil:
			off := len(slab)
			slab = append(slab, e.payload...)
			m.Payload = slab[off:len(slab):len(slab)]
		case e.size > 0:
			dropped = append(dropped, later{len(dst), e})
		}
		dst = append(dst, m)
	}
	q.mu.Unlock()

	for _, d := range dropped {
		p, err := b.peekPayload(d.e)
		if err != nil {
			return dst, err
		}
		dst[d.i].Payload = p
	}
	return dst, nil
}

// Peek returns a copy of the message at index in the named queue, counted as Range
// counts, without taking it; ErrEmpty if there is none there (Redis' LINDEX).
func (b *Broker) Peek(queue string, index int) (Message, error) {
	if err := ValidateKey(queue); err != nil {
		return Message{}, err
	}
	q := b.lookup(queue, false)
	if q == nil {
		return Message{}, ErrEmpty
	}

	q.mu.Lock()
	n := q.ready.len()
	if index < 0 {
		index += n
	}
	if index < 0 || index >= n {
		q.mu.Unlock()
		return Message{}, ErrEmpty
	}
	e := detached(q.ready.at(index))
	q.mu.Unlock()

	p, err := b.peekPayload(e)
	if err != nil {
		return Message{}, err
	}
	m := Message{Queue: queue, ID: e.id, Payload: p}
	m.own()
	return m, nil
}

// clampRange turns Redis-style start and stop indexes into a range [start, stop] of
// a list of n; stop < start means the range is empty.
func clampRange(start, stop, n int) (int, int) {
	if start < 0 {
		start += n
	}
	if stop < 0 {
		stop += n
	}
	start = max(start, 0)
	stop = min(stop, n-1)
	return start, stop
}

// peekPayload returns e's payload, reading it from the store if the cache dropped it;
// the message stays in its queue and keeps its share of the cache. An e still queued
// must come from detached: the queued buffer may be taken and recycled as soon as the
// queue's lock is released.
func (b *Broker) peekPayload(e entry) ([]byte, error) {
	if e.payload != nil || e.size == 0 {
		if e.payload == nil {
			return []byte{}, nil
		}
		return e.payload, nil
	}
	p, err := b.store.ReadPayload(e.loc)
	if err != nil {
		return nil, fmt.Errorf("read message %d from segment %d offset %d: %w",
			e.id, e.loc.Segment, e.loc.Offset, err)
	}
	return p, nil
}

// Exists reports whether the named queue holds any message.
func (b *Broker) Exists(queue string) (bool, error) {
	n, err := b.Len(queue)
	return n > 0, err
}

// Delete takes every message of the named queue, ready or deferred (delayed puts,
// nacks with a delay), recording each take, and returns how many there were (Redis'
// DEL). Messages out under a lease are not the queue's to take: they stay with their
// consumers, and an ack ends them as usual while a nack or an expired lease returns
// them. Waiters on the queue keep waiting.
func (b *Broker) Delete(ctx context.Context, queue string) (int, error) {
	if err := ValidateKey(queue); err != nil {
		return 0, err
	}
	q := b.lookup(queue, false)
	if q == nil {
		return 0, nil
	}

	q.mu.Lock()
	var last storage.Ticket
	var err error
	n := 0
	for !q.dead && q.ready.len() > 0 {
		if last, err = b.removeAtLocked(q, 0); err != nil {
			break
		}
		n++
	}
	if err == nil && !q.dead {
		var dn int
		var dt storage.Ticket
		dn, dt, err = b.dropDeferredLocked(q)
		n, last = n+dn, max(last, dt)
	}
	if q.ready.len() == 0 && q.inflight.Load() == 0 && q.deferred.Load() == 0 {
		b.releaseBudgetLocked(q)
	}
	if q.idleLocked() && !q.dead {
		b.noteDrainedLocked(q)
	}
	q.mu.Unlock()

	if err != nil {
		return n, err
	}
	if err := b.store.Wait(ctx, last); err != nil {
		return n, fmt.Errorf("delete queue %q: %w", queue, err)
	}
	return n, nil
}

// Remove takes the messages of the named queue whose payload equals payload and
// returns how many it took, as Redis' LREM counts: count > 0 takes up to count of
// them from the head, count < 0 up to -count from the tail, and 0 takes them all.
func (b *Broker) Remove(
	ctx context.Context, queue string, count int, payload []byte,
) (int, error) {
	if err := ValidateKey(queue); err != nil {
		return 0, err
	}
	q := b.lookup(queue, false)
	if q == nil {
		return 0, nil
	}

	// Messages whose payload only the store keeps are compared after reading them
	// back, which happens without the lock; matches is what that found.
	matches, err := b.storedMatches(q, payload)
	if err != nil {
		return 0, err
	}

	q.mu.Lock()
	removed, last, err := b.removeMatchingLocked(q, count, payload, matches)
	if q.idleLocked() && !q.dead {
		b.noteDrainedLocked(q)
	}
	q.mu.Unlock()

	if err != nil || removed == 0 {
		return removed, err
	}
	if err := b.store.Wait(ctx, last); err != nil {
		return removed, fmt.Errorf("remove from queue %q: %w", queue, err)
	}
	return removed, nil
}

// storedMatches returns the IDs of q's messages that the cache dropped and whose
// payload, read back from the store, equals payload.
func (b *Broker) storedMatches(q *Queue, payload []byte) (map[uint64]bool, error) {
	q.mu.Lock()
	var stored []entry
	for i := range q.ready.len() {
		if e := q.ready.at(i); e.payload == nil && e.size == len(payload) && e.size > 0 {
			stored = append(stored, e)
		}
	}
	q.mu.Unlock()

	matches := make(map[uint64]bool)
	for _, e := range stored {
		p, err := b.peekPayload(e)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(p, payload) {
			matches[e.id] = true
		}
	}
	return matches, nil
}

func (b *Broker) removeMatchingLocked(
	q *Queue, count int, payload []byte, stored map[uint64]bool,
) (removed int, last storage.Ticket, err error) {
	if q.dead {
		return 0, 0, nil
	}
	limit := count
	if limit < 0 {
		limit = -limit
	}
	matches := func(e entry) bool {
		if e.payload == nil && e.size > 0 {
			return stored[e.id]
		}
		return e.size == len(payload) && bytes.Equal(e.payload, payload)
	}

	if count >= 0 {
		for i := 0; i < q.ready.len() && (limit == 0 || removed < limit); {
			if !matches(q.ready.at(i)) {
				i++
				continue
			}
			if last, err = b.removeAtLocked(q, i); err != nil {
				return removed, last, err
			}
			removed++
		}
		return removed, last, nil
	}

	for i := q.ready.len() - 1; i >= 0 && removed < limit; i-- {
		if !matches(q.ready.at(i)) {
			continue
		}
		if last, err = b.removeAtLocked(q, i); err != nil {
			return removed, last, err
		}
		removed++
	}
	return removed, last, nil
}

// removeAtLocked records the take of q's i-th message and then drops it from q; if
// the store refuses the take, the message stays.
func (b *Broker) removeAtLocked(q *Queue, i int) (storage.Ticket, error) {
	ticket, err := b.recordTakeLocked(q, q.ready.at(i))
	if err != nil {
		return 0, err
	}
	e := q.removeAtLocked(i)
	b.releaseCache(e)
	return ticket, nil
}

// releaseCache gives back e's share of the payload cache when e leaves its queue
// without being handed to a consumer.
func (b *Broker) releaseCache(e entry) {
	if e.payload != nil && !e.loc.IsZero() {
		b.cacheUsed.Add(-int64(e.size))
	}
}

// detached returns e with a copy of its payload, if it has one in memory, that stays
// valid once the queue's lock is released. The caller holds the lock of e's queue.
func detached(e entry) entry {
	if e.payload != nil {
		e.payload = copyPayload(e.payload)
	}
	return e
}
