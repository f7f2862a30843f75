package broker

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// replayed is a put seen during replay, with its place in its queue.
type replayed struct {
	e   entry
	pos int64
}

// replayedState is a state record seen during replay.
type replayedState struct {
	id  uint64
	op  storage.Op
	st  msgState
	loc storage.Location
}

// replayedRecord names a record to end: a state record superseded by a newer one,
// or one whose message is gone (a crash fell between the two records of a change).
type replayedRecord struct {
	id  uint64
	loc storage.Location
}

// replayQueue gathers one queue's live records during replay; takes remove them.
type replayQueue struct {
	live     map[uint64]replayed      // puts, by message ID
	states   map[uint64]replayedState // state records, by record ID
	settings *replayedState           // the newest settings record (st unused)
	set      QueueSettings
	stale    []replayedRecord
}

// recover rebuilds the queues from the store's records and sets the next message ID
// past every ID the store has seen (delivery IDs included: a lease record carries
// its delivery ID as its ID). Records come in log order, which after compaction is
// not queue order, so each queue's live puts are sorted by position at the end.
//
// Leases do not survive a restart: a message that was leased and not acked is ready
// again, among the returned messages at the head in message order, as if its lease
// had run out, with its delivery count kept, so its next delivery counts one more; a
// nacked message whose delay ended while the broker was down joins them. Deferred
// messages and TTLs are kept on disk as wall-clock times and turned back into
// monotonic deadlines here: a wall clock moved forward while the broker was down
// makes them due (or expired) that much earlier, one moved back, later. Once
// running, clock jumps do not matter.
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
	for _, name := range slices.Sorted(maps.Keys(queues)) {
		rq := queues[name]
		q, err := b.rebuild(name, rq, start)
		if err != nil {
			return fmt.Errorf("recover queue %q: %w", name, err)
		}
		if q == nil {
			continue
		}
		messages += q.depth.Load() + q.deferred.Load()
		size += q.bytes.Load() + q.deferredBytes
		for _, r := range rq.stale {
			if _, err := b.endRecord(name, r.id, r.loc, 0); errors.Is(err, ErrDiskFull) {
				// The stale record stays; the next start finds it stale again.
				b.log.Warn("disk full: stale state records left for the next start",
					"queue", name, "err", err)
				break
			} else if err != nil {
				return fmt.Errorf("recover queues: %w", err)
			}
		}
	}

	// Everything recovered counts, even over the limit: puts are refused until
	// takes bring the total under it.
	if b.maxHeld > 0 {
		b.held.Store(size + messages*MessageOverhead)
	}
	if b.durable {
		b.log.Info("recovered queues", "queues", b.queues.len(), "messages", messages,
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
		rq = &replayQueue{live: make(map[uint64]replayed), states: make(map[uint64]replayedState)}
		queues[rec.Queue] = rq
	}

	switch rec.Op {
	case storage.OpPut, storage.OpPutFront:
		b.forgetReplayed(rq, rec.ID) // a copy moved forward replaces the original
		e := entry{id: rec.ID, payload: rec.Payload, size: len(rec.Payload), loc: loc}
		b.admitToCache(&e)
		if e.payload != nil {
			e.payload = copyPayload(e.payload) // the store lends rec.Payload for this call
		}
		rq.live[rec.ID] = replayed{e: e, pos: rec.Pos}
	case storage.OpTake:
		// A take whose put is gone was compacted away with it: nothing to undo.
		b.forgetReplayed(rq, rec.ID)
		delete(rq.states, rec.ID)
		if rq.settings != nil && rq.settings.id == rec.ID {
			rq.settings = nil
		}
	case storage.OpLease, storage.OpDefer, storage.OpReturn, storage.OpDeadLetter:
		st, err := decodeState(rec.Payload)
		if err != nil {
			return fmt.Errorf("%w: %v %d on queue %q", err, rec.Op, rec.ID, rec.Queue)
		}
		rq.states[rec.ID] = replayedState{id: rec.ID, op: rec.Op, st: st, loc: loc}
	case storage.OpSettings:
		return replaySettings(rq, rec, loc)
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

func replaySettings(rq *replayQueue, rec *storage.Record, loc storage.Location) error {
	s, err := decodeSettings(rec.Payload)
	if err != nil {
		return fmt.Errorf("%w: settings %d of queue %q", err, rec.ID, rec.Queue)
	}
	if old := rq.settings; old != nil {
		if old.id > rec.ID {
			rq.stale = append(rq.stale, replayedRecord{rec.ID, loc})
			return nil
		}
		rq.stale = append(rq.stale, replayedRecord{old.id, old.loc})
	}
	rq.settings = &replayedState{id: rec.ID, loc: loc}
	rq.set = s
	return nil
}

// rebuild creates the named queue from its live records: settings, then each
// message with its newest state, ready ones in position order; their payloads were
// already admitted to the cache, or not, as they were replayed. It returns nil if
// the queue holds nothing worth keeping.
func (b *Broker) rebuild(name string, rq *replayQueue, now time.Time) (*Queue, error) {
	b.attachStates(rq, now)
	if len(rq.live) == 0 && rq.settings == nil {
		return nil, nil
	}

	q := newQueue(name)
	if rq.settings != nil {
		set := rq.set
		q.settings.Store(&set)
		q.settingsID, q.settingsLoc = rq.settings.id, rq.settings.loc
	}

	ready, leased, later := splitReplayed(rq, now)
	for _, r := range ready {
		q.pushLocked(r.e, false)
		q.puts.Add(1)
	}
	for _, r := range later {
		b.deferLocked(q, r.e, r.e.meta.dueAt)
		q.puts.Add(1)
	}
	for _, r := range rq.live {
		b.scheduleExpiry(r.e.meta, r.e.id) // one already past fires at once
	}
	if len(rq.live) > 0 {
		all := slices.Concat(ready, leased, later)
		q.headPos = slices.MinFunc(all, byPos).pos
		q.tailPos = slices.MaxFunc(all, byPos).pos + 1
	}
	b.queues.add(q)
	if err := b.returnLeasedLocked(q, leased); err != nil {
		return nil, err
	}
	return q, nil
}

// splitReplayed sorts a queue's live messages into those ready, in queue order
// (position, then message ID among the returned messages at the head, which share
// one); those to return to the head, last message first: the ones that were leased,
// and the nacked ones deferred to a time now past (as promote would return them);
// and those deferred past now.
func splitReplayed(rq *replayQueue, now time.Time) (ready, leased, later []replayed) {
	for _, r := range rq.live {
		switch m := r.e.meta; {
		case m != nil && m.dueAt.After(now):
			later = append(later, r)
		case m != nil && (m.leased || !m.dueAt.IsZero() && m.delivered()):
			m.dueAt = time.Time{}
			leased = append(leased, r)
		default:
			ready = append(ready, r)
		}
	}
	slices.SortFunc(ready, func(x, y replayed) int {
		return cmp.Or(cmp.Compare(x.pos, y.pos), cmp.Compare(x.e.id, y.e.id))
	})
	slices.SortFunc(leased, func(x, y replayed) int { return cmp.Compare(y.e.id, x.e.id) })
	return ready, leased, later
}

// returnLeasedLocked makes the messages that were leased when the broker stopped
// ready again, as if their leases had run out (and the nacked ones that came due
// while it was down, as if their delays had ended): each takes its place among the
// returned messages at q's head, in message order, with its delivery count kept (so
// its next delivery counts one more). The return is recorded, so that a later
// restart finds them where this one put them. leased is last message first, so each
// insertion is at the front of the returned messages.
//
// On a full disk the returns cannot be recorded: the messages are returned in
// memory all the same, as returnLocked does, since the store still holds them as
// leased, which the next restart returns too. Refusing to start would leave every
// message on the disk out of reach of the gets that would free it.
func (b *Broker) returnLeasedLocked(q *Queue, leased []replayed) error {
	unrecorded := 0
	for _, r := range leased {
		e := r.e
		e.meta.leased = false
		e.meta.pos, e.meta.returned = q.returnPosLocked(), true
		_, err := b.appendStateLocked(q, &e, storage.OpReturn, 0, time.Time{})
		if errors.Is(err, ErrDiskFull) {
			unrecorded++
		} else if err != nil {
			return fmt.Errorf("return leased message: %w", err)
		}
		q.insertReturnedLocked(e)
		q.puts.Add(1)
	}
	if unrecorded > 0 {
		b.log.Warn("disk full: returned leased messages without recording it",
			"queue", q.name, "messages", unrecorded)
	}
	return nil
}

func byPos(x, y replayed) int { return cmp.Compare(x.pos, y.pos) }

// attachStates gives each live put the newest of its state records; the others, and
// those of messages gone, are stale.
func (b *Broker) attachStates(rq *replayQueue, now time.Time) {
	states := slices.SortedFunc(maps.Values(rq.states), func(x, y replayedState) int {
		return cmp.Compare(x.id, y.id)
	})
	newest := make(map[uint64]replayedState, len(states))
	for _, s := range states {
		if _, ok := rq.live[s.st.msg]; !ok {
			rq.stale = append(rq.stale, replayedRecord{s.id, s.loc})
			continue
		}
		if old, ok := newest[s.st.msg]; ok {
			rq.stale = append(rq.stale, replayedRecord{old.id, old.loc})
		}
		newest[s.st.msg] = s
	}

	for msg, s := range newest {
		r := rq.live[msg]
		r.pos = s.st.pos
		r.e.meta = &meta{
			count:     s.st.count,
			pos:       s.st.pos,
			expiresAt: monotonic(s.st.expiresAt, now),
			dead:      s.st.dead,
			returned:  s.st.returned && s.op == storage.OpReturn,
			leased:    s.op == storage.OpLease,
			stateID:   s.id,
			stateLoc:  s.loc,
		}
		if s.op == storage.OpDefer {
			r.e.meta.dueAt = monotonic(s.st.dueAt, now)
		}
		rq.live[msg] = r
	}
}

// monotonic turns t, a wall-clock time read from disk, into a time on this
// process's monotonic clock, as far from now as the wall clock says.
func monotonic(t, now time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return now.Add(t.Sub(now.Round(0)))
}
