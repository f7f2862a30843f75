package wal

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/keyq/keyq/internal/storage"
)

func TestRecordCodecRoundTrip(t *testing.T) {
	first := storage.Location{Segment: 3, Offset: 4096}
	cases := []struct {
		name  string
		frame []byte
		want  diskRecord
	}{
		{"put", appendPut(nil, putRec("orders", 7, 42, []byte("hello")), storage.Location{}),
			diskRecord{kind: kindPut, id: 7, pos: 42, queue: []byte("orders"),
				payload: []byte("hello")}},
		{"put-front negative pos", appendPut(nil, &storage.Record{Op: storage.OpPutFront,
			Queue: "q", ID: 1 << 60, Pos: -5, Payload: []byte{0, 1, 2}}, storage.Location{}),
			diskRecord{kind: kindPutFront, id: 1 << 60, pos: -5, queue: []byte("q"),
				payload: []byte{0, 1, 2}}},
		{"empty payload", appendPut(nil, putRec("q", 1, 0, nil), storage.Location{}),
			diskRecord{kind: kindPut, id: 1, queue: []byte("q")}},
		{"moved put", appendPut(nil, putRec("q", 9, 3, []byte("x")), first),
			diskRecord{kind: kindPut, moved: true, id: 9, pos: 3, queue: []byte("q"),
				first: first, payload: []byte("x")}},
		{"take", appendTake(nil, &storage.Record{Op: storage.OpTake, ID: 9, Ref: first}),
			diskRecord{kind: kindTake, id: 9, ref: first}},
		{"pad", padFrame(20), diskRecord{kind: kindPad}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Trailing bytes after the frame must not matter.
			got, n, err := decodeFrame(append(bytes.Clone(tc.frame), 0xAA, 0xBB))
			if err != nil || n != len(tc.frame) {
				t.Fatalf("decode: n = %d, err = %v; want %d, nil", n, err, len(tc.frame))
			}
			if got.kind != tc.want.kind || got.moved != tc.want.moved || got.id != tc.want.id ||
				got.pos != tc.want.pos || !bytes.Equal(got.queue, tc.want.queue) ||
				got.first != tc.want.first || got.ref != tc.want.ref ||
				!bytes.Equal(got.payload, tc.want.payload) {
				t.Fatalf("decoded %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRecordDecodeRejectsDamage: every single-bit flip and every truncation of a
// frame is caught.
func TestRecordDecodeRejectsDamage(t *testing.T) {
	frame := appendPut(nil, putRec("orders", 7, 42, []byte("hello, world")),
		storage.Location{})
	for i := range frame {
		for bit := range 8 {
			bad := bytes.Clone(frame)
			bad[i] ^= 1 << bit
			if _, _, err := decodeFrame(bad); err == nil {
				t.Fatalf("flip of byte %d bit %d not detected", i, bit)
			}
		}
	}
	for n := range frame {
		if _, _, err := decodeFrame(frame[:n]); !errors.Is(err, errShort) &&
			!errors.Is(err, errLength) {
			t.Fatalf("frame cut to %d bytes: err = %v, want errShort", n, err)
		}
	}
	if _, _, err := decodeFrame(make([]byte, 64)); !errors.Is(err, errLength) {
		t.Fatalf("zeros: err = %v, want errLength", err)
	}
}

func TestSegmentHeaderRoundTrip(t *testing.T) {
	h := encodeSegmentHeader(12, 345)
	if next, err := decodeSegmentHeader(h, 12); err != nil || next != 345 {
		t.Fatalf("decode = %d, %v; want 345", next, err)
	}
	if _, err := decodeSegmentHeader(h, 13); err == nil {
		t.Fatal("header of segment 12 accepted as segment 13")
	}
	h[20] ^= 1
	if _, err := decodeSegmentHeader(h, 12); err == nil {
		t.Fatal("damaged header accepted")
	}
}

// TestMaxPayloadBytesFits: a put of MaxPayloadBytes with the longest queue name and
// the largest numbers fills a segment's put area without overflowing it.
func TestMaxPayloadBytesFits(t *testing.T) {
	for _, segmentBytes := range []int64{MinSegmentBytes, 1 << 20, DefaultSegmentBytes} {
		n := MaxPayloadBytes(segmentBytes)
		rec := &storage.Record{Op: storage.OpPutFront, Queue: string(make([]byte, 255)),
			ID: 1<<64 - 1, Pos: -1 << 63, Payload: make([]byte, n)}
		frame := appendPut(nil, rec, storage.Location{})
		if room := segmentBytes - segmentBytes/8 - segmentHeader; int64(len(frame)) > room {
			t.Fatalf("segment %d: frame of %d bytes over the room of %d", segmentBytes,
				len(frame), room)
		}
	}
}

// TestRecordStateKindsLiveLikePuts: the broker's state records (lease, defer,
// return, dead-letter, settings) round-trip as puts do, stay live until taken,
// are replayed with their op, and their IDs count in the next ID after a reopen.
func TestRecordStateKindsLiveLikePuts(t *testing.T) {
	ops := []storage.Op{storage.OpLease, storage.OpDefer, storage.OpReturn,
		storage.OpDeadLetter, storage.OpSettings}
	for _, op := range ops {
		rec := &storage.Record{Op: op, Queue: "q", ID: 77, Pos: -3, Payload: []byte{1, 2}}
		got, _, err := decodeFrame(appendPut(nil, rec, storage.Location{}))
		if err != nil || got.kind != kind(op) || !got.isPut() || got.id != 77 ||
			got.pos != -3 || !bytes.Equal(got.payload, []byte{1, 2}) {
			t.Fatalf("%v: decoded %+v, %v", op, got, err)
		}
	}

	dir := t.TempDir()
	opts, _ := testOptions(t, 1<<20)
	l := mustOpen(t, dir, opts)
	mustPut(t, l, putRec("q", 1, 0, []byte("m")))
	var taken storage.Location
	for i, op := range ops {
		loc := mustPut(t, l, &storage.Record{Op: op, Queue: "q", ID: uint64(10 + i),
			Payload: []byte{byte(i)}})
		if op == storage.OpDefer {
			taken = loc
		}
	}
	if _, _, err := l.Append(&storage.Record{Op: storage.OpTake, Queue: "q", ID: 11,
		Ref: taken}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, dir, opts)
	defer l.Close()
	var seen []storage.Op
	next, err := l.Replay(func(rec *storage.Record, _ storage.Location) error {
		seen = append(seen, rec.Op)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.Op{storage.OpPut, storage.OpLease, storage.OpReturn,
		storage.OpDeadLetter, storage.OpSettings}
	if fmt.Sprint(seen) != fmt.Sprint(want) || next != 15 {
		t.Fatalf("replayed %v, next %d; want %v, 15", seen, next, want)
	}
}
