package broker

import "fmt"

// MessageOverhead is what each message counts for toward Config.MaxHeldBytes on top
// of its payload: the broker's own bookkeeping of it (entry, ring slot, record), so
// that millions of empty messages are bounded too.
const MessageOverhead = 64

// The held total is kept from the store's point of view: a message counts from the
// record of its put (appendPutLocked, or recovery) until the record of its take
// (recordTakeLocked, or the end of a dead letter's old records), whatever it does in
// between: ready, deferred, leased, or on its way to a dead-letter queue. A move
// is a take from one queue and a put into another, so it changes nothing for long.
// Only new messages are checked against the limit (checkHeld): a message returned,
// requeued, moved or dead-lettered is never refused for it, and may take the total
// over the limit rather than be lost.

// charge is what a message of size payload bytes counts for in the held total.
func charge(size int) int64 { return int64(size) + MessageOverhead }

// checkHeld refuses n new messages of size payload bytes in all with ErrServerFull
// if they would take the held total over the limit. Puts on other queues may pass
// the same check at the same instant, so the limit may be overshot by the messages
// being put at that moment, but never by more.
func (b *Broker) checkHeld(n int, size int64) error {
	if b.maxHeld == 0 {
		return nil
	}
	add := size + int64(n)*MessageOverhead
	if held := b.held.Load(); held+add > b.maxHeld {
		return fmt.Errorf("%w: %d messages of %d bytes would take the %d bytes held "+
			"over the limit of %d", ErrServerFull, n, size, held, b.maxHeld)
	}
	return nil
}

// hold counts e, just recorded as put, in the held total. Without a limit nothing
// is counted, so that puts and takes do not share a counter for nothing.
func (b *Broker) hold(e *entry) {
	if b.maxHeld > 0 {
		b.held.Add(charge(e.size))
	}
}

// unhold takes e, just recorded as taken (or lost), out of the held total.
func (b *Broker) unhold(e *entry) {
	if b.maxHeld > 0 {
		b.held.Add(-charge(e.size))
	}
}

// HeldBytes returns what the broker holds toward its limit: the payload bytes of
// every message, ready, deferred or leased, plus MessageOverhead for each. It is 0
// when the broker has no limit (MaxHeldBytes 0), which keeps no count.
func (b *Broker) HeldBytes() int64 { return b.held.Load() }

// MaxHeldBytes returns the limit on HeldBytes past which new messages are refused
// with ErrServerFull; 0 means none.
func (b *Broker) MaxHeldBytes() int64 { return b.maxHeld }
