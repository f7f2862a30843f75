package broker

import (
	"slices"
	"sync"
	"time"
)

// maxClockSamples bounds the ID clock. When it is full every other sample goes, so the
// clock covers any span of time, with a resolution that coarsens as the span grows.
const maxClockSamples = 4096

// idSample says that at time at, the next message ID to hand out was id.
type idSample struct {
	id uint64
	at time.Time
}

// idClock tells roughly when a message was put from its ID alone, so that the age of a
// queue's oldest message costs nothing per message: IDs only grow, and the sweeper
// samples the next ID once per interval. A message with ID x was put before the first
// sample whose id is past x.
type idClock struct {
	mu      sync.Mutex // protects samples
	samples []idSample // ascending in id and in time
}

// sample records that id is the next ID at now. A sample whose id equals the last one
// adds nothing: the earlier time is the tighter bound.
func (c *idClock) sample(id uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if n := len(c.samples); n > 0 && c.samples[n-1].id >= id {
		return
	}
	if len(c.samples) == maxClockSamples {
		kept := c.samples[:0]
		for i, s := range c.samples {
			if i%2 == 0 || i == len(c.samples)-1 {
				kept = append(kept, s)
			}
		}
		c.samples = kept
	}
	c.samples = append(c.samples, idSample{id: id, at: now})
}

// putBy returns a time by which the message with the given ID had been put. ok is
// false for a message newer than the last sample.
func (c *idClock) putBy(id uint64) (at time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()

	i, _ := slices.BinarySearchFunc(c.samples, id+1, func(s idSample, target uint64) int {
		switch {
		case s.id < target:
			return -1
		case s.id > target:
			return 1
		}
		return 0
	})
	if i == len(c.samples) {
		return time.Time{}, false
	}
	return c.samples[i].at, true
}

// ageOf returns how long ago, at least, the message with the given ID was put: 0 for
// a message put since the last sample, less than a sweep interval ago.
func (c *idClock) ageOf(id uint64, now time.Time) time.Duration {
	at, ok := c.putBy(id)
	if !ok {
		return 0
	}
	return max(now.Sub(at), 0)
}
