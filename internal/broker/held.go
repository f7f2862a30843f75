package broker

import "fmt"

// MessageOverhead is what each message counts for toward Config.MaxHeldBytes on top
// of its payload: the broker's own bookkeeping of it (entry, ring slot, record), so
// that millions of empty messages are bounded too.
const MessageOverhead = 64

// MaxHeldChunk is the most room a queue keeps reserved from the held total beyond
// what its messages use (see reserveHeldLocked).
const MaxHeldChunk = 64 << 10

// slackShare is the share of what a queue's ready messages take that it may keep
// reserved beyond them (1/slackShare), up to a chunk: so reservations never hold more
// than a sixteenth of what the queues use, and the limit refuses puts no earlier than
// at about 94% of it, however many queues hold messages.
const slackShare = 16

// The held total is kept from the store's point of view: a message counts from the
// record of its put (appendPutLocked, or recovery) until the record of its take
// (recordTakeLocked, or the end of a dead letter's old records), whatever it does in
// between: ready, deferred, leased, or on its way to a dead-letter queue. A move
// is a take from one queue and a put into another, so it changes nothing for long.
// Only new messages are checked against the limit (reserveHeldLocked): a message
// returned, requeued, moved or dead-lettered is never refused for it, and may take
// the total over the limit rather than be lost.
//
// One counter that every put and take of every queue updated would bounce between
// cores (it cost a quarter of a put and get on two cores). So each queue reserves
// room from the total ahead of its puts, in heldBudget, and its puts and takes move
// charges between the budget and its messages; the total is touched only when the
// budget runs out or grows past twice what the queue may keep. What a queue may keep
// beyond its messages (slackLocked) follows what its ready messages take: a
// sixteenth of it, up to a chunk. It also keeps the room of the last message it gave
// up, if that is small (up to a sixteenth of a chunk, see keepLocked), so that a
// queue that a put fills and a get empties by turns does not touch the total at all.
// A queue holding little thus reserves little: the total runs ahead of what messages
// use by about a sixteenth, plus a few KiB per queue at most, not by a chunk, or by
// the size of its last large message, per queue that holds anything. The budget of a
// queue goes back when the queue is deleted or dropped as drained.

// charge is what a message of size payload bytes counts for in the held total.
func charge(size int) int64 { return int64(size) + MessageOverhead }

// heldChunkFor returns the most a queue keeps reserved under limit beyond what its
// messages use: small next to the limit.
func heldChunkFor(limit int64) int64 { return min(MaxHeldChunk, limit/256) }

// slackLocked returns how much room q may keep reserved beyond its messages: a
// slackShare of what its ready messages take, up to a chunk.
func (b *Broker) slackLocked(q *Queue) int64 {
	uses := q.bytes.Load() + int64(q.ready.len())*MessageOverhead
	return min(b.heldChunk, uses/slackShare)
}

// reserveHeldLocked makes q's budget cover n new messages of size payload bytes in
// all, taking more from the held total (with q's slack on top if it fits), or
// refuses them with ErrServerFull if the total would go over the limit.
func (b *Broker) reserveHeldLocked(q *Queue, n int, size int64) error {
	if b.maxHeld == 0 {
		return nil
	}
	need := size + int64(n)*MessageOverhead - q.heldBudget
	if need <= 0 {
		return nil
	}
	for {
		held := b.held.Load()
		take := need + b.slackLocked(q)
		if held+take > b.maxHeld {
			take = need
		}
		if held+take > b.maxHeld {
			return fmt.Errorf("%w: %d of %d bytes held, no room for %d more "+
				"(%d payload bytes and %d per message)", ErrServerFull, held, b.maxHeld,
				size+int64(n)*MessageOverhead, size, MessageOverhead)
		}
		if b.held.CompareAndSwap(held, held+take) {
			q.heldBudget += take
			return nil
		}
	}
}

// holdLocked counts e, just recorded as put on q, in the held total: out of q's
// budget if it covers e (a new message's always does), else straight into the total
// (a message coming back or moving, which no limit refuses). Without a limit nothing
// is counted.
func (b *Broker) holdLocked(q *Queue, e *entry) {
	if b.maxHeld == 0 {
		return
	}
	c := charge(e.size)
	if q.heldBudget >= c {
		q.heldBudget -= c
		return
	}
	b.held.Add(c)
}

// unholdLocked takes e, just recorded as taken from q, out of the held total: back
// into q's budget, which gives the total what it holds beyond what q may keep once
// it holds twice that.
func (b *Broker) unholdLocked(q *Queue, e *entry) {
	if b.maxHeld == 0 {
		return
	}
	c := charge(e.size)
	q.heldBudget += c
	if keep := b.keepLocked(q, c); q.heldBudget > 2*keep {
		b.held.Add(keep - q.heldBudget)
		q.heldBudget = keep
	}
}

// keepLocked returns how much of its budget q keeps once a message of charge c has
// left it: its slack, or the room of that message if it is small. A large message's
// room goes back to the total at once: kept, it would stay reserved by a queue that
// holds a few bytes, for as long as the queue lives (a tester's case: 66 queues of
// one 6-byte message each, which had passed 1 MB messages, held a 64 MiB limit).
func (b *Broker) keepLocked(q *Queue, c int64) int64 {
	return max(b.slackLocked(q), min(c, b.heldChunk/slackShare))
}

// unhold takes e out of the held total directly, for a message that leaves a queue
// whose lock the caller does not hold.
func (b *Broker) unhold(e *entry) {
	if b.maxHeld > 0 {
		b.held.Add(-charge(e.size))
	}
}

// releaseBudgetLocked gives q's whole budget back to the held total, once q is
// deleted or dropped.
func (b *Broker) releaseBudgetLocked(q *Queue) {
	if q.heldBudget != 0 {
		b.held.Add(-q.heldBudget)
		q.heldBudget = 0
	}
}

// HeldBytes returns what the broker holds toward its limit: the payload bytes of
// every message, ready, deferred or leased, plus MessageOverhead for each, plus the
// room queues reserved ahead of their puts (about a sixteenth of what they hold, at
// most two chunks of MaxHeldChunk each, and a few KiB for one that holds little). It
// is 0 when the broker has no limit
// (MaxHeldBytes 0), which keeps no count.
func (b *Broker) HeldBytes() int64 { return b.held.Load() }

// MaxHeldBytes returns the limit on HeldBytes past which new messages are refused
// with ErrServerFull; 0 means none.
func (b *Broker) MaxHeldBytes() int64 { return b.maxHeld }

// RoomFor reports whether n new messages of size payload bytes in all would fit
// under the limit if put to queue now. It is a forecast, for a front door that
// must refuse a put before running it (a push queued in a RESP transaction): by
// the time the put runs, other calls may have taken the room or made more.
func (b *Broker) RoomFor(queue string, n int, size int64) bool {
	if b.maxHeld == 0 {
		return true
	}
	need := size + int64(n)*MessageOverhead
	if q := b.lookup(queue, false); q != nil {
		q.mu.Lock()
		need -= q.heldBudget
		q.mu.Unlock()
	}
	return need <= 0 || b.held.Load()+need <= b.maxHeld
}
