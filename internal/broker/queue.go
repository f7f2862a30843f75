package broker

import (
	"sync"
	"sync/atomic"

	"github.com/keyq/keyq/internal/storage"
)

// Queue is one named FIFO: its messages and the waiters parked on it. The broker owns
// every Queue; front doors reach them only through the Broker's methods.
type Queue struct {
	name string

	mu           sync.Mutex // protects the fields below
	ready        ring
	waiters      waitList
	dead         bool   // dropped from the table: callers holding it must look again
	ops          uint64 // puts and takes so far, to tell an idle queue from a busy one
	sweptOps     uint64 // ops when the sweeper last found the queue empty
	sweepPending bool   // on the broker's list of drained queues

	// rec is the record handed to Store.Append under mu; one per queue rather than
	// one per call, since a pointer passed through the interface would escape and
	// cost an allocation per operation.
	rec storage.Record

	// Positions order the queue in the store's records: every entry lies in
	// [headPos, tailPos), head puts take headPos-1 and tail puts take tailPos.
	headPos int64
	tailPos int64

	// Read by Stats and Len without mu.
	depth atomic.Int64
	bytes atomic.Int64
	puts  atomic.Uint64
	gets  atomic.Uint64
}

func newQueue(name string) *Queue { return &Queue{name: name} }

// nextPosLocked returns the position of a put at the head (front) or at the tail.
func (q *Queue) nextPosLocked(front bool) int64 {
	if front {
		q.headPos--
		return q.headPos
	}
	q.tailPos++
	return q.tailPos - 1
}

// pushLocked adds e at the tail, or at the head when front is set.
func (q *Queue) pushLocked(e entry, front bool) {
	if front {
		q.ready.pushFront(e)
	} else {
		q.ready.pushBack(e)
	}
	q.ops++
	q.depth.Add(1)
	q.bytes.Add(int64(e.size))
}

// popLocked removes the head entry, or the tail one when back is set. The queue must
// not be empty.
func (q *Queue) popLocked(back bool) entry {
	var e entry
	if back {
		e = q.ready.popBack()
	} else {
		e = q.ready.popFront()
	}
	q.ops++
	q.depth.Add(-1)
	q.bytes.Add(-int64(e.size))
	return e
}

// idleLocked reports whether q holds nothing and nobody waits on it, so that it may
// leave the table.
func (q *Queue) idleLocked() bool {
	return q.ready.len() == 0 && q.waiters.len() == 0
}
