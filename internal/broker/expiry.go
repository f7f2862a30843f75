package broker

import "time"

// A message with a TTL has a timer in the broker's heap for the instant it expires,
// so that it leaves its queue then (dropped or dead-lettered, and counted) even if
// no consumer ever comes: O(log n) per message to schedule, whatever n is.
//
// When the timer fires the message may be anywhere. If it is ready in a queue
// (meta.queued), it is removed there: O(1) at either end of the ready list, which
// is where it is when a queue's messages share one TTL (they then expire in queue
// order, from the head), O(n) between them (a message with a shorter TTL than those
// put before it, or one returned to the head). If it is leased or deferred, the
// timer does nothing: a lease that comes back and a deferred message that comes
// due check the TTL themselves. A take, an ack or an expiry cancels the timer.

// scheduleExpiry gives the message behind m, which has a TTL, its expiry timer,
// unless it has one already.
func (b *Broker) scheduleExpiry(m *meta, id uint64) {
	if m == nil || m.expiresAt.IsZero() || m.expiry != nil {
		return
	}
	m.expiry = &timer{index: -1, expiry: m, seq: int64(id)}
	b.timers.schedule(m.expiry, m.expiresAt)
}

// cancelExpiry drops the expiry timer of a message that has left for good.
func (b *Broker) cancelExpiry(m *meta) {
	if m != nil && m.expiry != nil {
		b.timers.cancel(m.expiry)
	}
}

// expireReady acts on the TTL of the message behind m that ran out: if it is still
// ready in a queue, it leaves it as expireLocked says.
func (b *Broker) expireReady(m *meta) {
	q := m.queued.Load()
	if q == nil {
		return // leased, deferred, on its way or gone: see above
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if m.queued.Load() != q || !m.expiredAt(time.Now()) {
		return // it moved before the lock was ours
	}
	i := q.indexLocked(m)
	if i < 0 {
		return
	}
	b.expireLocked(q, q.removeAtLocked(i))
}
