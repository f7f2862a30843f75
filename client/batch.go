package client

import (
	"context"
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
// plus 4 KiB, less 4 bytes per message): a larger one fails with CodeFrameTooLarge
// before it is sent, and the connection goes on serving the other calls.
func (c *Client) PutBatch(
	ctx context.Context, queue string, msgs [][]byte, opts ...PutOption,
) ([]uint64, error) {
	cl := getCall(proto.OpPutBatch)
	var err error
	if cl.frame, err = encodePutBatch(cl.frame, queue, msgs, opts); err != nil {
		putCall(cl)
		return nil, err
	}
	cl.count = len(msgs)
	return do(c, ctx, cl, decodeIDs)
}

// GetBatch takes up to max messages (0 counts as 1; at most 1000) from the first of
// queues that has any, looked at in the order given; when all are empty it waits up
// to wait for a message on any of them, then returns ErrEmpty. Each Message names
// the queue it came from. As with Get, the wait ends before ctx's deadline, and a
// message the server took for a caller whose ctx ended anyway is lost.
func (c *Client) GetBatch(
	ctx context.Context, queues []string, max int, wait time.Duration,
) ([]Message, error) {
	cl := getCall(proto.OpGetBatch)
	var err error
	wait = waitWithin(ctx, wait)
	if cl.frame, err = encodeTake(cl.frame, proto.OpGetBatch, queues, max, wait); err != nil {
		putCall(cl)
		return nil, err
	}
	return do(c, ctx, cl, decodeMessages)
}

// messageOf makes a Message of it. Payloads of one reply share its body, so each is
// capped at its own length: appending to one never writes over the next.
func messageOf(it proto.Item) Message {
	n := len(it.Payload)
	m := Message{Queue: it.Queue, ID: it.ID, Data: it.Payload[:n:n]}
	if dl := it.DeadLetter; dl != nil {
		m.DeadLetter = &DeadLetter{Queue: dl.Queue, ID: dl.ID, Count: int(dl.Count),
			Reason: dl.Reason}
	}
	return m
}
