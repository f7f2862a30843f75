package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// Move takes the message at one end of queue src and puts it at one end of queue dst
// in one atomic step (Redis' LMOVE and RPOPLPUSH), and returns it as it now stands
// in dst. A consumer waiting on dst gets it at once. When src and dst are the same
// queue, a move between opposite ends rotates the queue and a move from an end to
// itself changes nothing. It returns ErrEmpty when src holds no message.
//
// The message gets a new ID in dst: IDs name one put, and the move is a new put. It
// keeps no delivery state either: its TTL and delivery count stay behind. Expired
// messages at src's end are dropped first, as a get drops them.
func (b *Broker) Move(ctx context.Context, src, dst string, from, to End) (Message, error) {
	if err := b.checkMove(src, dst, 0); err != nil {
		return Message{}, err
	}

	var read entry // the last payload read back from the store, by ID
	for {
		m, again, err := b.tryMove(ctx, src, dst, from, to, &read)
		if !again {
			return m, err
		}
	}
}

// tryMove moves one message under both queues' locks. When the message's payload
// lives only in the store, it reads it without the locks into read and asks to be
// called again (again), since the queues may have changed meanwhile.
func (b *Broker) tryMove(
	ctx context.Context, src, dst string, from, to End, read *entry,
) (m Message, again bool, err error) {
	qs, qd := b.lockPair(src, dst)
	b.dropExpiredLocked(qs, from == Back, time.Now())
	if qs.ready.len() == 0 {
		b.unlockPair(qs, qd)
		return Message{}, false, ErrEmpty
	}
	e := qs.ready.at(0)
	if from == Back {
		e = qs.ready.at(qs.ready.len() - 1)
	}

	payload := e.payload
	if payload == nil && e.size > 0 {
		if read.id != e.id || read.payload == nil {
			b.unlockPair(qs, qd)
			p, err := b.peekPayload(e)
			if err != nil {
				return Message{}, false, err
			}
			*read = entry{id: e.id, payload: p}
			return Message{}, true, nil
		}
		payload = read.payload
	}

	// The copy for the caller is made under the locks: once they are released, the
	// queued buffer may be taken, released and reused by another put.
	if qs == qd && from == to {
		m = ownedCopy(src, e.id, payload)
		b.unlockPair(qs, qd)
		return m, false, nil
	}

	m = ownedCopy(dst, 0, payload)
	moved, ticket, err := b.moveLocked(qs, qd, e, payload, from, to)
	b.unlockPair(qs, qd)
	if err != nil {
		return Message{}, false, err
	}
	if err := b.store.Wait(ctx, ticket); err != nil {
		return Message{}, false, fmt.Errorf("move %d from queue %q to %q: %w",
			e.id, src, dst, err)
	}
	m.ID = moved.id
	return m, false, nil
}

// moveLocked puts a copy of e (the entry at src's end from) at dst's end to, then
// takes e from src. The put comes first so that a store refusing it (disk full)
// leaves everything as it was; a store that accepts the put but then refuses the
// take (it failed, or the disk filled up in between) leaves the message in both
// queues rather than in neither, each with a buffer of its own. The caller holds
// both queues' locks.
func (b *Broker) moveLocked(
	qs, qd *Queue, e entry, payload []byte, from, to End,
) (entry, storage.Ticket, error) {
	moved := entry{id: b.nextID.Add(1) - 1, payload: payload, size: e.size}
	putTicket, err := b.offerMovedLocked(qs, qd, moved, to == Front)
	if err != nil {
		return entry{}, 0, err
	}
	takeTicket, err := b.recordTakeLocked(qs, e)
	if err != nil {
		// The message is in both queues now, and moved shares e's buffer: the entry
		// left in qs gets one of its own, or the consumers that take the two would
		// both give the same buffer back to the pools.
		qs.detachLocked(e.id, from == Back)
		return entry{}, 0, err
	}

	// When qs == qd the put went to the other end, so this end still holds e.
	qs.popLocked(from == Back)
	b.releaseCache(e)
	qs.gets.Add(1)
	if qs.idleLocked() {
		b.noteDrainedLocked(qs)
	}
	return moved, max(putTicket, takeTicket), nil
}

// offerMovedLocked offers moved, the copy of a message of qs, to qd as offerLocked
// does. A rotation (qs == qd) leaves the queue as long as it was, so the queue's
// limits neither refuse it nor drop a message to make room: the oldest message
// they would drop may be the very one being moved.
func (b *Broker) offerMovedLocked(
	qs, qd *Queue, moved entry, front bool,
) (storage.Ticket, error) {
	s := qd.settings.Load()
	if qs != qd || s == nil || s.MaxLength == 0 && s.MaxBytes == 0 {
		return b.offerLocked(qd, moved, front)
	}
	unbounded := *s
	unbounded.MaxLength, unbounded.MaxBytes = 0, 0
	return b.offerSetLocked(qd, &unbounded, moved, front)
}

// BlockingMove is Move that, when src is empty, waits up to wait (Forever: until ctx
// ends) for a message to arrive in src, and moves it (Redis' BLMOVE and BRPOPLPUSH).
// Once woken, the message ends in dst or, if dst refuses it, back at the end of src
// it came from, and the error is returned; it is never dropped.
func (b *Broker) BlockingMove(
	ctx context.Context, src, dst string, from, to End, wait time.Duration,
) (Message, error) {
	if err := b.checkMove(src, dst, wait); err != nil {
		return Message{}, err
	}
	m, err := b.Move(ctx, src, dst, from, to)
	if !errors.Is(err, ErrEmpty) || wait == 0 {
		return m, err
	}

	d, err := b.awaitOne(ctx, src, wait, from)
	if err != nil {
		return Message{}, err
	}
	return b.land(ctx, d, dst, from, to)
}

// awaitOne waits on one queue as await does, but returns the delivery itself, its
// take recorded, instead of finishing it. A message claimed as the wait ends for any
// cause but the timeout goes back to the end of the queue it was taken from.
func (b *Broker) awaitOne(
	ctx context.Context, queue string, wait time.Duration, from End,
) (delivery, error) {
	d, late, cause := b.park(ctx, newWaiter([]string{queue}, from == Back, nil), wait)
	switch {
	case cause == nil:
		return d, d.err
	case !late:
		return delivery{}, cause
	case cause == ErrEmpty || d.err != nil:
		return d, d.err
	}
	if p, err := b.payload(d.e); err == nil {
		b.restore(d.queue, entry{id: d.e.id, payload: p, size: d.e.size}, from)
	} else {
		b.log.Error("message lost: cannot read it back to requeue",
			"queue", d.queue, "msg_id", d.e.id, "err", err)
	}
	return delivery{}, cause
}

// land puts the message of d, already taken from its queue, at dst's end to. If dst
// refuses it (C11: an error raised after the waiter woke), the message goes back to
// the end of its queue it was taken from.
func (b *Broker) land(
	ctx context.Context, d delivery, dst string, from, to End,
) (Message, error) {
	p, err := b.payload(d.e)
	if err != nil {
		b.log.Error("message lost: cannot read it back to move it",
			"queue", d.queue, "msg_id", d.e.id, "err", err)
		return Message{}, err
	}

	// The caller's copy is made before the message is queued again, where it may be
	// taken, released and its buffer reused at once.
	m := ownedCopy(dst, 0, p)
	moved := entry{id: b.nextID.Add(1) - 1, payload: p, size: len(p)}
	m.ID = moved.id
	qd := b.lockLive(dst)
	ticket, err := b.offerLocked(qd, moved, to == Front)
	b.unlockQueue(qd)
	if err != nil {
		b.restore(d.queue, entry{id: d.e.id, payload: p, size: len(p)}, from)
		return Message{}, err
	}

	if err := b.store.Wait(ctx, max(ticket, d.ticket)); err != nil {
		return Message{}, fmt.Errorf("move %d from queue %q to %q: %w",
			d.e.id, d.queue, dst, err)
	}
	return m, nil
}

// restore puts e, taken from the named queue by a move that could not finish, back
// at the end it was taken from.
func (b *Broker) restore(queue string, e entry, at End) {
	q := b.lockLive(queue)
	_, err := b.putBackLocked(q, e, at == Front)
	b.unlockQueue(q)
	if err != nil {
		// TODO: a store that refuses every put (disk full) loses the message here.
		b.log.Error("message lost: cannot put it back", "queue", queue, "msg_id", e.id,
			"err", err)
	}
}

func (b *Broker) checkMove(src, dst string, wait time.Duration) error {
	if err := ValidateKey(dst); err != nil {
		return err
	}
	return b.checkGet([]string{src}, wait)
}

// lockPair returns the queues named src and dst, created if needed, locked and not
// dropped. Two queues are locked in name order, so two moves in opposite directions
// cannot deadlock; the table lock is never taken while a queue's lock is held.
func (b *Broker) lockPair(src, dst string) (qs, qd *Queue) {
	if src == dst {
		q := b.lockLive(src)
		return q, q
	}
	for {
		qs, qd = b.lookup(src, true), b.lookup(dst, true)
		first, second := qs, qd
		if dst < src {
			first, second = qd, qs
		}
		first.mu.Lock()
		second.mu.Lock()
		if !qs.dead && !qd.dead {
			return qs, qd
		}
		b.unlockPair(qs, qd)
	}
}

// unlockPair unlocks the queues of lockPair, noting those left idle (a move may
// create both) as candidates for removal.
func (b *Broker) unlockPair(qs, qd *Queue) {
	if qd != qs {
		b.unlockQueue(qd)
	}
	b.unlockQueue(qs)
}

// unlockQueue unlocks q, first noting it for the sweeper if it is left idle, so a
// queue created by a lookup that found nothing to do does not stay in the table.
func (b *Broker) unlockQueue(q *Queue) {
	if !q.dead && q.idleLocked() {
		b.noteDrainedLocked(q)
	}
	q.mu.Unlock()
}
