package broker

import (
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// deadLetter is a message on its way from its queue to a dead-letter queue.
type deadLetter struct {
	from   string
	target string
	e      entry
	reason string
}

// deadLetterName returns the dead-letter queue of the queue named queue.
func deadLetterName(queue string, s *QueueSettings) string {
	if s != nil && s.DeadLetter != "" {
		return s.DeadLetter
	}
	return queue + ".dlq"
}

// deadLetterLocked sets e, off q's lists, aside for its dead-letter queue. The move
// itself is done by the timer loop, outside q's lock, since it needs the other
// queue's: until then the store still holds e in q, so a crash in between leaves it
// there (to be dead-lettered again), never nowhere.
func (b *Broker) deadLetterLocked(q *Queue, e entry, reason string) {
	q.deadLettered.Add(1)
	q.ops++
	b.pendingDead.Add(1)
	b.timers.queueDead(deadLetter{
		from: q.name, target: deadLetterName(q.name, q.settings.Load()), e: e, reason: reason,
	})
	b.noteIfIdleLocked(q)
}

// expireLocked disposes of e, off q's lists, whose TTL ran out: dead-lettered if
// q's settings say so, else dropped. Either way it is counted.
func (b *Broker) expireLocked(q *Queue, e entry) {
	q.expired.Add(1)
	if s := q.settings.Load(); s != nil && s.ExpiredToDLQ {
		b.deadLetterLocked(q, e, ReasonExpired)
		return
	}
	if _, err := b.recordTakeLocked(q, e); err != nil {
		b.log.Error("cannot record expired message", "queue", q.name, "msg_id", e.id,
			"err", err)
		b.unhold(&e) // it leaves memory all the same
	}
	b.releaseCache(e)
	q.ops++
	b.noteIfIdleLocked(q)
}

// dropExpiredEndLocked is dropExpiredLocked that reads the clock only when the
// message at that end has a TTL, so that plain gets never pay for one.
func (b *Broker) dropExpiredEndLocked(q *Queue, back bool) {
	n := q.ready.len()
	if n == 0 {
		return
	}
	i := 0
	if back {
		i = n - 1
	}
	if m := q.ready.metaAt(i); m != nil && !m.expiresAt.IsZero() {
		b.dropExpiredLocked(q, back, time.Now())
	}
}

// dropExpiredLocked drops the expired messages at one end of q's ready list, which
// their expiry timers (expiry.go) have not removed yet: a TTL never makes a take
// scan.
func (b *Broker) dropExpiredLocked(q *Queue, back bool, now time.Time) {
	for q.ready.len() > 0 {
		i := 0
		if back {
			i = q.ready.len() - 1
		}
		if !q.ready.at(i).meta.expiredAt(now) {
			return
		}
		b.expireLocked(q, q.popLocked(back))
	}
}

// moveDead puts each dead letter at the tail of its dead-letter queue, with a note
// of where it came from and why, then records its end in the queue it left. It runs
// on the timer loop, holding one queue's lock at a time.
func (b *Broker) moveDead(list []deadLetter) {
	for _, d := range list {
		b.moveOneDead(d)
		b.pendingDead.Add(-1)
	}
}

func (b *Broker) moveOneDead(d deadLetter) {
	p, err := b.payload(d.e)
	if err != nil {
		b.log.Error("cannot read a message back to dead-letter it", "queue", d.from,
			"msg_id", d.e.id, "err", err)
		b.restoreDead(d)
		return
	}
	count := 0
	if d.e.meta != nil {
		count = d.e.meta.count
	}
	note := &DeadLetter{Queue: d.from, ID: d.e.id, Reason: d.reason, Count: count}
	moved := entry{payload: p, size: len(p), meta: &meta{dead: note}}

	dq := b.lockLive(d.target)
	moved.id = b.nextID.Add(1) - 1
	_, err = b.appendPutLocked(dq, &moved, false)
	if err == nil {
		_, err = b.appendStateLocked(dq, &moved, storage.OpDeadLetter, 0, time.Time{})
	}
	if err == nil {
		b.admitLocked(dq, moved, false)
	} else if !moved.loc.IsZero() {
		b.undoPutsLocked(dq, []entry{moved})
	}
	dq.mu.Unlock()
	if err != nil {
		b.log.Error("cannot dead-letter a message", "queue", d.from, "msg_id", d.e.id,
			"err", err)
		d.e.payload = p
		b.restoreDead(d)
		return
	}

	// The message left d.from in memory already; its records there end now. Nothing
	// else names it there, so no order with that queue's records is at stake.
	rec := storage.Record{Op: storage.OpTake, Queue: d.from, ID: d.e.id, Ref: d.e.loc}
	if _, _, err := b.store.Append(&rec); err != nil {
		b.log.Error("cannot record dead-lettered message", "queue", d.from,
			"msg_id", d.e.id, "err", err)
	}
	b.unhold(&d.e) // the copy in the dead-letter queue counts instead
	b.endStateOf(d.from, &d.e)
	b.cancelExpiry(d.e.meta)
}

// restoreDead puts a message its dead-letter queue could not take back at the head
// of the queue it left, where its records still are: it is dead-lettered again at
// its next delivery, rather than lost.
func (b *Broker) restoreDead(d deadLetter) {
	e := d.e
	if e.payload != nil {
		b.admitToCache(&e)
	}
	q := b.lockLive(d.from)
	q.deadLettered.Add(^uint64(0))
	b.admitLocked(q, e, true)
	q.mu.Unlock()
}
