package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// RepairReport says what Repair found and dropped.
type RepairReport struct {
	Segments int            // segment files checked
	Dropped  []DroppedRange // every damaged range, in log order
	Strays   []StrayFile    // files named like segments that are not, moved aside
}

// StrayFile is a file named like a segment that is not one of the log's (see
// UnexpectedFileError), which Repair moved aside with its contents.
type StrayFile struct {
	File    string
	MovedTo string
	Reason  string
}

// DroppedRange is a range of bytes Repair dropped from a segment file.
type DroppedRange struct {
	File    string
	Offset  int64
	Bytes   int64
	Reason  string
	Missing bool // the whole file was missing: how much it held cannot be told
}

// Repair makes the log in dir openable again, keeping every record that passes its
// checksum and dropping only damaged bytes, each reported (and logged as a warning).
// A damaged range followed by good records is overwritten in place with a pad
// record, so that no good record moves; a damaged tail is cut off; a segment that
// is all zeros is removed; a damaged segment header is rewritten; a newest segment
// cut short is reported with what it lost. A file named like a segment that is not
// one of the log's is moved aside (renamed with a ".stray" suffix), never taken
// for a segment, and no segment is made up beyond the range the RANGE file records.
// The RANGE file is rewritten with a message ID limit past every ID the log can
// have handed out, so that none is handed out again.
//
// Dropped records are lost for good: a put's message is gone, and a dropped take
// brings its message back. Run Repair only on a log that Open refused, with the
// server stopped.
func Repair(dir string, logger *slog.Logger) (RepairReport, error) {
	return repair(dir, logger, osFS{})
}

func repair(dir string, logger *slog.Logger, fs fileSystem) (RepairReport, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := repairer{fs: fs, dir: dir, log: logger.With("component", "wal")}
	if _, err := os.Stat(dir); err != nil {
		return r.report, fmt.Errorf("repair: %w", err)
	}
	lock, err := fs.Lock(dir)
	if err != nil {
		return r.report, fmt.Errorf("lock %s: %w", dir, err)
	}
	defer lock.Close()

	ids, err := listSegments(fs, dir)
	if err != nil {
		return r.report, err
	}
	rng, hasRange, rerr := readRange(fs, dir)
	var ce *CorruptError
	if errors.As(rerr, &ce) {
		r.drop(ce.File, 0, 2*rangeSlotSpan, ce.Reason)
	} else if rerr != nil {
		return r.report, rerr
	}
	lay, err := surveySegments(fs, dir, ids, rng, hasRange)
	if err != nil {
		return r.report, err
	}
	for _, stray := range lay.strays {
		if err := r.moveAside(stray); err != nil {
			return r.report, err
		}
	}
	for _, id := range lay.ids {
		if err := r.segment(id, hasRange, rng); err != nil {
			return r.report, err
		}
	}
	if hasRange {
		if err := r.checkRange(rng); err != nil {
			return r.report, err
		}
	}
	if err := r.fillGaps(hasRange); err != nil {
		return r.report, err
	}
	if err := r.writeRange(rng, hasRange); err != nil {
		return r.report, err
	}
	return r.report, nil
}

type repairer struct {
	fs     fileSystem
	dir    string
	log    *slog.Logger
	report RepairReport
	nextID uint64 // the highest next ID the headers so far recorded
	maxID  uint64 // the highest ID of a record kept
	size   int64  // the largest segment file
	buf    []byte
}

func (r *repairer) drop(file string, off, n int64, reason string) {
	r.report.Dropped = append(r.report.Dropped,
		DroppedRange{File: file, Offset: off, Bytes: n, Reason: reason})
	r.log.Warn("dropped damaged bytes", "file", file, "offset", off, "bytes", n,
		"reason", reason)
}

// segment checks and fixes one segment file. With a RANGE file (vouched), the
// survey made sure the file is the log's, and a damaged header is rewritten;
// without one, a file whose header is not a segment's and that holds no valid
// record is not taken for a segment, but moved aside.
func (r *repairer) segment(id uint64, vouched bool, rng segmentRange) error {
	sg := newSegment(r.dir, id, nil)
	f, err := r.fs.OpenFile(sg.path, false)
	if err != nil {
		return fmt.Errorf("open segment %d: %w", id, err)
	}
	defer f.Close()
	var data []byte
	if data, r.buf, err = readAll(f, r.buf); err != nil {
		return fmt.Errorf("read %s: %w", sg.path, err)
	}
	size := int64(len(data))
	r.size = max(r.size, size)

	nextID, err := decodeSegmentHeader(data, id)
	if err != nil && lastNonZero(data, 0) == 0 {
		r.report.Segments++
		r.drop(sg.path, 0, size, "segment holds nothing: "+err.Error())
		if err := r.fs.Remove(sg.path); err != nil {
			return fmt.Errorf("remove %s: %w", sg.path, err)
		}
		return nil
	}
	if err != nil && !vouched &&
		findFrame(data, segmentHeader, lastNonZero(data, segmentHeader)) < 0 {
		return r.moveAside(&UnexpectedFileError{File: sg.path, Reason: "no RANGE file, " +
			"and it has no valid segment header (" + err.Error() + ") nor any record"})
	}
	r.report.Segments++
	if err != nil {
		r.drop(sg.path, 0, segmentHeader, err.Error())
		nextID = r.nextID
		if _, err := f.WriteAt(encodeSegmentHeader(id, max(nextID, 1)), 0); err != nil {
			return fmt.Errorf("rewrite header of %s: %w", sg.path, err)
		}
	}
	r.nextID = max(r.nextID, nextID)

	if err := r.records(sg.path, f, data); err != nil {
		return err
	}
	if vouched && id == rng.last && size < rng.newestBytes {
		r.drop(sg.path, size, rng.newestBytes-size, cutShortReason(size, rng.newestBytes))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", sg.path, err)
	}
	return nil
}

// moveAside renames a file that is not one of the log's segments so that neither
// Open nor Repair sees it as one, keeping its contents.
func (r *repairer) moveAside(stray *UnexpectedFileError) error {
	to := stray.File + ".stray"
	for i := 1; ; i++ {
		err := r.fs.Rename(stray.File, to)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || i == 100 {
			return fmt.Errorf("move %s aside: %w", stray.File, err)
		}
		to = fmt.Sprintf("%s.stray.%d", stray.File, i)
	}
	if err := r.fs.SyncDir(r.dir); err != nil {
		return fmt.Errorf("move %s aside: sync %s: %w", stray.File, r.dir, err)
	}
	r.report.Strays = append(r.report.Strays,
		StrayFile{File: stray.File, MovedTo: to, Reason: stray.Reason})
	r.log.Warn("moved aside a file that is not a segment of this log", "file", stray.File,
		"to", to, "reason", stray.Reason)
	return nil
}

// checkRange reports the segments the RANGE file says the log held that are gone
// from its ends, and writes an empty segment in place of each (fillGaps fills any
// gap left before a missing newest one). The newest one's next message ID is past
// every ID the lost segments can have handed out, so that none is handed out twice.
func (r *repairer) checkRange(rng segmentRange) error {
	ids, err := listSegments(r.fs, r.dir)
	if err != nil {
		return err
	}
	if len(ids) == 0 || ids[len(ids)-1] < rng.last {
		sg := newSegment(r.dir, rng.last, nil)
		skip := maxIDsPerSegment(rng.segmentBytes)
		r.drop(sg.path, 0, 0, fmt.Sprintf("newest segment file missing: the records it "+
			"held are lost; message IDs skip %d ahead so none is handed out twice", skip))
		r.report.Dropped[len(r.report.Dropped)-1].Missing = true
		if err := r.writeEmptySegment(sg, max(rng.nextID, r.nextID)+skip); err != nil {
			return err
		}
		if len(ids) == 0 {
			ids = []uint64{rng.last}
		}
	}
	for id := rng.first; id < ids[0]; id++ {
		sg := newSegment(r.dir, id, nil)
		r.drop(sg.path, 0, 0, "oldest segment file missing: the records it held are lost")
		r.report.Dropped[len(r.report.Dropped)-1].Missing = true
		if err := r.writeEmptySegment(sg, max(r.nextID, 1)); err != nil {
			return err
		}
	}
	return nil
}

// maxGapFill is the most segment files Repair writes in a gap the RANGE file does
// not vouch for: a larger gap is more likely a file that does not belong.
const maxGapFill = 1024

// fillGaps writes an empty segment for every id missing between the oldest and the
// newest segment (a file deleted by hand, or one repair removed), so the log opens
// again. What the missing files held is lost, and reported. Without a RANGE file
// (vouched false) it refuses to fill a gap of more than maxGapFill files.
func (r *repairer) fillGaps(vouched bool) error {
	ids, err := listSegments(r.fs, r.dir)
	if err != nil {
		return err
	}
	for i := 1; i < len(ids); i++ {
		if gap := ids[i] - ids[i-1] - 1; !vouched && gap > maxGapFill {
			return fmt.Errorf("repair: %d segment files missing between segments %d and "+
				"%d, too many to stand in for: if %s does not belong to this log, move it "+
				"out of %s and run repair again", gap, ids[i-1], ids[i],
				segmentPath(r.dir, ids[i]), r.dir)
		}
		for id := ids[i-1] + 1; id < ids[i]; id++ {
			sg := newSegment(r.dir, id, nil)
			r.drop(sg.path, 0, 0, "segment file missing: the records it held are lost")
			r.report.Dropped[len(r.report.Dropped)-1].Missing = true
			if err := r.writeEmptySegment(sg, max(r.nextID, 1)); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeRange records the segments now in the directory in the RANGE file, with an
// ID limit past every ID the log can have handed out: the limit the RANGE file
// recorded, or, when it recorded none and something was dropped, the highest ID
// seen plus as many as a segment's records and a reservation can hold.
func (r *repairer) writeRange(rng segmentRange, hasRange bool) error {
	ids, err := listSegments(r.fs, r.dir)
	if err != nil {
		return err
	}
	if !hasRange || len(ids) == 0 { // start afresh: the file is damaged, or stale
		path := filepath.Join(r.dir, rangeName)
		if err := r.fs.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		rng.seq = 0
	}
	if len(ids) == 0 {
		return r.fs.SyncDir(r.dir) // Open starts a new log
	}

	next := segmentRange{first: ids[0], last: ids[len(ids)-1], nextID: r.nextID,
		segmentBytes: r.size}
	if hasRange && rng.segmentBytes > 0 {
		next.segmentBytes = rng.segmentBytes
	}
	seen := max(r.maxID, max(r.nextID, 1)-1)
	switch {
	case hasRange && rng.idLimit > 0:
		next.idLimit = max(rng.idLimit, seen)
	case len(r.report.Dropped) > 0:
		next.idLimit = seen + maxIDsPerSegment(next.segmentBytes) + idBlock
		r.log.Warn("message IDs skip ahead past any the dropped records can have held",
			"next_id", next.idLimit+1)
	default:
		next.idLimit = seen
	}
	rf, err := openRangeFile(r.fs, r.dir, rng.seq)
	if err != nil {
		return err
	}
	defer rf.f.Close()
	return rf.write(next)
}

func (r *repairer) writeEmptySegment(sg *segment, nextID uint64) error {
	r.nextID = max(r.nextID, nextID)
	f, err := r.fs.OpenFile(sg.path, true)
	if err != nil {
		return fmt.Errorf("create %s: %w", sg.path, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(encodeSegmentHeader(sg.id, nextID), 0); err != nil {
		return fmt.Errorf("write header of %s: %w", sg.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", sg.path, err)
	}
	return nil
}

// records walks the records of one segment, padding over damaged ranges followed by
// good records and cutting off a damaged tail.
func (r *repairer) records(path string, f file, data []byte) error {
	off := int64(segmentHeader)
	for off < int64(len(data)) {
		rec, n, err := decodeFrame(data[off:])
		if err == nil {
			r.maxID = max(r.maxID, rec.id)
			off += int64(n)
			continue
		}
		end := lastNonZero(data, off)
		if end == off {
			return nil
		}

		next := findFrame(data, off+frameHeader+1, end)
		if next < 0 {
			r.drop(path, off, end-off, err.Error())
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("cut %s at %d: %w", path, off, err)
			}
			return nil
		}
		r.drop(path, off, next-off, err.Error())
		if _, err := f.WriteAt(padFrame(int(next-off)), off); err != nil {
			return fmt.Errorf("pad %s at %d: %w", path, off, err)
		}
		off = next
	}
	return nil
}
