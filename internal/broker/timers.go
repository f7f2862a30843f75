package broker

import (
	"cmp"
	"container/heap"
	"slices"
	"sync"
	"time"
)

// timer is one deadline the broker must act on: a lease running out, a deferred
// message coming due or a message's TTL running out. It lives in the lease or
// deferred message it belongs to, so scheduling allocates nothing.
type timer struct {
	when     time.Time // from time.Now: compared on the monotonic clock
	seq      int64     // orders timers due at the same instant (see timerHeap.Less)
	index    int       // in the heap; -1 when not in it
	lease    *lease    // set for a lease's deadline
	deferred *deferred // set for a deferred message's due time
	expiry   *meta     // set for a message's TTL
}

// timerHeap is a min-heap of timers by when (container/heap).
type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }

// Less orders by due time, then by seq: leases of one batch, due together, come
// back last-leased first, so that each goes to the front of the returned messages
// at the head of its queue (cheap, see insertReturnedLocked); deferred messages of
// one batch come due in the order put.
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// timers holds every deadline of the broker in one heap, served by one goroutine
// (Broker.timerLoop): O(log n) to add, move or drop a deadline, whatever n is. Its
// lock is taken after Queue.mu, never before, and held only for heap operations.
type timers struct {
	mu   sync.Mutex
	heap timerHeap
	dead []deadLetter // messages to move to their dead-letter queues

	kick chan struct{} // buffered: wakes the loop when the earliest deadline moved
}

func newTimers() *timers { return &timers{kick: make(chan struct{}, 1)} }

// schedule adds t at when, or moves it there if it is already scheduled.
func (ts *timers) schedule(t *timer, when time.Time) {
	ts.mu.Lock()
	t.when = when
	if t.index >= 0 {
		heap.Fix(&ts.heap, t.index)
	} else {
		heap.Push(&ts.heap, t)
	}
	first := t.index == 0
	ts.mu.Unlock()
	if first {
		ts.wake()
	}
}

// cancel drops t if it is scheduled.
func (ts *timers) cancel(t *timer) {
	ts.mu.Lock()
	if t.index >= 0 {
		heap.Remove(&ts.heap, t.index)
	}
	ts.mu.Unlock()
}

func (ts *timers) wake() {
	select {
	case ts.kick <- struct{}{}:
	default:
	}
}

// due pops every timer due at now, and returns them with the dead letters queued so
// far and how long until the next timer (-1: none).
func (ts *timers) due(now time.Time) ([]*timer, []deadLetter, time.Duration) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var fired []*timer
	for len(ts.heap) > 0 && !now.Before(ts.heap[0].when) {
		fired = append(fired, heap.Pop(&ts.heap).(*timer))
	}
	dead := ts.dead
	ts.dead = nil
	next := time.Duration(-1)
	if len(ts.heap) > 0 {
		next = ts.heap[0].when.Sub(now)
	}
	return fired, dead, next
}

// queueDead hands messages to the loop to move to their dead-letter queues, which it
// does outside any queue's lock.
func (ts *timers) queueDead(d ...deadLetter) {
	ts.mu.Lock()
	ts.dead = append(ts.dead, d...)
	ts.mu.Unlock()
	ts.wake()
}

// timerLoop acts on deadlines as they come and moves dead letters, until the broker
// closes.
func (b *Broker) timerLoop() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		fired, dead, next := b.timers.due(time.Now())
		for _, tm := range leasesFirst(fired) {
			b.fire(tm)
		}
		b.moveDead(dead)
		if len(fired) > 0 || len(dead) > 0 {
			continue // acting took time: look again before sleeping
		}

		if next < 0 {
			next = time.Hour
		}
		t.Reset(next)
		select {
		case <-b.done:
			return
		case <-b.timers.kick:
		case <-t.C:
		}
	}
}

// fire acts on a timer that came due. The lease or deferred message may have moved
// on meanwhile (acked, touched, released): each handler checks under the queue's
// lock.
func (b *Broker) fire(t *timer) {
	switch {
	case t.lease != nil:
		b.expireLease(t.lease)
	case t.deferred != nil:
		b.promote(t.deferred)
	case t.expiry != nil:
		b.expireReady(t.expiry)
	}
}

// leasesFirst reorders timers that came due together: leases first, by message ID
// from the last, then the deferred messages in their order. Leases that ran out
// while the loop was busy thus go back last message first, each to the front of the
// returned messages at the head of its queue, at O(1) rather than O(run) apiece.
func leasesFirst(fired []*timer) []*timer {
	if len(fired) < 2 {
		return fired
	}
	out := make([]*timer, 0, len(fired))
	for _, t := range fired {
		if t.lease != nil {
			out = append(out, t)
		}
	}
	// A lease's entry is fixed when the lease is made, so its ID reads without a lock.
	slices.SortStableFunc(out, func(x, y *timer) int {
		return cmp.Compare(y.lease.e.id, x.lease.e.id)
	})
	for _, t := range fired {
		if t.lease == nil {
			out = append(out, t)
		}
	}
	return out
}
