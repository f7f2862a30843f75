package broker

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/keyq/keyq/internal/storage"
)

// Queue is one named FIFO: its messages and the waiters parked on it. The broker owns
// every Queue; front doors reach them only through the Broker's methods.
type Queue struct {
	// The fields a put or a take touches come first, in the first three cache lines
	// of the struct (which is 64-byte aligned while it stays within 384 bytes): with
	// many queues, each operation meets a queue that is not in the CPU's cache.

	name         string     // read by table lookups without mu
	mu           sync.Mutex // protects the fields below but the atomic ones
	ready        ring
	dead         bool   // dropped from the table: callers holding it must look again
	sweepPending bool   // on the broker's list of drained queues
	held         int32  // Holds on the queue: puts do not hand messages to waiters
	ops          uint64 // puts and takes so far, to tell an idle queue from a busy one
	heldBudget   int64  // room reserved from the broker's held total, see held.go

	// Positions order the queue in the store's records: every entry lies in
	// [headPos, tailPos), head puts take headPos-1 and tail puts take tailPos.
	tailPos int64

	// settings is nil for a queue without settings; written under mu, read anywhere.
	settings atomic.Pointer[QueueSettings]

	// Read by Stats and Len without mu; inflight and deferred written under mu.
	depth    atomic.Int64
	bytes    atomic.Int64
	puts     atomic.Uint64
	gets     atomic.Uint64
	inflight atomic.Int64
	deferred atomic.Int64

	waiters waitList

	// The rest is for head puts, leases, settings, holds, the sweeper and stats.

	headPos      int64  // see tailPos
	sweptOps     uint64 // ops when the sweeper last found the queue empty
	heldFirstPut uint64 // when the first put under the holds came (holdOrder); 0: none

	// rec is the record handed to Store.Append under mu; one per queue rather than
	// one per call, since a pointer passed through the interface would escape and
	// cost an allocation per operation. Made by the first durable append (see
	// recordLocked): the memory store needs none.
	rec *storage.Record

	// Leases and deferred messages live outside ready (in the broker's lease table
	// and timer heap); the queue counts them so that it is not dropped under them.
	deferredBytes int64
	settingsID    uint64           // ID of the live settings record; 0 if none
	settingsLoc   storage.Location // where the store keeps it

	expired      atomic.Uint64
	deadLettered atomic.Uint64
	dropped      atomic.Uint64
	acks         atomic.Uint64
	nacks        atomic.Uint64

	headID atomic.Uint64 // the head's ID when stats last saw it; 0: empty
}

func newQueue(name string) *Queue { return &Queue{name: name} }

// recordLocked returns q's record for Store.Append, set to r.
func (q *Queue) recordLocked(r storage.Record) *storage.Record {
	if q.rec == nil {
		q.rec = new(storage.Record)
	}
	*q.rec = r
	return q.rec
}

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
	if e.meta != nil {
		e.meta.queued.Store(q)
	}
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
	if e.meta != nil {
		e.meta.queued.Store(nil)
	}
	q.ops++
	q.depth.Add(-1)
	q.bytes.Add(-int64(e.size))
	return e
}

// removeAtLocked removes q's i-th entry (see ring.removeAt: O(1) at either end,
// O(n) between them).
func (q *Queue) removeAtLocked(i int) entry {
	e := q.ready.removeAt(i)
	if e.meta != nil {
		e.meta.queued.Store(nil)
	}
	q.ops++
	q.depth.Add(-1)
	q.bytes.Add(-int64(e.size))
	return e
}

// detachLocked gives the entry of message id in q's ready list, looked for from the
// tail (back) or the head, its own copy of its payload (see detached), so that it
// shares no buffer with another entry.
func (q *Queue) detachLocked(id uint64, back bool) {
	n := q.ready.len()
	for k := range n {
		i := k
		if back {
			i = n - 1 - k
		}
		if q.ready.idAt(i) == id {
			q.ready.set(i, detached(q.ready.at(i)))
			return
		}
	}
}

// indexLocked returns the place in q's ready list of the message whose meta is m,
// or -1: O(1) when it is at either end, else a scan, O(n).
func (q *Queue) indexLocked(m *meta) int {
	n := q.ready.len()
	switch {
	case n == 0:
		return -1
	case q.ready.metaAt(0) == m:
		return 0
	case q.ready.metaAt(n-1) == m:
		return n - 1
	}
	for i := 1; i < n-1; i++ {
		if q.ready.metaAt(i) == m {
			return i
		}
	}
	return -1
}

// idleLocked reports whether q holds nothing (ready, leased or deferred), nobody
// waits on it or holds it and it has no settings, so that it may leave the table.
func (q *Queue) idleLocked() bool {
	return q.ready.len() == 0 && q.waiters.len() == 0 && q.inflight.Load() == 0 &&
		q.deferred.Load() == 0 && q.settings.Load() == nil && q.held == 0
}

// returnPosLocked returns the position a message coming back to q's head takes: that
// of the run of returned messages at the head if there is one, else a new head one.
func (q *Queue) returnPosLocked() int64 {
	if q.ready.len() > 0 {
		if m := q.ready.metaAt(0); m != nil && m.returned {
			return m.pos
		}
	}
	return q.nextPosLocked(true)
}

// insertReturnedLocked queues e, coming back to q's head with its meta's pos and
// returned set (see returnPosLocked), at its place in the run of returned messages
// at the head: by message ID, which is the order of the puts, so that messages that
// come back stand in their original order, ahead of those never delivered. The run
// is found by binary search, and the insertion shifts the shorter side of the ring,
// so a message that sorts first in the run (as when the leases of a batch run out
// together, last first) costs O(log n) and one near the end O(run).
func (q *Queue) insertReturnedLocked(e entry) {
	pos := e.meta.pos
	i := sort.Search(q.ready.len(), func(i int) bool {
		m := q.ready.metaAt(i)
		inRun := m != nil && m.returned && m.pos == pos
		return !inRun || q.ready.idAt(i) > e.id
	})
	q.ready.insertAt(i, e)
	e.meta.queued.Store(q)
	q.ops++
	q.depth.Add(1)
	q.bytes.Add(int64(e.size))
}
