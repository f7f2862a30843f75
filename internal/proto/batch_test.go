package proto

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestItemRoundTrip(t *testing.T) {
	items := []Item{
		{Queue: "jobs", ID: 7, DeliveryID: 9, Count: 2, Deadline: 1764780030000,
			Payload: []byte("hello")},
		{Queue: "q.dlq", ID: 8, Payload: []byte{},
			DeadLetter: &DeadLetter{Queue: "q", ID: 3, Count: 5, Reason: "max-deliveries"}},
	}
	for _, lease := range []bool{false, true} {
		var b []byte
		for i := range items {
			before := len(b)
			b = AppendItem(b, &items[i], lease)
			if got := len(b) - before; got != ItemSize(&items[i], lease) {
				t.Fatalf("lease %v item %d: %d bytes, ItemSize %d", lease, i, got,
					ItemSize(&items[i], lease))
			}
		}
		d := NewBody(b)
		for i, want := range items {
			got, err := d.Item(lease)
			if err != nil {
				t.Fatalf("lease %v item %d: %v", lease, i, err)
			}
			if !lease {
				want.DeliveryID, want.Count, want.Deadline = 0, 0, 0
			}
			if got.Queue != want.Queue || got.ID != want.ID || got.DeliveryID != want.DeliveryID ||
				got.Count != want.Count || got.Deadline != want.Deadline ||
				!bytes.Equal(got.Payload, want.Payload) ||
				(want.DeadLetter == nil) != (got.DeadLetter == nil) ||
				(want.DeadLetter != nil && *got.DeadLetter != *want.DeadLetter) {
				t.Fatalf("lease %v item %d = %+v, want %+v", lease, i, got, want)
			}
		}
		if d.End() != nil {
			t.Fatal("bytes left over")
		}
	}
}

func TestItemRefusesCutAndBadMark(t *testing.T) {
	it := Item{Queue: "q", ID: 1, DeadLetter: &DeadLetter{Queue: "p", Reason: "expired"},
		Payload: []byte("abc")}
	full := AppendItem(nil, &it, true)
	for n := range len(full) {
		d := NewBody(full[:n])
		if _, err := d.Item(true); AsError(err) == nil || AsError(err).Code != StatusBadFrame {
			t.Fatalf("cut at %d: err %v", n, err)
		}
		if d.Len() != n {
			t.Fatalf("cut at %d: a failed item consumed bytes", n)
		}
	}
	bad := AppendItem(nil, &Item{Queue: "q"}, false)
	bad[1+1+8] = 2 // the dead-letter mark
	d := NewBody(bad)
	if _, err := d.Item(false); err == nil || !strings.Contains(err.Error(), "mark") {
		t.Fatalf("mark 2: %v", err)
	}
}

func TestKeysAndMessages(t *testing.T) {
	b, err := AppendKeys(nil, []string{"a", "bb"})
	if err != nil || !bytes.Equal(b, []byte{2, 1, 'a', 2, 'b', 'b'}) {
		t.Fatalf("AppendKeys = % x, %v", b, err)
	}
	d := NewBody(b)
	keys, err := d.Keys()
	if err != nil || len(keys) != 2 || keys[1] != "bb" {
		t.Fatalf("Keys = %q, %v", keys, err)
	}
	if _, err := AppendKeys(nil, nil); AsError(err) == nil {
		t.Fatal("an empty list must be refused")
	}
	if _, err := AppendKeys(nil, make([]string, 256)); AsError(err) == nil {
		t.Fatal("256 keys must be refused")
	}
	d = NewBody([]byte{0})
	if _, err := d.Keys(); AsError(err) == nil || AsError(err).Code != StatusBadRequest {
		t.Fatalf("count 0: %v", err)
	}
	d = NewBody([]byte{2, 1, 'a', 5})
	if _, err := d.Keys(); AsError(err) == nil || d.Len() != 4 {
		t.Fatalf("cut list: %v, %d left", err, d.Len())
	}

	msgs := AppendBytes(AppendBytes(AppendU32(nil, 2), []byte("x")), nil)
	d = NewBody(msgs)
	got, err := d.Messages()
	if err != nil || len(got) != 2 || string(got[0]) != "x" || len(got[1]) != 0 {
		t.Fatalf("Messages = %q, %v", got, err)
	}
	for _, body := range [][]byte{AppendU32(nil, 0), AppendU32(nil, math.MaxUint32),
		AppendBytes(AppendU32(nil, 1), []byte("x"))[:6]} {
		d := NewBody(body)
		if _, err := d.Messages(); AsError(err) == nil || d.Len() != len(body) {
			t.Fatalf("Messages(% x): %v", body, err)
		}
	}
}

func TestDurations(t *testing.T) {
	for _, tt := range []struct {
		d  time.Duration
		ms uint64
	}{{0, 0}, {-time.Second, 0}, {time.Nanosecond, 1}, {time.Millisecond, 1},
		{1500 * time.Microsecond, 2}, {time.Hour, 3_600_000}} {
		if got := Millis(tt.d); got != tt.ms {
			t.Errorf("Millis(%v) = %d, want %d", tt.d, got, tt.ms)
		}
	}
	limit := 15 * time.Minute
	for _, tt := range []struct {
		ms   uint64
		want time.Duration
	}{{0, 0}, {1, time.Millisecond}, {900_000, limit}, {1 << 53, limit},
		{math.MaxUint64, limit}} {
		if got := Duration(tt.ms, limit); got != tt.want {
			t.Errorf("Duration(%d) = %v, want %v", tt.ms, got, tt.want)
		}
	}
	if got := Duration(math.MaxUint64, math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("Duration with no limit = %v", got)
	}
	if got := Duration(0, time.Microsecond); got != 0 {
		t.Errorf("Duration(0) under a sub-millisecond limit = %v, want 0", got)
	}
	if got := Duration(5, time.Microsecond); got != time.Microsecond {
		t.Errorf("Duration(5) under a 1µs limit = %v", got)
	}
	if _, err := OptionU64(1, []byte{1}); AsError(err) == nil {
		t.Error("a 1-byte u64 must be refused")
	}
	if v, err := OptionU32(2, U32Option(2, 7).Value); err != nil || v != 7 {
		t.Errorf("OptionU32 = %d, %v", v, err)
	}
	if v, err := OptionU8(4, U8Option(4, 1).Value); err != nil || v != 1 {
		t.Errorf("OptionU8 = %d, %v", v, err)
	}
}
