package broker

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// DefaultMaxMessageBytes is the message size limit when Config leaves it unset.
const DefaultMaxMessageBytes = 1 << 20

// DefaultSweepInterval is how often drained queues are looked at for removal.
const DefaultSweepInterval = time.Second

// Forever, as a wait, blocks until a message comes or the context ends.
const Forever time.Duration = math.MaxInt64

// Config holds what a Broker is built with. The zero value is a usable in-memory
// broker.
type Config struct {
	// MaxMessageBytes is the largest message a put accepts; 0 means
	// DefaultMaxMessageBytes.
	MaxMessageBytes int

	// Store records every change; nil keeps messages in memory only.
	Store storage.Store

	// CacheBytes bounds the payload bytes kept in memory for messages that the Store
	// also keeps; beyond it payloads are read back from the Store on get. 0 means no
	// bound. It has no effect with the memory store, whose payloads live nowhere else.
	CacheBytes int64

	// SweepInterval is how often drained queues are dropped from the table; a queue
	// goes once it has been empty and unused for a whole interval. 0 means
	// DefaultSweepInterval.
	SweepInterval time.Duration

	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger

	// MaxHeldBytes bounds what the broker holds over all queues: the payload bytes
	// of its messages, ready, deferred or leased, plus MessageOverhead for each. A
	// put of new messages that would go over it fails with ErrServerFull; messages
	// coming back or moving within the broker are never refused. 0 means no bound.
	MaxHeldBytes int64

	// DefaultLease is the lease of a reserve that names none on a queue whose
	// settings name none; 0 means DefaultLease.
	DefaultLease time.Duration
}

// Message is a message handed to a consumer. Payload belongs to the caller, who may
// hand its buffer back with Release once done with it.
type Message struct {
	Queue   string
	ID      uint64
	Payload []byte

	// DeadLetter is set on a message in a dead-letter queue: why it was set aside.
	DeadLetter *DeadLetter

	holder *payloadBuf // where Release sends the payload's buffer; nil: nowhere
	gen    uint64      // holder's gen when the message got it
}

// DeadLetter says where a dead-lettered message came from and why it left.
type DeadLetter struct {
	Queue  string // the queue it was dead-lettered from
	ID     uint64 // its ID there
	Reason string // ReasonMaxDeliveries or ReasonExpired
	Count  int    // how many times it had been delivered
}

// Reasons a message is dead-lettered.
const (
	ReasonMaxDeliveries = "max-deliveries"
	ReasonExpired       = "expired"
)

// Broker is the table of queues. Its methods may be called from any goroutine. Create
// one with New and stop it with Close.
type Broker struct {
	maxMessage   int
	store        storage.Store
	durable      bool // the store keeps records: state records are worth encoding
	log          *slog.Logger
	defaultLease time.Duration

	mu     sync.RWMutex // protects queues; exclusive only to add or drop a queue
	queues table

	nextID atomic.Uint64

	maxHeld   int64        // Config.MaxHeldBytes; 0: no limit, and held stays 0
	heldChunk int64        // what a queue reserves from held at once
	held      atomic.Int64 // see held.go

	leases      leaseTable // outstanding deliveries by ID
	timers      *timers    // lease deadlines and deferred messages' due times
	pendingDead atomic.Int64

	drainMu sync.Mutex // protects drained; taken after Queue.mu, never before
	drained []*Queue

	cacheLimit int64
	cacheUsed  atomic.Int64

	// Totals of queues already dropped, so that server totals survive the drop.
	retiredPuts  atomic.Uint64
	retiredGets  atomic.Uint64
	retiredAcks  atomic.Uint64
	retiredNacks atomic.Uint64
	emptyGets    atomic.Uint64
	waiting      atomic.Int64
	holdOrder    atomic.Uint64 // orders held queues by their first put, see Hold

	started time.Time
	closed  atomic.Bool
	done    chan struct{}
	wg      sync.WaitGroup

	// testHookPutLocked, when set, runs inside a put's critical section.
	testHookPutLocked func(queue string)

	clock idClock // when messages were put, roughly, for the age of the oldest
}

// New builds a broker, rebuilds its queues from cfg.Store and starts its sweeper.
func New(cfg Config) (*Broker, error) {
	b := &Broker{
		maxMessage:   cfg.MaxMessageBytes,
		store:        cfg.Store,
		log:          cfg.Logger,
		defaultLease: cfg.DefaultLease,
		queues:       newTable(),
		timers:       newTimers(),
		cacheLimit:   cfg.CacheBytes,
		maxHeld:      max(cfg.MaxHeldBytes, 0),
		heldChunk:    heldChunkFor(cfg.MaxHeldBytes),
		started:      time.Now(),
		done:         make(chan struct{}),
	}
	if b.defaultLease <= 0 {
		b.defaultLease = DefaultLease
	}
	if b.maxMessage <= 0 {
		b.maxMessage = DefaultMaxMessageBytes
	}
	if b.store == nil {
		b.store = storage.Memory{}
	}
	_, memory := b.store.(storage.Memory)
	b.durable = !memory
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("component", "broker")

	if err := b.recover(); err != nil {
		return nil, err
	}
	// Recovered messages all have IDs below this sample: their age counts from now.
	b.clock.sample(b.nextID.Load(), time.Now())

	interval := cfg.SweepInterval
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	b.wg.Go(func() { b.sweepLoop(interval) })
	b.wg.Go(b.timerLoop)
	return b, nil
}

// MaxMessageBytes returns the largest message a put accepts.
func (b *Broker) MaxMessageBytes() int { return b.maxMessage }

// Put appends a copy of payload to the tail of the named queue, creating the queue if
// needed, and returns the message's ID once the store holds it durably.
func (b *Broker) Put(ctx context.Context, queue string, payload []byte) (uint64, error) {
	return b.put(ctx, queue, payload, false)
}

// PutFront is Put at the head of the queue: the message is the next one taken.
func (b *Broker) PutFront(ctx context.Context, queue string, payload []byte) (uint64, error) {
	return b.put(ctx, queue, payload, true)
}

// Get takes the message at the head of the named queue. When the queue is empty it
// waits up to wait for a message (0: not at all; Forever: until ctx ends) and then
// returns ErrEmpty.
func (b *Broker) Get(ctx context.Context, queue string, wait time.Duration) (Message, error) {
	return b.GetAny(ctx, []string{queue}, wait)
}

// GetAny takes the first message of the first non-empty queue among queues, looked at
// in the order given; if all are empty it waits, as Get does, for a put on any of
// them. Waiters are served in the order they began to wait.
func (b *Broker) GetAny(
	ctx context.Context, queues []string, wait time.Duration,
) (Message, error) {
	return b.take(ctx, queues, wait, false)
}

// PopBack takes the message at the tail of the named queue, or returns ErrEmpty.
func (b *Broker) PopBack(ctx context.Context, queue string) (Message, error) {
	return b.take(ctx, []string{queue}, 0, true)
}

// PopBackAny is GetAny taking from the tails of the queues (RESP BRPOP).
func (b *Broker) PopBackAny(
	ctx context.Context, queues []string, wait time.Duration,
) (Message, error) {
	return b.take(ctx, queues, wait, true)
}

func (b *Broker) take(
	ctx context.Context, queues []string, wait time.Duration, back bool,
) (Message, error) {
	if err := b.checkGet(queues, wait); err != nil {
		return Message{}, err
	}

	for _, name := range queues {
		q := b.lookup(name, false)
		if q == nil {
			continue
		}
		if d, ok := b.tryTake(q, back); ok {
			return b.finish(ctx, d)
		}
	}

	if wait == 0 {
		b.emptyGets.Add(1)
		return Message{}, ErrEmpty
	}
	return b.await(ctx, queues, wait, back)
}

// Len returns the number of messages in the named queue; 0 for an unknown queue.
func (b *Broker) Len(queue string) (int, error) {
	if err := ValidateKey(queue); err != nil {
		return 0, err
	}
	q := b.lookup(queue, false)
	if q == nil {
		return 0, nil
	}
	return int(q.depth.Load()), nil
}

// Close stops the broker: blocked gets return ErrClosed, later calls fail, and the
// store is closed. Front doors should stop their connections first. Close is
// idempotent.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(b.done)
	b.wg.Wait()

	if err := b.store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

func (b *Broker) checkPut(queue string, payload []byte) error {
	if err := ValidateKey(queue); err != nil {
		return err
	}
	if len(payload) > b.maxMessage {
		return fmt.Errorf("%w: %d bytes, over the limit of %d",
			ErrMessageTooLarge, len(payload), b.maxMessage)
	}
	if b.closed.Load() {
		return ErrClosed
	}
	return nil
}

func (b *Broker) checkGet(queues []string, wait time.Duration) error {
	if len(queues) == 0 {
		return fmt.Errorf("%w: no queue named", ErrInvalidKey)
	}
	for _, name := range queues {
		if err := ValidateKey(name); err != nil {
			return err
		}
	}
	if wait < 0 {
		return fmt.Errorf("%w: %v is negative", ErrInvalidWait, wait)
	}
	if b.closed.Load() {
		return ErrClosed
	}
	return nil
}

// lookup returns the named queue, creating it when create is set (else nil if it
// does not exist). The returned queue may be dropped at any moment after: callers
// check Queue.dead under its lock and look again.
func (b *Broker) lookup(name string, create bool) *Queue {
	b.mu.RLock()
	q := b.queues.get(name)
	b.mu.RUnlock()
	if q != nil || !create {
		return q
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if q = b.queues.get(name); q == nil {
		q = newQueue(name)
		b.queues.add(q)
		// Whatever created it may fail or find nothing to do (a refused put, a move
		// from an empty queue): the sweeper looks at every new queue, so one left
		// idle never stays in the table.
		q.sweepPending = true
		b.drainMu.Lock()
		b.drained = append(b.drained, q)
		b.drainMu.Unlock()
	}
	return q
}

// lockLive returns the named queue, created if needed, locked and not dropped.
func (b *Broker) lockLive(name string) *Queue {
	for {
		q := b.lookup(name, true)
		q.mu.Lock()
		if !q.dead {
			return q
		}
		q.mu.Unlock()
	}
}

func (b *Broker) put(ctx context.Context, name string, payload []byte, front bool) (uint64, error) {
	id, ticket, err := b.appendPutCopy(name, payload, front)
	if err != nil {
		return 0, err
	}
	if err := b.store.Wait(ctx, ticket); err != nil {
		return 0, fmt.Errorf("put %d on queue %q: %w", id, name, err)
	}
	return id, nil
}

// appendPutCopy is appendPut with the broker's copy of payload drawn from the payload
// pools (see copyPayload), so that a put costs no allocation in steady state.
func (b *Broker) appendPutCopy(
	name string, payload []byte, front bool,
) (uint64, storage.Ticket, error) {
	if err := b.checkPut(name, payload); err != nil {
		return 0, 0, err
	}
	e := entry{payload: copyPayload(payload), size: len(payload)}

	q := b.lockLive(name)
	if b.testHookPutLocked != nil {
		b.testHookPutLocked(name)
	}
	if err := b.reserveHeldLocked(q, 1, int64(e.size)); err != nil {
		q.mu.Unlock()
		return 0, 0, err
	}
	e.id = b.nextID.Add(1) - 1
	ticket, err := b.offerLocked(q, e, front)
	q.mu.Unlock()
	if err != nil {
		return 0, 0, err
	}
	return e.id, ticket, nil
}

// offerLocked records e as put on q and hands it to the first waiter, or queues it.
// It is the way in for new messages, so it keeps q's limits and default TTL.
func (b *Broker) offerLocked(q *Queue, e entry, front bool) (storage.Ticket, error) {
	if s := q.settings.Load(); s != nil {
		return b.offerSetLocked(q, s, e, front)
	}
	ticket, err := b.appendPutLocked(q, &e, front)
	if err != nil {
		return 0, err
	}
	b.admitLocked(q, e, front)
	return ticket, nil
}

// putBackLocked records e as put on q again, at the head or the tail, and hands it on
// as offerLocked does, but ignores q's limits: a message coming back is never
// refused or made to push another out.
func (b *Broker) putBackLocked(q *Queue, e entry, front bool) (storage.Ticket, error) {
	ticket, err := b.appendPutLocked(q, &e, front)
	if err != nil {
		return 0, err
	}
	if e.meta != nil {
		// Its state (TTL, count, dead-letter note) goes with the new put.
		t, err := b.appendStateLocked(q, &e, storage.OpReturn, 0, time.Time{})
		if err != nil {
			b.log.Error("cannot record the state of a message put back", "queue", q.name,
				"msg_id", e.id, "err", err)
		}
		ticket = max(ticket, t)
	}
	b.admitLocked(q, e, front)
	return ticket, nil
}

// appendPutLocked records e as put at the head (front) or tail of q.
func (b *Broker) appendPutLocked(q *Queue, e *entry, front bool) (storage.Ticket, error) {
	pos := q.nextPosLocked(front)
	ticket, err := b.storePutLocked(q, e, pos, front)
	if err != nil {
		return 0, err
	}
	if e.meta != nil {
		e.meta.pos, e.meta.returned = pos, false
		b.scheduleExpiry(e.meta, e.id)
	}
	b.admitToCache(e)
	b.holdLocked(q, e)
	q.puts.Add(1)
	return ticket, nil
}

// storePutLocked appends the put of e at pos to the store and sets e.loc. The memory
// store keeps nothing, so it is not called at all: with many queues, filling q.rec
// would cost a cache miss per put.
func (b *Broker) storePutLocked(
	q *Queue, e *entry, pos int64, front bool,
) (storage.Ticket, error) {
	if !b.durable {
		return 0, nil
	}
	op := storage.OpPut
	if front {
		op = storage.OpPutFront
	}
	rec := q.recordLocked(storage.Record{
		Op: op, Queue: q.name, ID: e.id, Pos: pos, Payload: e.payload,
	})
	loc, ticket, err := b.store.Append(rec)
	rec.Payload = nil
	if err != nil {
		return 0, &StoreError{Record: op.String(), Queue: q.name, Err: err}
	}
	e.loc = loc
	return ticket, nil
}

// admitLocked hands e, recorded as in q, to the first waiter on q, or queues it at
// the head (front) or tail. While q is held (a Hold, or a push of several messages)
// it only queues e: the waiters are served when the hold ends.
func (b *Broker) admitLocked(q *Queue, e entry, front bool) {
	if q.held > 0 {
		if q.heldFirstPut == 0 {
			q.heldFirstPut = b.holdOrder.Add(1)
		}
		q.pushLocked(e, front)
		return
	}
	w := q.claimWaiterLocked()
	if w == nil {
		q.pushLocked(e, front)
		return
	}

	d := delivery{queue: q.name, e: e, back: w.back}
	if w.reserve != nil {
		d.lease, d.ticket, d.err = b.leaseLocked(q, e, w.reserve, time.Now())
	} else {
		d.ticket, d.err = b.recordTakeLocked(q, e)
	}
	if d.err != nil {
		q.pushLocked(e, true) // the put stands; the waiter gets the error
	} else {
		q.ops += 2 // a put and a take that never touched the ring
		q.gets.Add(1)
	}
	w.ch <- d
}

// tryTake takes the head (or tail) entry of q if it has one.
func (b *Broker) tryTake(q *Queue, back bool) (delivery, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()

	if q.dead {
		return delivery{}, false
	}
	b.dropExpiredEndLocked(q, back)
	if q.ready.len() == 0 {
		return delivery{}, false
	}
	return b.takeLocked(q, back), true
}

// takeLocked pops an entry from a non-empty q and records the take. If the store
// refuses the take, the entry stays where it was and the delivery carries the error.
func (b *Broker) takeLocked(q *Queue, back bool) delivery {
	e := q.popLocked(back)
	d := delivery{queue: q.name, e: e, back: back}
	d.ticket, d.err = b.recordTakeLocked(q, e)
	if d.err != nil {
		q.pushLocked(e, !back)
		return d
	}

	q.gets.Add(1)
	if q.idleLocked() {
		b.noteDrainedLocked(q)
	}
	return d
}

// recordTakeLocked records that e's message left q for good, and ends its state
// record if it has one.
func (b *Broker) recordTakeLocked(q *Queue, e entry) (storage.Ticket, error) {
	var ticket storage.Ticket
	if b.durable { // the memory store keeps nothing, see storePutLocked
		rec := q.recordLocked(storage.Record{
			Op: storage.OpTake, Queue: q.name, ID: e.id, Ref: e.loc,
		})
		var err error
		if _, ticket, err = b.store.Append(rec); err != nil {
			return 0, &StoreError{Record: fmt.Sprintf("take of %d", e.id), Queue: q.name,
				Err: err}
		}
	}
	b.cancelExpiry(e.meta)
	if e.meta != nil && e.meta.stateID != 0 {
		var err error
		if ticket, err = b.endStateOf(q.name, &e); err != nil {
			return 0, err
		}
	}
	b.unholdLocked(q, &e)
	return ticket, nil
}

// endStateOf records the end of e's state record, if it has one, and returns the
// ticket to wait on.
func (b *Broker) endStateOf(queue string, e *entry) (storage.Ticket, error) {
	if e.meta == nil || e.meta.stateID == 0 {
		return 0, nil
	}
	ticket, err := b.endRecord(queue, e.meta.stateID, e.meta.stateLoc, 0)
	if err != nil {
		return 0, err
	}
	e.meta.stateID = 0
	return ticket, nil
}

// finish waits until the take behind d is durable and returns its message, reading
// the payload back from the store if the cache did not keep it.
func (b *Broker) finish(ctx context.Context, d delivery) (Message, error) {
	if d.err != nil {
		return Message{}, d.err
	}
	if err := b.store.Wait(ctx, d.ticket); err != nil {
		if ctx.Err() != nil {
			// The caller left while the take was being made durable: nobody will
			// receive the message, so it goes back to the end it was taken from.
			b.requeue(d)
		}
		return Message{}, fmt.Errorf("get %d from queue %q: %w", d.e.id, d.queue, err)
	}

	return b.takenMessage(d)
}

// takenMessage returns the message a take delivered, which owns the payload's buffer
// from now on: the broker no longer refers to it.
func (b *Broker) takenMessage(d delivery) (Message, error) {
	payload, err := b.payload(d.e)
	if err != nil {
		return Message{}, err
	}
	m := Message{Queue: d.queue, ID: d.e.id, Payload: payload, DeadLetter: d.e.deadLetter()}
	if d.e.payload != nil {
		m.own()
	}
	return m, nil
}

// payload returns e's bytes, from memory or from the store, and releases its share
// of the cache.
func (b *Broker) payload(e entry) ([]byte, error) {
	if e.payload != nil || e.size == 0 {
		if !e.loc.IsZero() {
			b.cacheUsed.Add(-int64(e.size))
		}
	}
	return b.peekPayload(e)
}

// admitToCache decides whether e keeps its payload in memory. Messages the store does
// not keep (zero location) always do; others only while the cache has room.
func (b *Broker) admitToCache(e *entry) {
	if e.loc.IsZero() || e.size == 0 {
		return
	}
	if b.cacheLimit > 0 && b.cacheUsed.Load()+int64(e.size) > b.cacheLimit {
		e.payload = nil
		return
	}
	b.cacheUsed.Add(int64(e.size))
}

// await parks a waiter on every named queue and blocks until a put claims it, the
// wait ends, ctx ends or the broker closes.
func (b *Broker) await(
	ctx context.Context, names []string, wait time.Duration, back bool,
) (Message, error) {
	d, err := b.awaitDelivery(ctx, names, wait, back, nil)
	if err != nil {
		return Message{}, err
	}
	return b.finish(ctx, d)
}

// awaitDelivery is await returning the delivery itself: a take, or a lease when r is
// set. An error means no message was taken; d.err, a take the store refused.
func (b *Broker) awaitDelivery(
	ctx context.Context, names []string, wait time.Duration, back bool, r *reserveReq,
) (delivery, error) {
	return b.awaitWaiter(ctx, newWaiter(names, back, r), wait)
}

// awaitWaiter parks w and blocks as awaitDelivery does. A message a put claimed w for
// as it gave up is still taken on timeout; if the caller is gone, it goes back to the
// end of its queue it came from.
func (b *Broker) awaitWaiter(ctx context.Context, w *waiter, wait time.Duration) (delivery, error) {
	d, late, cause := b.park(ctx, w, wait)
	switch {
	case cause == nil:
		return d, nil
	case !late:
		return delivery{}, cause
	case cause == ErrEmpty:
		return d, nil
	}
	b.requeue(d)
	return delivery{}, cause
}

// park registers w on its queues and blocks until a message is handed to it (cause
// nil), or the wait runs out (ErrEmpty), ctx ends or the broker closes. When w gives
// up, late reports that a put claimed it at that very moment: d is then a message
// already taken for it, which the caller must deliver or put back.
func (b *Broker) park(
	ctx context.Context, w *waiter, wait time.Duration,
) (d delivery, late bool, cause error) {
	nodes, d, took := b.register(w, w.queues, w.back)
	defer b.unregister(nodes)
	if took {
		return d, false, nil
	}

	// Counted once in line, not before: a client that sees n waiting in the stats
	// knows that the n are queued for a message in the order they came.
	b.waiting.Add(1)
	defer b.waiting.Add(-1)

	var timeout <-chan time.Time
	if wait != Forever {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}

	select {
	case d := <-w.ch:
		return d, false, nil
	case <-timeout:
		cause = ErrEmpty
	case <-ctx.Done():
		cause = ctx.Err()
	case <-b.done:
		cause = ErrClosed
	}

	if w.state.CompareAndSwap(waiting, cancelled) {
		if cause == ErrEmpty {
			b.emptyGets.Add(1)
		}
		return delivery{}, false, cause
	}
	return <-w.ch, true, cause
}

// register parks w on each named queue in order. If a queue turns out to have a
// message, w takes it itself (took is set) unless a put already claimed w; in both
// cases it parks no further.
func (b *Broker) register(
	w *waiter, names []string, back bool,
) (nodes []*waitNode, d delivery, took bool) {
	for _, name := range names {
		q := b.lockLive(name)
		b.dropUnfitLocked(q, back, w.reserve != nil)
		if q.ready.len() > 0 {
			if w.state.CompareAndSwap(waiting, cancelled) {
				d = b.firstLocked(q, back, w.reserve)
				took = true
			}
			q.mu.Unlock()
			return nodes, d, took
		}

		n := &waitNode{w: w, q: q}
		q.waiters.pushBack(n)
		q.mu.Unlock()
		nodes = append(nodes, n)
	}
	return nodes, d, false
}

// unregister unlinks the nodes of a waiter that is done; queues left idle become
// candidates for removal.
func (b *Broker) unregister(nodes []*waitNode) {
	for _, n := range nodes {
		q := n.q
		q.mu.Lock()
		q.waiters.remove(n)
		if q.idleLocked() && !q.dead {
			b.noteDrainedLocked(q)
		}
		q.mu.Unlock()
	}
}

// requeue puts the claimed messages of a waiter that has gone back at the end of
// their queue they were taken from (the tail for BRPOP), where the next waiter or
// get from that end finds them, in their order.
func (b *Broker) requeue(d delivery) {
	if d.err != nil {
		return // the take was never recorded, so the message never left its queue
	}
	if d.lease != nil {
		b.unlease(d.lease)
		return
	}
	for i := len(d.more) - 1; i >= 0; i-- {
		b.requeueEntry(d.queue, d.more[i], d.back)
	}
	b.requeueEntry(d.queue, d.e, d.back)
}

// requeueEntry puts e, taken from the named queue's tail (back) or head, back there.
func (b *Broker) requeueEntry(queue string, e entry, back bool) {
	if e.payload == nil && e.size > 0 {
		p, err := b.store.ReadPayload(e.loc)
		if err != nil {
			b.log.Error("message lost: cannot read it back to requeue",
				"queue", queue, "msg_id", e.id, "err", err)
			return
		}
		e.payload = p
	} else if !e.loc.IsZero() {
		b.cacheUsed.Add(-int64(e.size))
	}

	q := b.lockLive(queue)
	_, err := b.putBackLocked(q, e, !back)
	q.mu.Unlock()
	if err != nil {
		b.log.Error("message lost: cannot requeue it", "queue", queue, "msg_id", e.id,
			"err", err)
	}
}

// Ready returns nil while the broker takes work: ErrClosed once it is closed, the
// store's failure when its store stopped taking writes (see storage.Failer), or an
// error wrapping ErrDiskFull while the store refuses puts for a full disk (see
// storage.SpaceReporter; gets are still served), for a readiness check to report.
func (b *Broker) Ready() error {
	if b.closed.Load() {
		return ErrClosed
	}
	if f, ok := b.store.(storage.Failer); ok {
		if err := f.Err(); err != nil {
			return fmt.Errorf("store failed: %w", err)
		}
	}
	if r, ok := b.store.(storage.SpaceReporter); ok {
		if err := r.DiskFull(); err != nil {
			return err
		}
	}
	return nil
}
