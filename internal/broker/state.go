package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/keyq/keyq/internal/codec"
	"github.com/keyq/keyq/internal/storage"
)

// meta is what a message carries beyond its bytes once it has a delivery life: a
// delivery count, an expiry, a dead-letter note, and the state record that keeps
// them in the store. Plain messages have none (entry.meta is nil), so the plain put
// and get paths pay nothing for it.
type meta struct {
	count     int       // deliveries so far
	pos       int64     // place in its queue, as its last put or state record gave it
	expiresAt time.Time // zero: never; from time.Now, so compared on the monotonic clock
	dueAt     time.Time // set during recovery only: when a deferred message is due
	dead      *DeadLetter

	// returned marks a message that came back to the head of its queue (a lease run
	// out, a nack without delay): it stands in the run of returned messages at the
	// head, which all share pos and are ordered by message ID, see insertReturnedLocked.
	returned bool
	leased   bool // set during recovery only: its newest state record is a lease

	// expiry is the TTL's timer (nil without a TTL), and queued the queue whose ready
	// list holds the message (nil while it is leased, deferred, in flight or gone),
	// so that the timer finds it. queued is written under that queue's lock and read
	// by the timer loop before it knows which lock to take.
	expiry *timer
	queued atomic.Pointer[Queue]

	stateID  uint64           // ID of its live state record; 0 if it has none
	stateLoc storage.Location // where the store keeps that record
}

// expiredAt reports whether the message behind m has outlived its TTL at now.
func (m *meta) expiredAt(now time.Time) bool {
	return m != nil && !m.expiresAt.IsZero() && !now.Before(m.expiresAt)
}

// deadLetter returns the dead-letter note of e, nil for most messages.
func (e *entry) deadLetter() *DeadLetter {
	if e.meta == nil {
		return nil
	}
	return e.meta.dead
}

// metaOf returns e's meta, creating it (at position pos) if e has none.
func metaOf(e *entry, pos int64) *meta {
	if e.meta == nil {
		e.meta = &meta{pos: pos}
	}
	return e.meta
}

// msgState is the payload of a state record: where a message stands.
type msgState struct {
	msg       uint64
	count     int
	pos       int64
	dueAt     time.Time // deferred until then (wall clock on disk)
	expiresAt time.Time
	dead      *DeadLetter
	returned  bool // in the run of returned messages at the head (meta.returned)
}

const stateVersion = 1

var errBadState = errors.New("undecodable state record")

// appendTime encodes t as Unix nanoseconds, 0 for the zero time. The wall reading is
// what is kept: the monotonic one means nothing to another process.
func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(dst, 0)
	}
	return binary.AppendVarint(dst, t.UnixNano())
}

func (s *msgState) encode() []byte {
	buf := make([]byte, 0, 48)
	buf = append(buf, stateVersion)
	buf = binary.AppendUvarint(buf, s.msg)
	buf = binary.AppendUvarint(buf, uint64(s.count))
	buf = binary.AppendVarint(buf, s.pos)
	buf = appendTime(buf, s.dueAt)
	buf = appendTime(buf, s.expiresAt)
	if s.dead == nil {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		buf = appendDead(buf, s.dead)
	}
	// Flags come last, so that records written before they existed still decode.
	if s.returned {
		return append(buf, flagReturned)
	}
	return append(buf, 0)
}

// flagReturned in a state record's flags says the message stands among the returned
// messages at the head of its queue.
const flagReturned = 1

func appendDead(buf []byte, dead *DeadLetter) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(dead.Queue)))
	buf = append(buf, dead.Queue...)
	buf = binary.AppendUvarint(buf, dead.ID)
	buf = binary.AppendUvarint(buf, uint64(len(dead.Reason)))
	buf = append(buf, dead.Reason...)
	return binary.AppendUvarint(buf, uint64(dead.Count))
}

func decodeState(p []byte) (msgState, error) {
	d := codec.Decoder{Buf: p}
	if d.Byte() != stateVersion {
		return msgState{}, errBadState
	}
	s := msgState{msg: d.Uvarint(), count: int(d.Uvarint()), pos: d.Varint()}
	s.dueAt = decodeTime(&d)
	s.expiresAt = decodeTime(&d)
	if d.Byte() == 1 {
		s.dead = &DeadLetter{Queue: string(d.Prefixed())}
		s.dead.ID = d.Uvarint()
		s.dead.Reason = string(d.Prefixed())
		s.dead.Count = int(d.Uvarint())
	}
	if len(d.Buf) > 0 {
		s.returned = d.Byte()&flagReturned != 0
	}
	if d.Bad {
		return msgState{}, errBadState
	}
	return s, nil
}

func encodeSettings(s QueueSettings) []byte {
	buf := make([]byte, 0, 48)
	buf = append(buf, stateVersion)
	buf = binary.AppendUvarint(buf, uint64(s.MaxLength))
	buf = binary.AppendUvarint(buf, uint64(s.MaxBytes))
	buf = append(buf, byte(s.Overflow))
	buf = binary.AppendUvarint(buf, uint64(s.DefaultLease))
	buf = binary.AppendUvarint(buf, uint64(s.MaxDeliveries))
	buf = binary.AppendUvarint(buf, uint64(len(s.DeadLetter)))
	buf = append(buf, s.DeadLetter...)
	buf = binary.AppendUvarint(buf, uint64(s.DefaultTTL))
	if s.ExpiredToDLQ {
		return append(buf, 1)
	}
	return append(buf, 0)
}

func decodeSettings(p []byte) (QueueSettings, error) {
	d := codec.Decoder{Buf: p}
	if d.Byte() != stateVersion {
		return QueueSettings{}, errBadState
	}
	s := QueueSettings{MaxLength: int(d.Uvarint()), MaxBytes: int64(d.Uvarint())}
	s.Overflow = Overflow(d.Byte())
	s.DefaultLease = time.Duration(d.Uvarint())
	s.MaxDeliveries = int(d.Uvarint())
	s.DeadLetter = string(d.Prefixed())
	s.DefaultTTL = time.Duration(d.Uvarint())
	s.ExpiredToDLQ = d.Byte() == 1
	if d.Bad {
		return QueueSettings{}, errBadState
	}
	return s, nil
}

// decodeTime reads a time written as Unix nanoseconds, 0 for the zero time.
func decodeTime(d *codec.Decoder) time.Time {
	ns := d.Varint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// appendStateLocked records a new state of e's message in q (op says which) and
// ends the state record it had, so at most one stays live per message. The caller
// holds q.mu. In memory mode nothing is encoded.
func (b *Broker) appendStateLocked(
	q *Queue, e *entry, op storage.Op, id uint64, dueAt time.Time,
) (storage.Ticket, error) {
	m := e.meta
	if !b.durable {
		return 0, nil
	}
	st := msgState{msg: e.id, count: m.count, pos: m.pos, dueAt: dueAt,
		expiresAt: m.expiresAt, dead: m.dead, returned: m.returned}
	if id == 0 {
		id = b.nextID.Add(1) - 1
	}
	rec := storage.Record{Op: op, Queue: q.name, ID: id, Pos: m.pos, Payload: st.encode()}
	loc, ticket, err := b.store.Append(&rec)
	if err != nil {
		return 0, &StoreError{Record: fmt.Sprintf("%s of %d", op, e.id), Queue: q.name,
			Err: err}
	}

	old, oldLoc := m.stateID, m.stateLoc
	m.stateID, m.stateLoc = id, loc
	if old == 0 {
		return ticket, nil
	}
	return b.endRecord(q.name, old, oldLoc, ticket)
}

// endRecord records the end of the state record id at loc and returns the later of
// its ticket and after.
func (b *Broker) endRecord(
	queue string, id uint64, loc storage.Location, after storage.Ticket,
) (storage.Ticket, error) {
	rec := storage.Record{Op: storage.OpTake, Queue: queue, ID: id, Ref: loc}
	_, ticket, err := b.store.Append(&rec)
	if err != nil {
		return 0, &StoreError{Record: fmt.Sprintf("end of record %d", id), Queue: queue,
			Err: err}
	}
	return max(ticket, after), nil
}
