package broker

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
	"github.com/keyq/keyq/internal/wal"
)

func TestPayloadClassFitsAndRoundsTrip(t *testing.T) {
	last := -1
	for n := 1; n <= maxPooledPayload; n++ {
		class, size := payloadClass(n)
		if size < n || class < last || class >= payloadClasses {
			t.Fatalf("payloadClass(%d) = %d, %d after class %d", n, class, size, last)
		}
		if n > 2*minPayloadClass && size-n > n/payloadSteps {
			t.Fatalf("payloadClass(%d) wastes %d bytes of %d", n, size-n, size)
		}
		if again, _ := payloadClass(size); again != class {
			t.Fatalf("a buffer of %d bytes goes back to class %d, not %d", size, again, class)
		}
		last = class
	}
	if last != payloadClasses-1 {
		t.Fatalf("largest class %d, want %d", last, payloadClasses-1)
	}
}

func TestPayloadReleasedBufferIsReused(t *testing.T) {
	b := newTestBroker(t, Config{})
	payload := bytes.Repeat([]byte("r"), 100)

	// sync.Pool may drop what it is given (always under the race detector, a quarter
	// of the time), so the reuse has to show within a few rounds, not at once.
	for range 100 {
		mustPut(t, b, "q", payload)
		m := mustGet(t, b, "q")
		first := &m.Payload[0]
		m.Release()
		if m.Payload != nil {
			t.Fatal("Payload is not nil after Release")
		}

		mustPut(t, b, "q", payload)
		again := mustGet(t, b, "q")
		reused := &again.Payload[0] == first
		again.Release()
		if reused {
			return
		}
	}
	t.Fatal("a released buffer was never used again in 100 rounds")
}

func TestPayloadUnreleasedIsNotOverwritten(t *testing.T) {
	b := newTestBroker(t, Config{})
	want := bytes.Repeat([]byte("k"), 100)
	mustPut(t, b, "q", want)
	kept := mustGet(t, b, "q") // never released

	other := bytes.Repeat([]byte("x"), 100)
	for range 1000 {
		mustPut(t, b, "q", other)
		m := mustGet(t, b, "q")
		m.Release()
	}
	if !bytes.Equal(kept.Payload, want) {
		t.Fatalf("kept payload became %q", kept.Payload[:8])
	}
}

func TestPayloadSecondReleaseDoesNothing(t *testing.T) {
	b := newTestBroker(t, Config{})
	for range 100 {
		mustPut(t, b, "q", bytes.Repeat([]byte("a"), 50))
		m := mustGet(t, b, "q")
		copied := m
		m.Release()
		copied.Release() // must not put the buffer in the pool a second time

		// Were it in the pool twice, both messages would get the same buffer.
		mustPut(t, b, "q", bytes.Repeat([]byte("b"), 50))
		mustPut(t, b, "q", bytes.Repeat([]byte("c"), 50))
		x, y := mustGet(t, b, "q"), mustGet(t, b, "q")
		if string(x.Payload) != string(bytes.Repeat([]byte("b"), 50)) ||
			string(y.Payload) != string(bytes.Repeat([]byte("c"), 50)) {
			t.Fatalf("payloads %q and %q share a buffer", x.Payload[:4], y.Payload[:4])
		}
		x.Release()
		y.Release()
	}
}

// TestPayloadReleasePoisonsTheBuffer: in the builds tests run in, a payload read
// after its Release reads poison, so that a front door or a broker path reading a
// buffer it gave back fails its tests at once, not only when a put reused it.
func TestPayloadReleasePoisonsTheBuffer(t *testing.T) {
	if !poisonReleased {
		t.Skip("released buffers are poisoned under -race or -tags keyqpoison")
	}
	b := newTestBroker(t, Config{})
	mustPut(t, b, "q", bytes.Repeat([]byte("p"), 100))
	m := mustGet(t, b, "q")
	stale := m.Payload
	m.Release()
	if want := bytes.Repeat([]byte{poisonByte}, len(stale)); !bytes.Equal(stale, want) {
		t.Fatalf("a released payload reads %.8q, want poison", stale)
	}

	// A message that owns no pooled buffer is left alone.
	mustPut(t, b, "q", bytes.Repeat([]byte("r"), 100))
	ranged, err := b.Range("q", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	kept := ranged[0].Payload
	ranged[0].Release()
	if !bytes.Equal(kept, bytes.Repeat([]byte("r"), 100)) {
		t.Fatalf("releasing a range's message changed its payload to %.8q", kept)
	}
}

// TestPayloadCopiesSurviveTheirQueuedOriginal: what Peek, Range, Move and Reserve
// return is the caller's own copy, unharmed when the queued message is taken, its
// buffer released and reused.
func TestPayloadCopiesSurviveTheirQueuedOriginal(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	want := bytes.Repeat([]byte("p"), 100)
	mustPut(t, b, "q", want)

	peeked, err := b.Peek("q", 0)
	if err != nil {
		t.Fatal(err)
	}
	ranged, err := b.Range("q", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	moved, err := b.Move(ctx, "q", "r", Front, Back)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := b.Reserve(ctx, []string{"r"}, ReserveOptions{Lease: time.Minute})
	if err != nil || len(ds) != 1 {
		t.Fatalf("reserve: %v, %d deliveries", err, len(ds))
	}
	if err := b.Nack(ctx, ds[0].DeliveryID, 0); err != nil {
		t.Fatal(err)
	}
	taken := mustGet(t, b, "r")
	taken.Release()
	for range 100 {
		mustPut(t, b, "q", bytes.Repeat([]byte("x"), 100))
		m := mustGet(t, b, "q")
		m.Release()
	}

	for what, got := range map[string][]byte{"peek": peeked.Payload,
		"range": ranged[0].Payload, "move": moved.Payload, "reserve": ds[0].Payload} {
		if !bytes.Equal(got, want) {
			t.Errorf("%s payload became %q", what, got[:8])
		}
	}
	ds[0].Release()
	if ds[0].Payload != nil {
		t.Fatal("a delivery's Payload is not nil after Release")
	}
}

func TestPayloadPutGetReleaseAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop what it is given")
	}
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	payload := make([]byte, 100)
	mustPut(t, b, "q", payload)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := b.Put(ctx, "q", payload); err != nil {
			t.Fatal(err)
		}
		m, err := b.Get(ctx, "q", 0)
		if err != nil {
			t.Fatal(err)
		}
		m.Release()
	})
	if allocs != 0 {
		t.Fatalf("put+get+release of 100 bytes: %v allocations, want 0", allocs)
	}
}

// TestPayloadReusedBufferLeavesTheLogIntact: the log copies a payload as it appends
// it, so reusing the buffer of a message taken and released never changes what the
// log holds for later messages.
func TestPayloadReusedBufferLeavesTheLogIntact(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBroker(t, Config{Store: l})
	var want []string
	for i := range 50 {
		p := bytes.Repeat([]byte{'a' + byte(i%26)}, 100)
		mustPut(t, b, "q", p)
		if i%2 == 1 {
			want = append(want, string(p))
			continue
		}
		m, err := b.PopBack(context.Background(), "q") // the message just put
		if err != nil || !bytes.Equal(m.Payload, p) {
			t.Fatalf("pop back: %v, %.4q", err, m.Payload)
		}
		m.Release() // its buffer is free for the next put
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	l, err = wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b = newTestBroker(t, Config{Store: l})
	var got []string
	for range len(want) {
		m := mustGet(t, b, "q")
		got = append(got, string(m.Payload))
		m.Release()
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after a restart the queue holds %q, want %q", got[:3], want[:3])
	}
}

// takeFailStore is a listStore that refuses the next failTakes takes as the log
// refuses a take that finds the disk full in a segment it writes at once: that
// append alone fails, and later ones work again once there is room.
type takeFailStore struct {
	*listStore
	failTakes atomic.Int32
}

func (s *takeFailStore) Append(rec *storage.Record) (storage.Location, storage.Ticket, error) {
	if rec.Op == storage.OpTake && s.failTakes.Add(-1) >= 0 {
		return storage.Location{}, 0, storage.ErrDiskFull
	}
	return s.listStore.Append(rec)
}

// TestPayloadMoveWithRefusedTakeSharesNoBuffer: a move whose put onto dst stands but
// whose take from src is refused leaves the message in both queues. The two copies
// must not share a buffer: each is taken by a consumer in time, and two Releases of
// one buffer would put it in the pools twice, for two later puts to share.
func TestPayloadMoveWithRefusedTakeSharesNoBuffer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst string
		from, to End
	}{
		{"between queues", "src", "dst", Front, Back},
		{"rotation", "L", "L", Back, Front},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &takeFailStore{listStore: newListStore()}
			b := newTestBroker(t, Config{Store: s})
			ctx := context.Background()
			want := bytes.Repeat([]byte("m"), 100)
			mustPut(t, b, tc.src, want)

			s.failTakes.Store(1)
			_, err := b.Move(ctx, tc.src, tc.dst, tc.from, tc.to)
			if !errors.Is(err, storage.ErrDiskFull) {
				t.Fatalf("move with its take refused = %v, want ErrDiskFull", err)
			}
			moved, left := mustGet(t, b, tc.dst), mustGet(t, b, tc.src)
			if len(moved.Payload) == 0 || len(left.Payload) == 0 {
				t.Fatalf("payloads of %d and %d bytes", len(moved.Payload), len(left.Payload))
			}
			if &moved.Payload[0] == &left.Payload[0] {
				t.Fatal("the moved message and the one left behind share a buffer")
			}
			moved.Release()
			if !bytes.Equal(left.Payload, want) {
				t.Fatalf("the message left behind became %.8q once the other was released",
					left.Payload)
			}
			left.Release()
		})
	}
}
