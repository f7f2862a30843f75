package broker

import (
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// deferred is a message that is not to be delivered before a time: a delayed put or
// a nack with a delay. It sits in the broker's timer heap, not in its queue's ready
// list, so no consumer can see it (let alone lease it) before it is due.
type deferred struct {
	q       *Queue
	e       entry
	timer   timer
	dropped bool // taken by a Delete while its timer had fired: promote skips it
}

// deferLocked holds e back in q until due.
func (b *Broker) deferLocked(q *Queue, e entry, due time.Time) {
	d := &deferred{q: q, e: e}
	d.timer = timer{index: -1, deferred: d, seq: int64(e.id)}
	q.deferred.Add(1)
	q.deferredBytes += int64(e.size)
	q.ops++
	b.timers.schedule(&d.timer, due)
}

// promote makes a deferred message that came due ready (or hands it to a waiting
// consumer), unless its TTL ran out meanwhile. A message delivered before (a nack
// with a delay) goes back to the head, to its place among the returned messages
// there, as a lease that ran out would (docs/PROTOCOL.md, NACK); one deferred by its
// put goes to the tail.
func (b *Broker) promote(d *deferred) {
	q, e := d.q, d.e
	q.mu.Lock()
	defer q.mu.Unlock()
	if d.dropped {
		return
	}
	q.deferred.Add(-1)
	q.deferredBytes -= int64(e.size)
	q.ops++

	if e.meta.expiredAt(time.Now()) {
		b.expireLocked(q, e) // notes q if idle
		return
	}
	if e.meta.delivered() {
		e.meta.pos, e.meta.returned = q.returnPosLocked(), true
		b.recordDueLocked(q, &e)
		b.admitReturnedLocked(q, e)
		return
	}
	pos := q.nextPosLocked(false)
	if e.meta == nil {
		b.admitLocked(q, e, false) // memory mode: nothing to record
		return
	}
	e.meta.pos, e.meta.returned = pos, false
	b.recordDueLocked(q, &e)
	b.admitLocked(q, e, false)
}

// recordDueLocked records that e, deferred in q, came due and stands at its meta's
// pos. A record the store refuses is logged: the store still holds e as deferred to
// a time now past, which a restart makes ready too.
func (b *Broker) recordDueLocked(q *Queue, e *entry) {
	if _, err := b.appendStateLocked(q, e, storage.OpReturn, 0, time.Time{}); err != nil {
		b.log.Error("cannot record deferred message come due", "queue", q.name,
			"msg_id", e.id, "err", err)
	}
}

// delivered reports whether the message behind m was delivered before: a deferred
// one that was is a nacked message, not a delayed put.
func (m *meta) delivered() bool {
	return m != nil && m.count > 0
}

// dropDeferredLocked takes q's deferred messages (delayed puts, nacks with a delay),
// recording each take, for Delete. It returns how many it took and the ticket of
// the last record. A deferred message whose timer fired but whose promote has not
// run yet is not in the heap: it is taken too, if Delete's ready pass finds it
// ready, else it becomes ready as it was due to.
func (b *Broker) dropDeferredLocked(q *Queue) (int, storage.Ticket, error) {
	if q.deferred.Load() == 0 {
		return 0, 0, nil
	}
	var mine []*deferred
	b.timers.mu.Lock()
	for _, t := range b.timers.heap {
		if t.deferred != nil && t.deferred.q == q {
			mine = append(mine, t.deferred)
		}
	}
	b.timers.mu.Unlock()

	var last storage.Ticket
	for i, d := range mine {
		ticket, err := b.recordTakeLocked(q, d.e)
		if err != nil {
			return i, last, err
		}
		b.timers.cancel(&d.timer)
		d.dropped = true
		q.deferred.Add(-1)
		q.deferredBytes -= int64(d.e.size)
		q.ops++
		b.releaseCache(d.e)
		last = max(last, ticket)
	}
	return len(mine), last, nil
}
