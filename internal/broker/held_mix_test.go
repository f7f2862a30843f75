package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyq/keyq/internal/storage"
	"github.com/keyq/keyq/internal/wal"
	"pgregory.net/rapid"
)

// heldMix drives a broker with a small MaxHeldBytes through a random mix of every
// operation that adds, moves or removes messages, on a few queues, and checks after
// each that HeldBytes is what the queues and leases hold, and at the end, with
// everything drained and acked, that it is exactly 0.
type heldMix struct {
	b      *Broker
	store  storage.Store // nil: the memory store, which a restart empties
	walDir string
	ctx    context.Context
	ids    []uint64 // every delivery ID handed out

}

var mixQueues = []string{"a", "b", "a.dlq", "c"}

func (h *heldMix) open(t *rapid.T) {
	cfg := Config{Store: h.store, SweepInterval: time.Hour, MaxHeldBytes: 2000}
	if h.walDir != "" {
		l, err := wal.Open(h.walDir, wal.Options{SegmentBytes: 4096, Fsync: wal.FsyncNever,
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
	h.b = b
}

func (h *heldMix) payloads(t *rapid.T, most int) [][]byte {
	n := rapid.IntRange(1, most).Draw(t, "n")
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = make([]byte, rapid.IntRange(0, 60).Draw(t, "size"))
	}
	return ps
}

func (h *heldMix) queue(t *rapid.T) string { return rapid.SampledFrom(mixQueues).Draw(t, "q") }

// want fails t on any error but those listed.
func want(t *rapid.T, what string, err error, ok ...error) {
	if err == nil {
		return
	}
	for _, o := range ok {
		if errors.Is(err, o) {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

func (h *heldMix) put(t *rapid.T) {
	o := PutOptions{
		Delay: time.Duration(rapid.IntRange(0, 3).Draw(t, "delay")) * time.Second,
		TTL:   time.Duration(rapid.IntRange(0, 6).Draw(t, "ttl")) * time.Second,
	}
	_, err := h.b.PutBatch(h.ctx, h.queue(t), h.payloads(t, 4), o)
	want(t, "put", err, ErrServerFull)
}

func (h *heldMix) push(t *rapid.T) {
	at := End(rapid.IntRange(0, 1).Draw(t, "end"))
	_, err := h.b.Push(h.ctx, h.queue(t), h.payloads(t, 3), at, false)
	want(t, "push", err, ErrServerFull)
}

func (h *heldMix) get(t *rapid.T) {
	ms, err := h.b.GetBatch(h.ctx, []string{h.queue(t)}, rapid.IntRange(1, 3).Draw(t, "n"), 0)
	want(t, "get", err, ErrEmpty)
	for _, m := range ms {
		m.Release()
	}
}

func (h *heldMix) reserve(t *rapid.T) {
	o := ReserveOptions{
		Lease: time.Duration(rapid.IntRange(1, 5).Draw(t, "lease")) * time.Second,
		Max:   rapid.IntRange(1, 3).Draw(t, "n"),
	}
	ds, err := h.b.Reserve(h.ctx, []string{h.queue(t)}, o)
	want(t, "reserve", err, ErrEmpty)
	for _, d := range ds {
		h.ids = append(h.ids, d.DeliveryID)
	}
}

func (h *heldMix) delivery(t *rapid.T) uint64 {
	if len(h.ids) == 0 {
		return 1
	}
	return rapid.SampledFrom(h.ids).Draw(t, "delivery")
}

func (h *heldMix) settle(t *rapid.T) {
	id := h.delivery(t)
	delay := time.Duration(rapid.IntRange(0, 2).Draw(t, "delay")) * time.Second
	var err error
	switch rapid.IntRange(0, 2).Draw(t, "how") {
	case 0:
		err = h.b.Ack(h.ctx, id)
	case 1:
		err = h.b.Nack(h.ctx, id, delay)
	default:
		_, err = h.b.Touch(h.ctx, id, delay)
	}
	want(t, "settle", err, ErrNoDelivery)
}

func (h *heldMix) move(t *rapid.T) {
	from := End(rapid.IntRange(0, 1).Draw(t, "from"))
	to := End(rapid.IntRange(0, 1).Draw(t, "to"))
	m, err := h.b.Move(h.ctx, h.queue(t), h.queue(t), from, to)
	want(t, "move", err, ErrEmpty)
	m.Release()
}

func (h *heldMix) remove(t *rapid.T) {
	_, err := h.b.Delete(h.ctx, h.queue(t))
	want(t, "delete", err)
}

func (h *heldMix) advance(t *rapid.T) {
	time.Sleep(time.Duration(rapid.IntRange(1, 4).Draw(t, "seconds")) * time.Second)
}

func (h *heldMix) restart(t *rapid.T) {
	if err := h.b.Close(); err != nil {
		t.Fatal(err)
	}
	h.open(t)
	h.ids = nil
}

// drain acks every delivery and deletes every queue until nothing is left, and
// checks that the held total is then 0.
func (h *heldMix) drain(t *rapid.T) {
	for range 20 {
		for _, id := range h.ids {
			h.b.Ack(h.ctx, id)
		}
		for _, name := range h.b.QueueNames() {
			if _, err := h.b.Delete(h.ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Second) // leases run out, dead letters move
		synctest.Wait()
		s := h.b.Stats(0)
		if s.Messages+s.Inflight+s.Deferred == 0 {
			break
		}
	}
	for _, name := range h.b.QueueNames() { // an empty queue gives its budget back
		if _, err := h.b.Delete(h.ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	s := h.b.Stats(0)
	if s.Messages+s.Inflight+s.Deferred != 0 || s.HeldBytes != 0 {
		t.Fatalf("drained: %d ready, %d leased, %d deferred, %d bytes held; want 0",
			s.Messages, s.Inflight, s.Deferred, s.HeldBytes)
	}
}

func runHeldMix(t *testing.T, newMix func() *heldMix) {
	synctest.Test(t, func(t *testing.T) {
		rapid.Check(bubbleTB{t}, func(rt *rapid.T) {
			h := newMix()
			h.ctx = context.Background()
			h.open(rt)
			defer func() { h.b.Close() }()
			err := h.b.SetQueue(h.ctx, "a", QueueSettings{MaxDeliveries: 2, ExpiredToDLQ: true})
			if err != nil {
				rt.Fatal(err)
			}

			step := func(f func(*rapid.T)) func(*rapid.T) {
				return func(t *rapid.T) {
					time.Sleep(time.Microsecond)
					f(t)
					synctest.Wait() // dead letters are moved by the timer loop
				}
			}
			actions := map[string]func(*rapid.T){
				"put":     step(h.put),
				"push":    step(h.push),
				"get":     step(h.get),
				"reserve": step(h.reserve),
				"settle":  step(h.settle),
				"move":    step(h.move),
				"delete":  step(h.remove),
				"advance": step(h.advance),
				"":        func(t *rapid.T) { wantHeld(t, h.b) },
			}
			if h.store != nil || h.walDir != "" {
				actions["restart"] = step(h.restart)
			}
			rt.Repeat(actions)
			h.drain(rt)
		})
	})
}

// TestHeldBytesExactUnderRandomMix runs the mix over the memory store and over a
// record log that restarts. Unless -rapid.checks or -rapid.steps are given, it runs
// 200 sequences of about 100 actions each.
func TestHeldBytesExactUnderRandomMix(t *testing.T) {
	setDefaultFlag("rapid.checks", "200")
	setDefaultFlag("rapid.steps", "100")
	t.Run("memory", func(t *testing.T) {
		runHeldMix(t, func() *heldMix { return &heldMix{} })
	})
	t.Run("log", func(t *testing.T) {
		runHeldMix(t, func() *heldMix { return &heldMix{store: &logStore{}} })
	})
}

// TestHeldBytesExactOverWAL runs the mix over the real log, restarts included.
func TestHeldBytesExactOverWAL(t *testing.T) {
	setDefaultFlag("rapid.checks", "30")
	setDefaultFlag("rapid.steps", "60")
	root := t.TempDir()
	n := 0
	runHeldMix(t, func() *heldMix {
		n++
		dir := filepath.Join(root, fmt.Sprint(n))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return &heldMix{walDir: dir}
	})
}
