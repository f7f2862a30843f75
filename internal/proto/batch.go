package proto

import (
	"encoding/binary"
	"math"
	"slices"
)

// MaxQueues is the most queues one GETBATCH or RESERVE may name (a u8 count).
const MaxQueues = math.MaxUint8

// AppendKeys appends a u8 count and then each key, for the queue list of GETBATCH and
// RESERVE. It refuses an empty list, more than MaxQueues keys, or a key over
// MaxKeyBytes, with an *Error.
func AppendKeys(dst []byte, keys []string) ([]byte, error) {
	if len(keys) == 0 || len(keys) > MaxQueues {
		return dst, Errorf(StatusBadRequest, "%d queues named; name 1 to %d",
			len(keys), MaxQueues)
	}
	out := append(dst, byte(len(keys)))
	for _, k := range keys {
		var err error
		if out, err = AppendKey(out, k); err != nil {
			return dst, err
		}
	}
	return out, nil
}

// AppendU32 appends v as 4 big-endian bytes.
func AppendU32(dst []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(dst, v)
}

// Keys consumes a u8 count and that many keys. A count of 0 is a StatusBadRequest.
func (d *Body) Keys() ([]string, error) {
	start := d.off
	if d.Len() < 1 {
		return nil, Errorf(StatusBadFrame, "body ends before the queue count at byte %d", d.off)
	}
	n := int(d.b[d.off])
	if n == 0 {
		return nil, Errorf(StatusBadRequest, "no queue named")
	}
	d.off++
	keys := make([]string, 0, n)
	for range n {
		k, err := d.Key()
		if err != nil {
			d.off = start
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// U32 consumes a big-endian u32.
func (d *Body) U32() (uint32, error) {
	if d.Len() < 4 {
		return 0, Errorf(StatusBadFrame, "body ends before a u32 at byte %d", d.off)
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v, nil
}

// Bytes consumes a u32 length and that many bytes (aliasing the body).
func (d *Body) Bytes() ([]byte, error) {
	start := d.off
	n, err := d.U32()
	if err != nil {
		return nil, err
	}
	if uint64(d.Len()) < uint64(n) {
		d.off = start
		return nil, Errorf(StatusBadFrame, "%d bytes run past the end of the body", n)
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b, nil
}

// AppendBytes appends a u32 length and b.
func AppendBytes(dst, b []byte) []byte {
	dst = AppendU32(dst, uint32(len(b)))
	return append(dst, b...)
}

// Messages consumes the message list of a PUTBATCH: a u32 count of at least 1, then
// each message as a u32 length and its bytes. The messages alias the body.
func (d *Body) Messages() ([][]byte, error) { return d.AppendMessages(nil) }

// AppendMessages is Messages, appending the messages to dst, so that a caller that
// decodes many batches can reuse one list.
func (d *Body) AppendMessages(dst [][]byte) ([][]byte, error) {
	start := d.off
	n, err := d.U32()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		d.off = start
		return nil, Errorf(StatusBadRequest, "batch of no message")
	}
	if uint64(n)*4 > uint64(d.Len()) {
		d.off = start
		return nil, Errorf(StatusBadFrame, "%d messages cannot fit in %d bytes", n, d.Len())
	}
	msgs := slices.Grow(dst, int(n))
	for range n {
		m, err := d.Bytes()
		if err != nil {
			d.off = start
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// Item is one message in a GETBATCH or RESERVE reply. The lease fields are sent
// for RESERVE only.
type Item struct {
	Queue      string
	ID         uint64 // the message id
	DeliveryID uint64 // RESERVE: the id to ack, nack or touch
	Count      uint32 // RESERVE: 1 on the first delivery, then one more each time
	Deadline   uint64 // RESERVE: when the lease runs out, in Unix milliseconds
	DeadLetter *DeadLetter
	Payload    []byte
}

// DeadLetter tells where a message in a dead-letter queue came from and why.
type DeadLetter struct {
	Queue  string // the queue it left
	ID     uint64 // its id there
	Count  uint32 // how many times it had been delivered
	Reason string // "max-deliveries" or "expired"
}

// ItemSize returns the bytes AppendItem uses for it.
func ItemSize(it *Item, lease bool) int {
	n := 1 + len(it.Queue) + 8 + 1 + 4 + len(it.Payload)
	if lease {
		n += 8 + 4 + 8
	}
	if dl := it.DeadLetter; dl != nil {
		n += 1 + len(dl.Queue) + 8 + 4 + 1 + len(dl.Reason)
	}
	return n
}

// AppendItem appends it: key, u64 message id; for a lease the u64 delivery id, u32
// delivery count and u64 deadline; a u8 that is 1 when dead-letter fields follow
// (key of the queue left, u64 id there, u32 delivery count, u8-length reason), else
// 0; then the u32 payload length and payload. Names must be at most 255 bytes.
func AppendItem(dst []byte, it *Item, lease bool) []byte {
	dst = appendShort(dst, it.Queue)
	dst = AppendU64(dst, it.ID)
	if lease {
		dst = AppendU64(dst, it.DeliveryID)
		dst = AppendU32(dst, it.Count)
		dst = AppendU64(dst, it.Deadline)
	}
	if dl := it.DeadLetter; dl != nil {
		dst = append(dst, 1)
		dst = appendShort(dst, dl.Queue)
		dst = AppendU64(dst, dl.ID)
		dst = AppendU32(dst, dl.Count)
		dst = appendShort(dst, dl.Reason)
	} else {
		dst = append(dst, 0)
	}
	return AppendBytes(dst, it.Payload)
}

// appendShort appends s with a u8 length; s must be at most 255 bytes.
func appendShort(dst []byte, s string) []byte {
	dst = append(dst, byte(len(s)))
	return append(dst, s...)
}

// Item consumes one item as AppendItem wrote it. Its payload aliases the body.
func (d *Body) Item(lease bool) (Item, error) {
	start := d.off
	it, err := d.item(lease)
	if err != nil {
		d.off = start
	}
	return it, err
}

func (d *Body) item(lease bool) (it Item, err error) {
	if it.Queue, err = d.Key(); err != nil {
		return it, err
	}
	if it.ID, err = d.U64(); err != nil {
		return it, err
	}
	if lease {
		if it.DeliveryID, err = d.U64(); err != nil {
			return it, err
		}
		if it.Count, err = d.U32(); err != nil {
			return it, err
		}
		if it.Deadline, err = d.U64(); err != nil {
			return it, err
		}
	}
	if it.DeadLetter, err = d.deadLetter(); err != nil {
		return it, err
	}
	it.Payload, err = d.Bytes()
	return it, err
}

func (d *Body) deadLetter() (*DeadLetter, error) {
	if d.Len() < 1 {
		return nil, Errorf(StatusBadFrame, "body ends before the dead-letter mark")
	}
	mark := d.b[d.off]
	d.off++
	switch mark {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, Errorf(StatusBadFrame, "dead-letter mark %d is neither 0 nor 1", mark)
	}
	var dl DeadLetter
	var err error
	if dl.Queue, err = d.Key(); err != nil {
		return nil, err
	}
	if dl.ID, err = d.U64(); err != nil {
		return nil, err
	}
	if dl.Count, err = d.U32(); err != nil {
		return nil, err
	}
	if dl.Reason, err = d.Key(); err != nil {
		return nil, err
	}
	return &dl, nil
}
