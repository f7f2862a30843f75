package bench

import (
	"context"
	"time"
)

// Driver connects the generator to one kind of queue server. Implementations live in
// this package (keyq) and in bench/compare (the anchors).
type Driver interface {
	// Name is the server's short name, used in reports.
	Name() string
	// Setup prepares the named queues before any worker dials, for servers that need
	// queues, streams or tubes declared; servers that create queues on first use
	// return nil.
	Setup(ctx context.Context, queues []string) error
	// Dial opens one connection. Each worker dials its own and is its only user.
	Dial(ctx context.Context) (Conn, error)
}

// Conn is one connection to a queue server, used by a single worker goroutine.
type Conn interface {
	// Put appends msgs, in order, to queue and returns once the server acknowledged
	// every one of them. The generator reuses the buffers after Put returns.
	Put(ctx context.Context, queue string, msgs [][]byte) error
	// Get takes up to max messages from queue, waiting up to wait for the first. It
	// returns no messages and no error when the wait ran out. The messages stay
	// valid until the next call.
	Get(ctx context.Context, queue string, max int, wait time.Duration) ([][]byte, error)
	// Close releases the connection.
	Close() error
}
