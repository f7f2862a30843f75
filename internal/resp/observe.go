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
// observes commands, to spare the clock read.
func (c *conn) startTime() time.Time {
	if c.s.observer == nil {
		return time.Time{}
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
	c.s.observer.ObserveRequest(Door, op, time.Since(start), err)
}
