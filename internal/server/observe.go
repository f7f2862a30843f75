package server

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
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
	// over MaxConns); ConnRefused counts each connection refused over MaxConns.
	ConnOpened(door string)
	ConnClosed(door string)
	ConnRefused(door string)

	// RequestRecorder returns the function that records one request of op: that it
	// took d and ended with err: nil, broker.ErrEmpty for an Empty reply,
	// context.Canceled for a wait that its client left or a shutdown cut short, or
	// another error. A request that went off to wait for a message has op
	// "get_wait", "reserve_wait" or "getbatch_wait", so that waits do not blur the
	// latency of the others. The server asks once per op and keeps the function, so
	// that recording a request costs no lookup by name. shard is the connection's
	// id: the same for all its requests, different between connections, so that
	// the Observer can keep the counters of connections on different cores apart.
	RequestRecorder(door, op string) func(shard uint64, d time.Duration, err error)
}

// recorder is what an Observer's RequestRecorder returns.
type recorder = func(shard uint64, d time.Duration, err error)

// recorders holds the Observer's request recorders by opcode, resolved on first use.
type recorders struct {
	plain, wait [256]atomic.Pointer[recorder]
}

// get returns the recorder of op, waited or not, asking obs for it the first time.
// Two goroutines may both ask; either answer records into the same series.
func (r *recorders) get(obs Observer, op proto.Op, waited bool) recorder {
	slot, label := &r.plain[op], opLabels[op]
	if waited {
		slot, label = &r.wait[op], opWaitLabels[op]
	}
	if rec := slot.Load(); rec != nil {
		return *rec
	}
	rec := obs.RequestRecorder(Door, label)
	slot.Store(&rec)
	return rec
}

// epoch is the origin of the clock that times requests. time.Since(epoch) reads
// only the monotonic clock, half the cost of time.Now, which a server reading
// hundreds of thousands of requests a second notices.
var epoch = time.Now()

// errFailed stands for a reply with an error status, for the Observer.
var errFailed = errors.New("server: request failed")

// opLabels and opWaitLabels name each opcode in lower case as the Observer gets
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

// connRefused tells the Observer, if any, of a connection refused over MaxConns.
func (s *Server) connRefused() {
	if s.cfg.Observer != nil {
		s.cfg.Observer.ConnRefused(Door)
	}
}

// clock returns the time now as the request timer counts it, or 0 when no one
// observes requests, to spare the clock read.
func (c *conn) clock() time.Duration {
	if c.s.cfg.Observer == nil {
		return 0
	}
	return time.Since(epoch)
}

// observeReply reports the request that rp answers, if it carries a start time;
// sent is false when its client left before the reply, which counts as cancelled.
func (c *conn) observeReply(rp *reply, sent bool) {
	obs := c.s.cfg.Observer
	if obs == nil || rp.start == 0 || rp.flush {
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
	c.s.recorders.get(obs, rp.op, rp.waited)(c.id, time.Since(epoch)-rp.start, err)
}
