package wal

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// A data directory may hold files named like segments that are not the log's: one
// copied in by hand, one left from another log, junk. Open and Repair survey the
// directory before they change anything, so that such a file is named for what it
// is, never taken for a segment, and never makes Repair create segments up to it.
//
// With a RANGE file, the log's segments are first to last, plus two kinds of file a
// crash leaves: last+1 (a crash after a new segment was created, before the RANGE
// file recorded it; all zeros if the crash came before its header was durable), and
// a run just below first with valid headers (a crash after the RANGE file recorded
// a deletion, before the file went). Anything else is not the log's. Without a
// RANGE file (a log from before it), a file after a gap whose header is not a valid
// segment header is not the log's; a valid one after a gap means a missing segment.

// segmentHead is what a segment file's first bytes say, read without changing it.
type segmentHead struct {
	size   int64
	nextID uint64
	err    error // the header is not valid
	blank  bool  // the header is not valid and the file holds nothing but zeros
}

// readHead reads the header of segment id's file.
func readHead(fsys fileSystem, dir string, id uint64) (segmentHead, error) {
	path := segmentPath(dir, id)
	f, err := fsys.OpenFile(path, false)
	if err != nil {
		return segmentHead{}, fmt.Errorf("open segment %d: %w", id, err)
	}
	defer f.Close()
	var h segmentHead
	if h.size, err = f.Size(); err != nil {
		return h, fmt.Errorf("read %s: %w", path, err)
	}
	buf := make([]byte, min(h.size, segmentHeader))
	if _, err := f.ReadAt(buf, 0); err != nil {
		return h, fmt.Errorf("read %s: %w", path, err)
	}
	if h.nextID, h.err = decodeSegmentHeader(buf, id); h.err == nil {
		return h, nil
	}
	data, _, err := readAll(f, nil)
	if err != nil {
		return h, fmt.Errorf("read %s: %w", path, err)
	}
	h.blank = lastNonZero(data, 0) == 0
	return h, nil
}

// segmentLayout is what a survey finds in a data directory.
type segmentLayout struct {
	ids    []uint64 // the log's segment files, ascending
	strays []*UnexpectedFileError
	blank  uint64 // if not 0, the newest of ids: left all zeros by a crash, to remove
}

// surveySegments sorts the segment files ids (ascending) of dir into the log's and
// strays, as rng (if hasRange) says.
func surveySegments(
	fsys fileSystem, dir string, ids []uint64, rng segmentRange, hasRange bool,
) (segmentLayout, error) {
	if hasRange {
		return surveyWithRange(fsys, dir, ids, rng)
	}
	var lay segmentLayout
	for _, id := range ids {
		h, err := readHead(fsys, dir, id)
		if err != nil {
			return lay, err
		}
		if errors.Is(h.err, errOtherSegment) {
			// A copy of another segment (its header is intact): never the log's.
			lay.strays = append(lay.strays, &UnexpectedFileError{File: segmentPath(dir, id),
				Reason: "no RANGE file, and " + h.err.Error()})
			continue
		}
		if n := len(lay.ids); n > 0 && id != lay.ids[n-1]+1 {
			if h.err != nil {
				lay.strays = append(lay.strays, &UnexpectedFileError{File: segmentPath(dir,
					id), Reason: fmt.Sprintf("no RANGE file; segment %d is the last before "+
					"it, and its header is not a segment's: %v", lay.ids[n-1], headErr(h))})
				continue
			}
		}
		lay.ids = append(lay.ids, id)
	}
	return lay, markBlank(fsys, dir, &lay)
}

// surveyWithRange is surveySegments for a log with a RANGE file.
func surveyWithRange(
	fsys fileSystem, dir string, ids []uint64, rng segmentRange,
) (segmentLayout, error) {
	var lay segmentLayout
	says := fmt.Sprintf("RANGE says %d..%d", rng.first, rng.last)
	stray := func(id uint64, why string) {
		lay.strays = append(lay.strays, &UnexpectedFileError{File: segmentPath(dir, id),
			Reason: says + why})
	}

	// Below first, only a run of valid segments right below it.
	below := 0
	for below < len(ids) && ids[below] < rng.first {
		below++
	}
	keep := below
	for keep > 0 && ids[keep-1] == rng.first-uint64(below-keep+1) {
		h, err := readHead(fsys, dir, ids[keep-1])
		if err != nil {
			return lay, err
		}
		if h.err != nil {
			break
		}
		keep--
	}
	for _, id := range ids[:keep] {
		stray(id, "")
	}
	lay.ids = append(lay.ids, ids[keep:below]...)

	for _, id := range ids[below:] {
		switch {
		case id <= rng.last:
			lay.ids = append(lay.ids, id)
		case rng.last < math.MaxUint64 && id == rng.last+1:
			h, err := readHead(fsys, dir, id)
			if err != nil {
				return lay, err
			}
			if h.err != nil && !h.blank {
				stray(id, ", and its header is not a segment's: "+h.err.Error())
				continue
			}
			lay.ids = append(lay.ids, id)
			if h.blank {
				lay.blank = id
			}
		default:
			stray(id, "")
		}
	}
	return lay, nil
}

// markBlank sets lay.blank when the newest segment file holds nothing but zeros:
// without a RANGE file, that is what a crash while creating it leaves.
func markBlank(fsys fileSystem, dir string, lay *segmentLayout) error {
	if len(lay.ids) == 0 {
		return nil
	}
	id := lay.ids[len(lay.ids)-1]
	h, err := readHead(fsys, dir, id)
	if err != nil {
		return err
	}
	if h.blank {
		lay.blank = id
	}
	return nil
}

// headErr says what is wrong with a header.
func headErr(h segmentHead) string {
	if h.blank {
		return fmt.Sprintf("%d bytes, all zeros", h.size)
	}
	return h.err.Error()
}

// loaded returns the segment ids Open loads: lay.ids without the blank one.
func (lay segmentLayout) loaded() []uint64 {
	if lay.blank == 0 {
		return lay.ids
	}
	return slices.DeleteFunc(slices.Clone(lay.ids), func(id uint64) bool {
		return id == lay.blank
	})
}
