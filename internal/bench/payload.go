package bench

import (
	"encoding/binary"
	"fmt"
)

// HeaderBytes is the size of the header each benchmark message starts with: producer
// id (u32), sequence (u64) and send time in Unix nanoseconds (u64).
const HeaderBytes = 20

// header is what a consumer decodes from a message.
type header struct {
	producer uint32
	seq      uint64
	sentNano int64
}

// newPayload returns a message of size bytes whose header is blank and whose rest is
// a fixed pattern, so a consumer can see a truncated or altered message.
func newPayload(size int) []byte {
	b := make([]byte, size)
	for i := HeaderBytes; i < size; i++ {
		b[i] = patternByte(i)
	}
	return b
}

func patternByte(i int) byte { return byte('a' + i%26) }

// stamp writes the header into b.
func stamp(b []byte, h header) {
	binary.BigEndian.PutUint32(b[0:4], h.producer)
	binary.BigEndian.PutUint64(b[4:12], h.seq)
	binary.BigEndian.PutUint64(b[12:20], uint64(h.sentNano))
}

// decode checks that b is a benchmark message of size bytes and returns its header.
func decode(b []byte, size int) (header, error) {
	if len(b) != size {
		return header{}, fmt.Errorf("message of %d bytes, want %d", len(b), size)
	}
	h := header{
		producer: binary.BigEndian.Uint32(b[0:4]),
		seq:      binary.BigEndian.Uint64(b[4:12]),
		sentNano: int64(binary.BigEndian.Uint64(b[12:20])),
	}
	// Checking the tail of the pattern catches truncation and shifted bytes without
	// reading every byte of large messages.
	for i := max(HeaderBytes, size-8); i < size; i++ {
		if b[i] != patternByte(i) {
			return header{}, fmt.Errorf("message byte %d altered", i)
		}
	}
	return h, nil
}
