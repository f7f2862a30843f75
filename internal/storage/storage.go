// Package storage defines how the broker keeps messages: the Store interface that
// every storage engine implements, and the records that pass through it.
//
// The broker keeps each queue's order in memory and tells the Store about every
// change, in the order the changes happened on that queue. A Store that only keeps
// memory (Memory) forgets everything on exit; the durable log (package wal) writes
// each record to disk and can replay them after a restart.
package storage

import (
	"context"
	"errors"
	"strconv"
)

// Op is the kind of change a Record describes.
type Op uint8

// The operations a Store records. Values are stored on disk: never renumber them.
const (
	// OpPut appends a message at the tail of its queue.
	OpPut Op = 1
	// OpPutFront pushes a message at the head of its queue (RESP LPUSH, a message
	// returned to the head). ID may be an existing message's ID being put back.
	OpPutFront Op = 2
	// OpTake removes a message from its queue, wherever it stands (get, pop, ack),
	// or ends a state record (its ID is then the state record's).
	OpTake Op = 3

	// The state records below say where a message stands in its delivery life. Each
	// has its own ID, drawn from the message ID counter, and a Payload the broker
	// encodes (the message's ID, delivery count, place, due and expiry times). A
	// Store keeps them as it keeps puts: live until an OpTake names them, replayed,
	// and copied forward by compaction. A newer state record of a message (higher
	// ID) supersedes older ones.

	// OpLease records that a message was handed out under a lease; its ID is the
	// delivery ID, so the log's scan for the highest ID never hands it out again.
	OpLease Op = 4
	// OpDefer records that a message is not to be delivered before a time (a delayed
	// put or a nack with a delay), or that it expires (a TTL).
	OpDefer Op = 5
	// OpReturn records that a message is ready again at a new place in its queue
	// (a lease that ran out, a nack, a deferred message come due).
	OpReturn Op = 6
	// OpDeadLetter records why a message put in a dead-letter queue was set aside.
	OpDeadLetter Op = 7
	// OpSettings records a queue's settings; Payload is the broker's encoding of them.
	OpSettings Op = 8
)

// Lives reports whether records of this op stay live until an OpTake names them:
// every op but OpTake.
func (o Op) Lives() bool { return o >= OpPut && o <= OpSettings && o != OpTake }

// String names the operation for logs and errors.
func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpPutFront:
		return "put-front"
	case OpTake:
		return "take"
	case OpLease:
		return "lease"
	case OpDefer:
		return "defer"
	case OpReturn:
		return "return"
	case OpDeadLetter:
		return "dead-letter"
	case OpSettings:
		return "settings"
	default:
		return "op(" + strconv.Itoa(int(o)) + ")"
	}
}

// Record is one change to one queue. Payload is set for puts (the message) and for
// state records (the broker's encoding of the state), not for takes. A Store must
// not keep a reference to the Record or its Payload after Append returns: the
// caller reuses both.
type Record struct {
	Op    Op
	Queue string
	ID    uint64 // the message's ID, unique across the server and never reused
	// Pos is, for puts, the message's place in its queue: tail puts get increasing
	// positions and head puts decreasing ones, so sorting a queue's live puts by Pos
	// gives its order whatever order the records sit in the log. A Store that copies
	// live records forward (compaction) keeps their Pos, and Replay need not yield
	// puts in queue order: the broker sorts.
	Pos     int64
	Payload []byte
	// Ref is, for OpTake, where the taken put (or state record) was stored, so that the
	// Store can count what in each segment is still live. Zero for other ops.
	Ref Location
}

// Location says where a Store keeps a record. The zero Location means "nowhere":
// the Memory store returns it, and the broker then keeps every payload itself.
type Location struct {
	Segment uint64
	Offset  int64
}

// IsZero reports whether l points nowhere.
func (l Location) IsZero() bool { return l == Location{} }

// Ticket identifies a point in a Store's log. Wait(t) returns once everything
// appended up to t is as durable as the Store's policy promises.
type Ticket uint64

// Store keeps the records of every queue. Append and Wait may be called from many
// goroutines; the broker calls Append for one queue under that queue's lock, so
// records of one queue reach the Store in the order their changes happened.
type Store interface {
	// Append adds rec to the log after every record appended before it and returns
	// where the record was put and a ticket to wait on. It does not wait for disk.
	// rec and rec.Payload are lent for the call only: the broker reuses a payload's
	// buffer for another message once it has been taken, so a Store copies what it
	// keeps (to its write buffer or the file) before Append returns.
	Append(rec *Record) (Location, Ticket, error)

	// Wait blocks until the record behind t is durable (per the fsync policy), ctx
	// ends, or the log fails. Many waiters share one fsync.
	Wait(ctx context.Context, t Ticket) error

	// ReadPayload returns the payload of the put stored at loc, for messages whose
	// payload the broker dropped from memory.
	ReadPayload(loc Location) ([]byte, error)

	// Replay calls fn with the records in log order, to rebuild the queues when the
	// broker starts, and returns the next message ID to hand out: greater than every
	// ID the log has ever seen, even of messages long consumed. rec.Payload is
	// valid only during the call, so a Store may lend its read buffer: fn copies what
	// it keeps. A take whose put is no longer in the log is ignored, so a Store
	// may drop consumed records in any way that keeps the live ones in order.
	Replay(fn func(rec *Record, loc Location) error) (nextID uint64, err error)

	// Close flushes and closes the log. Later calls fail with ErrClosed.
	Close() error
}

// Failer is implemented by a Store that can fail for good while it runs (a write or
// fsync error it cannot recover from without a restart): Err returns that failure,
// or nil while the Store works. The broker reports it as not ready.
type Failer interface {
	Err() error
}

// SpaceReporter is implemented by a Store that refuses puts while its disk is full
// and serves gets meanwhile: DiskFull returns why (wrapping ErrDiskFull) while it
// refuses them, or nil. The broker reports it as not ready.
type SpaceReporter interface {
	DiskFull() error
}

// Errors a Store returns; the broker maps them to the clients' error codes.
var (
	// ErrClosed is returned by a Store used after Close.
	ErrClosed = errors.New("storage: closed")
	// ErrDiskFull is returned when a record could not be written for lack of space.
	// The Store refuses puts until space returns, but takes keep working: a Store
	// accepts a put only with room held for the take that will end it.
	ErrDiskFull = errors.New("storage: disk full")
)

// Memory is the Store that keeps nothing: the broker's own queues are the only copy,
// so messages are lost when the process exits. It costs nothing per operation.
type Memory struct{}

// Append implements Store; it records nothing.
func (Memory) Append(*Record) (Location, Ticket, error) { return Location{}, 0, nil }

// Wait implements Store; nothing is ever pending.
func (Memory) Wait(context.Context, Ticket) error { return nil }

// ReadPayload implements Store; Memory never drops payloads, so it is never called.
func (Memory) ReadPayload(Location) ([]byte, error) {
	return nil, errors.New("storage: memory store keeps no payloads")
}

// Replay implements Store; there is nothing to replay.
func (Memory) Replay(func(*Record, Location) error) (uint64, error) { return 1, nil }

// Close implements Store.
func (Memory) Close() error { return nil }
