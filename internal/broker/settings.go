package broker

import (
	"context"
	"time"
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

// QueueSettings are kept durably per queue and shown in stats. Zero values mean
// "no limit" or "server default".
type QueueSettings struct {
	MaxLength     int   // ready and deferred messages
	MaxBytes      int64 // their payload bytes
	Overflow      Overflow
	DefaultLease  time.Duration
	MaxDeliveries int    // 0: unlimited; past that many deliveries a message is dead-lettered
	DeadLetter    string // "" means "<queue>.dlq"
	DefaultTTL    time.Duration
	ExpiredToDLQ  bool // expired messages go to the dead-letter queue instead of being dropped
}

// SetQueue replaces the settings of the named queue, durably. The zero QueueSettings
// removes them.
func (b *Broker) SetQueue(ctx context.Context, queue string, s QueueSettings) error {
	return errNotYet
}

// QueueSettings returns the settings of the named queue (zero if it has none).
func (b *Broker) QueueSettings(queue string) (QueueSettings, error) {
	return QueueSettings{}, errNotYet
}
