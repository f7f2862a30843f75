package server

import (
	"sync"
	"time"
)

// warnInterval is the least time between two warnings about the same client host.
const warnInterval = 10 * time.Second

// warnPrune is the number of hosts remembered above which old entries are dropped.
const warnPrune = 4096

// warnLimiter rate-limits warnings per client host, so a misbehaving client cannot
// flood the log; what it suppresses is logged at debug level instead.
type warnLimiter struct {
	interval time.Duration

	mu   sync.Mutex // protects last
	last map[string]time.Time
}

func newWarnLimiter(interval time.Duration) *warnLimiter {
	return &warnLimiter{interval: interval, last: make(map[string]time.Time)}
}

// allow reports whether a warning about host may be logged now, and if so notes it.
func (w *warnLimiter) allow(host string) bool {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()

	if t, ok := w.last[host]; ok && now.Sub(t) < w.interval {
		return false
	}
	if len(w.last) >= warnPrune {
		for h, t := range w.last {
			if now.Sub(t) >= w.interval {
				delete(w.last, h)
			}
		}
		if len(w.last) >= warnPrune {
			clear(w.last) // a flood of hosts: forget them rather than grow
		}
	}
	w.last[host] = now
	return true
}
