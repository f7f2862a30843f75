package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/keyq/keyq/internal/storage"
)

// logStore is a Store that keeps its records in a slice, as a log would, and can
// replay them shuffled within what compaction may reorder.
type logStore struct {
	mu      sync.Mutex
	records []storage.Record
	shuffle bool
}

func (s *logStore) Append(rec *storage.Record) (storage.Location, storage.Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := *rec
	r.Payload = slices.Clone(rec.Payload)
	s.records = append(s.records, r)
	return storage.Location{Segment: 1, Offset: int64(len(s.records))}, 0, nil
}

func (s *logStore) Wait(context.Context, storage.Ticket) error { return nil }

func (s *logStore) ReadPayload(loc storage.Location) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records[loc.Offset-1].Payload), nil
}

// Replay yields live puts, then (when shuffle is set) in a random order, as a log that
// copied live records forward would; takes of compacted puts are yielded too.
func (s *logStore) Replay(fn func(*storage.Record, storage.Location) error) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next uint64
	taken := make(map[uint64]int)
	for i, r := range s.records {
		next = max(next, r.ID+1)
		if r.Op == storage.OpTake {
			taken[r.ID] = i
		}
	}
	order := make([]int, len(s.records))
	for i := range order {
		order[i] = i
	}
	if s.shuffle {
		// Compaction moves live puts to the end in any order; takes stay behind.
		var live, rest []int
		for i, r := range s.records {
			if t, ok := taken[r.ID]; r.Op != storage.OpTake && (!ok || t < i) {
				live = append(live, i)
			} else {
				rest = append(rest, i)
			}
		}
		rand.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
		order = append(rest, live...)
	}
	for _, i := range order {
		r := s.records[i]
		r.Payload = slices.Clone(r.Payload)
		if err := fn(&r, storage.Location{Segment: 1, Offset: int64(i + 1)}); err != nil {
			return 0, err
		}
	}
	return next, nil
}

func (s *logStore) Close() error { return nil }

func TestBrokerRecoversQueueOrderFromLog(t *testing.T) {
	for _, shuffle := range []bool{false, true} {
		t.Run(fmt.Sprintf("shuffle=%v", shuffle), func(t *testing.T) {
			store := &logStore{}
			b, err := New(Config{Store: store})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			// Build queue q = [f2 f1 t0 t1 ... t9] minus takes, by both ends.
			for i := range 10 {
				mustPut(t, b, "q", fmt.Appendf(nil, "t%d", i))
			}
			b.PutFront(ctx, "q", []byte("f1"))
			b.PutFront(ctx, "q", []byte("f2"))
			mustGet(t, b, "q")  // f2
			b.PopBack(ctx, "q") // t9
			mustPut(t, b, "other", []byte("o"))
			mustPut(t, b, "gone", []byte("g"))
			mustGet(t, b, "gone")
			want := drain(t, b, "q")
			mustPut(t, b, "q", []byte("last"))
			b.Close()

			// Undo the drain: replay only the records before it.
			store.records = store.records[:len(store.records)-len(want)-1]
			store.shuffle = shuffle
			var maxID uint64
			for _, r := range store.records {
				maxID = max(maxID, r.ID)
			}
			b2, err := New(Config{Store: store})
			if err != nil {
				t.Fatal(err)
			}
			defer b2.Close()
			if got := drain(t, b2, "q"); !slices.Equal(got, want) {
				t.Fatalf("recovered q = %v, want %v", got, want)
			}
			if m := mustGet(t, b2, "other"); string(m.Payload) != "o" {
				t.Fatalf("other = %q", m.Payload)
			}
			if n, _ := b2.Len("gone"); n != 0 {
				t.Fatalf("gone has %d messages", n)
			}
			// IDs never go backwards, even past the records the replay did not see.
			if id := mustPut(t, b2, "q", nil); id <= maxID {
				t.Fatalf("new id %d not after the log's highest id %d", id, maxID)
			}
		})
	}
}

func drain(t *testing.T, b *Broker, queue string) []string {
	t.Helper()
	var got []string
	for {
		n, _ := b.Len(queue)
		if n == 0 {
			return got
		}
		got = append(got, string(mustGet(t, b, queue).Payload))
	}
}

// TestBrokerCacheReadsBackFromStore bounds the payload cache: messages beyond it are
// read back from the store on get, and the cache returns to zero when drained.
func TestBrokerCacheReadsBackFromStore(t *testing.T) {
	store := &logStore{}
	b := newTestBroker(t, Config{Store: store, CacheBytes: 100})
	for i := range 50 {
		mustPut(t, b, "q", fmt.Appendf(nil, "message-%02d", i)) // 10 bytes each
	}
	if used := b.Stats(0).CacheUsed; used > 100 {
		t.Fatalf("cache used = %d, over its limit of 100", used)
	}
	for i := range 50 {
		if m := mustGet(t, b, "q"); string(m.Payload) != fmt.Sprintf("message-%02d", i) {
			t.Fatalf("get %d = %q", i, m.Payload)
		}
	}
	if used := b.Stats(0).CacheUsed; used != 0 {
		t.Fatalf("cache used = %d after draining, want 0", used)
	}
}

// slowStore is a logStore whose Wait blocks until its context ends, as an fsync that
// takes longer than the client is willing to wait.
type slowStore struct{ logStore }

func (*slowStore) Wait(ctx context.Context, _ storage.Ticket) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestBrokerGetAbandonedDuringFsyncRequeues: a get whose caller leaves while its take
// is being made durable must not lose the message.
func TestBrokerGetAbandonedDuringFsyncRequeues(t *testing.T) {
	store := &slowStore{}
	b := newTestBroker(t, Config{Store: store})
	b.store = storage.Memory{} // let the put through at once
	mustPut(t, b, "q", []byte("precious"))
	b.store = store

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Get(ctx, "q", 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("get = %v, want context.Canceled", err)
	}
	b.store = storage.Memory{}
	if m := mustGet(t, b, "q"); string(m.Payload) != "precious" {
		t.Fatalf("get after requeue = %q, want precious", m.Payload)
	}
}

// TestBrokerRecoveryKeepsCacheBound: payloads past the cache budget are not held in
// memory after a restart, only read back on get.
func TestBrokerRecoveryKeepsCacheBound(t *testing.T) {
	store := &logStore{}
	b, err := New(Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		mustPut(t, b, "q", fmt.Appendf(nil, "message-%02d", i)) // 10 bytes each
	}
	mustGet(t, b, "q")
	b.Close()

	b2 := newTestBroker(t, Config{Store: store, CacheBytes: 200})
	if used := b2.Stats(0).CacheUsed; used > 200 {
		t.Fatalf("cache used after recovery = %d, over its budget of 200", used)
	}
	for i := 1; i < 100; i++ {
		if m := mustGet(t, b2, "q"); string(m.Payload) != fmt.Sprintf("message-%02d", i) {
			t.Fatalf("get %d = %q", i, m.Payload)
		}
	}
	if used := b2.Stats(0).CacheUsed; used != 0 {
		t.Fatalf("cache used after draining = %d, want 0", used)
	}
}

// TestBrokerGetBatchAbandonedKeepsOrder: a batch whose caller leaves before its takes
// are durable goes back whole, in its order, at the end it came from.
func TestBrokerGetBatchAbandonedKeepsOrder(t *testing.T) {
	store := &slowStore{}
	b := newTestBroker(t, Config{Store: store})
	b.store = storage.Memory{}
	for i := range 6 {
		mustPut(t, b, "q", fmt.Appendf(nil, "m%d", i))
	}
	b.store = store

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.GetBatch(ctx, []string{"q"}, 4, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("get batch = %v, want context.Canceled", err)
	}
	b.store = storage.Memory{}
	want := []string{"m0", "m1", "m2", "m3", "m4", "m5"}
	if got := drain(t, b, "q"); !slices.Equal(got, want) {
		t.Fatalf("queue after abandoned batch = %v, want %v", got, want)
	}
}
