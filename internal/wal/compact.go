package wal

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// Segments are deleted oldest first, and only once every put in them is dead
// (taken, or copied forward). Deleting in order is what makes take records safe to
// drop: a take always sits in the segment of its put or a newer one, so when a
// segment goes, every put its takes refer to is gone already, and no consumed
// message can come back at the next start.
//
// A few long-lived messages would then pin every segment behind them, so the oldest
// segment is compacted (its live puts are copied to the end of the log, keeping
// their ID, queue, position and payload, then it is deleted) when its live share
// falls under Options.CompactRatio, or when the dead bytes of all the sealed
// segments exceed the live bytes of the whole log. The second rule bounds the disk
// use to about twice the live data plus the active segment.
//
// The broker keeps the Location a put was first written at; the log maps it to the
// copy (moved, firstOf) so ReadPayload and takes keep working, and each copy
// records its first location so the map is rebuilt at the next start.

// maxCompactPerRound bounds how many segments one round copies forward, and how
// many it deletes, before it lets the timer pace the next.
const maxCompactPerRound = 16

// compactBatchBytes bounds how much of a segment is read and copied under one hold
// of the log's lock.
const compactBatchBytes = 4 << 20

func (l *Log) compactLoop() {
	every := min(time.Second, l.opts.ReadGrace/2)
	t := time.NewTicker(every)
	defer t.Stop()

	for {
		select {
		case <-l.done:
			return
		case <-l.compactKick:
		case <-t.C:
		}
		l.compactRound()
		l.tendSpace()
	}
}

// compactRound copies forward the live puts of the oldest sealed segments that the
// compaction rules pick, up to maxCompactPerRound of them, then deletes the oldest
// segments that are dead and past their read grace. Copying several at once lets
// their graces run together: one segment a round, a log of many sparse segments
// took a grace per segment to shrink (116 segments of 1 MiB holding 1.4 MB of
// messages stayed on disk for minutes while the server was idle).
func (l *Log) compactRound() {
	for i := range maxCompactPerRound {
		sg, live, ok := l.toCompact(i)
		if !ok {
			break
		}
		if len(live) == 0 {
			continue
		}
		if err := l.moveForward(sg, live); err != nil {
			if !errors.Is(err, storage.ErrDiskFull) && !errors.Is(err, storage.ErrClosed) {
				l.log.Error("compaction stopped", "segment", sg.id, "err", err)
			}
			break
		}
	}
	for range maxCompactPerRound {
		if !l.dropOldest() {
			break
		}
	}
}

// toCompact returns the i-th oldest segment and its live puts to copy forward, if
// it is sealed and dead or the compaction rules pick it; ok is false at the first
// one they do not pick, since a segment that stays pins every newer one.
func (l *Log) toCompact(i int) (sg *segment, live []putRef, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.err != nil || i >= len(l.segments)-1 {
		return nil, nil, false
	}
	sg = l.segments[i]
	if sg.live > 0 && !l.shouldCompactLocked(sg) {
		return nil, nil, false
	}
	return sg, sg.livePuts(), true
}

// dropOldest deletes the oldest segment if it is dead (see dropFront), and reports
// whether it did.
func (l *Log) dropOldest() bool {
	l.mu.Lock()
	if l.closed || l.err != nil || len(l.segments) < 2 || l.segments[0].live > 0 {
		l.mu.Unlock()
		return false
	}
	front := l.segments[0]
	l.mu.Unlock()
	return l.dropFront(front)
}

// shouldCompactLocked reports whether the live puts of sg, one of the oldest sealed
// segments, should be copied forward.
func (l *Log) shouldCompactLocked(sg *segment) bool {
	if sg.live == 0 {
		return true
	}
	if float64(sg.liveBytes) < l.opts.CompactRatio*float64(sg.size) {
		return true
	}
	active := l.activeLocked()
	sealedDead := (l.diskBytes - active.size) - (l.liveBytes - active.liveBytes)
	return sealedDead > l.liveBytes
}

// moveForward copies the live puts of sg to the end of the log, in batches.
func (l *Log) moveForward(sg *segment, live []putRef) error {
	for len(live) > 0 {
		n := 1
		span := int64(live[0].size)
		for n < len(live) {
			end := live[n].offset + int64(live[n].size) - live[0].offset
			if end > compactBatchBytes {
				break
			}
			span = end
			n++
		}
		buf := make([]byte, span)
		sg.io.RLock()
		_, err := sg.f.ReadAt(buf, live[0].offset)
		sg.io.RUnlock()
		if err != nil {
			return fmt.Errorf("read segment %d at offset %d: %w", sg.id, live[0].offset, err)
		}
		if err := l.copyBatch(sg, live[:n], buf, live[0].offset); err != nil {
			return err
		}
		live = live[n:]
	}
	return nil
}

// copyBatch appends a copy of each put of batch that is still live; buf holds the
// segment's bytes from base on.
func (l *Log) copyBatch(sg *segment, batch []putRef, buf []byte, base int64) error {
	l.mu.Lock()
	defer l.unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}

	now := time.Now()
	for _, p := range batch {
		if sg.isDead(p.offset) {
			continue // taken while we read
		}
		r, _, err := decodeFrame(buf[p.offset-base:])
		if err != nil {
			return &CorruptError{File: sg.path, Offset: p.offset, Reason: err.Error()}
		}
		cur := storage.Location{Segment: sg.id, Offset: p.offset}
		first, wasMoved := l.firstOf[cur]
		if !wasMoved {
			first = cur
		}
		rec := storage.Record{Op: storage.Op(r.kind), Queue: string(r.queue), ID: r.id,
			Pos: r.pos, Payload: r.payload}
		loc, err := l.appendPutLocked(&rec, first)
		if err != nil {
			return fmt.Errorf("copy put %d forward: %w", r.id, err)
		}
		l.killLocked(cur, now)
		l.moved[first] = loc
		l.firstOf[loc] = first
		delete(l.firstOf, cur)
	}
	return nil
}

// dropFront deletes sg, the oldest segment, once all its puts are dead, everything
// appended so far is on disk (the takes and copies that killed them) and
// Options.ReadGrace has passed since the last of them died.
func (l *Log) dropFront(sg *segment) bool {
	l.mu.Lock()
	t := l.appended
	due := sg.lastKill.Add(l.opts.ReadGrace)
	l.mu.Unlock()
	if time.Now().Before(due) {
		return false
	}
	if err := l.waitSynced(l.ctx, t); err != nil {
		return false
	}

	l.mu.Lock()
	if len(l.segments) < 2 || l.segments[0] != sg || sg.live > 0 || l.closed {
		l.mu.Unlock()
		return false
	}
	l.segments = slices.Delete(l.segments, 0, 1)
	if err := l.writeRangeLocked(); err != nil { // before the file goes
		l.segments = slices.Insert(l.segments, 0, sg)
		l.mu.Unlock()
		l.log.Error("cannot record the segment range; keeping the drained segment "+
			"and retrying at the next compaction (check the data directory's disk)",
			"segment", sg.id, "err", err)
		return false
	}
	l.mu.Unlock()

	// Readers and the syncer hold sg.io while they use the file; wait for them.
	sg.io.Lock()
	err := l.fs.Remove(sg.path)
	if err != nil {
		sg.io.Unlock()
		l.mu.Lock()
		l.segments = slices.Insert(l.segments, 0, sg)
		l.mu.Unlock()
		l.log.Error("cannot delete a drained segment file; keeping it and retrying at "+
			"the next compaction (check the data directory's permissions and disk)",
			"segment", sg.id, "path", sg.path, "err", err)
		return false
	}
	sg.f.Close()
	sg.io.Unlock()

	l.mu.Lock()
	defer l.unlock()
	l.diskBytes -= sg.size
	for cur, first := range l.firstOf {
		if cur.Segment == sg.id {
			delete(l.firstOf, cur)
			delete(l.moved, first)
		}
	}
	// The next deletion may drop takes of puts that were in sg: sg must be gone
	// for good first.
	if err := l.fs.SyncDir(l.dir); err != nil {
		l.failLocked(fmt.Errorf("delete segment %d: sync directory: %w", sg.id, err))
		return false
	}
	l.logLater = append(l.logLater, func() {
		l.log.Debug("segment deleted", "segment", sg.id)
	})
	return true
}
