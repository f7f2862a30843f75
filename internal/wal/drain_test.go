package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/storage"
)

// drainSegmentBytes and drainCapacity make a disk of five segments and a bit, as
// the 5 MB tmpfs with 1 MiB segments where gets got stuck.
const (
	drainSegmentBytes = 16 << 10
	drainCapacity     = 5*drainSegmentBytes + 8<<10
)

// fillDisk puts messages of size bytes on l until a put fails for lack of space,
// and returns where each put went.
func fillDisk(t *testing.T, l *Log, size int) []storage.Location {
	t.Helper()
	var locs []storage.Location
	var last storage.Ticket
	for id := uint64(1); ; id++ {
		loc, ticket, err := l.Append(putRec("q", id, int64(id), payloadFor(id, size)))
		if errors.Is(err, storage.ErrDiskFull) {
			break
		}
		if err != nil {
			t.Fatalf("put %d: %v", id, err)
		}
		locs = append(locs, loc)
		last = ticket
	}
	if err := l.Wait(context.Background(), last); err != nil {
		t.Fatalf("wait for the puts: %v", err)
	}
	return locs
}

// takeAll takes the puts at locs, whose IDs are first, first+1, ..., last first if
// reverse is set, and fails the test at the first take the log refuses.
func takeAll(t *testing.T, l *Log, first uint64, locs []storage.Location, reverse bool) {
	t.Helper()
	var last storage.Ticket
	for n := range locs {
		i := n
		if reverse {
			i = len(locs) - 1 - n
		}
		id := first + uint64(i)
		rec := &storage.Record{Op: storage.OpTake, Queue: "q", ID: id, Ref: locs[i]}
		_, ticket, err := l.Append(rec)
		if err != nil {
			t.Fatalf("take %d of %d (message %d) on a full disk: %v", n+1, len(locs), id, err)
		}
		last = ticket
	}
	if err := l.Wait(context.Background(), last); err != nil {
		t.Fatalf("wait for the takes: %v", err)
	}
}

// TestLogDrainsFullDiskOfSmallMessages: a disk filled with small messages can be
// drained to the last message, in the order they were put or the reverse (no
// segment can be deleted until the very end). Each take record is a sizeable share
// of a small put, so a reserve of a fixed share of each segment ran out long
// before a whole segment was consumed (none could be deleted to make room), and
// every get after that failed with disk full. Once drained, puts come back.
func TestLogDrainsFullDiskOfSmallMessages(t *testing.T) {
	for _, fsync := range []FsyncPolicy{FsyncAlways, FsyncNever} {
		for _, size := range []int{0, 10, 64} {
			for _, reverse := range []bool{false, true} {
				name := fmt.Sprintf("%s/%dB/reverse=%v", fsync, size, reverse)
				t.Run(name, func(t *testing.T) { testDrainFullDisk(t, fsync, size, reverse) })
			}
		}
	}
}

func testDrainFullDisk(t *testing.T, fsync FsyncPolicy, size int, reverse bool) {
	fs := newQuotaFS(drainCapacity)
	opts, lb := testOptions(t, drainSegmentBytes)
	opts.Fsync, opts.fs = fsync, fs
	l := mustOpen(t, t.TempDir(), opts)
	defer l.Close()
	if n := l.Stats().Spares; n != 0 {
		t.Fatalf("a new log made %d spares, before any put needed room", n)
	}

	locs := fillDisk(t, l, size)
	if min := 3 * drainSegmentBytes / 64; len(locs) < min {
		t.Fatalf("only %d puts of %d bytes fit, want at least %d", len(locs), size, min)
	}
	if lb.count("disk full, refusing puts; gets and acks still served") != 1 {
		t.Fatalf("the full disk was not logged once:\n%s", lb.String())
	}
	if err := l.DiskFull(); !errors.Is(err, storage.ErrDiskFull) {
		t.Fatalf("DiskFull on a full disk = %v", err)
	}
	checkRoom(t, l)

	takeAll(t, l, 1, locs, reverse)
	if puts, _ := mustReplay(t, l); len(puts) != 0 {
		t.Fatalf("%d puts left after the drain", len(puts))
	}
	if lb.count("refusing gets") != 0 {
		t.Fatalf("gets were refused:\n%s", lb.String())
	}

	id := uint64(len(locs) + 1)
	waitFor(t, 10*time.Second, "puts to come back after the drain", func() bool {
		_, ticket, err := l.Append(putRec("q", id, int64(id), payloadFor(id, size)))
		return err == nil && l.Wait(context.Background(), ticket) == nil
	})
	waitFor(t, 10*time.Second, "the log to find space back", func() bool {
		return l.DiskFull() == nil && lb.count("disk space back") > 0
	})
	if lb.count("disk space back") != 1 {
		t.Fatalf("no log line for the space coming back:\n%s", lb.String())
	}
	checkRoom(t, l)
}

// checkRoom fails the test unless the room l holds covers the takes of its live
// puts.
func checkRoom(t *testing.T, l *Log) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.roomAfterLocked(0); room < l.reserved {
		t.Fatalf("room for takes %d bytes, under the %d reserved", room, l.reserved)
	}
}

// TestLogDrainsFullDiskAfterRestart: a log reopened on a full disk serves every get
// too, whether it stopped right after the disk filled or half way through the
// drain: opening must not need space the disk no longer has.
func TestLogDrainsFullDiskAfterRestart(t *testing.T) {
	for _, taken := range []int{0, 2} { // thirds taken before the crash
		t.Run(fmt.Sprintf("%d thirds taken", taken), func(t *testing.T) {
			fs := newQuotaFS(drainCapacity)
			dir := t.TempDir()
			opts, _ := testOptions(t, drainSegmentBytes)
			opts.fs = fs
			l := mustOpen(t, dir, opts)
			locs := fillDisk(t, l, 10)
			cut := len(locs) * taken / 3
			takeAll(t, l, 1, locs[:cut], false)
			l.crash()

			l = mustOpen(t, dir, opts)
			defer l.Close()
			if err := l.DiskFull(); cut == 0 && !errors.Is(err, storage.ErrDiskFull) {
				t.Fatalf("DiskFull of a log reopened on a full disk = %v", err)
			}
			puts, _ := mustReplay(t, l)
			if len(puts) != len(locs)-cut {
				t.Fatalf("replayed %d puts, want %d", len(puts), len(locs)-cut)
			}
			if _, _, err := l.Append(putRec("q", 1<<40, 1<<40, []byte("x"))); cut == 0 &&
				!errors.Is(err, storage.ErrDiskFull) {
				t.Fatalf("put on the reopened full disk: %v, want disk full", err)
			}
			checkRoom(t, l)
			takeAll(t, l, uint64(cut+1), locs[cut:], false)
		})
	}
}

// TestBrokerDrainsFullDiskAcrossRestart runs the tester's case through the broker:
// small messages fill the disk, a few of them leased; the broker reports itself not
// ready for the full disk, serves every get, and after a crash it starts again on
// the full disk (returning the leased messages needs records it cannot write) and
// serves the rest. Once drained, puts and readiness come back.
func TestBrokerDrainsFullDiskAcrossRestart(t *testing.T) {
	ctx := context.Background()
	fs := newQuotaFS(drainCapacity)
	dir := t.TempDir()
	opts, lb := testOptions(t, drainSegmentBytes)
	opts.Fsync, opts.fs = FsyncNever, fs
	b, l := openBroker(t, dir, opts, 0)

	put := 0
	for ; put < 5; put++ {
		if _, err := b.Put(ctx, "q", nil); err != nil {
			t.Fatalf("put %d: %v", put, err)
		}
	}
	leased, err := b.Reserve(ctx, []string{"q"}, broker.ReserveOptions{Max: 3,
		Lease: time.Hour})
	if err != nil || len(leased) != 3 {
		t.Fatalf("reserve: %d, %v", len(leased), err)
	}
	for ; ; put++ {
		_, err := b.Put(ctx, "q", nil)
		if errors.Is(err, broker.ErrDiskFull) {
			break
		}
		if err != nil {
			t.Fatalf("put %d: %v", put, err)
		}
	}
	if err := b.Ready(); !errors.Is(err, broker.ErrDiskFull) {
		t.Fatalf("Ready on a full disk = %v, want disk full", err)
	}
	got := drainBroker(t, b, put/3)
	l.crash()
	b.Close()

	b, _ = openBroker(t, dir, opts, 0)
	defer b.Close()
	got += drainBroker(t, b, -1)
	if got != put {
		t.Fatalf("got %d messages of %d", got, put)
	}
	if lb.count("disk full, refusing gets") != 0 {
		t.Fatalf("gets were refused:\n%s", lb.String())
	}
	waitFor(t, 10*time.Second, "puts to come back after the drain", func() bool {
		_, err := b.Put(ctx, "q", nil)
		return err == nil
	})
	waitFor(t, 10*time.Second, "ready after the drain", func() bool {
		return b.Ready() == nil
	})
}

// drainBroker gets up to n messages from queue q of b (all of them if n < 0) and
// returns how many it got; any error but an empty queue fails the test.
func drainBroker(t *testing.T, b *broker.Broker, n int) int {
	t.Helper()
	got := 0
	for ; n < 0 || got < n; got++ {
		_, err := b.Get(context.Background(), "q", 0)
		if errors.Is(err, broker.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatalf("get %d on a full disk: %v", got+1, err)
		}
	}
	return got
}

// TestLogSparesSurviveCrashes: the spares a full log holds are found again at open.
// A spare left with the segment header written but not renamed (a crash while it
// became a segment) is still a spare, a spare of the wrong size (a crash while it
// was made, or another segment size) is removed, and the next spare gets a new
// name.
func TestLogSparesSurviveCrashes(t *testing.T) {
	fs := newQuotaFS(drainCapacity)
	dir := t.TempDir()
	opts, _ := testOptions(t, drainSegmentBytes)
	opts.fs = fs
	l := mustOpen(t, dir, opts)
	locs := fillDisk(t, l, 10)
	st := l.Stats()
	if st.Spares == 0 {
		t.Fatalf("a full disk of small messages left no spare: %+v", st)
	}
	l.mu.Lock()
	spare := l.spares[0]
	l.mu.Unlock()
	f, err := fs.OpenFile(spare, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(encodeSegmentHeader(99, 1), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l.crash()

	junk := filepath.Join(dir, spareName(50))
	if err := os.WriteFile(junk, []byte("half made"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs.setUsed(junk, 9)
	l = mustOpen(t, dir, opts)
	defer l.Close()
	if got := l.Stats(); got.Spares != st.Spares || got.Reserved != st.Reserved {
		t.Fatalf("reopened with %d spares and %d bytes reserved, want %d and %d",
			got.Spares, got.Reserved, st.Spares, st.Reserved)
	}
	if _, err := os.Stat(junk); !os.IsNotExist(err) {
		t.Fatalf("spare of the wrong size kept: %v", err)
	}
	checkRoom(t, l)
	takeAll(t, l, 1, locs, false)
	l.mu.Lock()
	seq := l.spareSeq
	l.mu.Unlock()
	if seq < 50 {
		t.Fatalf("spare numbers restart at %d, under a name already seen (50)", seq)
	}
}
