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
// is all zeros is removed; a damaged segment header is rewritten.
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
	for _, id := range ids {
		if err := r.segment(id); err != nil {
			return r.report, err
		}
	}
	if hasRange {
		if err := r.checkRange(rng); err != nil {
			return r.report, err
		}
	}
	if err := r.fillGaps(); err != nil {
		return r.report, err
	}
	// Open writes the range afresh from the segments now there.
	if err := fs.Remove(filepath.Join(dir, rangeName)); err != nil && !os.IsNotExist(err) {
		return r.report, fmt.Errorf("remove %s: %w", rangeName, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return r.report, fmt.Errorf("sync %s: %w", dir, err)
	}
	return r.report, nil
}

type repairer struct {
	fs     fileSystem
	dir    string
	log    *slog.Logger
	report RepairReport
	nextID uint64 // the highest next ID the headers so far recorded
	buf    []byte
}

func (r *repairer) drop(file string, off, n int64, reason string) {
	r.report.Dropped = append(r.report.Dropped,
		DroppedRange{File: file, Offset: off, Bytes: n, Reason: reason})
	r.log.Warn("dropped damaged bytes", "file", file, "offset", off, "bytes", n,
		"reason", reason)
}

// segment checks and fixes one segment file.
func (r *repairer) segment(id uint64) error {
	r.report.Segments++
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

	nextID, err := decodeSegmentHeader(data, id)
	if err != nil && lastNonZero(data, 0) == 0 {
		r.drop(sg.path, 0, int64(len(data)), "segment holds nothing: "+err.Error())
		if err := r.fs.Remove(sg.path); err != nil {
			return fmt.Errorf("remove %s: %w", sg.path, err)
		}
		return nil
	}
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
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", sg.path, err)
	}
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

// fillGaps writes an empty segment for every id missing between the oldest and the
// newest segment (a file deleted by hand, or one repair removed), so the log opens
// again. What the missing files held is lost, and reported.
func (r *repairer) fillGaps() error {
	ids, err := listSegments(r.fs, r.dir)
	if err != nil {
		return err
	}
	for i := 1; i < len(ids); i++ {
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

func (r *repairer) writeEmptySegment(sg *segment, nextID uint64) error {
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
		_, n, err := decodeFrame(data[off:])
		if err == nil {
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
