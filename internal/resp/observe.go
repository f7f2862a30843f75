package resp

import (
	"errors"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// Door is how the RESP listener names itself to an Observer.
const Door = "resp"

// Observer hears of a Server's connections and commands, for metrics;
// *metrics.Metrics is one. Its methods are called from the connections' goroutines:
// they must be quick and should not allocate.
type Observer interface {
	// ConnOpened and ConnClosed bracket each connection.
	ConnOpened(door string)
	ConnClosed(door string)
	// ObserveRequest reports one command op (its lower-case name, or "unknown")
	// that took d and ended with err: nil, broker.ErrEmpty for a null reply, or
	// another error for an error reply.
	ObserveRequest(door, op string, d time.Duration, err error)
}

// errReplied stands for an error reply in ObserveRequest.
var errReplied = errors.New("resp: error reply")

// startTime returns the time a command starts, or the zero time when no one
// observes commands, to spare the clock read. Within a pipeline a command starts
// when the one before it ended, so that one clock read serves both; its time then
// includes parsing it.
func (c *conn) startTime() time.Time {
	if c.s.observer == nil {
		return time.Time{}
	}
	if !c.clock.IsZero() {
		return c.clock
	}
	return time.Now()
}

// observe reports the command op, started at start, whose reply begins at
// c.out[c.replyAt].
func (c *conn) observe(op string, start time.Time) {
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
	now := time.Now()
	c.clock = now
	c.s.observer.ObserveRequest(Door, op, now.Sub(start), err)
}
