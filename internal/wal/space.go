package wal

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// Every live put will need one take record, of a size known when the put is
// written (takeFrameSize), and a take must never fail for lack of space: a full
// disk is drained by gets, and the space comes back only once they have consumed
// whole segments. So the log holds room for the takes of all its live puts in
// space already allocated to it: what is left of the active segment, and spare
// segment files (SPARE.n), preallocated to the segment size and renamed into the
// next segment when the log rolls. A put is written only if that room still
// covers every take, its own included, once it is in (makeRoomLocked): the log
// allocates spares ahead as needed, and a put it cannot make room for fails with
// ErrDiskFull and writes nothing. A take spends room that its put reserved, so it
// never needs new space; neither does opening the log, since the spares are files
// on disk. Compaction copies follow the puts' rule, so they never eat into the
// room either.
//
// Takes of small messages are a large share of them (a 10-byte message's put is
// about 27 bytes, its take about 16), which is why a fixed share of each segment
// could not be enough: it ran out long before a whole segment was consumed.
//
// A file system that cannot preallocate (noPrealloc) can fail any write for lack
// of space; there the log only leaves the end of each segment to takes.

// takeSlack is room held beyond the reserved takes, for takes that spend more than
// their put reserved (a take naming an ID or location other than its put's).
const takeSlack = 32 * maxTakeFrame

// minPutFrame is the size of the smallest put: kind, ID, position, the queue name's
// length and a one-byte name.
const minPutFrame = frameHeader + 5

const sparePrefix = "SPARE."

// spareName returns the file name of spare n.
func spareName(n uint64) string { return sparePrefix + strconv.FormatUint(n, 10) }

// parseSpareName returns the number in a spare's file name, or false for other
// files.
func parseSpareName(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, sparePrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n > 0
}

// addPutLocked accounts for a put of size frame bytes at off in sg, whose take
// record will take take bytes.
func (l *Log) addPutLocked(sg *segment, off int64, size, take int) {
	sg.addPut(off, size, take)
	l.liveBytes += int64(size)
	l.reserved += int64(take)
}

// takeBoundLocked returns the most a take of a put of message id can take: exact
// when first, where the put was first written, is known; else for a put written
// anywhere in the active segment or the next.
func (l *Log) takeBoundLocked(id uint64, first storage.Location) int64 {
	if first.IsZero() {
		first = storage.Location{Segment: l.activeLocked().id + 1, Offset: l.opts.SegmentBytes}
	}
	return int64(takeFrameSize(id, first))
}

// perSpare is the room for takes in one spare segment.
func (l *Log) perSpare() int64 {
	return l.opts.SegmentBytes - segmentHeader - maxTakeFrame
}

// roomAfterLocked returns the bytes of takes the log can write, in space it holds,
// once a frame of n bytes is appended (rolling into a spare, or else a new
// segment, if it does not fit the active one). The last maxTakeFrame bytes of a
// segment do not count: a take that does not fit there leaves them unused.
func (l *Log) roomAfterLocked(n int64) int64 {
	sg := l.activeLocked()
	spares := int64(len(l.spares))
	if sg.size+n <= l.opts.SegmentBytes {
		room := int64(0)
		if sg.prealloc {
			room = max(0, l.opts.SegmentBytes-sg.size-n-maxTakeFrame)
		}
		return room + spares*l.perSpare()
	}
	if spares > 0 {
		spares--
	}
	return max(0, l.opts.SegmentBytes-segmentHeader-n-maxTakeFrame) + spares*l.perSpare()
}

// makeRoomLocked makes sure that once a put of n frame bytes is appended, the room
// held covers the takes of every live put and take more bytes (the put's own
// take), making spares as needed. It fails with ErrDiskFull when the disk has no
// space for one.
func (l *Log) makeRoomLocked(n, take int64) error {
	for !l.noPrealloc && l.roomAfterLocked(n) < l.reserved+take+takeSlack {
		if err := l.addSpareLocked(); err != nil {
			return err
		}
	}
	return nil
}

// addSpareLocked creates one more spare segment file, preallocated and durable.
func (l *Log) addSpareLocked() error {
	if l.full && time.Now().Before(l.rollAfter) {
		return fmt.Errorf("%w: no room for a spare segment", storage.ErrDiskFull)
	}
	path := filepath.Join(l.dir, spareName(l.spareSeq+1))
	ok, err := l.createSpare(path)
	if err == nil || !isNoSpace(err) {
		l.spareSeq++ // the name is taken; a failure for space leaves none behind
	}
	if isNoSpace(err) {
		l.noteFullLocked(true)
		return fmt.Errorf("%w: %w", storage.ErrDiskFull, err)
	}
	if err != nil {
		return l.failLocked(err)
	}
	if !ok {
		l.noPrealloc = true
		l.logLater = append(l.logLater, func() {
			l.log.Warn("the file system cannot preallocate space: gets and acks may fail "+
				"when the disk is full", "dir", l.dir)
		})
		return nil
	}
	l.spares = append(l.spares, path)
	if l.full {
		l.spaceBackLocked()
	}
	return nil
}

// createSpare creates the spare file at path and preallocates it, durably. It
// reports false, leaving no file, where the file system cannot preallocate.
func (l *Log) createSpare(path string) (bool, error) {
	f, err := l.fs.OpenFile(path, true)
	if err != nil {
		return false, fmt.Errorf("create spare %s: %w", path, err)
	}
	ok, err := f.Allocate(l.opts.SegmentBytes)
	if err == nil && ok {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && ok {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil || !ok {
		if rerr := l.fs.Remove(path); rerr != nil {
			l.logLater = append(l.logLater, func() {
				l.log.Warn("remove unfinished spare", "path", path, "err", rerr)
			})
		}
	}
	if err != nil {
		return false, fmt.Errorf("create spare %s: %w", path, err)
	}
	return ok, nil
}

// nextSegmentLocked makes segment id, from a spare if there is one, else as a new
// file. It reports whether it used a spare.
func (l *Log) nextSegmentLocked(id, nextID uint64) (*segment, bool, error) {
	for len(l.spares) > 0 {
		path := l.spares[len(l.spares)-1]
		l.spares = l.spares[:len(l.spares)-1]
		sg, err := l.segmentFromSpare(path, id, nextID)
		if err == nil {
			return sg, true, nil
		}
		l.logLater = append(l.logLater, func() {
			l.log.Warn("spare segment unusable, dropped", "path", path, "err", err)
		})
	}
	if l.full && time.Now().Before(l.rollAfter) {
		return nil, false, fmt.Errorf("%w: no room for a new segment", storage.ErrDiskFull)
	}
	sg, err := l.createSegment(id, nextID)
	if err == nil {
		l.noPrealloc = !sg.prealloc
	}
	return sg, false, err
}

// segmentFromSpare turns the spare at path into segment id: it writes the header
// into the spare's allocated space and makes it durable before it renames the
// file, so that a crash leaves either a spare or a whole segment header.
func (l *Log) segmentFromSpare(path string, id, nextID uint64) (*segment, error) {
	f, err := l.fs.OpenFile(path, false)
	if err != nil {
		l.removeSpare(path)
		return nil, err
	}
	size, err := f.Size()
	if err == nil && size != l.opts.SegmentBytes {
		err = fmt.Errorf("%d bytes, want %d", size, l.opts.SegmentBytes)
	}
	if err == nil {
		_, err = f.WriteAt(encodeSegmentHeader(id, nextID), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		l.removeSpare(path)
		return nil, err
	}

	sg := newSegment(l.dir, id, nil)
	if err := l.fs.Rename(path, sg.path); err != nil {
		l.removeSpare(path)
		return nil, fmt.Errorf("rename to %s: %w", sg.path, err)
	}
	err = l.fs.SyncDir(l.dir)
	if err == nil {
		sg.f, err = l.fs.OpenFile(sg.path, false)
	}
	if err != nil {
		l.removeSpare(sg.path)
		return nil, err
	}
	sg.nextID, sg.size, sg.prealloc, sg.zeroed = nextID, segmentHeader, true, segmentHeader
	return sg, nil
}

// removeSpare removes a spare file the log no longer counts, logging a failure.
func (l *Log) removeSpare(path string) {
	if err := l.fs.Remove(path); err != nil {
		l.logLater = append(l.logLater, func() {
			l.log.Warn("remove spare segment", "path", path, "err", err)
		})
	}
}

// trimSparesLocked removes spares the room does not need, keeping one beyond the
// need so that puts and takes going back and forth do not make and remove one
// each time.
func (l *Log) trimSparesLocked() {
	for len(l.spares) > 0 && l.roomAfterLocked(0)-2*l.perSpare() >= l.reserved+takeSlack {
		path := l.spares[len(l.spares)-1]
		l.spares = l.spares[:len(l.spares)-1]
		l.removeSpare(path)
	}
}

// tendSpace runs with each compaction round: it trims spares no longer needed and,
// while puts are refused for a full disk, tries for a spare, so that puts (and
// readiness) come back as soon as space does, even if no put comes to try.
func (l *Log) tendSpace() {
	l.mu.Lock()
	defer l.unlock()
	if l.closed || l.err != nil || l.noPrealloc {
		return
	}
	if l.full && l.fullRoll && !time.Now().Before(l.rollAfter) {
		l.addSpareLocked() // on failure, the log stays full
	}
	l.trimSparesLocked()
}

// takeFailedLocked logs, once until space is back, that a take failed for lack of
// space: only where room could not be held for it.
func (l *Log) takeFailedLocked(err error) {
	if !errors.Is(err, storage.ErrDiskFull) || l.takesFull {
		return
	}
	l.takesFull = true
	l.logLater = append(l.logLater, func() {
		l.log.Error("disk full, refusing gets and acks too", "dir", l.dir, "err", err)
	})
}

var _ storage.SpaceReporter = (*Log)(nil)

// DiskFull returns an error wrapping storage.ErrDiskFull while the log refuses
// puts for lack of space (the last attempt to get space failed, and none has
// succeeded since), or nil. It implements storage.SpaceReporter.
func (l *Log) DiskFull() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case !l.full:
		return nil
	case l.takesFull:
		return fmt.Errorf("%w in %s: refusing puts, gets and acks", storage.ErrDiskFull, l.dir)
	}
	return fmt.Errorf("%w in %s: refusing puts; gets and acks still served",
		storage.ErrDiskFull, l.dir)
}

// openSpares counts the spare files in the directory, at Open, and makes more if
// the room they and the active segment hold does not cover the takes of every
// live put (a log written before spares existed, or a spare deleted by hand). It
// makes room for the smallest put too, as that put would, so that a log reopened
// on a full disk says so (and is not ready) from the start rather than from the
// first put it refuses.
func (l *Log) openSpares() error {
	l.mu.Lock()
	defer l.unlock()
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("list spares in %s: %w", l.dir, err)
	}
	var seqs []uint64
	for _, name := range names {
		if n, ok := parseSpareName(name); ok {
			seqs = append(seqs, n)
		}
	}
	slices.Sort(seqs)
	for _, n := range seqs {
		l.spareSeq = n
		path := filepath.Join(l.dir, spareName(n))
		if l.spareFits(path) {
			l.spares = append(l.spares, path)
		} else {
			l.removeSpare(path)
		}
	}

	err = l.makeRoomLocked(minPutFrame, maxTakeFrame)
	if short := l.reserved + takeSlack - l.roomAfterLocked(0); short > 0 && err != nil {
		l.logLater = append(l.logLater, func() {
			l.log.Warn("disk full: no room held for some gets; they fail until space "+
				"is freed", "dir", l.dir, "short_bytes", short)
		})
	}
	if err != nil && !errors.Is(err, storage.ErrDiskFull) {
		return err
	}
	l.trimSparesLocked()
	return nil
}

// spareFits reports whether the spare at path is whole: preallocated to the
// segment size (a crash may leave one empty, and a spare from another segment
// size is no use).
func (l *Log) spareFits(path string) bool {
	f, err := l.fs.OpenFile(path, false)
	if err != nil {
		return false
	}
	defer f.Close()
	size, err := f.Size()
	return err == nil && size == l.opts.SegmentBytes
}
