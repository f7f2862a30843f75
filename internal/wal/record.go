package wal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/keyq/keyq/internal/codec"
	"github.com/keyq/keyq/internal/storage"
)

// A record on disk is a frame:
//
//	crc32c uint32 (little-endian) of every byte after it in the frame
//	length uint32 (little-endian) of kind and body
//	kind   byte
//	body   length-1 bytes
//
// The bodies, with uvarint/varint integers:
//
//	put, put-front: id, pos, len(queue), queue, [first segment, first offset], payload
//	state records (lease, defer, return, dead-letter, settings): as a put, the
//	                payload being the broker's encoding of the state
//	take:           id, ref segment, ref offset
//	pad:            any bytes (written by Repair over a damaged range)
//
// The bracketed location is present when the kind has flagMoved: the put was copied
// forward by compaction, and this is where it was first written, the Location the
// broker knows it by.
const frameHeader = 8

// kind is a record's type byte. The put and state kinds equal their storage.Op
// values.
type kind uint8

const (
	kindPut      = kind(storage.OpPut)
	kindPutFront = kind(storage.OpPutFront)
	kindTake     = kind(storage.OpTake)

	kindLease      = kind(storage.OpLease)
	kindDefer      = kind(storage.OpDefer)
	kindReturn     = kind(storage.OpReturn)
	kindDeadLetter = kind(storage.OpDeadLetter)
	kindSettings   = kind(storage.OpSettings)
	kindPad        = kind(0x40)

	// flagMoved marks a put copied forward by compaction.
	flagMoved = kind(0x80)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Decoding errors. errShort means the buffer ends inside the frame; the others mean
// the bytes are not a record.
var (
	errShort    = errors.New("frame runs past the end of the data")
	errLength   = errors.New("bad frame length")
	errChecksum = errors.New("checksum mismatch")
	errBody     = errors.New("undecodable record body")

	// errOtherSegment: a segment header, intact, names another segment.
	errOtherSegment = errors.New("not this segment's file")
)

// diskRecord is a decoded frame. Its byte slices point into the decoded buffer.
type diskRecord struct {
	kind    kind // without flagMoved
	moved   bool
	id      uint64
	pos     int64
	queue   []byte
	first   storage.Location // where a moved put was first written
	payload []byte
	ref     storage.Location // for takes
}

// isPut reports whether the record stays live until a take names it: a put or a
// state record, which the log keeps, replays and copies forward alike.
func (r *diskRecord) isPut() bool { return isPutOp(storage.Op(r.kind)) }

// isPutOp reports whether records of op are written as puts.
func isPutOp(op storage.Op) bool { return op.Lives() }

// appendPut appends the frame of a put (or put-front, or state) record to dst. A
// non-zero first marks the record as moved from there.
func appendPut(dst []byte, rec *storage.Record, first storage.Location) []byte {
	start := len(dst)
	k := kind(rec.Op)
	if !first.IsZero() {
		k |= flagMoved
	}
	dst = append(dst, make([]byte, frameHeader)...)
	dst = append(dst, byte(k))
	dst = binary.AppendUvarint(dst, rec.ID)
	dst = binary.AppendVarint(dst, rec.Pos)
	dst = binary.AppendUvarint(dst, uint64(len(rec.Queue)))
	dst = append(dst, rec.Queue...)
	if !first.IsZero() {
		dst = binary.AppendUvarint(dst, first.Segment)
		dst = binary.AppendUvarint(dst, uint64(first.Offset))
	}
	dst = append(dst, rec.Payload...)
	return sealFrame(dst, start)
}

// appendTake appends the frame of a take record to dst.
func appendTake(dst []byte, rec *storage.Record) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = append(dst, byte(kindTake))
	dst = binary.AppendUvarint(dst, rec.ID)
	dst = binary.AppendUvarint(dst, rec.Ref.Segment)
	dst = binary.AppendUvarint(dst, uint64(rec.Ref.Offset))
	return sealFrame(dst, start)
}

// maxTakeFrame is the size of the largest take record.
const maxTakeFrame = frameHeader + 1 + 3*binaryMaxVarint

// takeFrameSize returns the size of the frame appendTake writes for a take of
// message id whose put was first written at ref.
func takeFrameSize(id uint64, ref storage.Location) int {
	return frameHeader + 1 + uvarintLen(id) + uvarintLen(ref.Segment) +
		uvarintLen(uint64(ref.Offset))
}

// uvarintLen returns the length of x encoded as a uvarint.
func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// padFrame returns a pad record exactly n bytes long; n must be > frameHeader.
func padFrame(n int) []byte {
	dst := make([]byte, n)
	dst[frameHeader] = byte(kindPad)
	return sealFrame(dst, 0)
}

// sealFrame fills in the length and checksum of the frame starting at start.
func sealFrame(dst []byte, start int) []byte {
	frame := dst[start:]
	binary.LittleEndian.PutUint32(frame[4:8], uint32(len(frame)-frameHeader))
	binary.LittleEndian.PutUint32(frame[0:4], crc32.Checksum(frame[4:], castagnoli))
	return dst
}

// frameLen returns the length of the frame at the start of buf as its header claims,
// or an error if the header is incomplete or the claim is impossible.
func frameLen(buf []byte) (int, error) {
	if len(buf) < frameHeader {
		return 0, errShort
	}
	n := binary.LittleEndian.Uint32(buf[4:8])
	if n == 0 || uint64(n) > maxFrameBody {
		return 0, errLength
	}
	if int(n) > len(buf)-frameHeader {
		return 0, errShort
	}
	return frameHeader + int(n), nil
}

// maxFrameBody bounds a frame's claimed length, so that a damaged length field is
// rejected before anything is read past it.
const maxFrameBody = 1 << 30

// decodeFrame checks and decodes the frame at the start of buf and returns it with
// its length.
func decodeFrame(buf []byte) (diskRecord, int, error) {
	n, err := frameLen(buf)
	if err != nil {
		return diskRecord{}, 0, err
	}
	frame := buf[:n]
	if crc32.Checksum(frame[4:], castagnoli) != binary.LittleEndian.Uint32(frame[0:4]) {
		return diskRecord{}, 0, errChecksum
	}
	r, err := decodeBody(frame[frameHeader:])
	if err != nil {
		return diskRecord{}, 0, err
	}
	return r, n, nil
}

func decodeBody(body []byte) (diskRecord, error) {
	d := codec.Decoder{Buf: body[1:]}
	r := diskRecord{kind: kind(body[0]) &^ flagMoved, moved: kind(body[0])&flagMoved != 0}

	switch r.kind {
	case kindPut, kindPutFront, kindLease, kindDefer, kindReturn, kindDeadLetter, kindSettings:
		r.id = d.Uvarint()
		r.pos = d.Varint()
		r.queue = d.Bytes(d.Uvarint())
		if r.moved {
			r.first.Segment = d.Uvarint()
			r.first.Offset = int64(d.Uvarint())
		}
		r.payload = d.Rest()
	case kindTake:
		if r.moved {
			return r, errBody
		}
		r.id = d.Uvarint()
		r.ref.Segment = d.Uvarint()
		r.ref.Offset = int64(d.Uvarint())
	case kindPad:
		return r, nil
	default:
		return r, errBody
	}
	if d.Bad || r.moved && r.first.IsZero() {
		return r, errBody
	}
	return r, nil
}
