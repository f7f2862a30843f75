package resp

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// Door is how the RESP listener names itself to an Observer.
const Door = "resp"

// Observer hears of a Server's connections and commands, for metrics;
// *metrics.Metrics is one. Its methods are called from the connections' goroutines:
// they must be quick and should not allocate.
type Observer interface {
	// ConnOpened and ConnClosed bracket each connection served; ConnRefused counts
	// each connection refused over MaxConns, which the other two do not see.
	ConnOpened(door string)
	ConnClosed(door string)
	ConnRefused(door string)

	// RequestRecorder returns the function that records one command op (its
	// lower-case name, or "unknown"): that it took d and ended with err: nil,
	// broker.ErrEmpty for a null reply, or another error for an error reply. The
	// server asks once per command and keeps the function, so that recording a
	// command costs no lookup by name. shard is the connection's id: the same for
	// all its commands, different between connections, so that the Observer can
	// keep the counters of connections on different cores apart.
	RequestRecorder(door, op string) func(shard uint64, d time.Duration, err error)
}

// recorder is what an Observer's RequestRecorder returns.
type recorder = func(shard uint64, d time.Duration, err error)

// errReplied stands for an error reply, for the Observer.
var errReplied = errors.New("resp: error reply")

// recorders holds the Observer's recorders by command (command.index), the last
// slot for unknown commands, each resolved on first use.
type recorders []atomic.Pointer[recorder]

// get returns the recorder of cmd (nil: an unknown command), asking obs for it the
// first time. Two goroutines may both ask; either answer records into the same
// series.
func (r recorders) get(obs Observer, cmd *command) recorder {
	slot, op := &r[len(r)-1], "unknown"
	if cmd != nil {
		slot, op = &r[cmd.index], cmd.name
	}
	if rec := slot.Load(); rec != nil {
		return *rec
	}
	rec := obs.RequestRecorder(Door, op)
	slot.Store(&rec)
	return rec
}

// epoch is the origin of the clock that times commands. time.Since(epoch) reads
// only the monotonic clock, half the cost of time.Now.
var epoch = time.Now()

// startTime returns when a command starts (as time since epoch), or 0 when no one
// observes commands, to spare the clock read. Within a pipeline a command starts
// when the one before it ended, so that one clock read serves both; its time then
// includes parsing it.
func (c *conn) startTime() time.Duration {
	if c.s.observer == nil {
		return 0
	}
	if c.clock != 0 {
		return c.clock
	}
	return time.Since(epoch)
}

// observe reports the command cmd (nil: unknown), started at start, whose reply
// begins at c.out[c.replyAt].
func (c *conn) observe(cmd *command, start time.Duration) {
	if c.s.observer == nil {
		return
	}
	var err error
	if c.replyAt < len(c.out) {
		switch r := c.out[c.replyAt:]; {
		case r[0] == '-':
			err = errReplied
		case r[0] == '_', len(r) >= 3 && (string(r[:3]) == "$-1" || string(r[:3]) == "*-1"):
			err = broker.ErrEmpty
		}
	}
	now := time.Since(epoch)
	c.clock = now
	c.s.recorders.get(c.s.observer, cmd)(uint64(c.id), now-start, err)
}
