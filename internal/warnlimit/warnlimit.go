// Package warnlimit rate-limits the warnings a front door logs about its clients'
// misbehaviour, per client host, so that a misbehaving client (or many connections
// from one) cannot flood the log.
package warnlimit

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// Interval is the least time between two warnings about the same client host.
const Interval = 10 * time.Second

// prune is the number of hosts remembered above which old entries are dropped.
const prune = 4096

// Limiter rate-limits warnings per client host. Its zero value is not usable: make
// one with New.
type Limiter struct {
	interval time.Duration

	mu   sync.Mutex // protects last
	last map[string]time.Time
}

// New returns a Limiter that lets one warning per host through each interval.
func New(interval time.Duration) *Limiter {
	return &Limiter{interval: interval, last: make(map[string]time.Time)}
}

// Allow reports whether a warning about host may be logged now, and if so notes it.
func (w *Limiter) Allow(host string) bool {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()

	if t, ok := w.last[host]; ok && now.Sub(t) < w.interval {
		return false
	}
	if len(w.last) >= prune {
		for h, t := range w.last {
			if now.Sub(t) >= w.interval {
				delete(w.last, h)
			}
		}
		if len(w.last) >= prune {
			clear(w.last) // a flood of hosts: forget them rather than grow
		}
	}
	w.last[host] = now
	return true
}

// Warn logs msg to log at warn level if Allow lets a warning about host through,
// and at debug level otherwise, so that nothing is lost to whoever debugs.
func (w *Limiter) Warn(log *slog.Logger, host, msg string, args ...any) {
	if w.Allow(host) {
		log.Warn(msg, args...)
		return
	}
	log.Debug(msg, args...)
}

// Host returns the host part of addr, the key Allow expects: connections from one
// machine share a limit whatever their ports.
func Host(addr net.Addr) string {
	s := addr.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}
