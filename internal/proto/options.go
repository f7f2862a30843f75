package proto

import (
	"encoding/binary"
	"time"
)

// Option tags. Tags are per opcode (docs/PROTOCOL.md lists them); a server answers a
// tag it does not know for the opcode with StatusBadRequest. Durations are u64
// milliseconds.
const (
	OptPutDelay uint8 = 1 // PUT, PUTBATCH: u64 ms before the message may be delivered
	OptPutTTL   uint8 = 2 // PUT, PUTBATCH: u64 ms the message lives

	OptGetWait uint8 = 1 // GET, GETBATCH, RESERVE: u64 ms to wait for a message
	OptGetMax  uint8 = 2 // GETBATCH, RESERVE: u32 most messages to take (default 1)

	OptReserveLease uint8 = 3 // RESERVE: u64 ms of lease (default: the queue's)
	OptReserveBound uint8 = 4 // RESERVE: u8, 1 binds the leases to the connection

	OptNackDelay  uint8 = 1 // NACK: u64 ms before the message is delivered again
	OptTouchLease uint8 = 1 // TOUCH: u64 ms of lease from now (default: the queue's)
)

// Option tags of QUEUE_SET, one per setting. A zero value means "no limit" or "the
// server's default".
const (
	OptQueueMaxLength     uint8 = 1 // u64 messages
	OptQueueMaxBytes      uint8 = 2 // u64 bytes
	OptQueueOverflow      uint8 = 3 // u8: OverflowReject or OverflowDropOldest
	OptQueueLease         uint8 = 4 // u64 ms: the default lease
	OptQueueMaxDeliveries uint8 = 5 // u32: deliveries before a message is dead-lettered
	OptQueueDeadLetter    uint8 = 6 // the dead-letter queue's name (empty: "<queue>.dlq")
	OptQueueTTL           uint8 = 7 // u64 ms: the default time to live
	OptQueueExpiredToDLQ  uint8 = 8 // u8: 1 dead-letters expired messages
)

// Values of OptQueueOverflow.
const (
	OverflowReject     uint8 = 0 // a put into a full queue fails with StatusQueueFull
	OverflowDropOldest uint8 = 1 // the head message is dropped to make room
)

// MaxBatch is the most messages a GETBATCH or RESERVE may ask for.
const MaxBatch = 1000

// U64Option returns an option whose value is v as a u64.
func U64Option(tag uint8, v uint64) Option {
	return Option{Tag: tag, Value: AppendU64(nil, v)}
}

// U32Option returns an option whose value is v as a u32.
func U32Option(tag uint8, v uint32) Option {
	return Option{Tag: tag, Value: binary.BigEndian.AppendUint32(nil, v)}
}

// U8Option returns an option whose value is the single byte v.
func U8Option(tag uint8, v uint8) Option { return Option{Tag: tag, Value: []byte{v}} }

// DurationOption returns an option carrying d in milliseconds (see Millis).
func DurationOption(tag uint8, d time.Duration) Option { return U64Option(tag, Millis(d)) }

// Millis converts d to whole milliseconds for the wire, rounding up, so that a
// positive duration never becomes 0 (which means "none" on the wire). d must not be
// negative.
func Millis(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Millisecond - 1) / time.Millisecond)
}

// Duration converts ms milliseconds from the wire to a Duration no longer than limit,
// so that a huge value can neither overflow nor exceed what the server allows.
func Duration(ms uint64, limit time.Duration) time.Duration {
	if ms == 0 {
		return 0
	}
	if ms >= uint64(limit/time.Millisecond) {
		return limit
	}
	return time.Duration(ms) * time.Millisecond
}

// OptionU64 decodes an option value that must be exactly a u64.
func OptionU64(tag uint8, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, optionSize(tag, v, 8)
	}
	return binary.BigEndian.Uint64(v), nil
}

// OptionU32 decodes an option value that must be exactly a u32.
func OptionU32(tag uint8, v []byte) (uint32, error) {
	if len(v) != 4 {
		return 0, optionSize(tag, v, 4)
	}
	return binary.BigEndian.Uint32(v), nil
}

// OptionU8 decodes an option value that must be exactly one byte.
func OptionU8(tag uint8, v []byte) (uint8, error) {
	if len(v) != 1 {
		return 0, optionSize(tag, v, 1)
	}
	return v[0], nil
}

func optionSize(tag uint8, v []byte, want int) error {
	return Errorf(StatusBadRequest, "option %d has a value of %d bytes, want %d",
		tag, len(v), want)
}
