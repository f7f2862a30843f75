package broker

import (
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
}

// waiter is one blocked get. It is parked on every queue it waits on, through one
// waitNode per queue, and the first put on any of them claims it.
type waiter struct {
	state   atomic.Int32
	ch      chan delivery // buffered: a put never blocks handing over
	reserve *reserveReq   // set for a reserve: a put leases instead of taking
}

func newWaiter() *waiter { return &waiter{ch: make(chan delivery, 1)} }

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
