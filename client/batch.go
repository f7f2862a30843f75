package client

import (
	"context"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// DeadLetter tells where a message taken from a dead-letter queue came from.
type DeadLetter struct {
	// Queue and ID are the queue the message left and its id there.
	Queue string
	ID    uint64
	// Count is how many times it had been delivered.
	Count int
	// Reason is why it was set aside: "max-deliveries" or "expired".
	Reason string
}

// PutBatch appends copies of msgs to the tail of queue, in order, all or none, in one
// request, and returns their ids in the same order. The options apply to each
// message. The batch as a whole must fit the server's max frame (its message limit
// plus 4 KiB, less 4 bytes per message).
func (c *Client) PutBatch(
	ctx context.Context, queue string, msgs [][]byte, opts ...PutOption,
) ([]uint64, error) {
	if len(msgs) == 0 {
		return nil, &Error{Op: "putbatch", Code: CodeBadRequest, Text: "batch of no message"}
	}
	po, err := putOptionList("putbatch", opts)
	if err != nil {
		return nil, err
	}
	size := 0
	for _, m := range msgs {
		size += 4 + len(m)
	}
	body, err := appendKeyAndOptions(make([]byte, 0, 40+len(queue)+size), "putbatch",
		queue, po...)
	if err != nil {
		return nil, err
	}
	body = proto.AppendU32(body, uint32(len(msgs)))
	for _, m := range msgs {
		body = proto.AppendBytes(body, m)
	}

	r, err := c.roundTrip(ctx, newCall(proto.OpPutBatch, body))
	if err != nil {
		return nil, err
	}
	if err := r.expectOK(); err != nil {
		return nil, err
	}
	return r.ids(len(msgs))
}

// ids decodes the reply to PUTBATCH: a u32 count (want) and that many u64 ids.
func (r reply) ids(want int) ([]uint64, error) {
	d := proto.NewBody(r.body)
	n, err := d.U32()
	if err == nil && int(n) != want {
		err = fmt.Errorf("%d ids for %d messages", n, want)
	}
	ids := make([]uint64, 0, want)
	for i := 0; err == nil && i < want; i++ {
		var id uint64
		id, err = d.U64()
		ids = append(ids, id)
	}
	if err == nil {
		err = d.End()
	}
	if err != nil {
		return nil, r.badReply(err)
	}
	return ids, nil
}

// GetBatch takes up to max messages (0 counts as 1; at most 1000) from the first of
// queues that has any, looked at in the order given; when all are empty it waits up
// to wait for a message on any of them, then returns ErrEmpty. Each Message names
// the queue it came from. As with Get, a message the server took for a caller
// whose ctx ended is lost.
func (c *Client) GetBatch(
	ctx context.Context, queues []string, max int, wait time.Duration,
) ([]Message, error) {
	body, err := takeBody("getbatch", queues, max, wait)
	if err != nil {
		return nil, err
	}
	items, err := c.take(ctx, proto.OpGetBatch, body, false)
	if err != nil {
		return nil, err
	}
	msgs := make([]Message, len(items))
	for i, it := range items {
		msgs[i] = messageOf(it)
	}
	return msgs, nil
}

// takeBody encodes the queue list and the wait and max options that GETBATCH and
// RESERVE share, then any further options.
func takeBody(
	op string, queues []string, max int, wait time.Duration, more ...proto.Option,
) ([]byte, error) {
	if wait < 0 {
		return nil, badOption(op, "wait", wait)
	}
	if max < 0 || max > proto.MaxBatch {
		return nil, &Error{Op: op, Code: CodeBadRequest,
			Text: fmt.Sprintf("batch of %d messages; ask for 1 to %d", max, proto.MaxBatch)}
	}
	body, err := proto.AppendKeys(nil, queues)
	if pe := proto.AsError(err); pe != nil {
		return nil, errorFrom(op, pe)
	}
	var opts []proto.Option
	if wait > 0 {
		opts = append(opts, proto.DurationOption(proto.OptGetWait, wait))
	}
	if max > 1 {
		opts = append(opts, proto.U32Option(proto.OptGetMax, uint32(max)))
	}
	return appendOptions(body, op, append(opts, more...)...)
}

// take sends a GETBATCH or RESERVE and decodes the items of its reply.
func (c *Client) take(
	ctx context.Context, op proto.Op, body []byte, lease bool,
) ([]proto.Item, error) {
	r, err := c.roundTrip(ctx, newCall(op, body))
	if err != nil {
		return nil, err
	}
	if r.status == proto.StatusEmpty {
		return nil, ErrEmpty
	}
	if err := r.expectOK(); err != nil {
		return nil, err
	}

	d := proto.NewBody(r.body)
	n, err := d.U32()
	if err == nil && n == 0 {
		err = fmt.Errorf("OK reply with no message")
	}
	var items []proto.Item
	for i := uint32(0); err == nil && i < n; i++ {
		var it proto.Item
		if it, err = d.Item(lease); err == nil {
			it.Payload = append([]byte{}, it.Payload...)
			items = append(items, it)
		}
	}
	if err == nil {
		err = d.End()
	}
	if err != nil {
		return nil, r.badReply(err)
	}
	return items, nil
}

func messageOf(it proto.Item) Message {
	m := Message{Queue: it.Queue, ID: it.ID, Data: it.Payload}
	if dl := it.DeadLetter; dl != nil {
		m.DeadLetter = &DeadLetter{Queue: dl.Queue, ID: dl.ID, Count: int(dl.Count),
			Reason: dl.Reason}
	}
	return m
}
