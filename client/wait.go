package client

import (
	"context"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// A GetOption changes how Get takes a message.
type GetOption func(*getOptions)

type getOptions struct {
	wait time.Duration
}

// Wait makes Get wait up to d for a message when the queue is empty, instead of
// returning ErrEmpty at once. Any positive d is a wait (under a millisecond counts
// as one); 0 means no wait; a negative d is refused.
func Wait(d time.Duration) GetOption {
	return func(o *getOptions) { o.wait = d }
}

// getOptionsOf applies opts. Without any it leaves o, which escapes to the options,
// unallocated.
func getOptionsOf(opts []GetOption) getOptions {
	if len(opts) == 0 {
		return getOptions{}
	}
	o := new(getOptions)
	for _, opt := range opts {
		opt(o)
	}
	return *o
}

// The margin left for a reply between the end of a server-side wait and the
// caller's deadline (see waitWithin): an eighth of the time left, within these.
const (
	minReplyMargin = 5 * time.Millisecond
	maxReplyMargin = 250 * time.Millisecond
)

// waitWithin cuts wait, a get's wait on the server, so that it ends a margin before
// ctx's deadline: the server then answers Empty while the caller still listens,
// instead of taking, for a caller that has gone, a message that would be lost. When
// less time is left than the margin, the get does not wait at all.
func waitWithin(ctx context.Context, wait time.Duration) time.Duration {
	deadline, ok := ctx.Deadline()
	if wait <= 0 || !ok {
		return wait
	}
	return waitBefore(deadline, time.Now(), wait)
}

// waitBefore is waitWithin for a deadline and the time now.
func waitBefore(deadline, now time.Time, wait time.Duration) time.Duration {
	left := deadline.Sub(now)
	margin := min(max(left/8, minReplyMargin), maxReplyMargin)
	return max(min(wait, left-margin), 0)
}

// A PutOption changes how Put and PutBatch store a message.
type PutOption func(*putOptions)

type putOptions struct {
	delay, ttl time.Duration
}

// Delay holds the message back: it is not delivered before d has passed.
func Delay(d time.Duration) PutOption {
	return func(o *putOptions) { o.delay = d }
}

// TTL makes the message expire once d has passed: it is then never delivered, but
// dropped or dead-lettered as its queue's settings say. 0 means the queue's default.
func TTL(d time.Duration) PutOption {
	return func(o *putOptions) { o.ttl = d }
}

// putOptionList turns opts into wire options, refusing negative durations.
func putOptionList(op string, opts []PutOption) ([]proto.Option, error) {
	if len(opts) == 0 {
		return nil, nil // o below escapes: the common case does without it
	}
	var o putOptions
	for _, opt := range opts {
		opt(&o)
	}
	var po []proto.Option
	for _, d := range []struct {
		name string
		tag  uint8
		v    time.Duration
	}{{"delay", proto.OptPutDelay, o.delay}, {"ttl", proto.OptPutTTL, o.ttl}} {
		if d.v < 0 {
			return nil, badOption(op, d.name, d.v)
		}
		if d.v > 0 {
			po = append(po, proto.DurationOption(d.tag, d.v))
		}
	}
	return po, nil
}

// badOption is the error for a negative duration, refused before sending.
func badOption(op, name string, d time.Duration) *Error {
	return &Error{Op: op, Code: CodeBadRequest,
		Text: fmt.Sprintf("%s of %v is negative", name, d)}
}
