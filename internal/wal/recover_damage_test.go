package wal

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// dirState returns the name and a digest of the contents of every file in dir, so a
// test can tell that Open changed nothing.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	state := make(map[string]string, len(entries))
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		state[e.Name()] = fmt.Sprintf("%d:%x", len(data), sha256.Sum256(data))
	}
	return state
}

// refuseUnchanged opens dir, wants it refused with an error wrapping ErrCorrupt that
// contains every one of want, and the directory unchanged by the attempt.
func refuseUnchanged(t *testing.T, dir string, opts Options, want ...string) error {
	t.Helper()
	before := dirState(t, dir)
	l, err := Open(dir, opts)
	if err == nil {
		l.Close()
		t.Fatalf("open succeeded, want it refused")
	}
	if after := dirState(t, dir); !maps.Equal(before, after) {
		t.Fatalf("the refused open (%v) changed the directory:\nbefore %v\nafter  %v", err,
			before, after)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: err = %v, want ErrCorrupt", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("open: err = %q, want it to say %q", err, w)
		}
	}
	return err
}

// frameOf returns the frame size of the puts writeLog writes with payloads of size.
func frameOf(id uint64, size int) int64 {
	return int64(len(appendPut(nil, putRec("q", id, int64(id), payloadFor(id, size)),
		storage.Location{})))
}

// TestRecoverRefusesNewestSegmentCutShort: a newest segment shorter than the size it
// was preallocated to was cut outside the log (truncate, a file system that lost
// data), not torn by a crash: Open refuses, naming the file, its size and the
// expected size, and changes nothing. Repair accepts the loss and says so; the log
// then opens with the records before the cut, and hands out no ID again.
func TestRecoverRefusesNewestSegmentCutShort(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 64<<10)
	const n, size = 150, 500
	locs := writeLog(t, dir, opts, n, size)
	newest := locs[n-1].Segment
	if locs[0].Segment == newest {
		t.Fatalf("setup: want more than one segment")
	}
	path := segmentPath(dir, newest)
	cut := locs[n-10].Offset + 6 // through a record, with 9 more after it
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}

	refuseUnchanged(t, dir, opts, path, strconv.FormatInt(cut, 10),
		strconv.FormatInt(opts.SegmentBytes, 10), "keyq repair")

	report, err := Repair(dir, nil)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	found := false
	for _, d := range report.Dropped {
		found = found || d.File == path && d.Offset == cut && strings.Contains(d.Reason,
			"cut short")
	}
	if !found {
		t.Fatalf("repair reported %+v, want the cut at %s offset %d", report.Dropped, path,
			cut)
	}

	l := mustOpen(t, dir, opts)
	checkReplay(t, l, idsUpTo(n-10), size)
	_, next := mustReplay(t, l)
	if next <= n {
		t.Fatalf("next ID after the repair = %d, want past %d", next, n)
	}
	mustPut(t, l, putRec("q", next, int64(next), payloadFor(next, size)))
	l.crash()
	l = mustOpen(t, dir, opts)
	defer l.Close()
	checkReplay(t, l, append(idsUpTo(n-10), next), size)
}

// TestRecoverRefusesStrayFile: a file named like a segment that is not one of the
// log's (outside the range the RANGE file records, or with no valid segment header)
// is refused by name as such, not as a missing segment before it. Repair moves it
// aside, creates no segment to fill up to it, and the log opens with every record.
func TestRecoverRefusesStrayFile(t *testing.T) {
	const n, size = 150, 500
	cases := []struct {
		name     string
		id       func(last uint64) uint64
		contents []byte
		noRange  bool
	}{
		{"far past the range", func(uint64) uint64 { return 99 }, []byte("junk\n"), false},
		{"right after the range", func(last uint64) uint64 { return last + 1 },
			[]byte("junk\n"), false},
		{"a valid header past the range", func(uint64) uint64 { return 99 },
			encodeSegmentHeader(99, 1), false},
		{"the largest id", func(uint64) uint64 { return math.MaxUint64 }, []byte("junk\n"),
			false},
		{"after a gap, no RANGE file", func(uint64) uint64 { return 99 }, []byte("junk\n"),
			true},
		// A copy of the newest segment, its header intact but naming that segment (a
		// tester's case: repair without a RANGE file took such a copy in, and the log
		// held its records twice).
		{"a copy of a segment", func(last uint64) uint64 { return last + 1 }, nil, false},
		{"a copy of a segment, no RANGE file", func(last uint64) uint64 { return last + 1 },
			nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			opts, _ := testOptions(t, 64<<10)
			locs := writeLog(t, dir, opts, n, size)
			first, last := locs[0].Segment, locs[n-1].Segment
			if c.noRange {
				os.Remove(filepath.Join(dir, rangeName))
			}
			stray := segmentPath(dir, c.id(last))
			if c.contents == nil {
				var err error
				if c.contents, err = os.ReadFile(segmentPath(dir, last)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(stray, c.contents, 0o644); err != nil {
				t.Fatal(err)
			}

			want := []string{"unexpected file " + stray, "not a segment of this log"}
			if !c.noRange {
				want = append(want, fmt.Sprintf("RANGE says %d..%d", first, last))
			}
			err := refuseUnchanged(t, dir, opts, want...)
			if strings.Contains(err.Error(), segmentPath(dir, last+1)) && c.id(last) != last+1 {
				t.Fatalf("open: err = %q names a file that never existed", err)
			}

			report, err := Repair(dir, nil)
			if err != nil {
				t.Fatalf("repair: %v", err)
			}
			ids, _ := listSegments(osFS{}, dir)
			if want := []uint64{first, last}; !slices.Equal(ids, want) {
				t.Fatalf("segments after repair: %v, want %v", ids, want)
			}
			if len(report.Strays) != 1 || report.Strays[0].File != stray {
				t.Fatalf("repair reported strays %+v, want %s", report.Strays, stray)
			}
			moved, err := os.ReadFile(report.Strays[0].MovedTo)
			if err != nil || string(moved) != string(c.contents) {
				t.Fatalf("the stray file moved aside to %s: %q, %v; want its contents kept",
					report.Strays[0].MovedTo, moved, err)
			}

			l := mustOpen(t, dir, opts)
			defer l.Close()
			checkReplay(t, l, idsUpTo(n), size)
			if loc := mustPut(t, l, putRec("q", n+1, n+1, nil)); loc.Segment != last {
				t.Fatalf("a put after repair went to segment %d, want %d", loc.Segment, last)
			}
		})
	}
}

// TestRecoverRefusesEmptyNewestSegment: a newest segment the RANGE file records
// that is empty or all zeros has lost its header and its records: Open refuses
// without deleting it (it used to delete it, then refuse for the missing file).
// Repair reports the loss, and the log opens with the rest, handing out no ID again.
// A zero-filled segment past the range, left by a crash while it was being created,
// is still removed at open.
func TestRecoverRefusesEmptyNewestSegment(t *testing.T) {
	const n, size = 150, 500
	for _, fill := range []int64{0, 64 << 10} {
		t.Run(fmt.Sprintf("%d bytes", fill), func(t *testing.T) {
			dir := t.TempDir()
			opts, _ := testOptions(t, 64<<10)
			locs := writeLog(t, dir, opts, n, size)
			last := locs[n-1].Segment
			path := segmentPath(dir, last)
			if err := os.WriteFile(path, make([]byte, fill), 0o644); err != nil {
				t.Fatal(err)
			}

			refuseUnchanged(t, dir, opts, path, "RANGE says")

			if _, err := Repair(dir, nil); err != nil {
				t.Fatalf("repair: %v", err)
			}
			l := mustOpen(t, dir, opts)
			defer l.Close()
			var want []uint64
			for i, loc := range locs {
				if loc.Segment != last {
					want = append(want, uint64(i+1))
				}
			}
			checkReplay(t, l, want, size)
			if _, next := mustReplay(t, l); next <= n {
				t.Fatalf("next ID after the repair = %d, want past %d", next, n)
			}
		})
	}
}

// TestRecoverIDsPastDroppedRecords: recovery that ends up without records the log
// had accepted (a torn tail cut off, a tail a system crash never wrote, a repair)
// still hands out IDs above every ID accepted before, after a clean close and after
// a crash, and an ID far ahead of the reservation is reserved before it is used.
func TestRecoverIDsPastDroppedRecords(t *testing.T) {
	const n, size = 40, 100
	damage := map[string]func(t *testing.T, path string, locs []storage.Location){
		"torn tail": func(t *testing.T, path string, locs []storage.Location) {
			data, _ := os.ReadFile(path)
			last := locs[len(locs)-1]
			clear(data[last.Offset+frameOf(n, size)/2 : last.Offset+frameOf(n, size)])
			os.WriteFile(path, data, 0o644)
		},
		"tail never written": func(t *testing.T, path string, locs []storage.Location) {
			data, _ := os.ReadFile(path)
			clear(data[locs[len(locs)-5].Offset:])
			os.WriteFile(path, data, 0o644)
		},
		"repaired hole": func(t *testing.T, path string, locs []storage.Location) {
			data, _ := os.ReadFile(path)
			data[locs[len(locs)-1].Offset+20] ^= 0xff
			clear(data[locs[len(locs)-3].Offset:locs[len(locs)-2].Offset])
			os.WriteFile(path, data, 0o644)
			if _, err := Repair(filepath.Dir(path), nil); err != nil {
				t.Fatalf("repair: %v", err)
			}
		},
	}
	for name, hurt := range damage {
		for _, crash := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/crash=%v", name, crash), func(t *testing.T) {
				dir := t.TempDir()
				opts, _ := testOptions(t, 64<<10)
				opts.Fsync = FsyncInterval
				l := mustOpen(t, dir, opts)
				var locs []storage.Location
				for id := uint64(1); id <= n; id++ {
					locs = append(locs, mustPut(t, l, putRec("q", id, int64(id),
						payloadFor(id, size))))
				}
				if crash {
					l.crash()
				} else if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				hurt(t, segmentPath(dir, locs[0].Segment), locs)

				l = mustOpen(t, dir, opts)
				defer l.Close()
				if _, next := mustReplay(t, l); next <= n {
					t.Fatalf("next ID = %d, want past %d", next, n)
				}
			})
		}
	}

	t.Run("far ahead", func(t *testing.T) {
		dir := t.TempDir()
		opts, _ := testOptions(t, 64<<10)
		l := mustOpen(t, dir, opts)
		mustPut(t, l, putRec("q", 1, 1, nil))
		far := uint64(1) << 40
		loc := mustPut(t, l, putRec("q", far, 2, nil))
		l.crash()
		path := segmentPath(dir, loc.Segment)
		data, _ := os.ReadFile(path)
		clear(data[loc.Offset:])
		os.WriteFile(path, data, 0o644)

		l = mustOpen(t, dir, opts)
		defer l.Close()
		if _, next := mustReplay(t, l); next <= far {
			t.Fatalf("next ID = %d, want past %d", next, far)
		}
	})

	t.Run("clean close leaves no gap", func(t *testing.T) {
		dir := t.TempDir()
		opts, _ := testOptions(t, 64<<10)
		writeLog(t, dir, opts, n, size)
		l := mustOpen(t, dir, opts)
		defer l.Close()
		if _, next := mustReplay(t, l); next != n+1 {
			t.Fatalf("next ID after a clean close = %d, want %d", next, n+1)
		}
	})
}

// thinFS is faultFS on a file system whose fallocate reports success but reserves
// nothing (as copy-on-write ones may): a write inside the allocated size can still
// find the disk full.
type thinFS struct{ *faultFS }

func (fs thinFS) OpenFile(name string, create bool) (file, error) {
	f, err := fs.faultFS.OpenFile(name, create)
	if err != nil {
		return nil, err
	}
	return thinFile{f.(*faultFile)}, nil
}

type thinFile struct{ *faultFile }

func (f thinFile) Allocate(size int64) (bool, error) {
	if f.fs.isFull() {
		return false, syscall.ENOSPC
	}
	return f.faultFile.file.Allocate(size) // the size, not the space
}

// TestRecoverAfterDiskFullInAllocatedSpace: where a write inside a preallocated
// segment can still find the disk full, the log cuts the partial record off and the
// file is shorter than its preallocated size from then on; that is the log's own
// doing, and the next open must not take it for a segment cut short outside the log.
func TestRecoverAfterDiskFullInAllocatedSpace(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 64<<10)
	opts.Fsync = FsyncInterval
	ffs := &faultFS{}
	opts.fs = thinFS{ffs}
	l := mustOpen(t, dir, opts)
	for id := uint64(1); id <= 5; id++ {
		mustPut(t, l, putRec("q", id, int64(id), payloadFor(id, 500)))
	}
	ffs.setFull(true)
	if _, _, err := l.Append(putRec("q", 6, 6, payloadFor(6, 500))); !errors.Is(err,
		storage.ErrDiskFull) {
		t.Fatalf("put on a full disk: err = %v, want ErrDiskFull", err)
	}
	ffs.setFull(false)
	// The log looks for space again on its own schedule (see space.go).
	waitFor(t, 5*time.Second, "a put to succeed once space is back", func() bool {
		_, ticket, err := l.Append(putRec("q", 7, 7, payloadFor(7, 500)))
		return err == nil && l.Wait(context.Background(), ticket) == nil
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, dir, opts)
	defer l.Close()
	checkReplay(t, l, []uint64{1, 2, 3, 4, 5, 7}, 500)
}

// A start after a crash says so, where one after a clean close does not: whoever is
// on call learns from the log that the last stop was not clean.
func TestOpenTellsAnUncleanStop(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 64<<10)
	l := mustOpen(t, dir, opts)
	mustPut(t, l, putRec("q", 1, 1, payloadFor(1, 100)))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	opts, lb := testOptions(t, 64<<10)
	l = mustOpen(t, dir, opts)
	if lb.count("unclean stop") != 0 || lb.count("log opened") != 1 {
		t.Fatalf("open after a clean close:\n%s", lb.String())
	}
	mustPut(t, l, putRec("q", 2, 2, payloadFor(2, 100)))
	l.crash()

	opts, lb = testOptions(t, 64<<10)
	l = mustOpen(t, dir, opts)
	defer l.Close()
	if lb.count("log opened after an unclean stop") != 1 {
		t.Fatalf("open after a crash does not say so:\n%s", lb.String())
	}
}

// A log whose RANGE file is gone opens, and says what checks it could not make.
func TestOpenWithoutRangeFileWarns(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 64<<10)
	l := mustOpen(t, dir, opts)
	mustPut(t, l, putRec("q", 1, 1, payloadFor(1, 100)))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, rangeName)); err != nil {
		t.Fatal(err)
	}

	opts, lb := testOptions(t, 64<<10)
	l = mustOpen(t, dir, opts)
	defer l.Close()
	if lb.count("no RANGE file") != 1 {
		t.Fatalf("open without a RANGE file does not say so:\n%s", lb.String())
	}
	checkReplay(t, l, []uint64{1}, 100)
}
