package broker

import (
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// recover rebuilds the queues from the store's records, in log order, and sets the
// next message ID past every ID the store has seen.
func (b *Broker) recover() error {
	start := time.Now()

	next, err := b.store.Replay(func(rec *storage.Record, loc storage.Location) error {
		return b.replayOne(rec, loc)
	})
	if err != nil {
		return fmt.Errorf("recover queues: %w", err)
	}
	b.nextID.Store(max(next, 1))

	s := b.Stats(1)
	if _, memory := b.store.(storage.Memory); !memory {
		b.log.Info("recovered queues", "queues", s.Queues, "messages", s.Messages,
			"bytes", s.Bytes, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (b *Broker) replayOne(rec *storage.Record, loc storage.Location) error {
	q := b.lookup(rec.Queue, true)
	q.mu.Lock()
	defer q.mu.Unlock()

	switch rec.Op {
	case storage.OpPut, storage.OpPutFront:
		e := entry{id: rec.ID, payload: rec.Payload, size: len(rec.Payload), loc: loc}
		b.admitToCache(&e)
		q.pushLocked(e, rec.Op == storage.OpPutFront)
		q.puts.Add(1)
		return nil

	case storage.OpTake:
		i := q.indexLocked(rec.ID)
		if i < 0 {
			// The put was in a segment already deleted or compacted away.
			return nil
		}
		e := q.ready.removeAt(i)
		q.ops++
		q.depth.Add(-1)
		q.bytes.Add(-int64(e.size))
		if e.payload != nil && !e.loc.IsZero() {
			b.cacheUsed.Add(-int64(e.size))
		}
		if q.idleLocked() {
			b.noteDrainedLocked(q)
		}
		return nil
	}
	return fmt.Errorf("unknown record op %v for queue %q", rec.Op, rec.Queue)
}

// indexLocked finds the message with the given ID, looking at both ends first since
// takes nearly always remove the head (or, for RESP pops, the tail).
func (q *Queue) indexLocked(id uint64) int {
	n := q.ready.len()
	if n == 0 {
		return -1
	}
	if q.ready.at(0).id == id {
		return 0
	}
	if q.ready.at(n-1).id == id {
		return n - 1
	}
	for i := 1; i < n-1; i++ {
		if q.ready.at(i).id == id {
			return i
		}
	}
	return -1
}
