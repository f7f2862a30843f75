package broker

import (
	"bytes"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/keyq/keyq/internal/slicepool"
)

// Payload buffers. The broker keeps its own copy of every payload it queues. Small
// copies come from size-classed pools, and a message handed to a consumer carries its
// buffer back to them when the front door calls Message.Release, so that in steady
// state a put and a get allocate nothing. A buffer never released is garbage
// collected like any other.
//
// A buffer the broker queues belongs to the broker alone (the store copies what it
// writes during Append and never keeps rec.Payload), and a take hands it to exactly
// one Message, so a released buffer is never in use elsewhere unless its Message
// broke Release's contract.

// maxPooledPayload is the largest payload whose buffer comes from a pool.
const maxPooledPayload = 64 << 10

// The classes: sizes up to minPayloadClass share one class; above, each power of two
// is split in payloadSteps classes, so a buffer wastes at most 1/payloadSteps of its
// size (and Go's allocator rounds most classes the same way it rounds the payload).
const (
	minPayloadClass   = 16
	payloadStepsLog   = 3
	payloadSteps      = 1 << payloadStepsLog
	minPayloadClassLg = 4 // log2(minPayloadClass)
	maxPayloadClassLg = 16
	payloadClasses    = 1 + (maxPayloadClassLg-minPayloadClassLg)*payloadSteps
)

// payloadBuf holds a pooled buffer on its way between a consumer's Message and a
// later put. Holders travel through two pools: with a buffer in payloadPools, empty
// in emptyHolders while the buffer sits in a queue.
type payloadBuf struct {
	buf []byte // full capacity; nil while the holder is empty

	// gen counts the releases of the holder, so that a second Release of the same
	// message (or of a copy of it) finds a newer gen and does nothing.
	gen atomic.Uint64
}

var (
	payloadPools [payloadClasses]sync.Pool // *payloadBuf with a buffer of the class
	emptyHolders sync.Pool                 // *payloadBuf with no buffer
)

// payloadClass returns the class of a payload of n bytes, 0 < n <= maxPooledPayload,
// and the size of that class' buffers.
func payloadClass(n int) (class, size int) {
	if n <= minPayloadClass {
		return 0, minPayloadClass
	}
	lg := bits.Len(uint(n - 1)) // 2^(lg-1) < n <= 2^lg
	step := 1 << (lg - 1 - payloadStepsLog)
	m := (n + step - 1) / step // payloadSteps < m <= 2*payloadSteps
	class = 1 + (lg-1-minPayloadClassLg)*payloadSteps + m - payloadSteps - 1
	return class, m * step
}

// copyPayload returns the broker's own copy of p: from a pool when p is small, with
// its capacity that of its class, so that Release can tell where it goes back.
func copyPayload(p []byte) []byte {
	if len(p) == 0 || len(p) > maxPooledPayload {
		return bytes.Clone(p)
	}
	class, size := payloadClass(len(p))
	var buf []byte
	if h, _ := payloadPools[class].Get().(*payloadBuf); h != nil {
		buf, h.buf = h.buf, nil
		emptyHolders.Put(h)
	} else {
		buf = make([]byte, size)
	}
	buf = buf[:len(p)]
	copy(buf, p)
	return buf
}

// own makes m the owner of its payload's buffer, which the broker hands over for
// good (a taken message, or a fresh copy), so that m.Release can recycle it. A
// payload that no pool would take back (too large, or read back from the store) is
// left to the garbage collector.
func (m *Message) own() {
	p := m.Payload
	if len(p) == 0 || len(p) > maxPooledPayload {
		return
	}
	if _, size := payloadClass(len(p)); cap(p) != size {
		return
	}
	h, _ := emptyHolders.Get().(*payloadBuf)
	if h == nil {
		h = new(payloadBuf)
	}
	h.buf = p[:cap(p)]
	m.holder, m.gen = h, h.gen.Load()
}

// Release gives the message's payload buffer back to the broker for a later put,
// and sets Payload to nil. A front door calls it once it has written the payload
// out, so that small messages cost no allocation.
//
// The contract: call it at most once per message received, on one copy of the
// Message, after the last use of Payload and of every slice of it; the buffer may
// hold another message's bytes as soon as Release returns. A second Release of the
// same message (through the same variable or a copy) does nothing. Never calling it
// is safe: the buffer is then garbage collected. Under the race detector it poisons
// the buffer first (see poisonByte), so that tests catch a break of the contract.
func (m *Message) Release() {
	h := m.holder
	m.Payload, m.holder = nil, nil
	if h == nil || !h.gen.CompareAndSwap(m.gen, m.gen+1) {
		return
	}
	if poisonReleased {
		poison(h.buf)
	}
	class, _ := payloadClass(len(h.buf))
	payloadPools[class].Put(h)
}

// ReleaseBatch releases every message of msgs, as Message.Release does, and keeps
// the slice itself for a later batch, so that a front door done with the batch a
// GetBatch or FinishTakeBatch returned spares the next one its allocation. msgs, and
// every Message in it, must not be used after.
func ReleaseBatch(msgs []Message) {
	for i := range msgs {
		msgs[i].Release()
	}
	messages.Put(msgs)
}

// The lists a batch builds for itself and drops once done, recycled: the entries of
// a put, the deliveries of a take, and the messages handed out (see ReleaseBatch).
var (
	entries    slicepool.Pool[entry]
	deliveries slicepool.Pool[delivery]
	messages   slicepool.Pool[Message]
)

// ownedCopy returns a Message whose payload is a fresh copy of p that it owns.
func ownedCopy(queue string, id uint64, p []byte) Message {
	m := Message{Queue: queue, ID: id, Payload: copyPayload(p)}
	m.own()
	return m
}
