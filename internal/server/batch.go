package server

import (
	"context"
	"errors"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/slicepool"
)

// maxDuration bounds every delay, time to live and lease on the wire: longer ones
// are refused rather than cut, since they change what happens to a message.
const maxDuration = 100 * 365 * 24 * time.Hour

// putOptions decodes the options block of a PUT or PUTBATCH: a delay and a TTL.
func putOptions(op proto.Op, d *proto.Body) (o broker.PutOptions, err error) {
	opts, err := d.Options()
	if err != nil {
		return o, err
	}
	for tag, v := range opts.All() {
		switch tag {
		case proto.OptPutDelay:
			o.Delay, err = durationOption(tag, v)
		case proto.OptPutTTL:
			o.TTL, err = durationOption(tag, v)
		default:
			err = unknownOption(op, tag)
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

// handlePutBatch puts a list of messages; on a durable store it reports true when
// the reply is left to the durable waiter.
func (c *conn) handlePutBatch(rp *reply, d *proto.Body) (later bool) {
	key, err := c.key(d)
	if err != nil {
		rp.failErr(err)
		return false
	}
	opts, err := putOptions(rp.op, d)
	if err != nil {
		rp.failErr(err)
		return false
	}
	msgs, err := d.AppendMessages(c.batch[:0])
	if err == nil {
		err = d.End()
	}
	if err != nil {
		rp.failErr(err)
		return false
	}
	// The broker copies the payloads: the list goes back to the reader, emptied so
	// that it does not keep the frame it points into.
	defer func() { c.batch = msgs[:0]; clear(msgs) }()
	if c.putBatchDurable(rp, key, msgs, opts) {
		return true
	}
	if rp.status != proto.StatusOK {
		return false // the append failed
	}

	ids, err := c.s.broker.PutBatch(c.ctx, key, msgs, opts)
	if err != nil {
		rp.failErr(err)
		return false
	}
	rp.setBody(putBatchBody(ids))
	return false
}

// putBatchBody encodes the reply to a PUTBATCH: the count, then each ID, into a
// recycled buffer (see reply.setBody).
func putBatchBody(ids []uint64) []byte {
	body := proto.AppendU32(replyBodies.Get(4+8*len(ids)), uint32(len(ids)))
	for _, id := range ids {
		body = proto.AppendU64(body, id)
	}
	return body
}

// getBatchRequest is a decoded GETBATCH.
type getBatchRequest struct {
	queues []string
	max    int
	wait   time.Duration
}

// handleGetBatch takes up to max messages as handleGet takes one: on the reader
// when there are some, else, with a wait, off the reader.
func (c *conn) handleGetBatch(rp *reply, d *proto.Body) (wait blocked, later bool) {
	req, err := c.getBatchRequest(d)
	if err != nil {
		rp.failErr(err)
		return nil, false
	}
	n := max(req.max, 1)
	budget := c.payloadBudget(req.queues, n, false)
	durable := c.durableRoom()
	p, err := c.s.broker.TakeBatchAppend(req.queues, n, budget, req.wait)
	if errors.Is(err, broker.ErrEmpty) && req.wait > 0 {
		op, id := rp.op, rp.id
		return func(ctx context.Context) reply {
			rp := reply{op: op, id: id}
			c.getBatch(ctx, &rp, req)
			return rp
		}, false
	}
	return nil, c.settleTake(rp, pendingTakeBatch, p, err, durable)
}

func (c *conn) getBatchRequest(d *proto.Body) (getBatchRequest, error) {
	var req getBatchRequest
	var err error
	if req.queues, err = d.Keys(); err != nil {
		return req, err
	}
	opts, err := d.Options()
	if err != nil {
		return req, err
	}
	for tag, v := range opts.All() {
		switch tag {
		case proto.OptGetWait:
			req.wait, err = c.waitOption(tag, v)
		case proto.OptGetMax:
			req.max, err = maxOption(tag, v)
		default:
			err = unknownOption(proto.OpGetBatch, tag)
		}
		if err != nil {
			return req, err
		}
	}
	return req, d.End()
}

func (c *conn) getBatch(ctx context.Context, rp *reply, req getBatchRequest) {
	n := max(req.max, 1)
	budget := c.payloadBudget(req.queues, n, false)
	msgs, err := c.s.broker.GetBatchWithin(ctx, req.queues, n, budget, req.wait)
	c.getBatchReply(ctx, rp, msgs, err)
}

// getBatchReply makes rp the reply to a GETBATCH that took msgs, or failed with err.
func (c *conn) getBatchReply(
	ctx context.Context, rp *reply, msgs []broker.Message, err error,
) {
	if len(msgs) == 0 {
		rp.failErr(orEmpty(err))
		return
	}
	items := replyItems.Get(len(msgs))[:len(msgs)]
	for i, m := range msgs {
		items[i] = proto.Item{Queue: m.Queue, ID: m.ID, Payload: m.Payload,
			DeadLetter: deadLetterItem(m.DeadLetter)}
	}
	fit := c.fitItems(items, false)
	// What does not fit in one reply (only dead-lettered messages, whose extra
	// fields the budget does not count, can overflow it) goes back to the head of its
	// queue, last first; it gets a new id, as a message put back by a move does.
	for i := len(msgs) - 1; i >= fit; i-- {
		m := msgs[i]
		_, err := c.s.broker.PutFront(context.WithoutCancel(ctx), m.Queue, m.Payload)
		if err != nil {
			c.log.Error("message lost: cannot put back one over the reply size",
				"queue", m.Queue, "msg_id", m.ID, "err", err)
		}
	}
	rp.setBody(encodeItems(items[:fit], false))
	replyItems.Put(items)
	broker.ReleaseBatch(msgs) // copied into the body, or put back
}

// payloadBudget returns the payload bytes that n messages from queues may take so
// that their GETBATCH or RESERVE (lease) reply fits one frame, counting each item's
// fields for the longest queue name (but not dead-letter fields); at least 1.
func (c *conn) payloadBudget(queues []string, n int, lease bool) int {
	longest := 0
	for _, q := range queues {
		longest = max(longest, len(q))
	}
	it := proto.Item{Queue: string(make([]byte, longest))}
	room := c.s.maxFrame - proto.HeaderSize - 4 - n*proto.ItemSize(&it, lease)
	return max(room, 1)
}

// fitItems returns how many of items, from the first, fit in one reply frame; at
// least one, since a single message always fits the max frame.
func (c *conn) fitItems(items []proto.Item, lease bool) int {
	room := c.s.maxFrame - proto.HeaderSize - 4
	for i := range items {
		room -= proto.ItemSize(&items[i], lease)
		if room < 0 && i > 0 {
			return i
		}
	}
	return len(items)
}

// The lists and reply bodies of batches, recycled: a GETBATCH or RESERVE reply lists
// its items only while it encodes them, and a batch's reply body goes back once
// written (reply.setBody).
var (
	replyItems  slicepool.Pool[proto.Item]
	replyBodies = slicepool.Pool[byte]{Max: 256 << 10}
)

// encodeItems encodes a GETBATCH or RESERVE reply: a u32 count, then the items, into
// a recycled buffer (see reply.setBody).
func encodeItems(items []proto.Item, lease bool) []byte {
	n := 4
	for i := range items {
		n += proto.ItemSize(&items[i], lease)
	}
	body := proto.AppendU32(replyBodies.Get(n), uint32(len(items)))
	for i := range items {
		body = proto.AppendItem(body, &items[i], lease)
	}
	return body
}

// durationOption decodes a u64 milliseconds option, refusing one over maxDuration.
func durationOption(tag uint8, v []byte) (time.Duration, error) {
	ms, err := proto.OptionU64(tag, v)
	if err != nil {
		return 0, err
	}
	if ms > uint64(maxDuration/time.Millisecond) {
		return 0, proto.Errorf(proto.StatusBadRequest,
			"option %d: %d ms is over the limit of %d ms (100 years)",
			tag, ms, maxDuration/time.Millisecond)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// maxOption decodes the u32 batch size of GETBATCH and RESERVE: 0 means 1.
func maxOption(tag uint8, v []byte) (int, error) {
	n, err := proto.OptionU32(tag, v)
	if err != nil {
		return 0, err
	}
	if n > proto.MaxBatch {
		return 0, proto.Errorf(proto.StatusBadRequest,
			"batch of %d messages is over the limit of %d", n, proto.MaxBatch)
	}
	return max(int(n), 1), nil
}

// boolOption decodes a u8 option that must be 0 or 1.
func boolOption(tag uint8, v []byte) (bool, error) {
	b, err := proto.OptionU8(tag, v)
	if err != nil {
		return false, err
	}
	if b > 1 {
		return false, proto.Errorf(proto.StatusBadRequest,
			"option %d: value %d is neither 0 nor 1", tag, b)
	}
	return b == 1, nil
}
