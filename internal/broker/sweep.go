package broker

import "time"

// sweepChunk bounds how many queues one hold of the table lock looks at, so a sweep
// of many drained queues never stalls puts and gets for long.
const sweepChunk = 256

// noteDrainedLocked puts q on the list of queues to look at in the next sweep.
func (b *Broker) noteDrainedLocked(q *Queue) {
	if q.sweepPending {
		return
	}
	q.sweepPending = true

	b.drainMu.Lock()
	b.drained = append(b.drained, q)
	b.drainMu.Unlock()
}

// noteIfIdleLocked puts q on the sweeper's list if it holds nothing now.
func (b *Broker) noteIfIdleLocked(q *Queue) {
	if q.idleLocked() && !q.dead {
		b.noteDrainedLocked(q)
	}
}

func (b *Broker) sweepLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()

	for {
		select {
		case <-b.done:
			return
		case now := <-t.C:
			b.sweep()
			b.clock.sample(b.nextID.Load(), now)
		}
	}
}

// sweep drops from the table every drained queue that is still empty and has not been
// used since the previous sweep; a queue used in between gets another interval. Only
// queues that drained are looked at, never the whole table.
func (b *Broker) sweep() (dropped int) {
	b.drainMu.Lock()
	candidates := b.drained
	b.drained = nil
	b.drainMu.Unlock()

	var again []*Queue
	for len(candidates) > 0 {
		n := min(len(candidates), sweepChunk)
		chunk := candidates[:n]
		candidates = candidates[n:]

		b.mu.Lock()
		for _, q := range chunk {
			switch b.sweepOneLocked(q) {
			case sweepDropped:
				dropped++
			case sweepAgain:
				again = append(again, q)
			}
		}
		b.mu.Unlock()
	}

	if len(again) > 0 {
		b.drainMu.Lock()
		b.drained = append(b.drained, again...)
		b.drainMu.Unlock()
	}
	return dropped
}

// What a sweep decided about one drained queue.
const (
	sweepForget  = iota // busy again: off the list until it drains anew
	sweepAgain          // used since the last look: look again next sweep
	sweepDropped        // idle: gone from the table
)

// sweepOneLocked drops q if it is idle and unused since the last look. The caller
// holds b.mu exclusively.
func (b *Broker) sweepOneLocked(q *Queue) int {
	q.mu.Lock()
	defer q.mu.Unlock()

	switch {
	case q.dead:
		return sweepForget
	case !q.idleLocked():
		q.sweepPending = false
		return sweepForget
	case q.ops != q.sweptOps:
		q.sweptOps = q.ops
		return sweepAgain
	}

	b.queues.remove(q)
	b.releaseBudgetLocked(q)
	q.dead = true
	q.sweepPending = false
	b.retiredPuts.Add(q.puts.Load())
	b.retiredGets.Add(q.gets.Load())
	b.retiredAcks.Add(q.acks.Load())
	b.retiredNacks.Add(q.nacks.Load())
	return sweepDropped
}
