package broker

import (
	"slices"
	"strings"
	"time"
)

// Stats is a snapshot of the broker's totals and of each queue. Counters are read
// without stopping traffic, so totals may be off by the operations in flight.
type Stats struct {
	Uptime    time.Duration
	Queues    int
	Messages  int64
	Bytes     int64
	Puts      uint64
	Gets      uint64
	Acks      uint64 // deliveries acknowledged
	Nacks     uint64 // deliveries given back by their consumer
	EmptyGets uint64
	Waiting   int64 // blocked gets and reserves
	Inflight  int64 // messages under a lease
	Deferred  int64 // messages waiting for their delay
	CacheUsed int64 // payload bytes in memory that the store also keeps
	HeldBytes int64 // what counts toward MaxHeld (0 without a limit), see HeldBytes
	MaxHeld   int64 // the limit on HeldBytes; 0: none

	QueueStats []QueueStats // sorted by name
}

// QueueStats describes one queue.
type QueueStats struct {
	Name     string
	Messages int64
	Bytes    int64
	Puts     uint64 // since the queue was created
	Gets     uint64
	Acks     uint64
	Nacks    uint64
	Waiting  int // blocked gets and reserves

	Inflight     int64  // messages under a lease
	Deferred     int64  // messages waiting for their delay
	Expired      uint64 // messages whose TTL ran out (dropped or dead-lettered)
	DeadLettered uint64 // messages moved from this queue to its dead-letter queue
	Dropped      uint64 // messages dropped from the head by OverflowDropOldest
	Settings     QueueSettings

	// OldestAge is how long ago, at least, the message at the head of the queue (the
	// next to be delivered) was put, to within a sweep interval; 0 when the queue is
	// empty. Messages recovered at start count as put then.
	OldestAge time.Duration
}

// Stats returns a snapshot of the broker and, up to limit queues (0: all), of each
// queue, sorted by name.
func (b *Broker) Stats(limit int) Stats {
	s := Stats{
		Uptime:    time.Since(b.started),
		EmptyGets: b.emptyGets.Load(),
		Waiting:   b.waiting.Load(),
		CacheUsed: b.cacheUsed.Load(),
		HeldBytes: b.held.Load(),
		MaxHeld:   b.maxHeld,
	}

	// The sweeper moves a dropped queue's counts to the retired totals under the
	// exclusive lock, so reading both under the shared lock never counts one twice
	// or not at all.
	b.mu.RLock()
	s.Puts = b.retiredPuts.Load()
	s.Gets = b.retiredGets.Load()
	s.Acks = b.retiredAcks.Load()
	s.Nacks = b.retiredNacks.Load()
	queues := make([]*Queue, 0, b.queues.len())
	b.queues.all(func(q *Queue) { queues = append(queues, q) })
	b.mu.RUnlock()

	slices.SortFunc(queues, func(x, y *Queue) int { return strings.Compare(x.name, y.name) })
	s.Queues = len(queues)
	now := time.Now()
	for i, q := range queues {
		qs := q.stats()
		if id := q.peekHeadID(); id != 0 {
			qs.OldestAge = b.clock.ageOf(id, now)
		}
		s.Messages += qs.Messages
		s.Bytes += qs.Bytes
		s.Puts += qs.Puts
		s.Gets += qs.Gets
		s.Acks += qs.Acks
		s.Nacks += qs.Nacks
		s.Inflight += qs.Inflight
		s.Deferred += qs.Deferred
		if limit <= 0 || i < limit {
			s.QueueStats = append(s.QueueStats, qs)
		}
	}
	return s
}

// QueueStats returns the stats of the queue named name, as Stats would list them,
// and whether the queue exists; it reads that queue only, whatever the number of
// queues.
func (b *Broker) QueueStats(name string) (QueueStats, bool) {
	q := b.lookup(name, false)
	if q == nil {
		return QueueStats{Name: name}, false
	}
	qs := q.stats()
	if id := q.peekHeadID(); id != 0 {
		qs.OldestAge = b.clock.ageOf(id, time.Now())
	}
	return qs, true
}

// QueueNames returns the names of the queues in the table, sorted.
func (b *Broker) QueueNames() []string {
	b.mu.RLock()
	names := make([]string, 0, b.queues.len())
	b.queues.all(func(q *Queue) { names = append(names, q.name) })
	b.mu.RUnlock()

	slices.Sort(names)
	return names
}

// stats reads q's counters without its lock, so a busy queue never delays stats.
func (q *Queue) stats() QueueStats {
	return QueueStats{
		Name:     q.name,
		Messages: q.depth.Load(),
		Bytes:    q.bytes.Load(),
		Puts:     q.puts.Load(),
		Gets:     q.gets.Load(),
		Acks:     q.acks.Load(),
		Nacks:    q.nacks.Load(),
		Waiting:  q.waiters.len(),

		Inflight:     q.inflight.Load(),
		Deferred:     q.deferred.Load(),
		Expired:      q.expired.Load(),
		DeadLettered: q.deadLettered.Load(),
		Dropped:      q.dropped.Load(),
		Settings:     q.settingsOrZero(),
	}
}

// peekHeadID returns the ID of the message at q's head, or 0 if q is empty. Stats must
// not wait for a busy queue, so when q's lock is held it returns what it saw last.
func (q *Queue) peekHeadID() uint64 {
	if !q.mu.TryLock() {
		return q.headID.Load()
	}
	var id uint64
	if q.ready.len() > 0 {
		id = q.ready.idAt(0)
	}
	q.mu.Unlock()

	q.headID.Store(id)
	return id
}

func (q *Queue) settingsOrZero() QueueSettings {
	if s := q.settings.Load(); s != nil {
		return *s
	}
	return QueueSettings{}
}
