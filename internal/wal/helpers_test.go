package wal

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// testOptions returns options for a test log: small segments, fsync always, a short
// read grace, logs to the test's output and to the returned buffer.
func testOptions(t testing.TB, segmentBytes int64) (Options, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	h := slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})
	return Options{
		SegmentBytes: segmentBytes,
		ReadGrace:    time.Millisecond,
		Logger:       slog.New(h),
	}, lb
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns how many log lines contain s.
func (b *logBuffer) count(s string) int { return strings.Count(b.String(), s) }

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return l
}

// crash abandons l as a killed process would: its goroutines stop and its files are
// closed without a final fsync; what was written stays in the page cache.
func (l *Log) crash() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	close(l.done)
	l.cancel()
	l.wg.Wait()
	l.closeFiles()
	l.lock.Close()
}

// putRec builds a put record.
func putRec(queue string, id uint64, pos int64, payload []byte) *storage.Record {
	return &storage.Record{Op: storage.OpPut, Queue: queue, ID: id, Pos: pos, Payload: payload}
}

// mustPut appends a put and waits for it.
func mustPut(t testing.TB, l *Log, rec *storage.Record) storage.Location {
	t.Helper()
	loc, ticket, err := l.Append(rec)
	if err != nil {
		t.Fatalf("append put %d: %v", rec.ID, err)
	}
	if err := l.Wait(context.Background(), ticket); err != nil {
		t.Fatalf("wait put %d: %v", rec.ID, err)
	}
	return loc
}

// mustTake appends a take of the put at ref and waits for it.
func mustTake(t testing.TB, l *Log, queue string, id uint64, ref storage.Location) {
	t.Helper()
	rec := &storage.Record{Op: storage.OpTake, Queue: queue, ID: id, Ref: ref}
	_, ticket, err := l.Append(rec)
	if err != nil {
		t.Fatalf("append take %d: %v", id, err)
	}
	if err := l.Wait(context.Background(), ticket); err != nil {
		t.Fatalf("wait take %d: %v", id, err)
	}
}

// replayed is one put as Replay yields it.
type replayed struct {
	rec storage.Record
	loc storage.Location
}

func mustReplay(t testing.TB, l *Log) ([]replayed, uint64) {
	t.Helper()
	var out []replayed
	next, err := l.Replay(func(rec *storage.Record, loc storage.Location) error {
		r := *rec
		r.Payload = bytes.Clone(rec.Payload) // lent for the call only
		out = append(out, replayed{r, loc})
		return nil
	})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	return out, next
}

// payloadFor returns a payload of n bytes that tells message id apart.
func payloadFor(id uint64, n int) []byte {
	p := make([]byte, n)
	s := fmt.Sprintf("message-%d|", id)
	for i := range p {
		p[i] = s[i%len(s)]
	}
	return p
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func testLogger(lb *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
