package broker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyq/keyq/internal/wal"
	"pgregory.net/rapid"
)

// The model-based test drives a broker over a record log with random sequences of
// put (with delays and TTLs), get, reserve, ack, nack, touch, owner release, clock
// advance, restart and crash, and checks every answer against modelQueue, a plain
// description of what the broker promises. Time is synctest's: each action runs a
// microsecond after the previous one and durations are whole seconds, so no two
// deadlines ever fall on the same instant and the model never has to guess an order.

// modelMsg is one message as the model sees it.
type modelMsg struct {
	id      uint64
	payload string
	count   int   // deliveries so far
	pos     int64 // the broker's ready order is by pos, before and after restarts
	// returned: back at the head after a delivery; such messages share a pos, and
	// stand by ID among themselves
	returned bool
	expires  time.Time // zero: never
	due      time.Time // set while deferred
}

type modelLease struct {
	msg      *modelMsg
	deadline time.Time
	dur      time.Duration
	owned    bool
}

// modelQueue is the reference: a list, a table of leases, a set of deferred
// messages, and the counts of what expired or went to the dead-letter queue.
type modelQueue struct {
	ready     []*modelMsg // by pos
	leases    map[uint64]*modelLease
	deferred  []*modelMsg
	head      int64
	tail      int64
	maxDeliv  int
	toDLQ     bool // expired messages go to the dead-letter queue
	dead      int  // messages in the dead-letter queue
	expired   int
	delivered []uint64 // every delivery ID handed out, to ack stale ones too
	maxDID    uint64
}

// returnToHead puts msg back at the head: among the messages returned there before
// it (they share one position), in message order, ahead of those never delivered.
func (m *modelQueue) returnToHead(msg *modelMsg) {
	if len(m.ready) > 0 && m.ready[0].returned {
		msg.pos = m.ready[0].pos
	} else {
		m.head--
		msg.pos = m.head
	}
	msg.returned = true
	i := 0
	for i < len(m.ready) && m.ready[i].returned && m.ready[i].pos == msg.pos &&
		m.ready[i].id < msg.id {
		i++
	}
	m.ready = slices.Insert(m.ready, i, msg)
}

func (m *modelQueue) pushBack(msg *modelMsg) {
	m.tail++
	msg.pos, msg.returned = m.tail, false
	m.ready = append(m.ready, msg)
}

func (m *modelQueue) expire() {
	m.expired++
	if m.toDLQ {
		m.dead++
	}
}

// dropExpired drops expired messages at the head, as a take does.
func (m *modelQueue) dropExpired(now time.Time) {
	for len(m.ready) > 0 && !m.ready[0].expires.IsZero() && !now.Before(m.ready[0].expires) {
		m.ready = m.ready[1:]
		m.expire()
	}
}

// dropUnfit is dropExpired for a reserve: messages delivered MaxDeliveries times
// go to the dead-letter queue too.
func (m *modelQueue) dropUnfit(now time.Time) {
	m.dropExpired(now)
	for m.maxDeliv > 0 && len(m.ready) > 0 && m.ready[0].count >= m.maxDeliv {
		m.ready = m.ready[1:]
		m.dead++
		m.dropExpired(now)
	}
}

// requeue ends a lease: dead-letter, drop, defer or back at the head.
func (m *modelQueue) requeue(id uint64, now time.Time, delay time.Duration) {
	l := m.leases[id]
	delete(m.leases, id)
	if m.maxDeliv > 0 && l.msg.count >= m.maxDeliv {
		m.dead++
		return
	}
	m.putBack(l.msg, now, delay)
}

func (m *modelQueue) putBack(msg *modelMsg, now time.Time, delay time.Duration) {
	switch {
	case !msg.expires.IsZero() && !now.Before(msg.expires):
		m.expire()
	case delay > 0:
		msg.due = now.Add(delay)
		m.deferred = append(m.deferred, msg)
	default:
		m.returnToHead(msg)
	}
}

// advance runs the timers due by now, earliest first.
func (m *modelQueue) advance(now time.Time) {
	for {
		var at time.Time
		var lease uint64
		var def = -1
		// Leases due together (one batch) come back last-leased first.
		for id, l := range m.leases {
			if at.IsZero() || l.deadline.Before(at) || l.deadline.Equal(at) && id > lease {
				at, lease, def = l.deadline, id, -1
			}
		}
		for i, d := range m.deferred {
			if at.IsZero() || d.due.Before(at) {
				at, lease, def = d.due, 0, i
			}
		}
		// A ready message leaves when its TTL runs out, consumer or not.
		var ready = -1
		for i, msg := range m.ready {
			if !msg.expires.IsZero() && (at.IsZero() || msg.expires.Before(at)) {
				at, lease, def, ready = msg.expires, 0, -1, i
			}
		}
		if at.IsZero() || at.After(now) {
			return
		}
		if ready >= 0 {
			m.ready = slices.Delete(m.ready, ready, ready+1)
			m.expire()
			continue
		}
		if def >= 0 {
			msg := m.deferred[def]
			m.deferred = slices.Delete(m.deferred, def, def+1)
			msg.due = time.Time{}
			switch {
			case !msg.expires.IsZero() && !at.Before(msg.expires):
				m.expire()
			case msg.count > 0: // nacked with a delay: back at the head, in ID order
				m.returnToHead(msg)
			default: // a delayed put
				m.pushBack(msg)
			}
			continue
		}
		m.requeue(lease, at, 0)
	}
}

// restart ends every lease: their messages go back to the head as if the leases
// had run out at now, in message order (or expire, if their TTL ran out).
func (m *modelQueue) restart(now time.Time) {
	for _, l := range m.leases {
		m.putBack(l.msg, now, 0)
	}
	clear(m.leases)
}

// modelTest holds a broker, its store and the model it must match.
type modelTest struct {
	store *logStore // the record log; nil when walDir is set
	// walDir, when set, holds a real write-ahead log, opened anew by each restart.
	// A crash then closes it too: the log's own crash tests cover torn tails.
	walDir string
	b      *Broker
	m      *modelQueue
	owner  *Owner
	ctx    context.Context
	ops    int
}

func (mt *modelTest) open(t *rapid.T) {
	// A limit no sequence reaches, so that the held total is kept and checked.
	cfg := Config{Store: mt.store, SweepInterval: time.Hour, MaxHeldBytes: 1 << 40}
	if mt.walDir != "" {
		l, err := wal.Open(mt.walDir, wal.Options{SegmentBytes: 4096, Fsync: wal.FsyncNever,
			ReadGrace: time.Millisecond})
		if err != nil {
			t.Fatalf("open log: %v", err)
		}
		cfg.Store = l
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	mt.b = b
	mt.owner = b.NewOwner()
}

// tick moves the clock one microsecond, so every action has its own instant.
func (mt *modelTest) tick() {
	time.Sleep(time.Microsecond)
	synctest.Wait()
}

func (mt *modelTest) put(t *rapid.T) {
	n := 1
	if rapid.IntRange(0, 3).Draw(t, "batch") == 0 {
		n = rapid.IntRange(1, 4).Draw(t, "batch-size")
	}
	var payloads [][]byte
	for i := range n {
		payloads = append(payloads, fmt.Appendf(nil, "p%d.%d", mt.ops, i))
	}
	delay := time.Duration(rapid.IntRange(0, 4).Draw(t, "delay")) * time.Second
	ttl := time.Duration(rapid.IntRange(0, 12).Draw(t, "ttl")) * time.Second
	if rapid.Bool().Draw(t, "plain") {
		delay, ttl = 0, 0
	}
	ids, err := mt.b.PutBatch(mt.ctx, "q", payloads, PutOptions{Delay: delay, TTL: ttl})
	if err != nil || len(ids) != n {
		t.Fatalf("put %d: %v, %v", n, ids, err)
	}
	now := time.Now()
	for i, id := range ids {
		msg := &modelMsg{id: id, payload: string(payloads[i])}
		if ttl > 0 {
			msg.expires = now.Add(ttl)
		}
		if delay > 0 {
			mt.m.tail++
			msg.pos = mt.m.tail
			msg.due = now.Add(delay)
			mt.m.deferred = append(mt.m.deferred, msg)
			continue
		}
		mt.m.pushBack(msg)
	}
}

func (mt *modelTest) get(t *rapid.T) {
	n := rapid.IntRange(0, 3).Draw(t, "max")
	got, err := mt.b.GetBatch(mt.ctx, []string{"q"}, n, 0)
	var want []*modelMsg
	for len(want) < max(n, 1) {
		mt.m.dropExpired(time.Now())
		if len(mt.m.ready) == 0 {
			break
		}
		want = append(want, mt.m.ready[0])
		mt.m.ready = mt.m.ready[1:]
	}
	if len(want) == 0 {
		if !errors.Is(err, ErrEmpty) {
			t.Fatalf("get = %v, %v; want ErrEmpty", got, err)
		}
		return
	}
	if err != nil || len(got) != len(want) {
		t.Fatalf("get = %d messages, %v; want %d", len(got), err, len(want))
	}
	for i, w := range want {
		if got[i].ID != w.id || string(got[i].Payload) != w.payload {
			t.Fatalf("get[%d] = %d %q; want %d %q", i, got[i].ID, got[i].Payload, w.id,
				w.payload)
		}
	}
}

func (mt *modelTest) reserve(t *rapid.T) {
	lease := time.Duration(rapid.IntRange(1, 10).Draw(t, "lease")) * time.Second
	n := rapid.IntRange(1, 3).Draw(t, "max")
	owned := rapid.Bool().Draw(t, "owned")
	o := ReserveOptions{Lease: lease, Max: n}
	if owned {
		o.Owner = mt.owner
	}
	ds, err := mt.b.Reserve(mt.ctx, []string{"q"}, o)

	now := time.Now()
	var want []*modelMsg
	for len(want) < n {
		mt.m.dropUnfit(now)
		if len(mt.m.ready) == 0 {
			break
		}
		msg := mt.m.ready[0]
		mt.m.ready = mt.m.ready[1:]
		msg.count++
		mt.m.head--
		msg.pos, msg.returned = mt.m.head, false
		want = append(want, msg)
	}
	if len(want) == 0 {
		if !errors.Is(err, ErrEmpty) {
			t.Fatalf("reserve = %v, %v; want ErrEmpty", ds, err)
		}
		return
	}
	if err != nil || len(ds) != len(want) {
		t.Fatalf("reserve = %d deliveries, %v; want %d", len(ds), err, len(want))
	}
	for i, d := range ds {
		w := want[i]
		if d.ID != w.id || string(d.Payload) != w.payload || d.Count != w.count ||
			!d.Deadline.Equal(now.Add(lease)) || d.DeliveryID <= mt.m.maxDID {
			t.Fatalf("delivery %d = %+v; want id %d %q count %d, delivery id over %d",
				i, d, w.id, w.payload, w.count, mt.m.maxDID)
		}
		mt.m.maxDID = d.DeliveryID
		mt.m.delivered = append(mt.m.delivered, d.DeliveryID)
		mt.m.leases[d.DeliveryID] = &modelLease{msg: w, deadline: now.Add(lease), dur: lease,
			owned: owned}
	}
}

// pickDelivery draws a delivery ID, live or stale, or one never handed out.
func (mt *modelTest) pickDelivery(t *rapid.T) uint64 {
	if len(mt.m.delivered) == 0 || rapid.IntRange(0, 9).Draw(t, "unknown") == 0 {
		return mt.m.maxDID + 1000
	}
	return rapid.SampledFrom(mt.m.delivered).Draw(t, "delivery")
}

func (mt *modelTest) wantLive(t *rapid.T, what string, id uint64, err error) bool {
	_, live := mt.m.leases[id]
	if live && err != nil {
		t.Fatalf("%s %d = %v; want success", what, id, err)
	}
	if !live && !errors.Is(err, ErrNoDelivery) {
		t.Fatalf("%s %d = %v; want ErrNoDelivery", what, id, err)
	}
	return live
}

func (mt *modelTest) ack(t *rapid.T) {
	id := mt.pickDelivery(t)
	if mt.wantLive(t, "ack", id, mt.b.Ack(mt.ctx, id)) {
		delete(mt.m.leases, id)
	}
}

func (mt *modelTest) nack(t *rapid.T) {
	id := mt.pickDelivery(t)
	delay := time.Duration(rapid.IntRange(0, 3).Draw(t, "delay")) * time.Second
	if mt.wantLive(t, "nack", id, mt.b.Nack(mt.ctx, id, delay)) {
		mt.m.requeue(id, time.Now(), delay)
	}
}

func (mt *modelTest) touch(t *rapid.T) {
	id := mt.pickDelivery(t)
	lease := time.Duration(rapid.IntRange(0, 10).Draw(t, "lease")) * time.Second
	deadline, err := mt.b.Touch(mt.ctx, id, lease)
	if !mt.wantLive(t, "touch", id, err) {
		return
	}
	l := mt.m.leases[id]
	if lease == 0 {
		lease = l.dur
	}
	l.deadline = time.Now().Add(lease)
	if !deadline.Equal(l.deadline) {
		t.Fatalf("touch deadline = %v, want %v", deadline, l.deadline)
	}
}

func (mt *modelTest) release(t *rapid.T) {
	mt.b.ReleaseOwner(mt.owner)
	var ids []uint64
	for id, l := range mt.m.leases {
		if l.owned {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	slices.Reverse(ids) // the last leased goes back first
	for _, id := range ids {
		mt.m.requeue(id, time.Now(), 0)
	}
	mt.owner = mt.b.NewOwner()
}

func (mt *modelTest) advance(t *rapid.T) {
	d := time.Duration(rapid.IntRange(1, 8).Draw(t, "seconds")) * time.Second
	time.Sleep(d)
	synctest.Wait()
	mt.m.advance(time.Now())
}

func (mt *modelTest) restart(t *rapid.T, crash bool) {
	if crash && mt.walDir == "" {
		// A crash: the broker's goroutines stop, nothing is flushed or closed. The
		// record log holds every record appended so far, as a synced log would.
		mt.b.closed.Store(true)
		close(mt.b.done)
		mt.b.wg.Wait()
	} else if err := mt.b.Close(); err != nil {
		t.Fatal(err)
	}
	if mt.store != nil {
		mt.store.shuffle = rapid.Bool().Draw(t, "shuffle")
	}
	mt.open(t)
	mt.m.restart(time.Now())
}

func (mt *modelTest) check(t *rapid.T) {
	s := mt.b.Stats(0)
	var q, dlq QueueStats
	for _, qs := range s.QueueStats {
		switch qs.Name {
		case "q":
			q = qs
		case "q.dlq":
			dlq = qs
		}
	}
	if int(q.Messages) != len(mt.m.ready) || int(q.Inflight) != len(mt.m.leases) ||
		int(q.Deferred) != len(mt.m.deferred) || int(dlq.Messages) != mt.m.dead {
		t.Fatalf("ready %d inflight %d deferred %d dead %d; model %d %d %d %d", q.Messages,
			q.Inflight, q.Deferred, dlq.Messages, len(mt.m.ready), len(mt.m.leases),
			len(mt.m.deferred), mt.m.dead)
	}
	msgs, err := mt.b.Range("q", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if w := mt.m.ready[i]; m.ID != w.id || string(m.Payload) != w.payload {
			t.Fatalf("ready[%d] = %d %q, want %d %q", i, m.ID, m.Payload, w.id, w.payload)
		}
	}
	wantHeld(t, mt.b)
}

// TestBrokerMatchesModel is the model-based test of issue 4, over a record log.
// Unless -rapid.checks or -rapid.steps are given, it runs 1000 sequences of about
// 100 actions (about a second; -race, ten).
func TestBrokerMatchesModel(t *testing.T) {
	setDefaultFlag("rapid.checks", "1000")
	setDefaultFlag("rapid.steps", "100")
	runModel(t, func(*testing.T) *modelTest { return &modelTest{store: &logStore{}} })
}

// TestBrokerMatchesModelOverWAL runs the model-based test over the real log, with
// segments small enough that compaction moves live records around.
// Unless -rapid.checks or -rapid.steps are given, it runs 50 sequences of about 60
// actions (about five seconds).
func TestBrokerMatchesModelOverWAL(t *testing.T) {
	setDefaultFlag("rapid.checks", "50")
	setDefaultFlag("rapid.steps", "60")
	root := t.TempDir()
	n := 0
	runModel(t, func(t *testing.T) *modelTest {
		n++
		dir := filepath.Join(root, fmt.Sprint(n))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return &modelTest{walDir: dir}
	})
}

func runModel(t *testing.T, newTest func(*testing.T) *modelTest) {
	synctest.Test(t, func(t *testing.T) {
		steps := 0
		defer func() { t.Logf("%d actions", steps) }()
		// rapid asks a *testing.T for its deadline, which a bubble forbids: hide it.
		rapid.Check(bubbleTB{t}, func(rt *rapid.T) {
			mt := newTest(t)
			mt.ctx = context.Background()
			mt.m = &modelQueue{leases: make(map[uint64]*modelLease)}
			mt.open(rt)
			defer func() { mt.b.Close() }()
			start := time.Now()
			if rapid.Bool().Draw(rt, "settings") {
				mt.m.maxDeliv = rapid.IntRange(1, 3).Draw(rt, "max-deliveries")
				mt.m.toDLQ = rapid.Bool().Draw(rt, "expired-to-dlq")
				err := mt.b.SetQueue(mt.ctx, "q", QueueSettings{MaxDeliveries: mt.m.maxDeliv,
					ExpiredToDLQ: mt.m.toDLQ})
				if err != nil {
					rt.Fatal(err)
				}
			}

			step := func(f func(*rapid.T)) func(*rapid.T) {
				return func(t *rapid.T) {
					steps++
					mt.ops++
					mt.tick()
					f(t)
					synctest.Wait() // dead letters are moved by the timer loop
					if os.Getenv("KEYQ_MODEL_TRACE") != "" {
						t.Logf("t=%v ready=%v leases=%d deferred=%d", time.Since(start),
							mt.m.readyIDs(), len(mt.m.leases), len(mt.m.deferred))
					}
				}
			}
			rt.Repeat(map[string]func(*rapid.T){
				"put":     step(mt.put),
				"get":     step(mt.get),
				"reserve": step(mt.reserve),
				"ack":     step(mt.ack),
				"nack":    step(mt.nack),
				"touch":   step(mt.touch),
				"release": step(mt.release),
				"advance": step(mt.advance),
				"restart": step(func(t *rapid.T) { mt.restart(t, false) }),
				"crash":   step(func(t *rapid.T) { mt.restart(t, true) }),
				"":        mt.check,
			})
		})
	})
}

// bubbleTB is a *testing.T that rapid does not recognise as one.
type bubbleTB struct{ *testing.T }

func (m *modelQueue) readyIDs() []string {
	var ids []string
	for _, msg := range m.ready {
		ids = append(ids, fmt.Sprintf("%d/%d@%d", msg.id, msg.count, msg.pos))
	}
	return ids
}

// setDefaultFlag sets the named flag unless the command line did.
func setDefaultFlag(name, value string) {
	onCommandLine.Do(func() {
		flag.Visit(func(f *flag.Flag) { fromCommandLine[f.Name] = true })
	})
	if !fromCommandLine[name] {
		flag.Set(name, value)
	}
}

var (
	onCommandLine   sync.Once
	fromCommandLine = make(map[string]bool)
)
