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

// waitSynced blocks until every record up to t is fsynced, ctx ends or the log
// fails. It asks the syncer for a round if none covers t.
func (l *Log) waitSynced(ctx context.Context, t storage.Ticket) error {
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

	for {
		select {
		case <-l.done:
			return
		case <-l.syncKick:
		case <-tick:
		}
		l.syncRound()
	}
}

// syncRound fsyncs the active segment if anything was appended since the last
// round, then wakes every waiter. Records in older segments were fsynced when their
// segment rolled.
func (l *Log) syncRound() {
	l.mu.Lock()
	target, sg, done := l.appended, l.activeLocked(), l.roundDone
	if target <= l.synced || l.err != nil {
		l.roundDone = make(chan struct{})
		l.mu.Unlock()
		close(done)
		return
	}
	sg.io.RLock() // under mu, so the segment cannot be closed in between
	l.mu.Unlock()

	err := l.syncFile(sg.f)
	sg.io.RUnlock()
	l.syncs.Add(1)

	l.mu.Lock()
	if err != nil {
		l.failLocked(fmt.Errorf("sync segment %d: %w", sg.id, err))
	} else if target > l.synced {
		l.synced = target
	}
	l.roundDone = make(chan struct{})
	l.unlock()
	close(done)
}

// syncFile fsyncs f, a segment's file, and reports how long it took to
// Options.OnFsync.
func (l *Log) syncFile(f file) error {
	start := time.Now()
	err := f.Sync()
	if l.opts.OnFsync != nil {
		l.opts.OnFsync(time.Since(start), err)
	}
	return err
}
