package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// writeLog fills a fresh log in dir with n puts on queue q (payloads by payloadFor)
// and closes it, returning each put's location.
func writeLog(t *testing.T, dir string, opts Options, n int, size int) []storage.Location {
	t.Helper()
	l := mustOpen(t, dir, opts)
	var locs []storage.Location
	for id := uint64(1); id <= uint64(n); id++ {
		locs = append(locs, mustPut(t, l, putRec("q", id, int64(id), payloadFor(id, size))))
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return locs
}

// checkReplay opens dir and checks that it replays exactly the puts with the given
// IDs, in order, with their payloads.
func checkReplay(t *testing.T, l *Log, ids []uint64, size int) {
	t.Helper()
	puts, _ := mustReplay(t, l)
	if len(puts) != len(ids) {
		t.Fatalf("replayed %d puts, want %d", len(puts), len(ids))
	}
	for i, p := range puts {
		if p.rec.ID != ids[i] || !bytes.Equal(p.rec.Payload, payloadFor(ids[i], size)) {
			t.Fatalf("replayed #%d: id %d payload %q, want id %d", i, p.rec.ID, p.rec.Payload,
				ids[i])
		}
	}
}

func idsUpTo(n int) []uint64 {
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	return ids
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := parseSegmentName(e.Name()); !ok {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestRecoverTornTailEveryByteC20 cuts the last record at every byte offset, both as
// a preallocated file (the unwritten bytes are zeros) and as a short file: the log
// opens, drops only that record with a warning naming the file, offset and bytes,
// and takes a zero-length put after it.
func TestRecoverTornTailEveryByteC20(t *testing.T) {
	src := t.TempDir()
	opts, _ := testOptions(t, 64<<10)
	locs := writeLog(t, src, opts, 10, 40)
	last := locs[len(locs)-1]
	frame := len(appendPut(nil, putRec("q", 10, 10, payloadFor(10, 40)), storage.Location{}))

	for _, mode := range []string{"zeros", "short"} {
		for cut := range frame {
			t.Run(mode+"/"+strconv.Itoa(cut), func(t *testing.T) {
				dir := copyDir(t, src)
				path := segmentPath(dir, 1)
				data, _ := os.ReadFile(path)
				tail := data[last.Offset : last.Offset+int64(frame)]
				written := lastNonZero(tail[:cut], 0) > 0
				if mode == "zeros" {
					clear(tail[cut:])
				} else {
					data = data[:last.Offset+int64(cut)]
				}
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}

				o, lb := testOptions(t, opts.SegmentBytes)
				l := mustOpen(t, dir, o)
				warned := lb.count("cutting torn record") == 1 &&
					lb.count("offset="+strconv.FormatInt(last.Offset, 10)) == 1 &&
					lb.count("file="+path) == 1
				if warned != written {
					t.Fatalf("torn-record warning = %v, want %v; log:\n%s", warned, written,
						lb.String())
				}
				loc := mustPut(t, l, putRec("q", 11, 11, []byte{}))
				if loc != last {
					t.Fatalf("new put at %+v, want it where the torn one was, %+v", loc, last)
				}
				l.Close()

				l = mustOpen(t, dir, o)
				defer l.Close()
				puts, next := mustReplay(t, l)
				if len(puts) != 10 || puts[9].rec.ID != 11 || len(puts[9].rec.Payload) != 0 {
					t.Fatalf("replayed %d puts, last %+v; want 9 old and the empty put",
						len(puts), puts[len(puts)-1].rec)
				}
				if next != 12 {
					t.Fatalf("next ID = %d, want 12", next)
				}
			})
		}
	}
}

// TestRecoverEmptyLogC20: an empty log, a log killed while empty (all consumed), a
// preallocated zero-filled newest segment and an empty file all restart, and take a
// zero-length put.
func TestRecoverEmptyLogC20(t *testing.T) {
	opts, _ := testOptions(t, 64<<10)
	cases := map[string]func(t *testing.T, dir string){
		"fresh": func(t *testing.T, dir string) {},
		"killed empty": func(t *testing.T, dir string) {
			mustOpen(t, dir, opts).crash()
		},
		"drained then killed": func(t *testing.T, dir string) {
			l := mustOpen(t, dir, opts)
			loc := mustPut(t, l, putRec("q", 1, 1, []byte("x")))
			mustTake(t, l, "q", 1, loc)
			l.crash()
		},
		"zero-filled segment": func(t *testing.T, dir string) {
			os.WriteFile(segmentPath(dir, 1), make([]byte, 64<<10), 0o644)
		},
		"empty file": func(t *testing.T, dir string) {
			os.WriteFile(segmentPath(dir, 1), nil, 0o644)
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			setup(t, dir)
			l := mustOpen(t, dir, opts)
			_, next := mustReplay(t, l)
			loc := mustPut(t, l, putRec("q", next, 1, nil))
			l.crash()

			l = mustOpen(t, dir, opts)
			defer l.Close()
			puts, _ := mustReplay(t, l)
			if len(puts) != 1 || puts[0].rec.ID != next || puts[0].loc != loc ||
				len(puts[0].rec.Payload) != 0 {
				t.Fatalf("replayed %+v, want the one empty put %d at %+v", puts, next, loc)
			}
		})
	}
}

// TestRecoverZeroFilledNewestSegmentC20: a crash while a new segment was being
// created leaves it all zeros; the older segments keep the data.
func TestRecoverZeroFilledNewestSegmentC20(t *testing.T) {
	dir := t.TempDir()
	opts, lb := testOptions(t, 4096)
	writeLog(t, dir, opts, 30, 100)
	ids, _ := listSegments(osFS{}, dir)
	newest := ids[len(ids)-1] + 1
	os.WriteFile(segmentPath(dir, newest), make([]byte, 4096), 0o644)

	l := mustOpen(t, dir, opts)
	defer l.Close()
	checkReplay(t, l, idsUpTo(30), 100)
	if lb.count("removing empty segment") != 1 {
		t.Fatalf("no warning for the zero-filled segment; log:\n%s", lb.String())
	}
}

// TestRecoverRefusesMidLogCorruption flips one byte of a record that is not the
// last write: Open refuses with an error naming the file and the record's offset.
func TestRecoverRefusesMidLogCorruption(t *testing.T) {
	src := t.TempDir()
	opts, _ := testOptions(t, 4096)
	locs := writeLog(t, src, opts, 60, 100)
	newest := locs[len(locs)-1].Segment

	cases := map[string]storage.Location{
		"older segment":  locs[3],
		"newest segment": locs[len(locs)-3],
	}
	for name, loc := range cases {
		t.Run(name, func(t *testing.T) {
			if name == "newest segment" && loc.Segment != newest {
				t.Fatalf("setup: record in segment %d, want the newest %d", loc.Segment, newest)
			}
			dir := copyDir(t, src)
			path := segmentPath(dir, loc.Segment)
			data, _ := os.ReadFile(path)
			data[loc.Offset+20] ^= 0x01
			os.WriteFile(path, data, 0o644)

			_, err := Open(dir, opts)
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open: err = %v, want a CorruptError", err)
			}
			if ce.File != path || ce.Offset != loc.Offset {
				t.Fatalf("corruption reported at %s:%d, want %s:%d", ce.File, ce.Offset, path,
					loc.Offset)
			}
		})
	}
}

// TestRepairKeepsGoodRecords damages a record in an older segment and one in the
// middle of the newest: Repair drops exactly those two, reports where, and the log
// opens with every other record.
func TestRepairKeepsGoodRecords(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 4096)
	locs := writeLog(t, dir, opts, 60, 100)
	bad := []int{3, len(locs) - 3}
	for _, i := range bad {
		path := segmentPath(dir, locs[i].Segment)
		data, _ := os.ReadFile(path)
		data[locs[i].Offset+20] ^= 0xff
		os.WriteFile(path, data, 0o644)
	}
	if _, err := Open(dir, opts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open before repair: err = %v, want ErrCorrupt", err)
	}

	lb := &logBuffer{}
	report, err := Repair(dir, testLogger(lb))
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	frame := int64(len(appendPut(nil, putRec("q", 10, 10, payloadFor(10, 100)),
		storage.Location{})))
	if len(report.Dropped) != 2 {
		t.Fatalf("repair dropped %+v, want 2 ranges", report.Dropped)
	}
	for k, i := range bad {
		d := report.Dropped[k]
		if d.File != segmentPath(dir, locs[i].Segment) || d.Offset != locs[i].Offset ||
			d.Bytes != frame {
			t.Fatalf("dropped %+v, want %d bytes at %+v", d, frame, locs[i])
		}
	}
	if lb.count("dropped damaged bytes") != 2 {
		t.Fatalf("repair logged %q", lb.String())
	}

	l := mustOpen(t, dir, opts)
	defer l.Close()
	var want []uint64
	for _, id := range idsUpTo(60) {
		if id != uint64(bad[0]+1) && id != uint64(bad[1]+1) {
			want = append(want, id)
		}
	}
	checkReplay(t, l, want, 100)
}

// TestRepairTornTailBeforeZerosC20: a record torn at the end of a preallocated
// segment, followed by its zeros, is dropped by repair as torn bytes (not the zeros
// after them), and the log then opens with the segment preallocated again and
// appends where the torn record was.
func TestRepairTornTailBeforeZerosC20(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 64<<10)
	locs := writeLog(t, dir, opts, 10, 100)
	last := locs[len(locs)-1]
	frame := int64(len(appendPut(nil, putRec("q", 10, 10, payloadFor(10, 100)),
		storage.Location{})))
	path := segmentPath(dir, last.Segment)
	data, _ := os.ReadFile(path)
	clear(data[last.Offset+frame/2 : last.Offset+frame]) // half of it reached the disk
	os.WriteFile(path, data, 0o644)

	lb := &logBuffer{}
	report, err := Repair(dir, testLogger(lb))
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	torn := lastNonZero(data, last.Offset) - last.Offset
	if len(report.Dropped) != 1 || report.Dropped[0].Offset != last.Offset ||
		report.Dropped[0].Bytes != torn || report.Dropped[0].File != path {
		t.Fatalf("repair dropped %+v, want the %d torn bytes at %d of %s",
			report.Dropped, torn, last.Offset, path)
	}

	l := mustOpen(t, dir, opts)
	checkReplay(t, l, idsUpTo(9), 100)
	if st, err := os.Stat(path); err != nil || st.Size() != opts.SegmentBytes {
		t.Fatalf("newest segment after open: %v, %v; want %d bytes", st.Size(), err,
			opts.SegmentBytes)
	}
	if loc := mustPut(t, l, putRec("q", 11, 11, payloadFor(11, 100))); loc != last {
		t.Fatalf("put after repair at %+v, want %+v", loc, last)
	}
	l.crash()
	l = mustOpen(t, dir, opts)
	defer l.Close()
	puts, _ := mustReplay(t, l)
	if len(puts) != 10 || puts[9].rec.ID != 11 {
		t.Fatalf("replayed %d puts, want 9 old and put 11", len(puts))
	}
}

// TestRecoverPositionsFromContentsC21: after crashes without a final fsync or any
// saved write position, the log finds its end from the records themselves and
// appends after them, never over them.
func TestRecoverPositionsFromContentsC21(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 8192)
	opts.Fsync = FsyncNever

	next := uint64(1)
	for round := range 4 {
		l := mustOpen(t, dir, opts)
		checkReplay(t, l, idsUpTo(int(next-1)), 50)
		for range 25 + round*10 {
			mustPut(t, l, putRec("q", next, int64(next), payloadFor(next, 50)))
			next++
		}
		l.crash()
	}
	l := mustOpen(t, dir, opts)
	defer l.Close()
	checkReplay(t, l, idsUpTo(int(next-1)), 50)
}

// TestRecoverIDsNeverGoBackC23: every message consumed, every old segment deleted,
// then a crash: the next ID is still past every ID the log ever held. Also when the
// crash falls between writing the new segment and deleting the old ones.
func TestRecoverIDsNeverGoBackC23(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 4096)
	l := mustOpen(t, dir, opts)
	const n = 200
	for id := uint64(1); id <= n; id++ {
		loc := mustPut(t, l, putRec("q", id, int64(id), payloadFor(id, 60)))
		mustTake(t, l, "q", id, loc)
	}
	waitFor(t, 5*time.Second, "old segments deleted", func() bool {
		return l.Stats().Segments == 1
	})
	l.crash()

	l = mustOpen(t, dir, opts)
	puts, next := mustReplay(t, l)
	if len(puts) != 0 || next <= n {
		t.Fatalf("after drain and crash: %d puts, next ID %d; want 0 puts and next > %d",
			len(puts), next, n)
	}
	l.Close()

	// Only the newest segment left, and it holds no put: its header alone says.
	dir2 := t.TempDir()
	l = mustOpen(t, dir2, opts)
	for id := uint64(1); id <= n; id++ {
		mustPut(t, l, putRec("q", id, int64(id), payloadFor(id, 60)))
	}
	l.Close()
	ids, _ := listSegments(osFS{}, dir2)
	l = mustOpen(t, dir2, opts)
	l.scratch = nil
	l.crash()
	for _, id := range ids {
		os.Remove(segmentPath(dir2, id))
	}
	os.Remove(filepath.Join(dir2, rangeName)) // a log from before the RANGE file
	h := encodeSegmentHeader(ids[len(ids)-1]+1, n+1)
	os.WriteFile(segmentPath(dir2, ids[len(ids)-1]+1), h, 0o644)
	l = mustOpen(t, dir2, opts)
	defer l.Close()
	if _, next := mustReplay(t, l); next != n+1 {
		t.Fatalf("next ID from the newest header = %d, want %d", next, n+1)
	}
}

// TestRecoverRefusesMissingSegment: a segment file deleted from the middle of the log
// (by hand, or lost) is refused at open, naming the missing file, never skipped in
// silence; Repair accepts the loss, reports it, and the log opens with the rest.
func TestRecoverRefusesMissingSegment(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 4096)
	locs := writeLog(t, dir, opts, 60, 1000)
	gone := locs[len(locs)/2].Segment
	if gone == locs[0].Segment || gone == locs[len(locs)-1].Segment {
		t.Fatalf("want a middle segment, got %d of %d..%d", gone, locs[0].Segment,
			locs[len(locs)-1].Segment)
	}
	if err := os.Remove(segmentPath(dir, gone)); err != nil {
		t.Fatal(err)
	}

	_, err := Open(dir, opts)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != segmentPath(dir, gone) ||
		!strings.Contains(err.Error(), "segment file missing") {
		t.Fatalf("open with segment %d missing: err = %v, want it named", gone, err)
	}

	report, err := Repair(dir, nil)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	if len(report.Dropped) != 1 || report.Dropped[0].File != segmentPath(dir, gone) ||
		!report.Dropped[0].Missing {
		t.Fatalf("repair dropped %+v, want the missing segment reported", report.Dropped)
	}

	l := mustOpen(t, dir, opts)
	defer l.Close()
	var want []uint64
	for i, loc := range locs {
		if loc.Segment != gone {
			want = append(want, uint64(i+1))
		}
	}
	checkReplay(t, l, want, 1000)
	if loc := mustPut(t, l, putRec("q", 61, 61, payloadFor(61, 1000))); loc.Segment <= gone {
		t.Fatalf("new put went to segment %d, not after the repaired ones", loc.Segment)
	}
}

// TestRecoverRefusesMissingEndSegments: with the oldest or the newest segment file
// deleted, the log refuses to open, naming the missing file, where it used to open
// without those messages (and, with the newest gone, could hand out its IDs again).
// Repair reports the loss; the log then opens with the rest, and its next ID is past
// every ID handed out before.
func TestRecoverRefusesMissingEndSegments(t *testing.T) {
	for _, end := range []string{"oldest", "newest", "every"} {
		t.Run(end, func(t *testing.T) {
			dir := t.TempDir()
			opts, _ := testOptions(t, 4096)
			const n = 60
			locs := writeLog(t, dir, opts, n, 1000)
			first, last := locs[0].Segment, locs[len(locs)-1].Segment
			gone := map[string][]uint64{"oldest": {first}, "newest": {last},
				"every": nil}[end]
			if end == "every" {
				for id := first; id <= last; id++ {
					gone = append(gone, id)
				}
			}
			for _, id := range gone {
				if err := os.Remove(segmentPath(dir, id)); err != nil {
					t.Fatal(err)
				}
			}

			_, err := Open(dir, opts)
			var ce *CorruptError
			want := segmentPath(dir, gone[0])
			if end == "every" {
				want = segmentPath(dir, last)
			}
			if !errors.As(err, &ce) || ce.File != want ||
				!strings.Contains(err.Error(), "segment file missing") {
				t.Fatalf("open: err = %v, want a missing %s segment naming %s", err, end, want)
			}

			report, err := Repair(dir, nil)
			if err != nil {
				t.Fatalf("repair: %v", err)
			}
			missing := 0
			for _, d := range report.Dropped {
				if d.Missing {
					missing++
				}
			}
			if missing != len(gone) {
				t.Fatalf("repair reported %+v, want %d missing files", report.Dropped,
					len(gone))
			}
			l := mustOpen(t, dir, opts)
			defer l.Close()
			puts, next := mustReplay(t, l)
			for _, p := range puts {
				if slices.Contains(gone, locs[p.rec.ID-1].Segment) {
					t.Fatalf("replayed put %d from a deleted segment", p.rec.ID)
				}
			}
			if next <= n {
				t.Fatalf("next ID after repair = %d, want past %d", next, n)
			}
		})
	}
}

// TestRecoverRangeSurvivesATornSlot: the RANGE file keeps two slots, so damage to
// the newest one falls back to the other; with both damaged the log refuses to
// open, and repair rewrites it.
func TestRecoverRangeSurvivesATornSlot(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t, 4096)
	writeLog(t, dir, opts, 30, 500)
	path := filepath.Join(dir, rangeName)
	rng, ok, err := readRange(osFS{}, dir)
	if err != nil || !ok || rng.first != 1 {
		t.Fatalf("range after writing: %+v, %v, %v", rng, ok, err)
	}

	data, _ := os.ReadFile(path)
	newest := int(rng.seq%2) * rangeSlotSpan
	data[newest+20] ^= 0xff
	os.WriteFile(path, data, 0o644)
	l := mustOpen(t, dir, opts)
	checkReplay(t, l, idsUpTo(30), 500)
	l.Close()

	data, _ = os.ReadFile(path)
	data[20] ^= 0xff
	data[rangeSlotSpan+20] ^= 0xff
	os.WriteFile(path, data, 0o644)
	var ce *CorruptError
	if _, err := Open(dir, opts); !errors.As(err, &ce) || ce.File != path {
		t.Fatalf("open with both slots damaged: err = %v, want one naming %s", err, path)
	}
	if _, err := Repair(dir, nil); err != nil {
		t.Fatalf("repair: %v", err)
	}
	l = mustOpen(t, dir, opts)
	defer l.Close()
	checkReplay(t, l, idsUpTo(30), 500)
}

// TestRecoverOpensWithARangeFileNeverWritten: a crash while the RANGE file is being
// created (it is made with zeros and its first slot written after) leaves it empty,
// short or all zeros. That is no damage: the log opens with every record, rewrites
// the file, and Repair drops nothing. A file with other bytes and no valid slot is
// still refused.
func TestRecoverOpensWithARangeFileNeverWritten(t *testing.T) {
	for _, size := range []int{0, 100, 2 * rangeSlotSpan} {
		t.Run(fmt.Sprintf("zeros=%d", size), func(t *testing.T) {
			dir := t.TempDir()
			opts, _ := testOptions(t, 4096)
			writeLog(t, dir, opts, 30, 500)
			path := filepath.Join(dir, rangeName)
			if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
				t.Fatal(err)
			}

			report, err := Repair(dir, nil)
			if err != nil || len(report.Dropped) != 0 {
				t.Fatalf("repair: %+v, %v; want nothing dropped", report, err)
			}
			if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
				t.Fatal(err)
			}
			l := mustOpen(t, dir, opts)
			checkReplay(t, l, idsUpTo(30), 500)
			l.Close()
			if rng, ok, err := readRange(osFS{}, dir); err != nil || !ok || rng.first != 1 {
				t.Fatalf("range after the open: %+v, %v, %v; want it written", rng, ok, err)
			}
		})
	}

	dir := t.TempDir()
	opts, _ := testOptions(t, 4096)
	writeLog(t, dir, opts, 3, 500)
	path := filepath.Join(dir, rangeName)
	garbage := make([]byte, 2*rangeSlotSpan)
	garbage[rangeSlotSpan+9] = 1
	if err := os.WriteFile(path, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if _, err := Open(dir, opts); !errors.As(err, &ce) || ce.File != path {
		t.Fatalf("open with a RANGE file of garbage: err = %v, want one naming %s", err, path)
	}
}
