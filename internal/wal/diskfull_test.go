package wal

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// TestLogDiskFullC27: with the disk full, a put fails promptly with ErrDiskFull and
// leaves nothing in the log, the condition is logged once, takes keep working, and
// puts succeed again once space returns, without a restart. Both with preallocated
// segments and on a file system without fallocate.
func TestLogDiskFullC27(t *testing.T) {
	for _, noAllocate := range []bool{false, true} {
		name := "preallocated"
		if noAllocate {
			name = "no fallocate"
		}
		t.Run(name, func(t *testing.T) { testDiskFull(t, noAllocate) })
	}
}

func testDiskFull(t *testing.T, noAllocate bool) {
	fs := &faultFS{noAllocate: noAllocate}
	dir := t.TempDir()
	opts, lb := testOptions(t, 4096)
	opts.fs = fs
	l := mustOpen(t, dir, opts)

	var locs []storage.Location
	id := uint64(1)
	for ; id <= 10; id++ {
		locs = append(locs, mustPut(t, l, putRec("q", id, int64(id), payloadFor(id, 100))))
	}
	fs.setFull(true)

	var err error
	for range 100 { // the active segment fills, then no new one can be made
		var loc storage.Location
		var ticket storage.Ticket
		loc, ticket, err = l.Append(putRec("q", id, int64(id), payloadFor(id, 100)))
		if err != nil {
			break
		}
		if err := l.Wait(context.Background(), ticket); err != nil {
			t.Fatalf("wait put %d: %v", id, err)
		}
		locs = append(locs, loc)
		id++
	}
	if !errors.Is(err, storage.ErrDiskFull) {
		t.Fatalf("put on a full disk: err = %v, want ErrDiskFull", err)
	}
	for range 5 {
		if _, _, err := l.Append(putRec("q", id, int64(id), payloadFor(id, 100))); !errors.Is(
			err, storage.ErrDiskFull) {
			t.Fatalf("second put on a full disk: err = %v, want ErrDiskFull", err)
		}
	}
	if n := lb.count("disk full, refusing puts"); n != 1 {
		t.Fatalf("disk full logged %d times, want once", n)
	}

	if !noAllocate { // takes go to the segment's reserve
		for _, loc := range locs[:3] {
			mustTake(t, l, "q", 0, loc)
		}
	}

	fs.setFull(false)
	var loc storage.Location
	waitFor(t, 5*time.Second, "a put to succeed once space is back", func() bool {
		var ticket storage.Ticket
		loc, ticket, err = l.Append(putRec("q", id, int64(id), payloadFor(id, 100)))
		return err == nil && l.Wait(context.Background(), ticket) == nil
	})
	if lb.count("disk space back") != 1 {
		t.Fatalf("no log line for the space coming back:\n%s", lb.String())
	}
	got, err := l.ReadPayload(loc)
	if err != nil || string(got) != string(payloadFor(id, 100)) {
		t.Fatalf("read back the put after the disk emptied: %q, %v", got, err)
	}
	l.crash()

	// Nothing partial was left: the log opens without cutting anything.
	opts2, lb2 := testOptions(t, 4096)
	opts2.fs = fs
	l = mustOpen(t, dir, opts2)
	defer l.Close()
	if lb2.count("torn") != 0 {
		t.Fatalf("reopen found a torn record:\n%s", lb2.String())
	}
	puts, _ := mustReplay(t, l)
	if last := puts[len(puts)-1]; last.rec.ID != id {
		t.Fatalf("last replayed put is %d, want %d", last.rec.ID, id)
	}
}
