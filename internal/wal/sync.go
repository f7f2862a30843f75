package wal

import (
	"context"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// The syncer is one goroutine that fsyncs the active segment in rounds. A round
// covers every record appended before it began, so all the waiters that arrived
// during the previous round share the next fsync (group commit): at high
// concurrency there are far fewer fsyncs than records.
//
// A round started the moment the previous one ends would cover only the waiters
// that arrived while that one ran: the waiters it just released have not appended
// their next records yet. W busy writers then settle into two cohorts of W/2 taking
// turns, each record waits for two fsyncs and each fsync covers half the writers
// (BenchmarkLogAppendWait showed exactly W/2 records per fsync). So the group is
// sized by load: the syncer counts the waiters each round released, and before the
// next fsync it waits until as many waiters have joined as were active (those
// released plus those already waiting), for at most one average fsync. One
// writer, or waiters that do not come back, cost at most that bound; waiters that
// do come back make one cohort, which waits for one fsync. Over TCP a released
// client comes back only after its reply's round trip: with 8 producers and 8
// consumers, a bound of half an fsync gave about 10 records per fsync and a whole
// one about 13, with a lower median put latency.

// groupState is the syncer's sizing of each round, guarded by Log.mu.
type groupState struct {
	joined int           // waiters for the next round so far
	active int           // waiters the last round released plus those joined by its end
	want   int           // while the syncer gathers: joined needed to start; else 0
	full   chan struct{} // signalled when joined reaches want
	fsync  time.Duration // moving average of the syncer's fsyncs
}

// joinLocked counts a waiter for the next round and ends the syncer's gathering
// once the group is whole.
func (g *groupState) joinLocked() {
	g.joined++
	if g.want > 0 && g.joined >= g.want {
		g.want = 0
		select {
		case g.full <- struct{}{}:
		default:
		}
	}
}

// waitSynced blocks until every record up to t is fsynced, ctx ends or the log
// fails. It asks the syncer for a round if none covers t.
func (l *Log) waitSynced(ctx context.Context, t storage.Ticket) error {
	joined := false
	for {
		l.mu.Lock()
		if t <= l.synced {
			l.mu.Unlock()
			return nil
		}
		if l.err != nil || l.stopped {
			err := l.err
			l.mu.Unlock()
			if err == nil {
				err = storage.ErrClosed
			}
			return err
		}
		if !joined && t > l.syncing { // not covered by the round in progress
			joined = true
			l.group.joinLocked()
		}
		done := l.roundDone
		l.mu.Unlock()

		select {
		case l.syncKick <- struct{}{}:
		default: // a round is already asked for; it will cover t
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *Log) syncLoop() {
	var tick <-chan time.Time
	if l.opts.Fsync == FsyncInterval {
		t := time.NewTicker(l.opts.FsyncInterval)
		defer t.Stop()
		tick = t.C
	}
	gather := time.NewTimer(time.Hour)
	gather.Stop()

	for {
		select {
		case <-l.done:
			return
		case <-l.syncKick:
		case <-tick:
		}
		l.syncRound(gather)
	}
}

// syncRound writes the pending records and fsyncs the active segment if anything
// was appended since the last round, then wakes every waiter. Records in older
// segments were fsynced when their segment rolled.
func (l *Log) syncRound(gather *time.Timer) {
	l.mu.Lock()
	if l.appended > l.synced && l.err == nil && l.opts.Fsync == FsyncAlways {
		l.gatherLocked(gather)
	}
	target, sg, done := l.appended, l.activeLocked(), l.roundDone
	if target > l.synced && l.err == nil {
		l.flushLocked() // on failure l.err is set
	}
	if target <= l.synced || l.err != nil {
		l.roundDone = make(chan struct{})
		l.unlock()
		close(done)
		return
	}
	covered := l.group.joined
	l.group.joined = 0
	l.syncing = target
	sg.io.RLock() // under mu, so the segment cannot be closed in between
	l.mu.Unlock()

	start := time.Now()
	err := l.syncFile(sg.f)
	took := time.Since(start)
	sg.io.RUnlock()
	l.syncs.Add(1)

	l.mu.Lock()
	if err != nil {
		l.failLocked(fmt.Errorf("sync segment %d: %w", sg.id, err))
	} else if target > l.synced {
		l.synced = target
	}
	l.syncing = l.synced
	g := &l.group
	g.active = covered + g.joined
	if g.fsync == 0 {
		g.fsync = took
	}
	g.fsync += (took - g.fsync) / 8
	l.roundDone = make(chan struct{})
	l.unlock()
	close(done)
	l.zeroAhead(sg)
}

// zeroAheadBytes is how far ahead of the last record the syncer keeps the active
// segment's blocks written with zeros, in chunks of up to zeroChunkBytes (at most
// half and a quarter of a segment).
const (
	zeroAheadBytes = 2 << 20
	zeroChunkBytes = 1 << 20
)

// zeroAhead writes zeros to the next blocks of sg, the active segment, when the
// records come within zeroAheadBytes of the blocks written so far. A preallocated
// block that was never written is "unwritten" to the file system (ext4, XFS):
// the first record in it makes fdatasync also write the file's block map, an
// extra disk write that grows with the group (measured: a 65 KB group's fdatasync
// took 207 us into fallocated blocks and 143 us into zeroed ones). Writing zeros
// ahead moves that cost out of the waiters' fsyncs, to one per chunk, which the
// next round's fsync carries. The zeros are written outside Log.mu, after the
// round's waiters are woken, under zeroMu: a flush reaching into the range waits
// for them, so zeros never land on records.
func (l *Log) zeroAhead(sg *segment) {
	if l.opts.Fsync != FsyncAlways {
		return
	}
	l.mu.Lock()
	seg := l.opts.SegmentBytes
	end := min(seg, sg.size+min(zeroAheadBytes, seg/2))
	if !sg.prealloc || sg != l.activeLocked() || l.err != nil || sg.zeroed >= end {
		l.mu.Unlock()
		return
	}
	from := sg.zeroed
	to := min(seg, from+min(zeroChunkBytes, seg/4))
	l.zeroMu.Lock()
	l.zeroing = [2]int64{from, to}
	sg.io.RLock()
	l.mu.Unlock()

	if len(l.zeroBuf) < int(to-from) {
		l.zeroBuf = make([]byte, zeroChunkBytes)
	}
	_, err := sg.f.WriteAt(l.zeroBuf[:to-from], from)
	sg.io.RUnlock()
	l.zeroMu.Unlock() // before mu: a flush may be waiting for it under mu

	l.mu.Lock()
	l.zeroing = [2]int64{}
	if err != nil {
		l.failLocked(fmt.Errorf("write zeros to segment %d at offset %d: %w", sg.id, from, err))
	} else {
		sg.zeroed = max(sg.zeroed, to)
	}
	l.unlock()
}

// gatherLocked waits, with mu released meanwhile, until as many waiters have
// joined the next round as the last round found active, or an average fsync
// has passed, or the log closes.
func (l *Log) gatherLocked(timer *time.Timer) {
	g := &l.group
	wait := g.fsync
	if g.joined >= g.active || wait <= 0 {
		return
	}
	g.want = g.active
	select {
	case <-g.full: // a signal left from an earlier gathering
	default:
	}
	l.mu.Unlock()
	timer.Reset(wait)
	select {
	case <-g.full:
	case <-timer.C:
	case <-l.done:
	}
	timer.Stop()
	l.mu.Lock()
	g.want = 0
}

// syncFile makes f's records durable (fdatasync) and reports how long it took to
// Options.OnFsync.
func (l *Log) syncFile(f file) error {
	start := time.Now()
	err := f.Datasync()
	if l.opts.OnFsync != nil {
		l.opts.OnFsync(time.Since(start), err)
	}
	return err
}
