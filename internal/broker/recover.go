package broker

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// replayed is a put seen during replay, with its place in its queue.
type replayed struct {
	e   entry
	pos int64
}

// replayQueue gathers one queue's live puts during replay; takes remove them.
type replayQueue struct {
	live map[uint64]replayed
}

// recover rebuilds the queues from the store's records and sets the next message ID
// past every ID the store has seen. Records come in log order, which after compaction
// is not queue order, so each queue's live puts are sorted by position at the end.
func (b *Broker) recover() error {
	start := time.Now()
	queues := make(map[string]*replayQueue)

	next, err := b.store.Replay(func(rec *storage.Record, loc storage.Location) error {
		return b.replayOne(queues, rec, loc)
	})
	if err != nil {
		return fmt.Errorf("recover queues: %w", err)
	}
	b.nextID.Store(max(next, 1))

	var messages, size int64
	for name, rq := range queues {
		if len(rq.live) == 0 {
			continue
		}
		q := b.rebuild(name, rq)
		messages += q.depth.Load()
		size += q.bytes.Load()
	}

	if _, memory := b.store.(storage.Memory); !memory {
		b.log.Info("recovered queues", "queues", len(b.queues), "messages", messages,
			"bytes", size, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// replayOne applies one record. Payloads beyond the cache budget are dropped as they
// are read, so a backlog larger than memory can be recovered: the broker reads them
// back from the store on get.
func (b *Broker) replayOne(
	queues map[string]*replayQueue, rec *storage.Record, loc storage.Location,
) error {
	rq := queues[rec.Queue]
	if rq == nil {
		rq = &replayQueue{live: make(map[uint64]replayed)}
		queues[rec.Queue] = rq
	}

	switch rec.Op {
	case storage.OpPut, storage.OpPutFront:
		b.forgetReplayed(rq, rec.ID) // a copy moved forward replaces the original
		e := entry{id: rec.ID, payload: rec.Payload, size: len(rec.Payload), loc: loc}
		b.admitToCache(&e)
		rq.live[rec.ID] = replayed{e: e, pos: rec.Pos}
	case storage.OpTake:
		// A take whose put is gone was compacted away with it: nothing to undo.
		b.forgetReplayed(rq, rec.ID)
	default:
		return fmt.Errorf("unknown record op %v for queue %q", rec.Op, rec.Queue)
	}
	return nil
}

// forgetReplayed drops a live put seen earlier in the replay, with its cache share.
func (b *Broker) forgetReplayed(rq *replayQueue, id uint64) {
	r, ok := rq.live[id]
	if !ok {
		return
	}
	if r.e.payload != nil && !r.e.loc.IsZero() {
		b.cacheUsed.Add(-int64(r.e.size))
	}
	delete(rq.live, id)
}

// rebuild creates the named queue from its live puts, in position order; their
// payloads were already admitted to the cache, or not, as they were replayed.
func (b *Broker) rebuild(name string, rq *replayQueue) *Queue {
	items := make([]replayed, 0, len(rq.live))
	for _, r := range rq.live {
		items = append(items, r)
	}
	slices.SortFunc(items, func(x, y replayed) int { return cmp.Compare(x.pos, y.pos) })

	q := newQueue(name)
	q.headPos = items[0].pos
	q.tailPos = items[len(items)-1].pos + 1
	for _, r := range items {
		q.pushLocked(r.e, false)
		q.puts.Add(1)
	}
	b.queues[name] = q
	return q
}
