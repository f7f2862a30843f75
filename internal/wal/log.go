package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// Log is the durable storage.Store: an append-only log of segment files in one
// directory. Open it with Open, hand it to the broker, and stop it with Close. Its
// methods may be called from any goroutine.
type Log struct {
	dir     string
	opts    Options
	fs      fileSystem
	log     *slog.Logger
	lock    io.Closer  // the data directory's lock
	rng     *rangeFile // the RANGE file; written under mu
	reserve int64      // SegmentBytes/8: bounds a record's size; see appendLocked

	mu       sync.Mutex // protects the fields below; taken after the broker's locks
	segments []*segment // oldest first; the last one is active
	// moved maps the first location of each put copied forward by compaction to
	// where it is now, and firstOf maps back. Entries go when the put's current
	// segment is deleted.
	moved     map[storage.Location]storage.Location
	firstOf   map[storage.Location]storage.Location
	maxID     uint64 // highest message ID appended or replayed
	nextID    uint64 // from recovery: past every ID the log has seen
	idLimit   uint64 // no accepted ID is past it, as the RANGE file says
	appended  storage.Ticket
	synced    storage.Ticket
	roundDone chan struct{}  // closed when the current sync round ends
	syncing   storage.Ticket // what the round in progress covers (synced when none)
	group     groupState     // the syncer's sizing of each round; see sync.go
	err       error          // sticky: the first write or sync failure
	closed    bool           // Close has begun
	stopped   bool           // Close has made everything durable and closed the files
	full      bool           // a write or roll failed for lack of space; none succeeded since
	fullRoll  bool           // it was a new file: only a new file shows the space is back
	rollAfter time.Time      // while full, puts that need a new segment fail until then
	diskBytes int64          // sum of the segments' sizes
	liveBytes int64          // frame bytes of live puts
	scratch   []byte         // encoding buffer
	// pending holds records appended to the active segment but not yet written,
	// from file offset pendingOff on; see appendLocked.
	pending    []byte
	pendingOff int64
	// zeroing is the range of the active segment the syncer is writing zeros to
	// outside mu (zero when none), while it holds zeroMu; see zeroAhead.
	zeroing  [2]int64
	logLater []func() // log calls to make once mu is released

	// reserved is the frame bytes of the take records the live puts will need; the
	// room left in the active segment and the spares always holds them (space.go).
	reserved   int64
	spares     []string // paths of the spare segment files
	spareSeq   uint64   // number of the newest spare file
	noPrealloc bool     // the file system cannot preallocate: no room can be reserved
	takesFull  bool     // a take failed for lack of space; logged, none succeeded since

	zeroMu      sync.Mutex // held while zeros are written; taken after mu
	zeroBuf     []byte     // the syncer's zeros
	syncKick    chan struct{}
	compactKick chan struct{}
	done        chan struct{} // closed by Close to stop the goroutines
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup

	syncs   atomic.Uint64
	records atomic.Uint64
}

// Stats is a snapshot of a Log's counters.
type Stats struct {
	Records   uint64 // records appended since Open
	Syncs     uint64 // fsyncs of the active segment by the syncer
	Segments  int
	Spares    int   // spare segment files, preallocated for take records
	DiskBytes int64 // bytes of records and headers in all segments
	LiveBytes int64 // bytes of put records not yet taken
	Reserved  int64 // bytes of the take records the live puts will need, kept free
}

// rollRetry is how long puts needing a new segment fail fast after the disk was
// found full, before the log tries to create one again.
const rollRetry = 100 * time.Millisecond

// Open opens (creating it if needed) the log in dir, checks every record in it and
// rebuilds its accounting. A torn record at the end of the newest segment is cut off
// with a warning; damage anywhere else fails with a *CorruptError.
func Open(dir string, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open log in %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	lock, err := opts.fs.Lock(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}

	l := &Log{
		dir:         dir,
		opts:        opts,
		fs:          opts.fs,
		log:         opts.Logger.With("component", "wal"),
		lock:        lock,
		reserve:     opts.SegmentBytes / 8,
		moved:       make(map[storage.Location]storage.Location),
		firstOf:     make(map[storage.Location]storage.Location),
		roundDone:   make(chan struct{}),
		syncKick:    make(chan struct{}, 1),
		group:       groupState{full: make(chan struct{}, 1)},
		compactKick: make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	err = l.recover()
	if err == nil {
		err = l.openSpares()
	}
	if err != nil {
		l.closeFiles()
		lock.Close()
		l.cancel()
		return nil, err
	}

	l.wg.Go(l.syncLoop)
	l.wg.Go(l.compactLoop)
	return l, nil
}

// Append writes rec at the end of the log and returns where it went and the ticket
// to Wait on. A put (or state record) that finds no room for itself and for the
// take record it will need fails with an error wrapping storage.ErrDiskFull and
// leaves nothing in the log; a take always finds room held for it (space.go).
func (l *Log) Append(rec *storage.Record) (storage.Location, storage.Ticket, error) {
	l.mu.Lock()
	defer l.unlock()
	if err := l.writableLocked(); err != nil {
		return storage.Location{}, 0, err
	}
	if err := l.reserveIDsLocked(rec.ID); err != nil {
		return storage.Location{}, 0, err
	}

	switch {
	case isPutOp(rec.Op):
		loc, err := l.appendPutLocked(rec, storage.Location{})
		if err != nil {
			return storage.Location{}, 0, fmt.Errorf("append %s of %d: %w", rec.Op, rec.ID, err)
		}
		return loc, l.appended, nil

	case rec.Op == storage.OpTake:
		l.scratch = appendTake(l.scratch[:0], rec)
		if _, err := l.appendLocked(l.scratch, false); err != nil {
			l.takeFailedLocked(err)
			return storage.Location{}, 0, fmt.Errorf("append take of %d: %w", rec.ID, err)
		}
		l.maxID = max(l.maxID, rec.ID)
		l.takeLocked(rec.Ref, time.Now())
		return storage.Location{}, l.appended, nil
	}
	return storage.Location{}, 0, fmt.Errorf("append record of %d: unknown op %v", rec.ID, rec.Op)
}

// Wait returns once the record behind t is as durable as the fsync policy promises:
// on disk with FsyncAlways, written to the operating system otherwise (which Append
// already did).
func (l *Log) Wait(ctx context.Context, t storage.Ticket) error {
	if l.opts.Fsync != FsyncAlways {
		return nil
	}
	return l.waitSynced(ctx, t)
}

// ReadPayload reads back the payload of the put first stored at loc, wherever
// compaction has moved it since.
func (l *Log) ReadPayload(loc storage.Location) ([]byte, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, storage.ErrClosed
	}
	cur := loc
	if m, ok := l.moved[loc]; ok {
		cur = m
	}
	sg := l.segmentLocked(cur.Segment)
	if sg == nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("read payload: segment %d is gone", cur.Segment)
	}
	size, ok := sg.sizeOf(cur.Offset)
	if !ok {
		l.mu.Unlock()
		return nil, fmt.Errorf("read payload: no put at segment %d offset %d",
			cur.Segment, cur.Offset)
	}
	if sg == l.activeLocked() && cur.Offset+int64(size) > l.pendingOff {
		if err := l.flushLocked(); err != nil {
			l.unlock()
			return nil, err
		}
	}
	sg.io.RLock()
	l.mu.Unlock()
	defer sg.io.RUnlock()

	buf := make([]byte, size)
	if _, err := sg.f.ReadAt(buf, cur.Offset); err != nil {
		return nil, fmt.Errorf("read segment %d at offset %d: %w", sg.id, cur.Offset, err)
	}
	r, _, err := decodeFrame(buf)
	if err != nil || !r.isPut() {
		return nil, &CorruptError{File: sg.path, Offset: cur.Offset,
			Reason: fmt.Sprintf("unreadable put: %v", err)}
	}
	return r.payload, nil
}

// Replay calls fn with every live put, oldest segment first, and returns the next
// message ID to hand out. Consumed records are not replayed: the log already
// matched every take with its put when it opened. A put copied forward by
// compaction is replayed with the Location it was first written at. rec.Payload
// points into a buffer reused for the next records: fn copies what it keeps.
func (l *Log) Replay(fn func(rec *storage.Record, loc storage.Location) error) (uint64, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, storage.ErrClosed
	}
	if err := l.flushLocked(); err != nil {
		l.unlock()
		return 0, err
	}
	type segmentPuts struct {
		sg   *segment
		puts []putRef
	}
	var todo []segmentPuts
	for _, sg := range l.segments {
		if sg.live > 0 {
			todo = append(todo, segmentPuts{sg, sg.livePuts()})
		}
	}
	firstOf := make(map[storage.Location]storage.Location, len(l.firstOf))
	for cur, first := range l.firstOf {
		firstOf[cur] = first
	}
	next := max(l.nextID, l.maxID+1)
	l.mu.Unlock()

	var buf []byte
	for _, t := range todo {
		var err error
		if buf, err = l.replaySegment(t.sg, t.puts, firstOf, buf, fn); err != nil {
			return 0, err
		}
	}
	return next, nil
}

// Stats returns a snapshot of the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{
		Records:   l.records.Load(),
		Syncs:     l.syncs.Load(),
		Segments:  len(l.segments),
		Spares:    len(l.spares),
		DiskBytes: l.diskBytes,
		LiveBytes: l.liveBytes,
		Reserved:  l.reserved,
	}
}

// Close stops the log's goroutines, makes every appended record durable and closes
// the files. Later calls, to Close or any other method, fail with
// storage.ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return storage.ErrClosed
	}
	l.closed = true
	l.mu.Unlock()

	close(l.done)
	l.cancel()
	l.wg.Wait()

	l.mu.Lock()
	var err error
	if l.err == nil && l.appended > l.synced {
		sg := l.activeLocked()
		if ferr := l.flushLocked(); ferr != nil {
			err = ferr
		} else if serr := sg.f.Datasync(); serr != nil {
			err = l.failLocked(fmt.Errorf("sync segment %d: %w", sg.id, serr))
		} else {
			l.synced = l.appended
		}
	}
	if err == nil && l.err == nil {
		err = l.closeRangeLocked()
	}
	l.stopped = true
	done := l.roundDone
	l.roundDone = make(chan struct{})
	l.unlock()
	close(done)

	l.closeFiles()
	if cerr := l.lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("unlock %s: %w", l.dir, cerr)
	}
	return err
}

func (l *Log) closeFiles() {
	if l.rng != nil {
		if err := l.rng.f.Close(); err != nil {
			l.log.Warn("close segment range file", "err", err)
		}
	}
	for _, sg := range l.segments {
		sg.io.Lock()
		if err := sg.f.Close(); err != nil {
			l.log.Warn("close segment", "segment", sg.id, "err", err)
		}
		sg.io.Unlock()
	}
}

// unlock releases mu and then makes the log calls queued while it was held.
func (l *Log) unlock() {
	logs := l.logLater
	l.logLater = nil
	l.mu.Unlock()
	for _, f := range logs {
		f()
	}
}

func (l *Log) writableLocked() error {
	if l.closed {
		return storage.ErrClosed
	}
	return l.err
}

var _ storage.Failer = (*Log)(nil)

// Err returns the error that stopped the log taking writes (a failed write or
// fsync: the log refuses writes until it is reopened), or nil while it works. It
// implements storage.Failer.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// failLocked makes err the log's sticky error, unless it already has one, and
// returns the sticky error.
func (l *Log) failLocked(err error) error {
	if l.err == nil {
		l.err = fmt.Errorf("wal: log failed, writes refused: %w", err)
		l.logLater = append(l.logLater, func() {
			l.log.Error("log failed, refusing writes", "err", err)
		})
	}
	return l.err
}

func (l *Log) activeLocked() *segment { return l.segments[len(l.segments)-1] }

// segmentLocked returns the segment with the given id, or nil.
func (l *Log) segmentLocked(id uint64) *segment {
	i, ok := slices.BinarySearchFunc(l.segments, id, func(sg *segment, id uint64) int {
		switch {
		case sg.id < id:
			return -1
		case sg.id > id:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	return l.segments[i]
}

// appendPutLocked writes a put record, first set when it is a copy of a put first
// written there, and accounts for it as live. It fails with ErrDiskFull, writing
// nothing, unless the room held for takes will still cover the take of this put
// too.
func (l *Log) appendPutLocked(
	rec *storage.Record, first storage.Location,
) (storage.Location, error) {
	l.scratch = appendPut(l.scratch[:0], rec, first)
	take := l.takeBoundLocked(rec.ID, first)
	if err := l.makeRoomLocked(int64(len(l.scratch)), take); err != nil {
		return storage.Location{}, err
	}
	loc, err := l.appendLocked(l.scratch, true)
	if err != nil {
		return storage.Location{}, err
	}
	if first.IsZero() {
		first = loc
	}
	l.addPutLocked(l.activeLocked(), loc.Offset, len(l.scratch), takeFrameSize(rec.ID, first))
	l.maxID = max(l.maxID, rec.ID)
	if l.full && !l.fullRoll {
		l.spaceBackLocked()
	}
	return loc, nil
}

// maxPendingBytes is how much appended data waits for the syncer's write before
// an append writes it out itself.
const maxPendingBytes = 256 << 10

// appendLocked adds one frame at the end of the active segment, rolling to a new
// segment first if it does not fit. A take goes into a spare segment rather than
// into an active segment without preallocated space. Where space cannot be
// preallocated at all, puts leave the segment's last l.reserve bytes to takes.
//
// With FsyncAlways and a preallocated segment, the frame joins l.pending, and the
// syncer writes every pending frame with one write(2) right before its fsync: a
// record is only promised once it is fsynced, and a group of records costs one
// write instead of one each. A write there cannot fail for lack of space (the
// space is reserved), so any failure is sticky. Otherwise, the frame is written at
// once, so that Wait can return as soon as it does and a full disk fails this
// append alone.
func (l *Log) appendLocked(frame []byte, put bool) (storage.Location, error) {
	if int64(len(frame)) > l.opts.SegmentBytes-l.reserve-segmentHeader {
		return storage.Location{}, fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, len(frame))
	}
	limit := l.opts.SegmentBytes
	if put && l.noPrealloc {
		limit -= l.reserve
	}
	sg := l.activeLocked()
	if sg.size+int64(len(frame)) > limit || !put && !sg.prealloc && len(l.spares) > 0 {
		if err := l.rollLocked(); err != nil {
			return storage.Location{}, err
		}
		sg = l.activeLocked()
	}

	off := sg.size
	if l.opts.Fsync == FsyncAlways && sg.prealloc {
		if len(l.pending) == 0 {
			l.pendingOff = off
			select { // a round writes it even if nobody waits for it
			case l.syncKick <- struct{}{}:
			default:
			}
		}
		l.pending = append(l.pending, frame...)
		if len(l.pending) >= maxPendingBytes {
			if err := l.flushLocked(); err != nil {
				return storage.Location{}, err
			}
		}
	} else if _, err := sg.f.WriteAt(frame, off); err != nil {
		return storage.Location{}, l.writeFailedLocked(sg, off, err)
	}
	sg.size += int64(len(frame))
	l.diskBytes += int64(len(frame))
	l.appended++
	l.records.Add(1)
	return storage.Location{Segment: sg.id, Offset: off}, nil
}

// flushLocked writes the pending frames to the active segment with one write(2).
// A failure is sticky.
func (l *Log) flushLocked() error {
	if len(l.pending) == 0 {
		return nil
	}
	sg := l.activeLocked()
	if end := l.pendingOff + int64(len(l.pending)); l.zeroing[1] > l.pendingOff &&
		end > l.zeroing[0] {
		l.zeroMu.Lock() // the syncer's zeros must land before these records
		l.zeroMu.Unlock()
	}
	sg.zeroed = max(sg.zeroed, l.pendingOff+int64(len(l.pending)))
	if _, err := sg.f.WriteAt(l.pending, l.pendingOff); err != nil {
		return l.failLocked(fmt.Errorf("write segment %d at offset %d: %w",
			sg.id, l.pendingOff, err))
	}
	l.pendingOff += int64(len(l.pending))
	l.pending = l.pending[:0]
	if cap(l.pending) > 4*maxPendingBytes {
		l.pending = nil // after a burst of large records
	}
	return nil
}

// writeFailedLocked handles a failed write at off in sg. Lack of space is not
// fatal: the partial record is cut off and the append fails with ErrDiskFull. Any
// other failure is sticky.
func (l *Log) writeFailedLocked(sg *segment, off int64, err error) error {
	err = fmt.Errorf("write segment %d at offset %d: %w", sg.id, off, err)
	if !isNoSpace(err) {
		return l.failLocked(err)
	}
	if terr := l.unreserveLocked(sg); terr != nil {
		return l.failLocked(fmt.Errorf("%w; %w", err, terr))
	}
	if terr := sg.f.Truncate(off); terr != nil {
		return l.failLocked(fmt.Errorf("%w; cut partial record: %w", err, terr))
	}
	l.noteFullLocked(false)
	return fmt.Errorf("%w: %w", storage.ErrDiskFull, err)
}

// noteFullLocked records that a write (or, with roll set, the creation of a new
// segment or spare) failed for lack of space, logging it once until space is back.
func (l *Log) noteFullLocked(roll bool) {
	l.rollAfter = time.Now().Add(rollRetry)
	l.fullRoll = roll
	if l.full {
		return
	}
	l.full = true
	msg := "disk full, refusing puts; gets and acks still served"
	if l.noPrealloc {
		msg = "disk full, refusing puts; gets and acks may fail too " +
			"(the file system cannot preallocate room for them)"
	}
	reserved := l.reserved
	l.logLater = append(l.logLater, func() {
		l.log.Error(msg, "dir", l.dir, "reserved_bytes", reserved)
	})
}

// rollLocked makes a new segment the active one: a spare if there is one, else a
// new file. The old one is fsynced first, so a segment that is not the newest is
// always whole on disk, and only the newest can end in a torn record after a crash.
func (l *Log) rollLocked() error {
	if len(l.spares) == 0 && l.full && time.Now().Before(l.rollAfter) {
		return fmt.Errorf("%w: no room for a new segment", storage.ErrDiskFull)
	}
	old := l.activeLocked()
	if err := l.flushLocked(); err != nil {
		return err
	}
	if err := l.syncFile(old.f); err != nil {
		return l.failLocked(fmt.Errorf("sync segment %d: %w", old.id, err))
	}
	l.synced = l.appended // every older segment was synced when it rolled

	sg, spare, err := l.nextSegmentLocked(old.id+1, l.maxID+1)
	if errors.Is(err, storage.ErrDiskFull) {
		return err
	}
	if isNoSpace(err) {
		l.noteFullLocked(true)
		return fmt.Errorf("%w: %w", storage.ErrDiskFull, err)
	}
	if err != nil {
		return l.failLocked(err)
	}
	l.segments = append(l.segments, sg)
	l.diskBytes += sg.size
	if err := l.writeRangeLocked(); err != nil {
		return l.failLocked(err)
	}
	if l.full && !spare {
		l.spaceBackLocked()
	}
	return nil
}

// writeRangeLocked records the current oldest and newest segments in the RANGE
// file.
func (l *Log) writeRangeLocked() error {
	active := l.activeLocked()
	r := segmentRange{first: l.segments[0].id, last: active.id, nextID: active.nextID,
		segmentBytes: l.opts.SegmentBytes, idLimit: l.idLimit}
	if active.prealloc { // its space was allocated and synced: it is no shorter
		r.newestBytes = l.opts.SegmentBytes
	}
	return l.rng.write(r)
}

func (l *Log) spaceBackLocked() {
	l.full = false
	l.takesFull = false
	l.logLater = append(l.logLater, func() {
		l.log.Info("disk space back, accepting puts")
	})
}

// createSegment creates segment id, preallocated, with its header durable on disk
// and in the directory before any record goes in: a segment never needs its
// predecessor to tell the next message ID.
func (l *Log) createSegment(id, nextID uint64) (*segment, error) {
	sg := newSegment(l.dir, id, nil)
	f, err := l.fs.OpenFile(sg.path, true)
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", id, err)
	}
	prealloc, err := l.initSegment(f, id, nextID)
	if err != nil {
		f.Close()
		if rerr := l.fs.Remove(sg.path); rerr != nil {
			l.logLater = append(l.logLater, func() {
				l.log.Warn("remove unfinished segment", "segment", id, "err", rerr)
			})
		}
		return nil, fmt.Errorf("create segment %d: %w", id, err)
	}
	sg.f, sg.nextID, sg.size, sg.prealloc = f, nextID, segmentHeader, prealloc
	sg.zeroed = segmentHeader
	return sg, nil
}

// initSegment preallocates a new segment file and makes its header durable. It
// reports whether the space is reserved.
func (l *Log) initSegment(f file, id, nextID uint64) (bool, error) {
	prealloc, err := f.Allocate(l.opts.SegmentBytes)
	if err != nil {
		return false, fmt.Errorf("allocate %d bytes: %w", l.opts.SegmentBytes, err)
	}
	if _, err := f.WriteAt(encodeSegmentHeader(id, nextID), 0); err != nil {
		return false, fmt.Errorf("write header: %w", err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("sync: %w", err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return false, fmt.Errorf("sync directory: %w", err)
	}
	return prealloc, nil
}

// takeLocked accounts for a take of the put first stored at ref. A take whose put
// is unknown (consumed long ago, or its segment deleted) changes nothing.
func (l *Log) takeLocked(ref storage.Location, now time.Time) {
	cur := ref
	if m, ok := l.moved[ref]; ok {
		cur = m
	}
	sg := l.killLocked(cur, now)
	if sg == nil {
		return
	}
	if sg == l.segments[0] && sg != l.activeLocked() && l.shouldCompactLocked(sg) {
		select {
		case l.compactKick <- struct{}{}:
		default:
		}
	}
}

// killLocked marks the put at cur dead and returns its segment, or nil if there
// was no live put there.
func (l *Log) killLocked(cur storage.Location, now time.Time) *segment {
	sg := l.segmentLocked(cur.Segment)
	if sg == nil {
		return nil
	}
	p, ok := sg.kill(cur.Offset)
	if !ok {
		return nil
	}
	l.liveBytes -= int64(p.size)
	l.reserved -= int64(p.take)
	sg.lastKill = now
	return sg
}
