package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
)

// Door is how the native protocol names itself to an Observer.
const Door = "native"

// Observer hears of a Server's connections and requests, for metrics;
// *metrics.Metrics is one. Its methods are called from the connections' goroutines:
// they must be quick and should not allocate.
type Observer interface {
	// ConnOpened and ConnClosed bracket each connection served (not those refused
	// over MaxConns).
	ConnOpened(door string)
	ConnClosed(door string)

	// ObserveRequest reports one request of op that took d and ended with err: nil,
	// broker.ErrEmpty for an Empty reply, context.Canceled for a wait that its
	// client left or a shutdown cut short, or another error. A request that went
	// off to wait for a message has op "get_wait", "reserve_wait" or
	// "getbatch_wait", so that waits do not blur the latency of the others.
	ObserveRequest(door, op string, d time.Duration, err error)
}

// errFailed stands for a reply with an error status in ObserveRequest.
var errFailed = errors.New("server: request failed")

// opLabels and opWaitLabels name each opcode in lower case as ObserveRequest gets
// it, built once so that observing a request does not allocate.
var opLabels, opWaitLabels = func() (labels, waits [256]string) {
	for op := range labels {
		labels[op] = strings.ToLower(proto.Op(op).String())
		waits[op] = labels[op] + "_wait"
	}
	return labels, waits
}()

// connOpened and connClosed tell the Observer, if any, of a connection served.
func (s *Server) connOpened() {
	if s.cfg.Observer != nil {
		s.cfg.Observer.ConnOpened(Door)
	}
}

func (s *Server) connClosed() {
	if s.cfg.Observer != nil {
		s.cfg.Observer.ConnClosed(Door)
	}
}

// startTime returns the time a request starts, or the zero time when no one
// observes requests, to spare the clock read.
func (c *conn) startTime() time.Time {
	if c.s.cfg.Observer == nil {
		return time.Time{}
	}
	return time.Now()
}

// observeReply reports the request that rp answers, if it carries a start time;
// sent is false when its client left before the reply, which counts as cancelled.
func (c *conn) observeReply(rp *reply, sent bool) {
	obs := c.s.cfg.Observer
	if obs == nil || rp.start.IsZero() || rp.flush {
		return
	}
	var err error
	switch {
	case !sent || rp.status == proto.StatusShuttingDown:
		err = context.Canceled
	case rp.status == proto.StatusOK:
	case rp.status == proto.StatusEmpty:
		err = broker.ErrEmpty
	default:
		err = errFailed
	}
	op := opLabels[rp.op]
	if rp.waited {
		op = opWaitLabels[rp.op]
	}
	obs.ObserveRequest(Door, op, time.Since(rp.start), err)
}
