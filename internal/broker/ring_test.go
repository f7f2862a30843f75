package broker

import (
	"testing"

	"github.com/keyq/keyq/internal/storage"
)

func TestRingFIFOAcrossGrowth(t *testing.T) {
	var r ring
	for i := range 1000 {
		r.pushBack(entry{id: uint64(i)})
	}
	for i := range 1000 {
		if got := r.popFront().id; got != uint64(i) {
			t.Fatalf("pop %d = %d, want %d", i, got, i)
		}
	}
	if r.len() != 0 {
		t.Fatalf("len = %d, want 0", r.len())
	}
}

func TestRingShrinksAsItDrains(t *testing.T) {
	var r ring
	for i := range 1 << 16 {
		r.pushBack(entry{id: uint64(i)})
	}
	if len(r.buf) < 1<<16 {
		t.Fatalf("buffer = %d, want at least %d", len(r.buf), 1<<16)
	}
	for range 1<<16 - 1 {
		r.popFront()
	}
	if len(r.buf) > keepRing {
		t.Fatalf("buffer after draining = %d entries, want at most %d", len(r.buf), keepRing)
	}
	if got := r.popFront().id; got != 1<<16-1 {
		t.Fatalf("last = %d, want %d", got, 1<<16-1)
	}
}

func TestRingBothEndsAndWrap(t *testing.T) {
	var r ring
	var model []uint64
	id := uint64(0)
	// A fixed mix of pushes and pops at both ends, checked against a slice.
	for step := range 5000 {
		switch step % 7 {
		case 0, 1, 2:
			r.pushBack(entry{id: id})
			model = append(model, id)
		case 3, 4:
			r.pushFront(entry{id: id})
			model = append([]uint64{id}, model...)
		case 5:
			if len(model) > 0 {
				if got := r.popFront().id; got != model[0] {
					t.Fatalf("step %d: popFront = %d, want %d", step, got, model[0])
				}
				model = model[1:]
			}
		case 6:
			if len(model) > 0 {
				if got := r.popBack().id; got != model[len(model)-1] {
					t.Fatalf("step %d: popBack = %d, want %d", step, got, model[len(model)-1])
				}
				model = model[:len(model)-1]
			}
		}
		id++
	}
	if r.len() != len(model) {
		t.Fatalf("len = %d, want %d", r.len(), len(model))
	}
	for i, want := range model {
		if got := r.at(i).id; got != want {
			t.Fatalf("at(%d) = %d, want %d", i, got, want)
		}
	}
}

func TestRingRemoveAt(t *testing.T) {
	for _, i := range []int{0, 1, 5, 8, 9} {
		var r ring
		for j := range 10 {
			r.pushBack(entry{id: uint64(j)})
		}
		if got := r.removeAt(i).id; got != uint64(i) {
			t.Fatalf("removeAt(%d) = %d", i, got)
		}
		for j, k := 0, 0; j < 10; j++ {
			if j == i {
				continue
			}
			if got := r.at(k).id; got != uint64(j) {
				t.Fatalf("after removeAt(%d): at(%d) = %d, want %d", i, k, got, j)
			}
			k++
		}
	}
}

// TestRingKeepsStoredParts mixes entries with a store location or a dropped payload
// among plain ones, across growth, wrap-around, removal and shrinking.
func TestRingKeepsStoredParts(t *testing.T) {
	newEntry := func(i int) entry {
		e := entry{id: uint64(i), payload: []byte{byte(i)}, size: 1}
		switch i % 3 {
		case 1:
			e.loc = storage.Location{Segment: uint64(i), Offset: int64(i)}
		case 2:
			e.payload, e.size = nil, 100+i // the cache dropped it
		}
		return e
	}
	var r ring
	var model []entry
	for i := range 300 {
		if i%2 == 0 {
			r.pushBack(newEntry(i))
			model = append(model, newEntry(i))
		} else {
			r.pushFront(newEntry(i))
			model = append([]entry{newEntry(i)}, model...)
		}
	}
	for len(model) > 40 {
		i := len(model) / 3
		if got := r.removeAt(i); !sameEntry(got, model[i]) {
			t.Fatalf("removeAt(%d) = %+v, want %+v", i, got, model[i])
		}
		model = append(model[:i], model[i+1:]...)
		if got := r.popFront(); !sameEntry(got, model[0]) {
			t.Fatalf("popFront = %+v, want %+v", got, model[0])
		}
		model = model[1:]
	}
	for i, want := range model {
		if got := r.at(i); !sameEntry(got, want) {
			t.Fatalf("at(%d) = %+v, want %+v", i, got, want)
		}
	}
}

func sameEntry(a, b entry) bool {
	return a.id == b.id && a.size == b.size && a.loc == b.loc && string(a.payload) ==
		string(b.payload) && (a.payload == nil) == (b.payload == nil)
}

// TestRingKeepsSmallBufferWhenDrained: a queue filled and drained by batches of up to
// keepRing messages keeps its buffer instead of shrinking and growing it each time.
func TestRingKeepsSmallBufferWhenDrained(t *testing.T) {
	var r ring
	for i := range keepRing {
		r.pushBack(entry{id: uint64(i)})
	}
	buf := &r.buf[0]
	for range 3 {
		for r.len() > 0 {
			r.popFront()
		}
		for i := range keepRing {
			r.pushBack(entry{id: uint64(i)})
		}
		if &r.buf[0] != buf {
			t.Fatal("draining and refilling the ring replaced its buffer")
		}
	}
}
