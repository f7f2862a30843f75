package broker

import (
	"errors"
	"fmt"

	"github.com/keyq/keyq/internal/storage"
)

// Errors the broker returns. Front doors branch on them with errors.Is and map each to
// its own error code; the wrapped text names the rule that was broken.
var (
	// ErrEmpty means the queue had no message (and no wait was asked, or it ran out).
	ErrEmpty = errors.New("broker: queue empty")

	// ErrInvalidKey wraps every refusal of a queue name.
	ErrInvalidKey = errors.New("invalid key")

	// ErrMessageTooLarge wraps a refusal of a message over the size limit.
	ErrMessageTooLarge = errors.New("message too large")

	// ErrInvalidWait wraps a refusal of a wait that is negative.
	ErrInvalidWait = errors.New("invalid wait")

	// ErrClosed is returned once the broker is shutting down.
	ErrClosed = errors.New("broker: closed")

	// ErrQueueFull is returned by a put into a queue at its limits whose overflow
	// policy is OverflowReject. Nothing was stored.
	ErrQueueFull = errors.New("broker: queue full")

	// ErrServerFull is returned by a put of new messages that would take what the
	// broker holds over Config.MaxHeldBytes. Nothing was stored; takes and acks make
	// room.
	ErrServerFull = errors.New("broker: server full")

	// ErrNoDelivery is returned by an ack, nack or touch of a delivery that is unknown,
	// already ended, or whose lease ran out.
	ErrNoDelivery = errors.New("broker: unknown or expired delivery")

	// ErrInvalidOption wraps a refusal of a bad delay, TTL, lease, batch size or
	// queue setting.
	ErrInvalidOption = errors.New("invalid option")

	// ErrDiskFull is returned when the store has no space left for a put.
	ErrDiskFull = storage.ErrDiskFull
)

// StoreError is a failure of the store to record a change to a queue. Its text names
// the record, for the log; a front door tells its client Err, what the store said
// (storage.ErrDiskFull and the like), since the record means nothing to a client.
type StoreError struct {
	Record string // what was being recorded: "put", "take of 12", "lease of 12", ...
	Queue  string
	Err    error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("store %s on queue %q: %v", e.Record, e.Queue, e.Err)
}

// Unwrap returns the store's error, so that errors.Is(err, ErrDiskFull) matches.
func (e *StoreError) Unwrap() error { return e.Err }
