package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// This file holds the encoders of requests and the decoders of replies that plain
// calls and pipelines share. An encoder appends one whole frame, with a zero request
// id, to dst; on error it returns dst as it was and an *Error.

// frameHeader is the length field plus the header of a frame.
const frameHeader = 4 + proto.HeaderSize

// beginFrame appends the header of a request for op; endFrame fills in its length
// and setFrameID its request id once registered.
func beginFrame(dst []byte, op proto.Op) []byte {
	return append(dst, 0, 0, 0, 0, byte(op), 0, 0, 0, 0, 0)
}

// endFrame sets the length of the frame that starts at start and runs to dst's end.
func endFrame(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

func setFrameID(frame []byte, id uint32) { binary.BigEndian.PutUint32(frame[6:], id) }

// frameLen returns the size of the frame at the start of b, length field included.
func frameLen(b []byte) int { return 4 + int(binary.BigEndian.Uint32(b)) }

// checkSize refuses a message over the server's limit before sending it.
func (c *Client) checkSize(op string, n int) error {
	if n > c.maxMessage {
		return &Error{Op: op, Code: CodeMessageTooLarge, Text: fmt.Sprintf(
			"message too large: %d bytes, over the limit of %d", n, c.maxMessage)}
	}
	return nil
}

// checkFrame refuses a request whose frame of n bytes is over the server's max frame
// before sending it: the server would close the connection, failing every call
// that shares it, where this fails only the one (a PutBatch too large, most often).
func (c *Client) checkFrame(op proto.Op, n int) error {
	if c.maxFrame > 0 && n > c.maxFrame {
		return &Error{Op: opName(op), Code: CodeFrameTooLarge, Text: fmt.Sprintf(
			"request too large: %d bytes in one frame, over the server's max frame of %d"+
				" (split the batch)", n, c.maxFrame)}
	}
	return nil
}

func encodePut(dst []byte, queue string, data []byte, opts []PutOption) ([]byte, error) {
	po, err := putOptionList("put", opts)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	out, err := appendKeyAndOptions(beginFrame(dst, proto.OpPut), "put", queue, po...)
	if err != nil {
		return dst[:start], err
	}
	return endFrame(append(out, data...), start), nil
}

func encodeGet(dst []byte, queue string, wait time.Duration) ([]byte, error) {
	if wait < 0 {
		return dst, badOption("get", "wait", wait)
	}
	start := len(dst)
	out, err := appendKey(beginFrame(dst, proto.OpGet), "get", queue)
	if err != nil {
		return dst[:start], err
	}
	if wait > 0 {
		out, err = appendOptions(out, "get", proto.DurationOption(proto.OptGetWait, wait))
	} else {
		out, err = appendOptions(out, "get")
	}
	if err != nil {
		return dst[:start], err
	}
	return endFrame(out, start), nil
}

func encodeLen(dst []byte, queue string) ([]byte, error) {
	start := len(dst)
	out, err := appendKey(beginFrame(dst, proto.OpLen), "len", queue)
	if err != nil {
		return dst[:start], err
	}
	return endFrame(out, start), nil
}

func encodePutBatch(dst []byte, queue string, msgs [][]byte, opts []PutOption) ([]byte,
	error) {
	if len(msgs) == 0 {
		return dst, &Error{Op: "putbatch", Code: CodeBadRequest, Text: "batch of no message"}
	}
	po, err := putOptionList("putbatch", opts)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	out, err := appendKeyAndOptions(beginFrame(dst, proto.OpPutBatch), "putbatch", queue,
		po...)
	if err != nil {
		return dst[:start], err
	}
	out = proto.AppendU32(out, uint32(len(msgs)))
	for _, m := range msgs {
		out = proto.AppendBytes(out, m)
	}
	return endFrame(out, start), nil
}

// encodeTake encodes a GETBATCH or RESERVE: the queue list, the wait and max options
// they share, then any further options.
func encodeTake(dst []byte, op proto.Op, queues []string, max int, wait time.Duration,
	more ...proto.Option) ([]byte, error) {
	name := opName(op)
	if wait < 0 {
		return dst, badOption(name, "wait", wait)
	}
	if max < 0 || max > proto.MaxBatch {
		return dst, &Error{Op: name, Code: CodeBadRequest,
			Text: fmt.Sprintf("batch of %d messages; ask for 1 to %d", max, proto.MaxBatch)}
	}
	start := len(dst)
	out, err := proto.AppendKeys(beginFrame(dst, op), queues)
	if pe := proto.AsError(err); pe != nil {
		return dst[:start], errorFrom(name, pe)
	}
	var opts []proto.Option
	if wait > 0 {
		opts = append(opts, proto.DurationOption(proto.OptGetWait, wait))
	}
	if max > 1 {
		opts = append(opts, proto.U32Option(proto.OptGetMax, uint32(max)))
	}
	if out, err = appendOptions(out, name, append(opts, more...)...); err != nil {
		return dst[:start], err
	}
	return endFrame(out, start), nil
}

func encodeReserve(dst []byte, queues []string, o ReserveOptions) ([]byte, error) {
	if o.Lease < 0 {
		return dst, badOption("reserve", "lease", o.Lease)
	}
	var more []proto.Option
	if o.Lease > 0 {
		more = append(more, proto.DurationOption(proto.OptReserveLease, o.Lease))
	}
	if o.Detached {
		more = append(more, proto.U8Option(proto.OptReserveBound, 0))
	}
	return encodeTake(dst, proto.OpReserve, queues, o.Max, o.Wait, more...)
}

// encodeDelivery encodes an ACK, NACK or TOUCH of id, with d as option tag when
// both are set.
func encodeDelivery(dst []byte, op proto.Op, id uint64, tag uint8, d time.Duration) (
	[]byte, error) {
	if d < 0 {
		name := "delay"
		if op == proto.OpTouch {
			name = "lease"
		}
		return dst, badOption(opName(op), name, d)
	}
	start := len(dst)
	out := proto.AppendU64(beginFrame(dst, op), id)
	var err error
	if tag != 0 && d > 0 {
		out, err = appendOptions(out, opName(op), proto.DurationOption(tag, d))
	} else {
		out, err = appendOptions(out, opName(op))
	}
	if err != nil {
		return dst[:start], err
	}
	return endFrame(out, start), nil
}

// expectOK returns an error unless the reply has status OK.
func (cl *call) expectOK() error {
	if cl.status != proto.StatusOK {
		return cl.badReply(fmt.Errorf("unexpected status %s", cl.status))
	}
	return nil
}

// badReply reports a reply that breaks the protocol.
func (cl *call) badReply(err error) error {
	return fmt.Errorf("keyq %s: bad reply from server: %w", opName(cl.op), err)
}

// decodeU64 decodes a reply whose body is exactly one u64: PUT's message id, LEN's
// count.
func decodeU64(cl *call) (uint64, error) {
	if err := cl.expectOK(); err != nil {
		return 0, err
	}
	d := proto.NewBody(cl.body)
	v, err := d.U64()
	if err == nil {
		err = d.End()
	}
	if err != nil {
		return 0, cl.badReply(err)
	}
	return v, nil
}

func decodeLen(cl *call) (int64, error) {
	n, err := decodeU64(cl)
	return int64(n), err
}

// decodeNone checks the empty reply of ACK and NACK.
func decodeNone(cl *call) (struct{}, error) { return struct{}{}, cl.expectOK() }

func decodeDeadline(cl *call) (time.Time, error) {
	ms, err := decodeU64(cl)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(ms)), nil
}

// decodeGet decodes GET's reply: ErrEmpty, or a message whose Data the caller owns.
func decodeGet(cl *call) (Message, error) {
	if cl.status == proto.StatusEmpty {
		return Message{}, ErrEmpty
	}
	if err := cl.expectOK(); err != nil {
		return Message{}, err
	}
	d := proto.NewBody(cl.takeBody())
	id, err := d.U64()
	if err != nil {
		return Message{}, cl.badReply(err)
	}
	return Message{Queue: cl.queue, ID: id, Data: d.Rest()}, nil
}

// decodeIDs decodes PUTBATCH's reply: a u32 count (cl.count) and that many u64 ids.
func decodeIDs(cl *call) ([]uint64, error) {
	if err := cl.expectOK(); err != nil {
		return nil, err
	}
	want := cl.count
	d := proto.NewBody(cl.body)
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
		return nil, cl.badReply(err)
	}
	return ids, nil
}

// decodeItems decodes the items of a GETBATCH or RESERVE reply. Their payloads alias
// one copy of the reply's body, which the caller then owns.
func decodeItems(cl *call, lease bool) ([]proto.Item, error) {
	if cl.status == proto.StatusEmpty {
		return nil, ErrEmpty
	}
	if err := cl.expectOK(); err != nil {
		return nil, err
	}

	d := proto.NewBody(cl.takeBody())
	n, err := d.U32()
	if err == nil && n == 0 {
		err = errors.New("OK reply with no message")
	}
	var items []proto.Item
	if err == nil {
		items = make([]proto.Item, 0, min(n, proto.MaxBatch))
	}
	for i := uint32(0); err == nil && i < n; i++ {
		var it proto.Item
		if it, err = d.Item(lease); err == nil {
			items = append(items, it)
		}
	}
	if err == nil {
		err = d.End()
	}
	if err != nil {
		return nil, cl.badReply(err)
	}
	return items, nil
}

func decodeMessages(cl *call) ([]Message, error) {
	items, err := decodeItems(cl, false)
	if err != nil {
		return nil, err
	}
	msgs := make([]Message, len(items))
	for i, it := range items {
		msgs[i] = messageOf(it)
	}
	return msgs, nil
}

func decodeDeliveries(cl *call) ([]Delivery, error) {
	items, err := decodeItems(cl, true)
	if err != nil {
		return nil, err
	}
	ds := make([]Delivery, len(items))
	for i, it := range items {
		ds[i] = Delivery{
			Message:    messageOf(it),
			DeliveryID: it.DeliveryID,
			Count:      int(it.Count),
			Deadline:   time.UnixMilli(int64(it.Deadline)),
		}
	}
	return ds, nil
}

// do sends cl, waits for its reply and decodes it with decode.
func do[T any](c *Client, ctx context.Context, cl *call, decode func(*call) (T, error)) (
	T, error) {
	if err := c.checkFrame(cl.op, len(cl.frame)); err != nil {
		putCall(cl)
		var zero T
		return zero, err
	}
	if err := c.roundTrip(ctx, cl); err != nil {
		var zero T
		return zero, err
	}
	v, err := decode(cl)
	putCall(cl)
	return v, err
}
