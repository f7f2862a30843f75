package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// Overflow says what a put into a full queue does.
type Overflow uint8

// The overflow policies.
const (
	OverflowReject     Overflow = iota // the put fails with ErrQueueFull
	OverflowDropOldest                 // the head message is dropped (and counted)
)

// String names the policy as the CLI and stats spell it.
func (o Overflow) String() string {
	if o == OverflowDropOldest {
		return "drop-oldest"
	}
	return "reject"
}

// MaxDuration bounds every lease, delay and TTL: now plus it never overflows a
// time.Time, and a longer one is refused with ErrInvalidOption rather than wrapped
// into the past.
const MaxDuration = 100 * 365 * 24 * time.Hour

// checkDuration refuses a negative what, or one over MaxDuration.
func checkDuration(what string, d time.Duration) error {
	if d < 0 || d > MaxDuration {
		return fmt.Errorf("%w: %s %v is negative or over %v", ErrInvalidOption, what, d,
			MaxDuration)
	}
	return nil
}

// QueueSettings are kept durably per queue and shown in stats. Zero values mean
// "no limit" or "server default". A queue with settings stays in the table even
// when empty.
type QueueSettings struct {
	MaxLength     int   // ready and deferred messages; leased ones do not count
	MaxBytes      int64 // their payload bytes
	Overflow      Overflow
	DefaultLease  time.Duration
	MaxDeliveries int    // 0: unlimited; past that many deliveries a message is dead-lettered
	DeadLetter    string // "" means "<queue>.dlq"
	DefaultTTL    time.Duration
	ExpiredToDLQ  bool // expired messages go to the dead-letter queue instead of being dropped
}

// SetQueue replaces the settings of the named queue, durably. The zero QueueSettings
// removes them. Limits apply to later puts: a queue already over them keeps its
// messages.
func (b *Broker) SetQueue(ctx context.Context, queue string, s QueueSettings) error {
	if err := b.checkSettings(queue, s); err != nil {
		return err // before UpdateQueue, which would make the queue first
	}
	_, err := b.UpdateQueue(ctx, queue, func(cur *QueueSettings) error {
		*cur = s
		return nil
	})
	return err
}

// UpdateQueue changes the settings of the named queue as change says, durably, and
// returns them. change gets the current settings and edits them in place; it runs
// under the queue's lock, so two updates of one queue at once both take effect,
// one after the other. An error from change, or settings that SetQueue would
// refuse, leave the queue as it was.
func (b *Broker) UpdateQueue(
	ctx context.Context, queue string, change func(*QueueSettings) error,
) (QueueSettings, error) {
	if err := ValidateKey(queue); err != nil {
		return QueueSettings{}, err
	}
	if b.closed.Load() {
		return QueueSettings{}, ErrClosed
	}

	q := b.lockLive(queue)
	s := q.settingsOrZero()
	err := change(&s)
	if err == nil {
		err = b.checkSettings(queue, s)
	}
	var ticket storage.Ticket
	if err == nil {
		ticket, err = b.setLocked(q, s)
	}
	if q.idleLocked() {
		b.noteDrainedLocked(q)
	}
	q.mu.Unlock()
	if err != nil {
		return QueueSettings{}, err
	}
	if err := b.store.Wait(ctx, ticket); err != nil {
		return QueueSettings{}, fmt.Errorf("set queue %q: %w", queue, err)
	}
	return s, nil
}

func (b *Broker) checkSettings(queue string, s QueueSettings) error {
	if err := ValidateKey(queue); err != nil {
		return err
	}
	if s.MaxLength < 0 || s.MaxBytes < 0 || s.MaxDeliveries < 0 {
		return fmt.Errorf("%w: queue settings must not be negative", ErrInvalidOption)
	}
	if err := checkDuration("default lease", s.DefaultLease); err != nil {
		return err
	}
	if err := checkDuration("default ttl", s.DefaultTTL); err != nil {
		return err
	}
	if s.Overflow > OverflowDropOldest {
		return fmt.Errorf("%w: unknown overflow policy %d", ErrInvalidOption, s.Overflow)
	}
	if s.MaxDeliveries > 0 || s.ExpiredToDLQ || s.DeadLetter != "" {
		dlq := deadLetterName(queue, &s)
		if err := ValidateKey(dlq); err != nil {
			return fmt.Errorf("%w: dead-letter queue: %w", ErrInvalidOption, err)
		}
		if dlq == queue {
			return fmt.Errorf("%w: queue %q cannot be its own dead-letter queue",
				ErrInvalidOption, queue)
		}
	}
	return nil
}

// setLocked records s as q's settings, ending the record of the previous ones.
func (b *Broker) setLocked(q *Queue, s QueueSettings) (storage.Ticket, error) {
	var ticket storage.Ticket
	var id uint64
	var loc storage.Location
	if s != (QueueSettings{}) {
		id = b.nextID.Add(1) - 1
		rec := storage.Record{Op: storage.OpSettings, Queue: q.name, ID: id,
			Payload: encodeSettings(s)}
		var err error
		if loc, ticket, err = b.store.Append(&rec); err != nil {
			return 0, &StoreError{Record: "settings", Queue: q.name, Err: err}
		}
	}
	if q.settingsID != 0 {
		t, err := b.endRecord(q.name, q.settingsID, q.settingsLoc, ticket)
		if err != nil {
			return 0, err
		}
		ticket = t
	}

	q.settingsID, q.settingsLoc = id, loc
	if id == 0 {
		q.settings.Store(nil)
	} else {
		q.settings.Store(&s)
	}
	q.ops++
	return ticket, nil
}

// QueueSettings returns the settings of the named queue (zero if it has none).
func (b *Broker) QueueSettings(queue string) (QueueSettings, error) {
	if err := ValidateKey(queue); err != nil {
		return QueueSettings{}, err
	}
	q := b.lookup(queue, false)
	if q == nil {
		return QueueSettings{}, nil
	}
	return q.settingsOrZero(), nil
}

// offerSetLocked is offerLocked on a queue with settings: it makes room for e (or
// refuses it) and gives it the default TTL.
func (b *Broker) offerSetLocked(
	q *Queue, s *QueueSettings, e entry, front bool,
) (storage.Ticket, error) {
	if err := b.makeRoomLocked(q, s, 1, int64(e.size)); err != nil {
		return 0, err
	}
	now := time.Now()
	if s.DefaultTTL > 0 && e.meta == nil {
		e.meta = &meta{expiresAt: now.Add(s.DefaultTTL)}
	}
	ticket, err := b.appendPutLocked(q, &e, front)
	if err != nil {
		return 0, err
	}
	if e.meta != nil && !e.meta.expiresAt.IsZero() && e.meta.stateID == 0 {
		t, err := b.appendStateLocked(q, &e, storage.OpDefer, 0, time.Time{})
		if err != nil {
			b.undoPutsLocked(q, []entry{e})
			return 0, err
		}
		ticket = max(ticket, t)
	}
	b.admitLocked(q, e, front)
	return ticket, nil
}

// makeRoomLocked checks that n more messages of size bytes fit in q's limits. If
// they do not, it refuses them with ErrQueueFull, or, with OverflowDropOldest,
// drops messages from the head until they fit (counting each).
func (b *Broker) makeRoomLocked(q *Queue, s *QueueSettings, n int, size int64) error {
	if s.MaxLength == 0 && s.MaxBytes == 0 {
		return nil
	}
	fits := func() bool {
		count := q.ready.len() + int(q.deferred.Load()) + n
		bytes := q.bytes.Load() + q.deferredBytes + size
		return (s.MaxLength == 0 || count <= s.MaxLength) &&
			(s.MaxBytes == 0 || bytes <= s.MaxBytes)
	}
	if fits() {
		return nil
	}
	// Deferred messages count but cannot be dropped: if the put would not fit even
	// with every ready message gone, drop nothing and refuse it.
	deferred := int(q.deferred.Load())
	if (s.MaxLength > 0 && deferred+n > s.MaxLength) ||
		(s.MaxBytes > 0 && q.deferredBytes+size > s.MaxBytes) {
		return fmt.Errorf("%w: %d messages of %d bytes cannot fit queue %q's limits "+
			"(%d messages, %d bytes) whatever is dropped", ErrQueueFull, n, size, q.name,
			s.MaxLength, s.MaxBytes)
	}
	if s.Overflow == OverflowDropOldest {
		for !fits() && q.ready.len() > 0 {
			e := q.ready.at(0)
			if _, err := b.recordTakeLocked(q, e); err != nil {
				return err
			}
			q.popLocked(false)
			b.releaseCache(e)
			q.dropped.Add(1)
		}
		if fits() {
			return nil
		}
	}
	return fmt.Errorf("%w: queue %q holds %d messages, %d bytes (limits %d, %d)",
		ErrQueueFull, q.name, q.ready.len()+int(q.deferred.Load()),
		q.bytes.Load()+q.deferredBytes, s.MaxLength, s.MaxBytes)
}
