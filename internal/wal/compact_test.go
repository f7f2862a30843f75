package wal

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// TestCompactionMovesLongLivedPuts: one message that nobody takes, in the first
// segment, and a stream of consumed ones behind it. The first segment must not pin
// the log: its put is copied forward, old segments go, disk use stays within twice
// the live data plus a segment, and the message stays readable (by the Location the
// broker knows), replayable after a restart and takeable.
func TestCompactionMovesLongLivedPuts(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 4096)
	l := mustOpen(t, dir, opts)

	pinned := mustPut(t, l, putRec("slow", 1, -7, payloadFor(1, 300)))
	for id := uint64(2); id < 400; id++ {
		loc := mustPut(t, l, putRec("fast", id, int64(id), payloadFor(id, 200)))
		mustTake(t, l, "fast", id, loc)
	}
	waitFor(t, 10*time.Second, "the first segment to be compacted away", func() bool {
		s := l.Stats()
		return s.DiskBytes <= 2*s.LiveBytes+opts.SegmentBytes && s.Segments <= 3
	})
	l.mu.Lock()
	front := l.segments[0].id
	l.mu.Unlock()
	if front == pinned.Segment {
		t.Fatalf("segment %d still there", front)
	}
	got, err := l.ReadPayload(pinned)
	if err != nil || !bytes.Equal(got, payloadFor(1, 300)) {
		t.Fatalf("read moved put by its first location: %q, %v", got, err)
	}
	l.Close()

	l = mustOpen(t, dir, opts)
	puts, next := mustReplay(t, l)
	if len(puts) != 1 || puts[0].rec.ID != 1 || puts[0].rec.Pos != -7 ||
		puts[0].rec.Queue != "slow" || puts[0].loc != pinned ||
		!bytes.Equal(puts[0].rec.Payload, payloadFor(1, 300)) {
		t.Fatalf("replayed %+v, want put 1 at %+v", puts, pinned)
	}
	if next != 400 {
		t.Fatalf("next ID = %d, want 400", next)
	}
	got, err = l.ReadPayload(pinned)
	if err != nil || !bytes.Equal(got, payloadFor(1, 300)) {
		t.Fatalf("read moved put after restart: %q, %v", got, err)
	}
	mustTake(t, l, "slow", 1, pinned)
	l.Close()

	l = mustOpen(t, dir, opts)
	defer l.Close()
	if puts, _ := mustReplay(t, l); len(puts) != 0 {
		t.Fatalf("taken moved put came back: %+v", puts)
	}
}

// TestCompactionCrashBeforeDeleteReplaysOnce: a crash after live puts were copied
// forward but before their old segment was deleted must not replay them twice.
func TestCompactionCrashBeforeDeleteReplaysOnce(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 4096)
	opts.ReadGrace = time.Hour // nothing is deleted
	l := mustOpen(t, dir, opts)

	var locs []storage.Location
	for id := uint64(1); id <= 60; id++ {
		locs = append(locs, mustPut(t, l, putRec("q", id, int64(id), payloadFor(id, 100))))
	}
	for i := 0; i < 60; i += 3 {
		mustTake(t, l, "q", uint64(i+1), locs[i])
	}
	l.mu.Lock()
	front := l.segments[0]
	live := front.livePuts()
	l.mu.Unlock()
	if err := l.moveForward(front, live); err != nil {
		t.Fatalf("move forward: %v", err)
	}
	l.mu.Lock()
	if front.live != 0 {
		t.Fatalf("segment %d still has %d live puts", front.id, front.live)
	}
	l.mu.Unlock()
	l.crash()

	l = mustOpen(t, dir, opts)
	defer l.Close()
	puts, _ := mustReplay(t, l)
	seen := map[uint64]storage.Location{}
	for _, p := range puts {
		if _, dup := seen[p.rec.ID]; dup {
			t.Fatalf("put %d replayed twice", p.rec.ID)
		}
		seen[p.rec.ID] = p.loc
	}
	for i, loc := range locs {
		id := uint64(i + 1)
		got, ok := seen[id]
		if ok != (i%3 != 0) {
			t.Fatalf("put %d replayed = %v, want %v", id, ok, i%3 != 0)
		}
		if ok && got != loc {
			t.Fatalf("put %d replayed at %+v, want its first location %+v", id, got, loc)
		}
	}
}

// TestCompactionUnderConcurrentLoad runs producers and consumers against a log with
// tiny segments while compaction moves and deletes segments under them; every live
// put stays readable by its first location, and after a crash exactly the live puts
// come back.
func TestCompactionUnderConcurrentLoad(t *testing.T) {
	dir := t.TempDir()
	opts, lb := testOptions(t, 8192)
	l := mustOpen(t, dir, opts)

	const workers, perWorker = 4, 600
	var mu sync.Mutex
	live := map[uint64]storage.Location{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var mine []uint64
			for i := range perWorker {
				id := uint64(w*perWorker + i + 1)
				loc := mustPut(t, l, putRec("q", id, int64(id), payloadFor(id, 150)))
				mu.Lock()
				live[id] = loc
				mu.Unlock()
				mine = append(mine, id)
				if i%3 == 2 { // keep one in three for good, take the others
					continue
				}
				victim := mine[0]
				mine = mine[1:]
				mu.Lock()
				loc = live[victim]
				mu.Unlock()
				if got, err := l.ReadPayload(loc); err != nil ||
					!bytes.Equal(got, payloadFor(victim, 150)) {
					t.Errorf("read %d at %+v: %v", victim, loc, err)
					return
				}
				mustTake(t, l, "q", victim, loc)
				mu.Lock()
				delete(live, victim)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if s := l.Stats(); s.DiskBytes > 3*s.LiveBytes+opts.SegmentBytes {
		t.Logf("disk %d bytes for %d live (compaction still catching up)", s.DiskBytes,
			s.LiveBytes)
	}
	if lb.count("segment deleted") == 0 {
		t.Fatalf("compaction deleted no segment under the load")
	}
	for id, loc := range live {
		if got, err := l.ReadPayload(loc); err != nil || !bytes.Equal(got, payloadFor(id, 150)) {
			t.Fatalf("read live %d at %+v after the load: %v", id, loc, err)
		}
	}
	l.crash()

	l = mustOpen(t, dir, opts)
	defer l.Close()
	puts, _ := mustReplay(t, l)
	if len(puts) != len(live) {
		t.Fatalf("replayed %d puts, want %d", len(puts), len(live))
	}
	for _, p := range puts {
		if live[p.rec.ID] != p.loc || !bytes.Equal(p.rec.Payload, payloadFor(p.rec.ID, 150)) {
			t.Fatalf("replayed %d at %+v, want %+v", p.rec.ID, p.loc, live[p.rec.ID])
		}
	}
}

// TestCompactionCopiesSeveralSegmentsARound: a log of many sparse segments (one
// long-lived message each, the rest consumed) has all of them copied forward in one
// round, so that their read graces run together: one a round, a tester's idle
// server with 116 such segments took minutes to give the disk back.
func TestCompactionCopiesSeveralSegmentsARound(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 4096)
	opts.ReadGrace = time.Hour // nothing is deleted: what is copied stays countable
	l := mustOpen(t, dir, opts)
	defer l.Close()

	id := uint64(1)
	for l.Stats().Segments < 10 {
		mustPut(t, l, putRec("slow", id, int64(id), payloadFor(id, 100)))
		id++
		for range 15 {
			loc := mustPut(t, l, putRec("fast", id, int64(id), payloadFor(id, 200)))
			mustTake(t, l, "fast", id, loc)
			id++
		}
	}

	l.compactRound()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, sg := range l.segments[:len(l.segments)-2] {
		if sg.live > 0 {
			t.Fatalf("segment %d of %d still holds %d live puts after a round",
				sg.id, len(l.segments), sg.live)
		}
	}
}
