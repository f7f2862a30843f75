package bench

import (
	"context"
	"time"
)

// coarseMargin is how much of a wait a pacer leaves to its fine timer. The
// runtime's timers fire late by up to a millisecond when the process is idle (it
// waits for them in epoll_wait, whose timeout is in whole milliseconds, and a wait
// under 1ms becomes 1ms); that lateness would be charged to the server, since a
// paced put's latency counts from when it was due.
const coarseMargin = 2 * time.Millisecond

// pacer sleeps a producer until its next message is due. Long waits go to a Go
// timer, which also watches the context; the last coarseMargin goes to a fine
// timer where the system has one (Linux: a timerfd the runtime's poller waits on,
// which wakes it at the nanosecond asked, not at the next millisecond).
type pacer struct {
	coarse *time.Timer
	fine   *fineTimer // nil: none on this system, or it could not be made
}

func newPacer() *pacer {
	p := &pacer{coarse: time.NewTimer(time.Hour)}
	p.coarse.Stop()
	if ft, err := newFineTimer(); err == nil {
		p.fine = ft
	}
	return p
}

// waitUntil returns at due, or as soon after as the machine lets it. It returns
// false when ctx ended first.
func (p *pacer) waitUntil(ctx context.Context, due time.Time) bool {
	wait := time.Until(due)
	if wait <= 0 {
		return ctx.Err() == nil
	}
	if p.fine == nil || wait > coarseMargin {
		coarse := wait
		if p.fine != nil {
			coarse -= coarseMargin
		}
		p.coarse.Reset(coarse)
		select {
		case <-ctx.Done():
			p.coarse.Stop()
			return false
		case <-p.coarse.C:
		}
	}
	if wait = time.Until(due); wait > 0 && p.fine != nil {
		if err := p.fine.sleep(wait); err != nil {
			// A fine timer that fails leaves the coarse one; it only costs precision.
			p.fine.close()
			p.fine = nil
			return p.waitUntil(ctx, due)
		}
	}
	return ctx.Err() == nil
}

// close releases the fine timer.
func (p *pacer) close() {
	p.coarse.Stop()
	if p.fine != nil {
		p.fine.close()
	}
}
