package wal

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

func TestLogAppendReadReplay(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 64<<10)
	l := mustOpen(t, dir, opts)

	locs := map[uint64]storage.Location{}
	for id := uint64(1); id <= 100; id++ {
		locs[id] = mustPut(t, l, putRec("q", id, int64(id), payloadFor(id, int(id)*7)))
	}
	for id := uint64(1); id <= 100; id += 2 {
		mustTake(t, l, "q", id, locs[id])
	}
	got, err := l.ReadPayload(locs[42])
	if err != nil || !bytes.Equal(got, payloadFor(42, 42*7)) {
		t.Fatalf("ReadPayload(42) = %q, %v", got, err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, _, err := l.Append(putRec("q", 101, 101, nil)); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("append after close: err = %v, want ErrClosed", err)
	}

	l = mustOpen(t, dir, opts)
	defer l.Close()
	puts, next := mustReplay(t, l)
	if next != 101 {
		t.Fatalf("next ID = %d, want 101", next)
	}
	if len(puts) != 50 {
		t.Fatalf("replayed %d puts, want 50", len(puts))
	}
	for i, p := range puts {
		id := uint64(2 * (i + 1))
		if p.rec.ID != id || p.rec.Pos != int64(id) || p.rec.Queue != "q" ||
			p.loc != locs[id] || !bytes.Equal(p.rec.Payload, payloadFor(id, int(id)*7)) {
			t.Fatalf("replayed #%d = %+v at %+v, want id %d at %+v", i, p.rec, p.loc, id, locs[id])
		}
	}
}

// TestLogSegmentRollExactBoundary fills a segment to its last byte: the record that
// fits exactly stays, the next one starts the next segment. (The room for takes is
// held in spare segments, not at the end of each segment.)
func TestLogSegmentRollExactBoundary(t *testing.T) {
	const segmentBytes = 8192
	frame := len(appendPut(nil, putRec("q", 1, 1, make([]byte, 100)), storage.Location{}))
	room := int64(segmentBytes - segmentHeader)
	k := room / int64(frame)
	last := room - (k-1)*int64(frame) // the k-th record fills the area exactly
	payloadLast := 100 + int(last) - frame

	opts, _ := testOptions(t, segmentBytes)
	l := mustOpen(t, t.TempDir(), opts)
	defer l.Close()
	for id := uint64(1); id < uint64(k); id++ {
		loc := mustPut(t, l, putRec("q", id, 1, make([]byte, 100)))
		if loc.Segment != 1 {
			t.Fatalf("put %d went to segment %d, want 1", id, loc.Segment)
		}
	}
	loc := mustPut(t, l, putRec("q", uint64(k), 1, make([]byte, payloadLast)))
	if loc.Segment != 1 || loc.Offset+last != segmentBytes {
		t.Fatalf("exact-fit put at %+v (frame %d), want segment 1 ending at %d",
			loc, last, segmentBytes)
	}
	loc = mustPut(t, l, putRec("q", uint64(k+1), 1, nil))
	if want := (storage.Location{Segment: 2, Offset: segmentHeader}); loc != want {
		t.Fatalf("next put at %+v, want %+v", loc, want)
	}
	// A take still fits in segment 2; nothing rolls.
	mustTake(t, l, "q", 1, storage.Location{Segment: 1, Offset: segmentHeader})
	if n := l.Stats().Segments; n != 2 {
		t.Fatalf("segments = %d, want 2", n)
	}
}

// TestLogReaderRightBehindWriter reads every payload back as soon as its put is
// appended, while the writer keeps going and segments roll.
func TestLogReaderRightBehindWriter(t *testing.T) {
	// With fsync always the records wait in memory for the syncer's write, and a
	// read of one of them writes them out first.
	for _, fsync := range []FsyncPolicy{FsyncNever, FsyncAlways} {
		t.Run(fsync.String(), func(t *testing.T) { testReaderBehindWriter(t, fsync) })
	}
}

func testReaderBehindWriter(t *testing.T, fsync FsyncPolicy) {
	opts, _ := testOptions(t, 16<<10)
	opts.Fsync = fsync
	dir := t.TempDir()
	l := mustOpen(t, dir, opts)

	type appended struct {
		id  uint64
		loc storage.Location
	}
	ch := make(chan appended, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ch)
		for id := uint64(1); id <= 2000; id++ {
			loc, _, err := l.Append(putRec("q", id, int64(id), payloadFor(id, int(id%300))))
			if err != nil {
				t.Errorf("append %d: %v", id, err)
				return
			}
			ch <- appended{id, loc}
		}
	})
	for a := range ch {
		got, err := l.ReadPayload(a.loc)
		if err != nil || !bytes.Equal(got, payloadFor(a.id, int(a.id%300))) {
			t.Fatalf("read %d right after append: %q, %v", a.id, got, err)
		}
	}
	wg.Wait()
	if n := l.Stats().Segments; n < 10 {
		t.Fatalf("segments = %d, want the writer to have rolled many", n)
	}

	// Every record is still whole after a restart: the syncer's zeros, written
	// ahead of the records meanwhile, never landed on one.
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	l = mustOpen(t, dir, opts)
	defer l.Close()
	puts, _ := mustReplay(t, l)
	if len(puts) != 2000 {
		t.Fatalf("replayed %d puts, want 2000", len(puts))
	}
	for i, p := range puts {
		id := uint64(i + 1)
		if p.rec.ID != id || !bytes.Equal(p.rec.Payload, payloadFor(id, int(id%300))) {
			t.Fatalf("replayed #%d: id %d, payload %q", i, p.rec.ID, p.rec.Payload)
		}
	}
}

// TestLogGroupWritesOnce: with fsync always, records appended while no round runs
// reach the file in one write(2) per sync round, not one each, and read back whole
// after a restart.
func TestLogGroupWritesOnce(t *testing.T) {
	fs := &faultFS{syncDelay: 2 * time.Millisecond}
	opts, _ := testOptions(t, 1<<20)
	opts.fs = fs
	dir := t.TempDir()
	l := mustOpen(t, dir, opts)

	fs.mu.Lock()
	fs.writes = 0
	fs.mu.Unlock()
	syncs := l.Stats().Syncs
	const n = 200
	var last storage.Ticket
	for id := uint64(1); id <= n; id++ {
		_, ticket, err := l.Append(putRec("q", id, int64(id), payloadFor(id, 64)))
		if err != nil {
			t.Fatalf("append %d: %v", id, err)
		}
		last = ticket
	}
	if err := l.Wait(context.Background(), last); err != nil {
		t.Fatalf("wait: %v", err)
	}
	syncs = l.Stats().Syncs - syncs
	fs.mu.Lock()
	writes := fs.writes
	fs.mu.Unlock()
	if writes == 0 || writes > int(syncs) || writes > n/10 {
		t.Fatalf("%d writes and %d fsyncs for %d records, want one write per fsync",
			writes, syncs, n)
	}
	t.Logf("%d records: %d writes, %d fsyncs", n, writes, syncs)

	l.crash() // everything was waited for: all of it is on disk
	l = mustOpen(t, dir, opts)
	defer l.Close()
	checkReplay(t, l, idsUpTo(n), 64)
}

// TestLogGroupCommitSharesFsyncs has 64 producers put and wait at once: with fsync
// always, they must share fsyncs.
func TestLogGroupCommitSharesFsyncs(t *testing.T) {
	fs := &faultFS{syncDelay: 5 * time.Millisecond} // a slow disk: batches form
	opts, _ := testOptions(t, 1<<20)
	opts.fs = fs
	l := mustOpen(t, t.TempDir(), opts)
	defer l.Close()

	const producers, each = 64, 20
	before := l.Stats().Syncs
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				id := uint64(p*each + i + 1)
				mustPut(t, l, putRec("q", id, int64(id), payloadFor(id, 64)))
			}
		})
	}
	wg.Wait()

	syncs := l.Stats().Syncs - before
	if syncs == 0 || syncs > producers*each/4 {
		t.Fatalf("%d fsyncs for %d acknowledged puts, want between 1 and %d",
			syncs, producers*each, producers*each/4)
	}
	t.Logf("%d fsyncs for %d puts (%.3f per put)", syncs, producers*each,
		float64(syncs)/float64(producers*each))
}

// TestLogSyncErrorIsSticky: after a failed fsync the log keeps the first error and
// refuses every later append, even once the disk works again.
func TestLogSyncErrorIsSticky(t *testing.T) {
	fs := &faultFS{}
	opts, lb := testOptions(t, 1<<20)
	opts.fs = fs
	l := mustOpen(t, t.TempDir(), opts)
	defer l.Close()

	mustPut(t, l, putRec("q", 1, 1, []byte("ok")))
	if err := l.Err(); err != nil {
		t.Fatalf("Err of a working log = %v", err)
	}
	fs.mu.Lock()
	fs.syncErr = errInjected
	fs.mu.Unlock()

	_, ticket, err := l.Append(putRec("q", 2, 2, []byte("lost")))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := l.Wait(context.Background(), ticket); !errors.Is(err, errInjected) {
		t.Fatalf("wait: err = %v, want the injected error", err)
	}

	fs.mu.Lock()
	fs.syncErr = nil
	fs.mu.Unlock()
	if _, _, err := l.Append(putRec("q", 3, 3, nil)); !errors.Is(err, errInjected) {
		t.Fatalf("append after failure: err = %v, want the first error", err)
	}
	if n := lb.count("log failed, refusing writes"); n != 1 {
		t.Fatalf("logged the failure %d times, want 1", n)
	}
	if err := l.Err(); !errors.Is(err, errInjected) {
		t.Fatalf("Err after the failure = %v, want the first error (for readiness)", err)
	}
}

// TestLogLocksDataDirectory: a second Open of the same directory fails while the
// first log is open, and succeeds once it is closed.
func TestLogLocksDataDirectory(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 64<<10)
	l := mustOpen(t, dir, opts)
	if _, err := Open(dir, opts); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: err = %v, want ErrLocked", err)
	}
	l.Close()
	mustOpen(t, dir, opts).Close()
}
