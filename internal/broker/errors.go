package broker

import (
	"errors"

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

	// ErrDiskFull is returned when the store has no space left for a put.
	ErrDiskFull = storage.ErrDiskFull
)
