package server

import (
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
)

// frameHeaderBytes is a frame's length field and header.
const frameHeaderBytes = 4 + proto.HeaderSize

// reply is one reply frame on its way from the reader to the writer. It is passed by
// value; body belongs to the reply (never to the reader's buffer).
type reply struct {
	op     proto.Op
	status proto.Status
	id     uint32
	num    uint64 // a message id or a count, written first when hasNum is set
	hasNum bool
	body   []byte
	pooled bool           // body is from replyBodies: given back once the reply is written
	msg    broker.Message // whose Payload body is: released once the reply is written
	more   bool           // a further request is already received: the writer need not flush
	flush  bool           // no frame: only asks the writer to flush what it holds

	start  time.Duration // conn.clock when its request was read, for the Observer; 0: none
	waited bool          // its request went off to wait for a message
}

// flushReply asks the writer to flush the replies it holds back because more were
// expected: sent when the request that followed them went off to wait.
var flushReply = reply{flush: true}

func (r *reply) size() int {
	if r.flush {
		return 0
	}
	n := frameHeaderBytes + len(r.body)
	if r.hasNum {
		n += 8
	}
	return n
}

// fail makes r an error reply with code and text.
func (r *reply) fail(code proto.Status, text string) {
	r.status, r.body, r.hasNum, r.pooled = code, []byte(text), false, false
}

// failErr makes r the reply for err: an error status with its text, or Empty.
func (r *reply) failErr(err error) {
	code, text := statusOf(err)
	r.fail(code, text)
}

// setBody makes r a success reply with body, a buffer from replyBodies that the
// connection gives back once it has written the reply. A reply never written (its
// client left) leaves its buffer to the garbage collector.
func (r *reply) setBody(body []byte) {
	r.status, r.body, r.pooled = proto.StatusOK, body, true
}

// ok makes r a success reply carrying num, then body.
func (r *reply) ok(num uint64, body []byte) {
	r.status, r.num, r.hasNum, r.body = proto.StatusOK, num, true, body
}
