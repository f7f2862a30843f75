package proto

import "strconv"

// Op is a frame's opcode: the operation a request asks for, echoed by its reply.
type Op uint8

// The opcodes of version 1. Values are on the wire: never renumber. OpDelete is
// reserved: a server that does not know it answers StatusUnknownOp.
const (
	// OpNone marks a connection-level error frame that answers no particular
	// request (for example FrameTooLarge, or the connection limit); its request
	// id is 0.
	OpNone  Op = 0x00
	OpPut   Op = 0x01
	OpGet   Op = 0x02
	OpLen   Op = 0x03
	OpPing  Op = 0x04
	OpStats Op = 0x05

	OpReserve    Op = 0x06 // get under a lease
	OpAck        Op = 0x07 // remove a leased message
	OpNack       Op = 0x08 // return a leased message, now or after a delay
	OpTouch      Op = 0x09 // extend a lease
	OpPutBatch   Op = 0x0A // put many messages, all or none
	OpGetBatch   Op = 0x0B // take up to N messages
	OpQueueSet   Op = 0x0C // change per-queue settings
	OpQueueShow  Op = 0x0D // show a queue's settings and counts
	OpDelete     Op = 0x0E // reserved
	lastReserved Op = OpDelete
)

var opNames = [...]string{
	OpNone: "NONE", OpPut: "PUT", OpGet: "GET", OpLen: "LEN", OpPing: "PING",
	OpStats: "STATS", OpReserve: "RESERVE", OpAck: "ACK", OpNack: "NACK",
	OpTouch: "TOUCH", OpPutBatch: "PUTBATCH", OpGetBatch: "GETBATCH",
	OpQueueSet: "QUEUE_SET", OpQueueShow: "QUEUE_SHOW", OpDelete: "DELETE",
}

// String returns the operation's name as PROTOCOL.md spells it, or op(0xNN).
func (o Op) String() string {
	if o <= lastReserved {
		return opNames[o]
	}
	return "op(0x" + strconv.FormatUint(uint64(o), 16) + ")"
}
