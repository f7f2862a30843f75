package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

func newTestBroker(t testing.TB, cfg Config) *Broker {
	t.Helper()
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Hour // tests sweep by hand
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func mustPut(t testing.TB, b *Broker, queue string, payload []byte) uint64 {
	t.Helper()
	id, err := b.Put(context.Background(), queue, payload)
	if err != nil {
		t.Fatalf("put %q: %v", queue, err)
	}
	return id
}

func mustGet(t testing.TB, b *Broker, queue string) Message {
	t.Helper()
	m, err := b.Get(context.Background(), queue, 0)
	if err != nil {
		t.Fatalf("get %q: %v", queue, err)
	}
	return m
}

func TestBrokerFIFO(t *testing.T) {
	b := newTestBroker(t, Config{})
	for i := range 100 {
		mustPut(t, b, "jobs", fmt.Appendf(nil, "m%d", i))
	}
	if n, _ := b.Len("jobs"); n != 100 {
		t.Fatalf("len = %d, want 100", n)
	}
	var last uint64
	for i := range 100 {
		m := mustGet(t, b, "jobs")
		if want := fmt.Sprintf("m%d", i); string(m.Payload) != want {
			t.Fatalf("get %d = %q, want %q", i, m.Payload, want)
		}
		if m.ID <= last {
			t.Fatalf("id %d not after %d", m.ID, last)
		}
		last = m.ID
	}
	if _, err := b.Get(context.Background(), "jobs", 0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("get on drained queue = %v, want ErrEmpty", err)
	}
}

func TestBrokerZeroByteMessageIsAMessage(t *testing.T) {
	b := newTestBroker(t, Config{})
	mustPut(t, b, "q", nil)
	mustPut(t, b, "q", []byte{})
	if n, _ := b.Len("q"); n != 2 {
		t.Fatalf("len = %d, want 2", n)
	}
	for range 2 {
		m := mustGet(t, b, "q")
		if m.Payload == nil || len(m.Payload) != 0 {
			t.Fatalf("payload = %#v, want empty non-nil", m.Payload)
		}
	}
	if _, err := b.Get(context.Background(), "q", 0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("third get = %v, want ErrEmpty", err)
	}
}

func TestBrokerUnknownQueueIsEmptyNotError(t *testing.T) {
	b := newTestBroker(t, Config{})
	if _, err := b.Get(context.Background(), "nobody", 0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("get = %v, want ErrEmpty", err)
	}
	if n, err := b.Len("nobody"); n != 0 || err != nil {
		t.Fatalf("len = %d, %v; want 0, nil", n, err)
	}
	if s := b.Stats(0); s.Queues != 0 {
		t.Fatalf("queues = %d after reads of unknown queues, want 0", s.Queues)
	}
}

func TestBrokerPutCopiesPayload(t *testing.T) {
	b := newTestBroker(t, Config{})
	buf := []byte("original")
	mustPut(t, b, "q", buf)
	copy(buf, "XXXXXXXX")
	if m := mustGet(t, b, "q"); string(m.Payload) != "original" {
		t.Fatalf("payload = %q, want %q", m.Payload, "original")
	}
}

func TestBrokerRefusesBadInputTheSameWayEverywhere(t *testing.T) {
	b := newTestBroker(t, Config{MaxMessageBytes: 10})
	ctx := context.Background()

	if _, err := b.Put(ctx, "q", make([]byte, 11)); !errors.Is(err, ErrMessageTooLarge) ||
		err.Error() != "message too large: 11 bytes, over the limit of 10" {
		t.Fatalf("put 11 bytes = %v", err)
	}
	if _, err := b.Put(ctx, "q", make([]byte, 10)); err != nil {
		t.Fatalf("put 10 bytes = %v, want nil", err)
	}

	bad := "a\nb"
	errs := []error{}
	_, err := b.Put(ctx, bad, nil)
	errs = append(errs, err)
	_, err = b.Get(ctx, bad, 0)
	errs = append(errs, err)
	_, err = b.Len(bad)
	errs = append(errs, err)
	_, err = b.PutFront(ctx, bad, nil)
	errs = append(errs, err)
	_, err = b.PopBack(ctx, bad)
	errs = append(errs, err)
	for i, err := range errs {
		if !errors.Is(err, ErrInvalidKey) || err.Error() != errs[0].Error() {
			t.Fatalf("path %d: %v, want the same invalid key error as %v", i, err, errs[0])
		}
	}

	if _, err := b.Get(ctx, "q", -time.Second); !errors.Is(err, ErrInvalidWait) {
		t.Fatalf("negative wait = %v, want ErrInvalidWait", err)
	}
}

func TestBrokerDequeEnds(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	mustPut(t, b, "d", []byte("b"))
	mustPut(t, b, "d", []byte("c"))
	if _, err := b.PutFront(ctx, "d", []byte("a")); err != nil {
		t.Fatal(err)
	}
	m, err := b.PopBack(ctx, "d")
	if err != nil || string(m.Payload) != "c" {
		t.Fatalf("pop back = %q, %v; want c", m.Payload, err)
	}
	if m := mustGet(t, b, "d"); string(m.Payload) != "a" {
		t.Fatalf("get = %q, want a", m.Payload)
	}
}

func TestBrokerDrainedQueuesLeaveTable(t *testing.T) {
	b := newTestBroker(t, Config{})
	for i := range 1000 {
		key := fmt.Sprintf("one-off-%d", i)
		mustPut(t, b, key, []byte("x"))
		mustGet(t, b, key)
	}
	mustPut(t, b, "kept", []byte("x"))

	// The first sweep only notes which drained queues were used since; the second
	// drops those still idle.
	b.sweep()
	b.sweep()
	if s := b.Stats(0); s.Queues != 1 || s.Puts != 1001 || s.Gets != 1000 {
		t.Fatalf("after sweeps: queues=%d puts=%d gets=%d, want 1, 1001, 1000",
			s.Queues, s.Puts, s.Gets)
	}
	if names := b.QueueNames(); len(names) != 1 || names[0] != "kept" {
		t.Fatalf("queue names = %v, want [kept]", names)
	}
}

func TestBrokerBusyQueueSurvivesSweep(t *testing.T) {
	b := newTestBroker(t, Config{})
	mustPut(t, b, "hot", []byte("x"))
	mustGet(t, b, "hot")
	b.sweep()
	mustPut(t, b, "hot", []byte("y")) // used again between sweeps
	mustGet(t, b, "hot")
	b.sweep()
	if s := b.Stats(0); s.Queues != 1 {
		t.Fatalf("queues = %d, want the hot queue kept", s.Queues)
	}
	b.sweep()
	if s := b.Stats(0); s.Queues != 0 {
		t.Fatalf("queues = %d, want the idle queue dropped", s.Queues)
	}
}

// TestBrokerDropRacesPut puts, gets and sweeps the same few keys at once: a put that
// holds a queue the sweeper just dropped must land in the new queue, never vanish.
func TestBrokerDropRacesPut(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	const workers, perWorker = 4, 2000

	var got atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				b.sweep()
			}
		}
	})
	var producers sync.WaitGroup
	for w := range workers {
		producers.Go(func() {
			for i := range perWorker {
				key := fmt.Sprintf("k%d", (w+i)%3)
				mustPut(t, b, key, []byte("x"))
				if _, err := b.Get(ctx, key, 0); err == nil {
					got.Add(1)
				}
			}
		})
	}
	producers.Wait()
	close(stop)
	wg.Wait()

	var left int64
	for _, key := range []string{"k0", "k1", "k2"} {
		n, _ := b.Len(key)
		left += int64(n)
	}
	if got.Load()+left != workers*perWorker {
		t.Fatalf("got %d + left %d != put %d", got.Load(), left, workers*perWorker)
	}
}

// TestBrokerLockGranularity holds a put on queue A inside its critical section and
// shows that a put and a get on queue B still complete.
func TestBrokerLockGranularity(t *testing.T) {
	b := newTestBroker(t, Config{})
	mustPut(t, b, "B", []byte("before"))

	inside := make(chan struct{})
	release := make(chan struct{})
	b.testHookPutLocked = func(queue string) {
		if queue == "A" {
			close(inside)
			<-release
		}
	}

	putA := make(chan error, 1)
	go func() {
		_, err := b.Put(context.Background(), "A", []byte("held"))
		putA <- err
	}()
	<-inside

	// Queue A's lock is held now. B must not wait for it.
	mustPut(t, b, "B", []byte("during"))
	if m := mustGet(t, b, "B"); string(m.Payload) != "before" {
		t.Fatalf("get B = %q, want before", m.Payload)
	}
	if n, _ := b.Len("B"); n != 1 {
		t.Fatalf("len B = %d, want 1", n)
	}
	_ = b.Stats(0) // stats must not block on a held queue either

	select {
	case err := <-putA:
		t.Fatalf("put on A finished while held: %v", err)
	default:
	}
	close(release)
	if err := <-putA; err != nil {
		t.Fatalf("put A: %v", err)
	}
}

// TestBrokerStress runs many goroutines over many keys and checks exact counts and
// per-producer order.
func TestBrokerStress(t *testing.T) {
	b := newTestBroker(t, Config{SweepInterval: time.Millisecond})
	ctx := context.Background()
	const producers, perProducer, keys = 8, 2000, 16

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				key := fmt.Sprintf("key-%d", i%keys)
				mustPut(t, b, key, fmt.Appendf(nil, "%d/%d", p, i))
			}
		})
	}

	var mu sync.Mutex
	seen := make(map[string]bool)
	var consumed atomic.Int64
	for c := range 4 {
		wg.Go(func() {
			deadline := time.Now().Add(time.Minute)
			for n := c; consumed.Load() < producers*perProducer; n++ {
				if time.Now().After(deadline) {
					t.Errorf("consumer %d: deadline passed", c)
					return
				}
				key := fmt.Sprintf("key-%d", n%keys)
				m, err := b.Get(ctx, key, time.Millisecond)
				if errors.Is(err, ErrEmpty) {
					continue
				}
				if err != nil {
					t.Errorf("get: %v", err)
					return
				}
				mu.Lock()
				if seen[string(m.Payload)] {
					t.Errorf("duplicate %s", m.Payload)
				}
				seen[string(m.Payload)] = true
				mu.Unlock()
				consumed.Add(1)
			}
		})
	}
	wg.Wait()

	if n := consumed.Load(); n != producers*perProducer || len(seen) != producers*perProducer {
		t.Fatalf("consumed %d (%d distinct), want %d", n, len(seen), producers*perProducer)
	}
	s := b.Stats(0)
	if s.Messages != 0 || s.Bytes != 0 {
		t.Fatalf("left messages=%d bytes=%d, want 0", s.Messages, s.Bytes)
	}
	if s.Puts != producers*perProducer || s.Gets != producers*perProducer {
		t.Fatalf("puts=%d gets=%d, want %d each", s.Puts, s.Gets, producers*perProducer)
	}
}

func TestBrokerStatsPerQueue(t *testing.T) {
	b := newTestBroker(t, Config{})
	mustPut(t, b, "images", bytes.Repeat([]byte("i"), 100))
	mustPut(t, b, "images", bytes.Repeat([]byte("i"), 50))
	mustPut(t, b, "tax_returns", []byte("t"))
	mustGet(t, b, "images")

	s := b.Stats(0)
	if s.Queues != 2 || s.Messages != 2 || s.Bytes != 51 || s.Puts != 3 || s.Gets != 1 {
		t.Fatalf("stats = %+v", s)
	}
	img := s.QueueStats[0]
	if img.Name != "images" || img.Messages != 1 || img.Bytes != 50 || img.Puts != 2 ||
		img.Gets != 1 {
		t.Fatalf("images stats = %+v", img)
	}
	if got := b.Stats(1); len(got.QueueStats) != 1 || got.Queues != 2 {
		t.Fatalf("limited stats: %d entries, %d queues; want 1, 2",
			len(got.QueueStats), got.Queues)
	}
}

func TestBrokerQueueStatsReadsOneQueueAsStatsListsIt(t *testing.T) {
	b := newTestBroker(t, Config{})
	mustPut(t, b, "images", bytes.Repeat([]byte("i"), 100))
	mustPut(t, b, "images", bytes.Repeat([]byte("i"), 50))
	mustPut(t, b, "tax_returns", []byte("t"))
	mustGet(t, b, "images")

	for _, want := range b.Stats(0).QueueStats {
		got, ok := b.QueueStats(want.Name)
		if !ok {
			t.Fatalf("QueueStats(%q) found nothing", want.Name)
		}
		got.OldestAge, want.OldestAge = 0, 0 // read at another moment
		if !reflect.DeepEqual(got, want) {
			t.Errorf("QueueStats(%q) = %+v, want %+v", want.Name, got, want)
		}
	}
	if got, ok := b.QueueStats("none"); ok || got.Name != "none" || got.Messages != 0 {
		t.Errorf("QueueStats of a missing queue = %+v, %v; want its name only, false", got, ok)
	}
}

func TestBrokerClosedRefusesWork(t *testing.T) {
	b := newTestBroker(t, Config{})
	b.Close()
	if _, err := b.Put(context.Background(), "q", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close = %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close = %v", err)
	}
}

// failingStore refuses every append, as a full disk does for puts.
type failingStore struct{ logStore }

func (*failingStore) Append(*storage.Record) (storage.Location, storage.Ticket, error) {
	return storage.Location{}, 0, storage.ErrDiskFull
}

// TestBrokerIdleCreatedQueuesLeaveTable covers every way a queue can be created and
// left empty: a refused put, an empty move, a timed-out blocking get.
func TestBrokerIdleCreatedQueuesLeaveTable(t *testing.T) {
	b := newTestBroker(t, Config{Store: &failingStore{}})
	ctx := context.Background()
	for i := range 100 {
		if _, err := b.Put(ctx, fmt.Sprintf("refused-%d", i), []byte("x")); !errors.Is(err,
			ErrDiskFull) {
			t.Fatalf("put = %v, want ErrDiskFull", err)
		}
		if _, err := b.Get(ctx, fmt.Sprintf("waited-%d", i), time.Nanosecond); !errors.Is(err,
			ErrEmpty) {
			t.Fatalf("get = %v, want ErrEmpty", err)
		}
		src, dst := fmt.Sprintf("src-%d", i), fmt.Sprintf("dst-%d", i)
		if _, err := b.Move(ctx, src, dst, Front, Back); !errors.Is(err, ErrEmpty) {
			t.Fatalf("move = %v, want ErrEmpty", err)
		}
		if _, err := b.Push(ctx, fmt.Sprintf("pushx-%d", i), [][]byte{[]byte("x")}, Back,
			true); err != nil {
			t.Fatalf("pushx = %v", err)
		}
	}
	b.sweep()
	b.sweep()
	if s := b.Stats(0); s.Queues != 0 {
		t.Fatalf("queues = %d after sweeps, want 0: %v", s.Queues, b.QueueNames())
	}
}
