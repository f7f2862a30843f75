package wal

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// recover reads every segment, oldest first, checks every record, and rebuilds the
// accounting: which puts are live (a take kills the put its Ref names; a moved copy
// kills the put it was copied from), the highest message ID, and where the newest
// segment ends. Positions come from the validated contents alone.
func (l *Log) recover() error {
	start := time.Now()
	ids, err := listSegments(l.fs, l.dir)
	if err != nil {
		return err
	}
	rng, hasRange, err := readRange(l.fs, l.dir)
	if err != nil {
		return err
	}
	lay, err := surveySegments(l.fs, l.dir, ids, rng, hasRange)
	if err != nil {
		return err
	}
	if err := l.checkLayout(lay, rng, hasRange); err != nil {
		return err // before anything in the directory changed
	}
	if !hasRange && len(ids) > 0 {
		l.log.Warn("no RANGE file in the data directory (deleted, or a log from before "+
			"it existed): writing a new one from the segments found; a segment missing "+
			"at either end, or the newest one cut short, cannot be noticed this time",
			"dir", l.dir, "segments", len(ids))
	}

	var buf []byte
	var scanned int64
	loaded := lay.loaded()
	for i, id := range loaded {
		var sg *segment
		if sg, buf, err = l.loadSegment(id, i == len(loaded)-1, buf); err != nil {
			return err
		}
		scanned += sg.size
	}
	if lay.blank != 0 {
		if err := l.dropEmptySegment(newSegment(l.dir, lay.blank, nil)); err != nil {
			return err
		}
	}

	if len(l.segments) == 0 {
		next := uint64(1)
		if len(lay.ids) > 0 {
			next = lay.ids[len(lay.ids)-1] + 1
		}
		sg, err := l.createSegment(next, max(l.nextID, l.maxID+1, 1))
		if err != nil {
			return err
		}
		l.segments = append(l.segments, sg)
		l.diskBytes += sg.size
	}
	l.nextID = max(l.nextID, l.maxID+1, l.activeLocked().nextID)
	// Every open raises the RANGE file's idLimit past the IDs in the log, and only a
	// clean close lowers it back to them: one still past them tells of a crash.
	crashed := hasRange && rng.idLimit > l.nextID-1
	if hasRange && rng.idLimit > 0 { // IDs the log accepted may be lost: skip them all
		l.nextID = max(l.nextID, min(rng.idLimit, math.MaxUint64-1)+1)
	}
	l.idLimit = min(l.nextID, math.MaxUint64-idBlock) + idBlock - 1
	if l.rng, err = openRangeFile(l.fs, l.dir, rng.seq); err != nil {
		return err
	}
	if err := l.writeRangeLocked(); err != nil {
		return err
	}

	attrs := []any{"dir", l.dir, "segments", len(l.segments), "bytes", scanned,
		"live_bytes", l.liveBytes, "took", time.Since(start).Round(time.Millisecond)}
	if crashed {
		l.log.Warn("log opened after an unclean stop (a crash, kill -9 or power loss); "+
			"recovered what had reached the disk", attrs...)
		return nil
	}
	l.log.Info("log opened", attrs...)
	return nil
}

// checkLayout refuses a directory that is not as the log left it: files that are
// not its segments, a segment missing, an empty newest segment the RANGE file says
// was written, or one shorter than the size the RANGE file says it had.
func (l *Log) checkLayout(lay segmentLayout, rng segmentRange, hasRange bool) error {
	if len(lay.strays) > 0 {
		return lay.strays[0]
	}
	loaded := lay.loaded()
	if err := checkContiguous(l.dir, loaded); err != nil {
		return err
	}
	if !hasRange {
		return nil
	}
	if err := checkRange(l.dir, loaded, rng); err != nil {
		return err
	}
	if err := checkBlank(l.fs, l.dir, loaded[len(loaded)-1], rng); err != nil {
		return err
	}
	return checkCutShort(l.fs, l.dir, rng)
}

// checkBlank refuses a newest segment that holds nothing although the RANGE file
// records it: the log makes a segment's header durable before it records the
// segment, so the file lost its header and its records, which only Repair accepts.
func checkBlank(fsys fileSystem, dir string, newest uint64, rng segmentRange) error {
	h, err := readHead(fsys, dir, newest)
	if err != nil || !h.blank {
		return err
	}
	return &CorruptError{File: segmentPath(dir, newest), Reason: fmt.Sprintf("segment "+
		"file holds nothing (%d bytes, all zeros, no header), but RANGE says the log "+
		"holds segments %d..%d: the records it held are lost", h.size, rng.first, rng.last)}
}

// checkCutShort refuses a file of the RANGE file's newest segment that is shorter
// than the size the log made it: no crash does that (the log cuts a torn record by
// writing zeros over it), so something outside the log cut it, and the records past
// the cut are lost, which only Repair accepts. Call it once the file is known to be
// there.
func checkCutShort(fsys fileSystem, dir string, rng segmentRange) error {
	if rng.newestBytes == 0 {
		return nil // not known
	}
	h, err := readHead(fsys, dir, rng.last)
	if err != nil || h.size >= rng.newestBytes {
		return err
	}
	return &CorruptError{File: segmentPath(dir, rng.last), Offset: h.size,
		Reason: cutShortReason(h.size, rng.newestBytes)}
}

func cutShortReason(size, want int64) string {
	return fmt.Sprintf("segment file cut short: it is %d bytes, not the %d bytes the log "+
		"preallocated it to; cut outside the log (truncated, or lost by the file system), "+
		"so whatever records lay past offset %d are lost", size, want, size)
}

// checkContiguous refuses a log with a segment missing between its oldest and its
// newest. The log only ever deletes its oldest segment, so a gap means a file was
// lost or deleted by hand, and with it acknowledged messages: never open over that
// silently.
func checkContiguous(dir string, ids []uint64) error {
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			missing := newSegment(dir, ids[i-1]+1, nil)
			return &CorruptError{File: missing.path, Offset: 0, Reason: fmt.Sprintf(
				"segment file missing between segments %d and %d", ids[i-1], ids[i])}
		}
	}
	return nil
}

// listSegments returns the ids of the segment files in dir, ascending.
func listSegments(fs fileSystem, dir string) ([]uint64, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments in %s: %w", dir, err)
	}
	var ids []uint64
	for _, name := range names {
		if id, ok := parseSegmentName(name); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// loadSegment opens segment id, scans it and appends it to l.segments. The newest
// segment is preallocated again if it is not, and synced, so that the size the
// RANGE file records for it is on disk.
func (l *Log) loadSegment(id uint64, newest bool, buf []byte) (*segment, []byte, error) {
	sg := newSegment(l.dir, id, nil)
	f, err := l.fs.OpenFile(sg.path, false)
	if err != nil {
		return nil, buf, fmt.Errorf("open segment %d: %w", id, err)
	}
	sg.f = f
	data, buf, err := readAll(f, buf)
	sg.prealloc = int64(len(data)) >= l.opts.SegmentBytes
	if err != nil {
		f.Close()
		return nil, buf, fmt.Errorf("read %s: %w", sg.path, err)
	}

	sg.nextID, err = decodeSegmentHeader(data, id)
	if err != nil {
		f.Close()
		return nil, buf, &CorruptError{File: sg.path, Offset: 0,
			Reason: "not a valid segment header: " + err.Error()}
	}
	l.nextID = max(l.nextID, sg.nextID)
	l.segments = append(l.segments, sg)

	if err := l.scanSegment(sg, data, newest); err != nil {
		return nil, buf, err
	}
	if newest && !sg.prealloc { // cut short by repair, or made with a smaller size
		ok, err := f.Allocate(l.opts.SegmentBytes)
		if err != nil && !isNoSpace(err) {
			return nil, buf, fmt.Errorf("allocate %s: %w", sg.path, err)
		}
		sg.prealloc = ok
	}
	if newest && sg.prealloc {
		if err := f.Sync(); err != nil {
			return nil, buf, fmt.Errorf("sync %s: %w", sg.path, err)
		}
	}
	l.diskBytes += sg.size
	return sg, buf, nil
}

// dropEmptySegment removes a newest segment whose file is all zeros, left by a crash
// while it was being created.
func (l *Log) dropEmptySegment(sg *segment) error {
	l.log.Warn("removing empty segment left by a crash", "segment", sg.id, "file", sg.path)
	if err := l.fs.Remove(sg.path); err != nil {
		return fmt.Errorf("remove empty segment %d: %w", sg.id, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("remove empty segment %d: sync directory: %w", sg.id, err)
	}
	return nil
}

// scanSegment applies every record of sg's data. At the first bad record it decides
// between the end of the data (only zeros follow), a torn write (newest segment,
// nothing valid follows: cut off with a warning) and corruption (an error).
func (l *Log) scanSegment(sg *segment, data []byte, newest bool) error {
	off := int64(segmentHeader)
	for off < int64(len(data)) {
		r, n, err := decodeFrame(data[off:])
		if err == nil {
			l.applyLocked(sg, &r, off, n)
			off += int64(n)
			continue
		}

		end := lastNonZero(data, off)
		if end == off {
			break // the preallocated zeros after the last record
		}
		if !newest || findFrame(data, off+1, end) >= 0 {
			return &CorruptError{File: sg.path, Offset: off, Reason: err.Error()}
		}
		l.log.Warn("cutting torn record at end of log", "file", sg.path, "offset", off,
			"bytes", end-off, "err", err)
		if err := l.cutTail(sg, off, end); err != nil {
			return err
		}
		break
	}
	sg.size = off
	sg.zeroed = off // what lies past the records is not known to be written
	return nil
}

// cutTail drops the torn bytes [off, end) at the end of the newest segment by writing
// zeros over them, so the next record is written over zeros, and preallocates the
// file if it is not. The file never gets shorter: a newest segment shorter than the
// size the RANGE file records was cut by something else.
func (l *Log) cutTail(sg *segment, off, end int64) error {
	if _, err := sg.f.WriteAt(make([]byte, end-off), off); err != nil {
		return fmt.Errorf("cut torn record from %s at %d: %w", sg.path, off, err)
	}
	ok, err := sg.f.Allocate(l.opts.SegmentBytes)
	if err != nil && !isNoSpace(err) {
		return fmt.Errorf("allocate %s: %w", sg.path, err)
	}
	sg.prealloc = ok
	if err := sg.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", sg.path, err)
	}
	return nil
}

// applyLocked accounts for one valid record read at off in sg.
func (l *Log) applyLocked(sg *segment, r *diskRecord, off int64, n int) {
	l.maxID = max(l.maxID, r.id)
	switch {
	case r.isPut():
		cur := storage.Location{Segment: sg.id, Offset: off}
		first := cur
		if r.moved {
			prev := r.first
			if m, ok := l.moved[r.first]; ok {
				prev = m
				delete(l.firstOf, m)
			}
			l.killLocked(prev, time.Time{})
			l.moved[r.first] = cur
			l.firstOf[cur] = r.first
			first = r.first
		}
		l.addPutLocked(sg, off, n, takeFrameSize(r.id, first))
	case r.kind == kindTake:
		l.takeLocked(r.ref, time.Time{})
	}
}

// replaySegment reads sg and calls fn with each of its puts listed in puts.
func (l *Log) replaySegment(
	sg *segment, puts []putRef, firstOf map[storage.Location]storage.Location, buf []byte,
	fn func(*storage.Record, storage.Location) error,
) ([]byte, error) {
	sg.io.RLock()
	data, buf, err := readAll(sg.f, buf)
	sg.io.RUnlock()
	if err != nil {
		return buf, fmt.Errorf("replay %s: %w", sg.path, err)
	}

	for _, p := range puts {
		if p.offset+int64(p.size) > int64(len(data)) {
			return buf, &CorruptError{File: sg.path, Offset: p.offset, Reason: "cut short"}
		}
		r, _, err := decodeFrame(data[p.offset:])
		if err != nil {
			return buf, &CorruptError{File: sg.path, Offset: p.offset, Reason: err.Error()}
		}
		loc := storage.Location{Segment: sg.id, Offset: p.offset}
		if first, ok := firstOf[loc]; ok {
			loc = first
		}
		rec := storage.Record{
			Op:      storage.Op(r.kind),
			Queue:   string(r.queue),
			ID:      r.id,
			Pos:     r.pos,
			Payload: r.payload, // lent for fn's call only: the broker copies what it keeps
		}
		if rec.Payload == nil {
			rec.Payload = []byte{}
		}
		if err := fn(&rec, loc); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// readAll reads the whole of f into buf, growing it as needed.
func readAll(f file, buf []byte) ([]byte, []byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, buf, err
	}
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	data := buf[:size]
	n, err := f.ReadAt(data, 0)
	if err != nil && int64(n) < size {
		return nil, buf, err
	}
	return data, buf, nil
}

var zeroBlock [4096]byte

// lastNonZero returns the offset just past the last non-zero byte of data at or after
// from, or from if there is none.
func lastNonZero(data []byte, from int64) int64 {
	end := int64(len(data))
	for end > from {
		start := max(from, end-int64(len(zeroBlock)))
		if !bytes.Equal(data[start:end], zeroBlock[:end-start]) {
			for end > start && data[end-1] == 0 {
				end--
			}
			return end
		}
		end = start
	}
	return from
}

// findFrame returns the offset of the first valid frame starting in [from, end), or
// -1. A torn write is followed by nothing valid; corruption usually is.
func findFrame(data []byte, from, end int64) int64 {
	for off := from; off < end; off++ {
		if _, err := frameLen(data[off:]); err != nil {
			continue
		}
		if _, _, err := decodeFrame(data[off:]); err == nil {
			return off
		}
	}
	return -1
}
