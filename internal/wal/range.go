package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"path/filepath"
)

// The RANGE file records which segments the log holds, so that a deleted oldest or
// newest segment file is noticed at open (a gap in the middle shows without it).
// It is two fixed slots of rangeSlot bytes, at offsets 0 and rangeSlotSpan, written
// in place in turn and fdatasynced, so that a torn write spoils one slot only and
// the file never needs new space:
//
//	magic         8 bytes "KEYQRNG1"
//	seq           uint64 (little-endian), higher in the newer slot
//	first, last   uint64, the oldest and the newest segment ids
//	nextID        uint64, the newest segment's header nextID
//	segmentBytes  uint64, the segment size the log used
//	crc32c        uint32 of the 48 bytes before it
//
// and then, in the same slot (older versions ignore it; a slot an older version
// rewrote fails its checksum, and reads as "not known"):
//
//	newestBytes   uint64, the size the log made the file of segment last and
//	              synced: a shorter file was cut outside the log (0: not known)
//	idLimit       uint64, at least every message ID the log has accepted: the
//	              next ID after any recovery is past it (0: not known)
//	crc32c        uint32 of the 68 bytes before it
//
// The log writes it after a new segment is durable, before an old one is deleted,
// at every open, at a clean close and when it reserves more message IDs. So segment
// files beyond last (a crash right after a roll) or before first (a crash right
// before a deletion) are fine; a file missing inside [first, last] is damage.
const (
	rangeName     = "RANGE"
	rangeSlot     = 52
	rangeSlotExt  = 72
	rangeSlotSpan = 4096
)

// idBlock is how many message IDs the log reserves at a time: before it accepts a
// record whose ID is past idLimit, it records a new idLimit that far ahead. After a
// crash the next ID is past idLimit, so IDs skip ahead by up to idBlock; after a
// clean close idLimit is the highest ID accepted, and they do not.
const idBlock = 1 << 16

var rangeMagic = []byte("KEYQRNG1")

// segmentRange is what the RANGE file records.
type segmentRange struct {
	seq          uint64
	first, last  uint64
	nextID       uint64
	segmentBytes int64
	newestBytes  int64  // 0: not known
	idLimit      uint64 // 0: not known
}

func encodeRange(r segmentRange) []byte {
	b := make([]byte, rangeSlotExt)
	copy(b, rangeMagic)
	binary.LittleEndian.PutUint64(b[8:], r.seq)
	binary.LittleEndian.PutUint64(b[16:], r.first)
	binary.LittleEndian.PutUint64(b[24:], r.last)
	binary.LittleEndian.PutUint64(b[32:], r.nextID)
	binary.LittleEndian.PutUint64(b[40:], uint64(r.segmentBytes))
	binary.LittleEndian.PutUint32(b[48:], crc32.Checksum(b[:48], castagnoli))
	binary.LittleEndian.PutUint64(b[52:], uint64(r.newestBytes))
	binary.LittleEndian.PutUint64(b[60:], r.idLimit)
	binary.LittleEndian.PutUint32(b[68:], crc32.Checksum(b[:68], castagnoli))
	return b
}

func decodeRange(b []byte) (segmentRange, bool) {
	if len(b) < rangeSlot || string(b[:8]) != string(rangeMagic) ||
		crc32.Checksum(b[:48], castagnoli) != binary.LittleEndian.Uint32(b[48:]) {
		return segmentRange{}, false
	}
	r := segmentRange{
		seq:          binary.LittleEndian.Uint64(b[8:]),
		first:        binary.LittleEndian.Uint64(b[16:]),
		last:         binary.LittleEndian.Uint64(b[24:]),
		nextID:       binary.LittleEndian.Uint64(b[32:]),
		segmentBytes: int64(binary.LittleEndian.Uint64(b[40:])),
	}
	if len(b) >= rangeSlotExt &&
		crc32.Checksum(b[:68], castagnoli) == binary.LittleEndian.Uint32(b[68:]) {
		r.newestBytes = int64(binary.LittleEndian.Uint64(b[52:]))
		r.idLimit = binary.LittleEndian.Uint64(b[60:])
	}
	return r, true
}

// readRange returns the newest valid slot of dir's RANGE file, and false when there
// is no such file (a log from before it existed) or when no slot was ever written
// to it: openRangeFile creates it with zeros and the first slot comes after, so a
// crash in between leaves a file empty or all zeros, and that is no damage. A file
// with bytes but no valid slot is damage: a slot, once written, is only ever
// overwritten by the next one.
func readRange(fsys fileSystem, dir string) (segmentRange, bool, error) {
	path := filepath.Join(dir, rangeName)
	f, err := fsys.OpenFile(path, false)
	if errors.Is(err, fs.ErrNotExist) {
		return segmentRange{}, false, nil
	}
	if err != nil {
		return segmentRange{}, false, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	data, _, err := readAll(f, nil)
	if err != nil {
		return segmentRange{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	var best segmentRange
	found := false
	for off := 0; off+rangeSlot <= len(data) && off <= rangeSlotSpan; off += rangeSlotSpan {
		if r, ok := decodeRange(data[off:]); ok && (!found || r.seq > best.seq) {
			best, found = r, true
		}
	}
	if !found && neverWritten(data) {
		return segmentRange{}, false, nil
	}
	if !found {
		return segmentRange{}, false, &CorruptError{File: path, Offset: 0,
			Reason: "no valid slot in the segment range file"}
	}
	return best, true, nil
}

// neverWritten reports whether data, a RANGE file's bytes, holds nothing but the
// zeros it was created with.
func neverWritten(data []byte) bool {
	for _, b := range data {
		if b != 0 {
			return false
		}
	}
	return true
}

// rangeFile writes the RANGE file of a log.
type rangeFile struct {
	f   file
	seq uint64 // of the newest slot written
}

// openRangeFile opens dir's RANGE file, creating it (with its space written) if
// needed; seq continues from the slots already there.
func openRangeFile(fsys fileSystem, dir string, seq uint64) (*rangeFile, error) {
	path := filepath.Join(dir, rangeName)
	f, err := fsys.OpenFile(path, false)
	if errors.Is(err, fs.ErrNotExist) {
		if f, err = fsys.OpenFile(path, true); err == nil {
			_, err = f.WriteAt(make([]byte, 2*rangeSlotSpan), 0)
			if err == nil {
				err = f.Sync()
			}
			if err == nil {
				err = fsys.SyncDir(dir)
			}
			if err != nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &rangeFile{f: f, seq: seq}, nil
}

// write records r in the slot after the newest one and makes it durable.
func (rf *rangeFile) write(r segmentRange) error {
	rf.seq++
	r.seq = rf.seq
	off := int64(rf.seq%2) * rangeSlotSpan
	if _, err := rf.f.WriteAt(encodeRange(r), off); err != nil {
		return fmt.Errorf("write segment range: %w", err)
	}
	if err := rf.f.Datasync(); err != nil {
		return fmt.Errorf("sync segment range: %w", err)
	}
	return nil
}

// reserveIDsLocked makes sure the RANGE file's idLimit covers id before a record
// carrying it is accepted, so that no recovery hands id out again, whatever it
// loses. A failure to record it is sticky, as any failed write of the log.
func (l *Log) reserveIDsLocked(id uint64) error {
	if id <= l.idLimit {
		return nil
	}
	old := l.idLimit
	l.idLimit = min(id, math.MaxUint64-idBlock) + idBlock
	if err := l.writeRangeLocked(); err != nil {
		l.idLimit = old
		return l.failLocked(fmt.Errorf("reserve message IDs past %d: %w", id, err))
	}
	return nil
}

// closeRangeLocked lowers idLimit, at a clean close with every record on disk, to
// the highest ID the log has seen, so that the next open skips no ID.
func (l *Log) closeRangeLocked() error {
	limit := max(l.maxID, l.nextID-1)
	if limit >= l.idLimit {
		return nil
	}
	l.idLimit = limit
	if err := l.writeRangeLocked(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// unreserveLocked is called before the log cuts a write that found no room off the
// active segment sg, which makes the file shorter than the size it was preallocated
// to (a file system whose preallocation reserves no space): from then on sg holds
// no reserved space, and the RANGE file must no longer say how long it is, or the
// next open would take the cut for damage.
func (l *Log) unreserveLocked(sg *segment) error {
	if !sg.prealloc {
		return nil
	}
	sg.prealloc = false
	if err := l.writeRangeLocked(); err != nil {
		return fmt.Errorf("record that segment %d holds no reserved space: %w", sg.id, err)
	}
	return nil
}

// checkRange refuses a log whose oldest or newest segment files are missing from
// the range the RANGE file records. ids are the segment files found, ascending.
func checkRange(dir string, ids []uint64, r segmentRange) error {
	missing := func(id uint64, what string) error {
		return &CorruptError{File: segmentPath(dir, id), Offset: 0, Reason: fmt.Sprintf(
			"%s segment file missing: the log holds segments %d to %d", what, r.first,
			r.last)}
	}
	switch {
	case len(ids) == 0:
		return missing(r.last, "every")
	case ids[len(ids)-1] < r.last:
		return missing(ids[len(ids)-1]+1, "newest")
	case ids[0] > r.first:
		return missing(r.first, "oldest")
	}
	return nil
}

func segmentPath(dir string, id uint64) string { return filepath.Join(dir, segmentName(id)) }

// maxIDsPerSegment bounds how many message IDs the records of one segment of
// segmentBytes can hand out: every record takes at least minFrame bytes.
func maxIDsPerSegment(segmentBytes int64) uint64 {
	const minFrame = frameHeader + 4 // kind, ID, and at least two more bytes
	if segmentBytes <= 0 {
		segmentBytes = DefaultSegmentBytes
	}
	return uint64(segmentBytes / minFrame)
}
