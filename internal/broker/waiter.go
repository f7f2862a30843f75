package broker

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/keyq/keyq/internal/storage"
)

// A waiter's state moves once, from waiting to claimed (a put handed it a message) or
// to cancelled (its timeout or context ended, or it took a message itself). The
// compare-and-swap decides the race between a put and the waiter giving up, so a
// message is handed to a waiter only while it still waits.
const (
	waiting int32 = iota
	claimed
	cancelled
)

// delivery is what a put hands a claimed waiter: the message, already taken off its
// queue (and its take recorded), and the ticket to wait on before replying.
type delivery struct {
	queue  string
	e      entry
	lease  *lease // set when the waiter reserved
	ticket storage.Ticket
	err    error
	back   bool    // taken from the tail: a requeue puts it back there
	more   []entry // for a waiter that takes several: the ones taken after e
}

// waiter is one blocked get. It is parked on every queue it waits on, through one
// waitNode per queue, and the first put on any of them claims it, unless the queue
// is held (see HoldWaiters): then the waiter is served when the hold ends, from the
// first of its queues, in its own order, that has a message.
type waiter struct {
	state   atomic.Int32
	ch      chan delivery // buffered: a put never blocks handing over
	reserve *reserveReq   // set for a reserve: a put leases instead of taking
	queues  []string      // what it waits on, in the caller's order; read-only
	back    bool          // it takes from the tails of its queues
	count   int           // for a pop of several (BLMPOP): how many it may take
	one     [1]string     // holds queues for a waiter on a single queue
}

// newWaiter keeps a copy of queues, so that the callers' slices do not escape: a
// get that finds a message at once allocates nothing, and a waiter on one queue
// needs no allocation besides itself.
func newWaiter(queues []string, back bool, r *reserveReq) *waiter {
	w := &waiter{ch: make(chan delivery, 1), reserve: r, back: back}
	if len(queues) == 1 {
		w.one[0] = queues[0]
		w.queues = w.one[:]
	} else {
		w.queues = slices.Clone(queues)
	}
	return w
}

// waitNode links a waiter into one queue's wait list. Its fields are guarded by the
// lock of the queue it belongs to.
type waitNode struct {
	w          *waiter
	q          *Queue
	prev, next *waitNode
	linked     bool
}

// waitList is a FIFO of waitNodes with O(1) removal from anywhere, so a waiter that
// gives up leaves at once instead of waiting to be skipped.
type waitList struct {
	head, tail *waitNode
	n          atomic.Int64 // written under the queue's lock, read by stats without it
}

func (l *waitList) len() int { return int(l.n.Load()) }

func (l *waitList) pushBack(n *waitNode) {
	n.prev, n.next, n.linked = l.tail, nil, true
	if l.tail != nil {
		l.tail.next = n
	} else {
		l.head = n
	}
	l.tail = n
	l.n.Add(1)
}

func (l *waitList) remove(n *waitNode) {
	if !n.linked {
		return
	}
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next, n.linked = nil, nil, false
	l.n.Add(-1)
}

// claimWaiterLocked removes waiters from the front of q's list until one is still
// waiting, claims it and returns it, or returns nil when none waits.
func (q *Queue) claimWaiterLocked() *waiter {
	for q.waiters.head != nil {
		n := q.waiters.head
		q.waiters.remove(n)
		if n.w.state.CompareAndSwap(waiting, claimed) {
			return n.w
		}
	}
	return nil
}

// serveLocked hands q's messages to q's waiters, in the order they began to wait,
// each taking from the end it asked for, until either runs out. It is how a push of
// several messages serves waiters once all of them are in, as Redis does: with
// LPUSH k a b c and three BLPOP waiters, the first gets c, the head after the push.
func (b *Broker) serveLocked(q *Queue) {
	for n := q.waiters.head; n != nil && q.ready.len() > 0; {
		next := n.next
		w := n.w
		if w.state.Load() != waiting {
			q.waiters.remove(n)
			n = next
			continue
		}
		b.dropUnfitLocked(q, w.back, w.reserve != nil)
		if q.ready.len() == 0 {
			return
		}
		if w.state.CompareAndSwap(waiting, claimed) {
			q.waiters.remove(n)
			b.handLocked(q, w)
		}
		n = next
	}
}

// handLocked hands w, just claimed, the message at its end of q, which must not be
// empty, and, for a waiter that takes several, up to its count in all, as Redis
// serves a BLMPOP before the next blocked client.
func (b *Broker) handLocked(q *Queue, w *waiter) {
	d := b.firstLocked(q, w.back, w.reserve)
	for d.err == nil && len(d.more)+1 < w.count {
		b.dropExpiredEndLocked(q, w.back)
		if q.ready.len() == 0 {
			break
		}
		next := b.takeLocked(q, w.back)
		if next.err != nil {
			break // that message stays; the next pop meets the error again
		}
		d.more = append(d.more, next.e)
		d.ticket = max(d.ticket, next.ticket)
	}
	w.ch <- d
}

// Hold delays the hand-off of messages to waiters on a set of queues; see
// Broker.HoldWaiters. Release ends it; a Hold is used by one goroutine.
type Hold struct {
	b      *Broker
	queues []*Queue
}

// HoldWaiters holds the named queues: until Release, a message put on any of them
// stays in the queue instead of going to a waiter. Release then serves waiters as
// Redis 7.2 and later serve blocked clients after a transaction (case C09): queue by
// queue, in the order they first received a message under the hold, and on each
// queue its waiters in the order they began to wait, each taking from the first of
// its own queues, in the order it named them, that has a message, and from the end
// it asked for. So BLPOP key1 key2, after a transaction that pushed on key2 and then
// on key1, gets key1's head. RESP's EXEC runs inside a hold; the native protocol
// has no transactions and never holds. Invalid names are skipped. Gets that do not
// wait are not held back: one made while the hold lasts may take a held message
// before an older waiter.
func (b *Broker) HoldWaiters(queues []string) *Hold {
	h := &Hold{b: b}
	seen := make(map[string]bool, len(queues))
	for _, name := range queues {
		if seen[name] || ValidateKey(name) != nil {
			continue
		}
		seen[name] = true
		q := b.lockLive(name)
		q.held++
		q.mu.Unlock()
		h.queues = append(h.queues, q)
	}
	return h
}

// Release ends the hold and serves the waiters on its queues. It is idempotent.
func (h *Hold) Release() {
	qs := h.queues
	h.queues = nil
	type filled struct {
		q     *Queue
		order uint64
	}
	var ready []filled
	for _, q := range qs {
		q.mu.Lock()
		q.held--
		if q.held == 0 && q.heldFirstPut != 0 {
			ready = append(ready, filled{q, q.heldFirstPut})
			q.heldFirstPut = 0
		}
		q.mu.Unlock()
	}

	slices.SortFunc(ready, func(a, c filled) int { return cmp.Compare(a.order, c.order) })
	for _, r := range ready {
		for _, w := range r.q.waitingNow() {
			h.b.serveHeld(w)
		}
	}
	for _, q := range qs {
		q.mu.Lock()
		h.b.unlockQueue(q) // a held queue left empty and unused may go now
	}
}

// waitingNow returns the waiters still waiting on q, in the order they began to.
func (q *Queue) waitingNow() []*waiter {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ws []*waiter
	for n := q.waiters.head; n != nil; n = n.next {
		if n.w.state.Load() == waiting {
			ws = append(ws, n.w)
		}
	}
	return ws
}

// serveHeld hands w a message from the first of its queues that has one, if w still
// waits. It locks one queue at a time; a queue still held by another Hold is left to
// that one's Release.
func (b *Broker) serveHeld(w *waiter) {
	for _, name := range w.queues {
		q := b.lookup(name, false)
		if q == nil {
			continue
		}
		q.mu.Lock()
		if !q.dead && q.held == 0 {
			b.dropUnfitLocked(q, w.back, w.reserve != nil)
		}
		if q.dead || q.held > 0 || q.ready.len() == 0 {
			q.mu.Unlock()
			continue
		}
		if w.state.CompareAndSwap(waiting, claimed) {
			b.handLocked(q, w)
		}
		q.mu.Unlock()
		return
	}
}
