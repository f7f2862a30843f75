package broker

import (
	"sync"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// lease is one delivery waiting for its ack: the message, taken off its queue's
// ready list, and the deadline by which it comes back. Its fields after q are
// guarded by q.mu; the timer's place in the heap by the broker's timers.
type lease struct {
	id    uint64 // the delivery ID
	q     *Queue
	e     entry
	dur   time.Duration // the lease it was given, for a touch without one
	owner *Owner

	deadline time.Time // from time.Now: compared on the monotonic clock
	timer    timer

	// What the consumer is told, fixed when the lease is made, so that Reserve reads
	// it without the queue's lock while the lease may already be moving on.
	count     int
	deadline0 time.Time
	live      bool // false once acked, nacked, expired or released

	// payload is the consumer's copy of e's payload, made under the lock since e's
	// own buffer may be taken and recycled once the lease moves on; nil when only
	// the store has it.
	payload []byte
}

// reserveReq is what a reserve asks for: how long a lease and bound to whom.
type reserveReq struct {
	lease    time.Duration // 0: the queue's default, else the broker's
	owner    *Owner
	maxBytes int // 0: no bound on a batch's payload bytes
}

// leaseShards spreads the delivery table over this many locks, so acks on many
// queues rarely meet.
const leaseShards = 64

// leaseTable finds a lease by delivery ID. Its shard locks are taken after
// Queue.mu (to add or drop a lease) or alone (to look one up), never before.
type leaseTable struct {
	shards [leaseShards]struct {
		mu sync.Mutex
		m  map[uint64]*lease
	}
}

func (t *leaseTable) get(id uint64) *lease {
	s := &t.shards[id%leaseShards]
	s.mu.Lock()
	l := s.m[id]
	s.mu.Unlock()
	return l
}

func (t *leaseTable) put(l *lease) {
	s := &t.shards[l.id%leaseShards]
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[uint64]*lease)
	}
	s.m[l.id] = l
	s.mu.Unlock()
}

func (t *leaseTable) delete(id uint64) {
	s := &t.shards[id%leaseShards]
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// Owner groups the leases bound to one consumer connection: ReleaseOwner returns
// all of them to their queues at once, when the connection closes. Its lock is
// taken after Queue.mu, never before.
type Owner struct {
	mu       sync.Mutex
	leases   map[*lease]struct{}
	released bool
}

// add binds l to o, unless o was released (then the caller must release l).
func (o *Owner) add(l *lease) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.released {
		return false
	}
	if o.leases == nil {
		o.leases = make(map[*lease]struct{})
	}
	o.leases[l] = struct{}{}
	return true
}

func (o *Owner) remove(l *lease) {
	o.mu.Lock()
	delete(o.leases, l)
	o.mu.Unlock()
}

func (o *Owner) isReleased() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.released
}

// leaseLocked hands e, just taken off q's ready list, out under a lease: one more
// delivery, a fresh delivery ID and a deadline. The lease takes a new place at the
// head of q; if it runs out, the message returns to its place among the returned
// messages at the head (insertReturnedLocked). If the store refuses the lease record,
// e is unchanged and the caller puts it back.
func (b *Broker) leaseLocked(
	q *Queue, e entry, r *reserveReq, now time.Time,
) (*lease, storage.Ticket, error) {
	m := metaOf(&e, 0)
	oldPos := m.pos
	oldReturned := m.returned
	m.count++
	m.pos, m.returned = q.nextPosLocked(true), false
	id := b.nextID.Add(1) - 1
	ticket, err := b.appendStateLocked(q, &e, storage.OpLease, id, time.Time{})
	if err != nil {
		m.count--
		m.pos, m.returned = oldPos, oldReturned
		return nil, 0, err
	}

	dur := r.lease
	if dur == 0 {
		dur = b.defaultLeaseLocked(q)
	}
	l := &lease{id: id, q: q, e: e, dur: dur, owner: r.owner, live: true}
	l.deadline = now.Add(dur)
	l.count, l.deadline0 = m.count, l.deadline
	l.payload = detached(e).payload
	l.timer = timer{index: -1, lease: l, seq: -int64(id)}
	b.leases.put(l)
	q.inflight.Add(1)
	q.ops++
	b.timers.schedule(&l.timer, l.deadline)
	if r.owner != nil && !r.owner.add(l) {
		l.owner = nil // released meanwhile: Reserve returns the lease at once
	}
	return l, ticket, nil
}

func (b *Broker) defaultLeaseLocked(q *Queue) time.Duration {
	if s := q.settings.Load(); s != nil && s.DefaultLease > 0 {
		return s.DefaultLease
	}
	return b.defaultLease
}

// endLeaseLocked forgets l: its delivery ID answers ErrNoDelivery from now on. The
// caller decides what becomes of its message.
func (b *Broker) endLeaseLocked(l *lease) {
	l.live = false
	b.leases.delete(l.id)
	l.q.inflight.Add(-1)
	l.q.ops++
	b.timers.cancel(&l.timer)
	if l.owner != nil {
		l.owner.remove(l)
	}
}

// liveLeaseLocked reports whether l may still be acked, nacked or touched at now.
// A lease past its deadline whose timer has not fired yet is ended here, as the
// timer would have, so that it is refused whether or not the timer was on time.
func (b *Broker) liveLeaseLocked(l *lease, now time.Time) bool {
	if !l.live {
		return false
	}
	if now.Before(l.deadline) {
		return true
	}
	b.requeueLeaseLocked(l, now, 0)
	return false
}

// requeueLeaseLocked ends l and returns its message: to the head of its queue
// (delay 0) or deferred by delay; to its dead-letter queue if it has been
// delivered as often as its queue allows; nowhere if its TTL ran out. It returns
// the ticket of the record of the return (0 if there is none to wait on).
func (b *Broker) requeueLeaseLocked(
	l *lease, now time.Time, delay time.Duration,
) storage.Ticket {
	b.endLeaseLocked(l)
	q, e := l.q, l.e
	if s := q.settings.Load(); s != nil && s.MaxDeliveries > 0 &&
		e.meta.count >= s.MaxDeliveries {
		b.deadLetterLocked(q, e, ReasonMaxDeliveries)
		return 0
	}
	return b.returnLocked(q, e, now, delay)
}

// returnLocked puts e, off q's lists, back at q's head or defers it by delay, and
// returns the ticket of its record. A record the store refuses is logged, not
// returned: the message stays in memory, and the store, still holding it as
// leased, makes it ready at a restart too.
func (b *Broker) returnLocked(
	q *Queue, e entry, now time.Time, delay time.Duration,
) storage.Ticket {
	if e.meta.expiredAt(now) {
		b.expireLocked(q, e)
		return 0
	}
	if delay > 0 {
		due := now.Add(delay)
		ticket, err := b.appendStateLocked(q, &e, storage.OpDefer, 0, due)
		if err != nil {
			b.log.Error("cannot record deferred message", "queue", q.name,
				"msg_id", e.id, "err", err)
		}
		b.deferLocked(q, e, due)
		return ticket
	}

	e.meta.pos, e.meta.returned = q.returnPosLocked(), true
	ticket, err := b.appendStateLocked(q, &e, storage.OpReturn, 0, time.Time{})
	if err != nil {
		// The message stays in memory; the store still holds it as leased, which
		// a restart turns into ready too.
		b.log.Error("cannot record returned message", "queue", q.name,
			"msg_id", e.id, "err", err)
	}
	b.admitReturnedLocked(q, e)
	return ticket
}

// admitReturnedLocked hands e, coming back to q's head, to the first waiter on q, or
// queues it at its place among the returned messages at the head.
func (b *Broker) admitReturnedLocked(q *Queue, e entry) {
	if q.ready.len() == 0 {
		b.admitLocked(q, e, true)
		return
	}
	if q.held > 0 && q.heldFirstPut == 0 {
		q.heldFirstPut = b.holdOrder.Add(1)
	}
	q.insertReturnedLocked(e)
}

// expireLease acts on a lease deadline that came due.
func (b *Broker) expireLease(l *lease) {
	q := l.q
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	if l.live && !now.Before(l.deadline) {
		b.requeueLeaseLocked(l, now, 0)
	}
}

// unlease gives back a lease whose delivery never reached its consumer (it left, or
// the store failed): the delivery is not counted.
func (b *Broker) unlease(l *lease) {
	q := l.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if l.live {
		l.e.meta.count--
		b.endLeaseLocked(l)
		b.returnLocked(q, l.e, time.Now(), 0)
	}
}
