package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// brokerModel is what a test expects each queue to hold, head first.
type brokerModel map[string][][]byte

func openBroker(t testing.TB, dir string, opts Options, cacheBytes int64) (*broker.Broker, *Log) {
	t.Helper()
	l := mustOpen(t, dir, opts)
	b, err := broker.New(broker.Config{Store: l, CacheBytes: cacheBytes, Logger: opts.Logger})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	return b, l
}

// drive runs a mix of puts, head puts, gets and tail pops on b and mirrors them in m.
func drive(t *testing.T, b *broker.Broker, m brokerModel, rng *rand.Rand, ops int) uint64 {
	t.Helper()
	ctx := context.Background()
	var maxID uint64
	for range ops {
		q := fmt.Sprintf("queue-%d", rng.IntN(5))
		switch r := rng.IntN(10); {
		case r < 6:
			p := make([]byte, rng.IntN(600))
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			front := r == 0
			var id uint64
			var err error
			if front {
				id, err = b.PutFront(ctx, q, p)
				m[q] = append([][]byte{p}, m[q]...)
			} else {
				id, err = b.Put(ctx, q, p)
				m[q] = append(m[q], p)
			}
			if err != nil {
				t.Fatalf("put on %s: %v", q, err)
			}
			maxID = max(maxID, id)
		case r < 9:
			checkGet(t, b, m, q, false)
		default:
			checkGet(t, b, m, q, true)
		}
	}
	return maxID
}

// checkGet takes the head (or tail) of q and checks it against the model.
func checkGet(t *testing.T, b *broker.Broker, m brokerModel, q string, back bool) {
	t.Helper()
	var msg broker.Message
	var err error
	if back {
		msg, err = b.PopBack(context.Background(), q)
	} else {
		msg, err = b.Get(context.Background(), q, 0)
	}
	if len(m[q]) == 0 {
		if !errors.Is(err, broker.ErrEmpty) {
			t.Fatalf("get on empty %s: %+v, %v", q, msg, err)
		}
		return
	}
	var want []byte
	if back {
		want, m[q] = m[q][len(m[q])-1], m[q][:len(m[q])-1]
	} else {
		want, m[q] = m[q][0], m[q][1:]
	}
	if err != nil || !bytes.Equal(msg.Payload, want) {
		t.Fatalf("get on %s (back %v): %d bytes, err %v; want %d bytes", q, back,
			len(msg.Payload), err, len(want))
	}
}

// checkQueues checks that every queue of b holds exactly what m says, in order, by
// draining it.
func checkQueues(t *testing.T, b *broker.Broker, m brokerModel) {
	t.Helper()
	for q, msgs := range m {
		if n, _ := b.Len(q); n != len(msgs) {
			t.Fatalf("len(%s) = %d, want %d", q, n, len(msgs))
		}
		for len(m[q]) > 0 {
			checkGet(t, b, m, q, false)
		}
		checkGet(t, b, m, q, false)
	}
}

// TestBrokerRestartWithLog runs a broker on the log, with a payload cache small
// enough that gets read payloads back from the log and segments small enough to
// roll and compact, then restarts it, cleanly or after a simulated crash: every
// queue comes back in order with the right bytes, and IDs keep growing.
func TestBrokerRestartWithLog(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir := t.TempDir()
			opts, _ := testOptions(t, 16<<10)
			opts.ReadGrace = DefaultReadGrace
			rng := rand.New(rand.NewPCG(1, 2))
			m := brokerModel{}

			var maxID uint64
			for round := range 3 {
				b, l := openBroker(t, dir, opts, 4<<10)
				id := drive(t, b, m, rng, 400)
				if id != 0 && id <= maxID {
					t.Fatalf("round %d: ID %d after %d: IDs went backwards", round, id, maxID)
				}
				maxID = max(maxID, id)
				if crash {
					l.crash()
					b.Close() // stops the broker's goroutines; its store is already gone
				} else if err := b.Close(); err != nil {
					t.Fatalf("close: %v", err)
				}
			}

			b, _ := openBroker(t, dir, opts, 4<<10)
			defer b.Close()
			checkQueues(t, b, m)
		})
	}
}

// TestBrokerRestartMillionMessages puts 1e6 messages over 1,000 queues, restarts
// and checks them all. It takes a while: set KEYQ_LARGE_TESTS=1 to run it.
func TestBrokerRestartMillionMessages(t *testing.T) {
	if os.Getenv("KEYQ_LARGE_TESTS") == "" {
		t.Skip("set KEYQ_LARGE_TESTS=1 to run")
	}
	const queues, perQueue = 1000, 1000
	dir := t.TempDir()
	opts, _ := testOptions(t, DefaultSegmentBytes)
	opts.Fsync = FsyncNever
	opts.Logger = nil
	ctx := context.Background()

	b, _ := openBroker(t, dir, opts, 0)
	start := time.Now()
	for i := range perQueue {
		for q := range queues {
			if _, err := b.Put(ctx, fmt.Sprintf("q%04d", q), payloadFor(uint64(i), 32)); err != nil {
				t.Fatalf("put: %v", err)
			}
		}
	}
	t.Logf("put %d messages in %v", queues*perQueue, time.Since(start))
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	start = time.Now()
	b, l := openBroker(t, dir, opts, 0)
	defer b.Close()
	t.Logf("restart with %d messages (%d bytes of log) took %v", queues*perQueue,
		l.Stats().DiskBytes, time.Since(start))

	for q := range queues {
		name := fmt.Sprintf("q%04d", q)
		for i := range perQueue {
			msg, err := b.Get(ctx, name, 0)
			if err != nil || !bytes.Equal(msg.Payload, payloadFor(uint64(i), 32)) {
				t.Fatalf("get %d of %s: %q, %v", i, name, msg.Payload, err)
			}
		}
	}
}
