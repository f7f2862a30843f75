package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A segment file starts with a header:
//
//	magic   8 bytes "KEYQWAL1"
//	id      uint64 (little-endian), the number in the file's name
//	nextID  uint64, greater than every message ID in the log when the segment was
//	        created, so that IDs never go backwards even once every older segment
//	        is gone
//	zero    4 bytes
//	crc32c  uint32 of the 28 bytes before it
//
// and records follow it back to back. Segments are preallocated, so the bytes after
// the last record are zeros.
const segmentHeader = 32

var segmentMagic = []byte("KEYQWAL1")

const (
	segmentExt = ".wal"
	lockName   = "LOCK"
)

// segmentName returns the file name of segment id.
func segmentName(id uint64) string { return fmt.Sprintf("%020d%s", id, segmentExt) }

// parseSegmentName returns the id in a segment file name, or false for other files.
func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(base) != 20 {
		return 0, false
	}
	id, err := strconv.ParseUint(base, 10, 64)
	return id, err == nil && id > 0
}

func encodeSegmentHeader(id, nextID uint64) []byte {
	h := make([]byte, segmentHeader)
	copy(h, segmentMagic)
	binary.LittleEndian.PutUint64(h[8:16], id)
	binary.LittleEndian.PutUint64(h[16:24], nextID)
	binary.LittleEndian.PutUint32(h[28:32], crc32.Checksum(h[:28], castagnoli))
	return h
}

// decodeSegmentHeader checks the header at the start of buf against the segment id
// from its file name and returns the nextID it records.
//
// A header intact but for another segment is errOtherSegment: the file is a copy of
// another segment, which the log never writes under this name.
func decodeSegmentHeader(buf []byte, id uint64) (uint64, error) {
	if len(buf) < segmentHeader {
		return 0, fmt.Errorf("segment header cut short at %d bytes", len(buf))
	}
	h := buf[:segmentHeader]
	if crc32.Checksum(h[:28], castagnoli) != binary.LittleEndian.Uint32(h[28:32]) {
		return 0, fmt.Errorf("segment header %w", errChecksum)
	}
	if !bytes.Equal(h[:8], segmentMagic) {
		return 0, fmt.Errorf("bad segment magic %q", h[:8])
	}
	if got := binary.LittleEndian.Uint64(h[8:16]); got != id {
		return 0, fmt.Errorf("%w: segment header names segment %d", errOtherSegment, got)
	}
	return binary.LittleEndian.Uint64(h[16:24]), nil
}

// segment is one file of the log. Only the newest segment (the active one) is
// written; older ones are read, and deleted oldest first.
type segment struct {
	id     uint64
	path   string
	nextID uint64 // from the header

	// io is held for reading around file I/O done outside Log.mu, and exclusively
	// to close the file, so that no read or sync ever meets a closed file.
	io sync.RWMutex
	f  file

	// Guarded by Log.mu.
	size      int64     // end of the last record, written or pending
	prealloc  bool      // the file holds SegmentBytes of reserved space
	zeroed    int64     // below this, every block was written (records or zeros)
	puts      []putRef  // every put record in the segment, by offset
	live      int       // puts not yet taken nor moved forward
	liveBytes int64     // their frame bytes
	lastKill  time.Time // when a put here last died, for Options.ReadGrace
}

// putRef is one put record of a segment, as the log accounts for it.
type putRef struct {
	offset int64
	size   uint32 // frame bytes
	take   uint8  // frame bytes of its take record, reserved while it lives
	dead   bool   // taken, or copied forward by compaction
}

func newSegment(dir string, id uint64, f file) *segment {
	return &segment{id: id, path: filepath.Join(dir, segmentName(id)), f: f}
}

// addPut accounts for a put record of size bytes just written (or replayed) at
// offset, whose take record will take take bytes.
func (sg *segment) addPut(offset int64, size, take int) {
	sg.puts = append(sg.puts, putRef{offset: offset, size: uint32(size), take: uint8(take)})
	sg.live++
	sg.liveBytes += int64(size)
}

// kill marks the put at offset dead and returns it, or false if no live put starts
// there.
func (sg *segment) kill(offset int64) (putRef, bool) {
	i, ok := slices.BinarySearchFunc(sg.puts, offset, func(p putRef, off int64) int {
		return cmpInt64(p.offset, off)
	})
	if !ok || sg.puts[i].dead {
		return putRef{}, false
	}
	sg.puts[i].dead = true
	sg.live--
	sg.liveBytes -= int64(sg.puts[i].size)
	return sg.puts[i], true
}

// sizeOf returns the frame size of the put at offset, live or dead.
func (sg *segment) sizeOf(offset int64) (int, bool) {
	i, ok := slices.BinarySearchFunc(sg.puts, offset, func(p putRef, off int64) int {
		return cmpInt64(p.offset, off)
	})
	if !ok {
		return 0, false
	}
	return int(sg.puts[i].size), true
}

// isDead reports whether the put at offset is dead (or unknown).
func (sg *segment) isDead(offset int64) bool {
	i, ok := slices.BinarySearchFunc(sg.puts, offset, func(p putRef, off int64) int {
		return cmpInt64(p.offset, off)
	})
	return !ok || sg.puts[i].dead
}

// livePuts returns a copy of the live puts.
func (sg *segment) livePuts() []putRef {
	out := make([]putRef, 0, sg.live)
	for _, p := range sg.puts {
		if !p.dead {
			out = append(out, p)
		}
	}
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
