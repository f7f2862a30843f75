package broker

import (
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// AckAppend is the first half of Ack: it ends the delivery and appends the take of
// its message, and returns the ticket to pass to WaitDurable before acknowledging
// the ack. Errors as for Ack.
func (b *Broker) AckAppend(deliveryID uint64) (storage.Ticket, error) {
	l, err := b.lockLease(deliveryID, time.Now())
	if err != nil {
		return 0, err
	}
	q := l.q
	ticket, err := b.recordTakeLocked(q, l.e)
	if err == nil {
		b.endLeaseLocked(l)
		b.releaseCache(l.e)
		b.noteIfIdleLocked(q)
		q.acks.Add(1)
	}
	q.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return ticket, nil
}

// NackAppend is the first half of Nack: it ends the delivery and returns (or
// defers) its message, and returns the ticket to pass to WaitDurable before
// acknowledging the nack. Errors as for Nack.
func (b *Broker) NackAppend(deliveryID uint64, delay time.Duration) (storage.Ticket, error) {
	if err := checkDuration("delay", delay); err != nil {
		return 0, err
	}
	now := time.Now()
	l, err := b.lockLease(deliveryID, now)
	if err != nil {
		return 0, err
	}
	ticket := b.requeueLeaseLocked(l, now, delay)
	l.q.nacks.Add(1)
	l.q.mu.Unlock()
	return ticket, nil
}
