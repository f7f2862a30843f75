package broker

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

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
	if !r.chunked() || r.ext.count != 1<<16/chunkLen {
		t.Fatalf("after %d pushes: chunked %v, want %d chunks", 1<<16, r.chunked(),
			1<<16/chunkLen)
	}
	for range 1<<16 - 1 {
		r.popFront()
	}
	if r.chunked() || len(r.buf) > keepRing {
		t.Fatalf("after draining: chunked %v, buffer %d entries, want flat and at most %d",
			r.chunked(), len(r.buf), keepRing)
	}
	if got := r.popFront().id; got != 1<<16-1 {
		t.Fatalf("last = %d, want %d", got, 1<<16-1)
	}
}

// TestRingGrowsByChunks: past chunkLen entries the ring adds chunks and never copies
// the entries it holds, and a ring whose length stays put reuses its spare chunk.
func TestRingGrowsByChunks(t *testing.T) {
	var r ring
	for i := range 3 * chunkLen {
		r.pushBack(entry{id: uint64(i)})
	}
	first := r.slotAt(0)
	for i := range 3 * chunkLen {
		r.pushBack(entry{id: uint64(3*chunkLen + i)})
	}
	if r.slotAt(0) != first {
		t.Fatal("pushes past chunkLen moved the first entry")
	}

	allocs := testing.AllocsPerRun(10*chunkLen, func() {
		e := r.popFront()
		r.pushBack(e)
	})
	if allocs != 0 {
		t.Fatalf("pop and push at a steady length: %v allocations per op, want 0", allocs)
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

// TestRingMatchesModel drives a ring with random operations at both ends and in the
// middle, with and without stored parts, across the flat and chunked layouts in both
// directions, and checks every entry against a slice after each step.
func TestRingMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var r ring
		var model []entry
		next := 0
		// Which entries have a stored part or a dropped payload: a pattern drawn
		// once, since a draw per entry would cost more than the ring.
		stored := rapid.IntRange(2, 7).Draw(t, "stored every")
		newEntry := func() entry {
			next++
			e := entry{id: uint64(next), payload: []byte{byte(next)}, size: 1}
			switch next % stored {
			case 0:
				e.loc = storage.Location{Segment: uint64(next), Offset: int64(next)}
			case 1:
				e.payload, e.size = nil, 100+next // the cache dropped it
			}
			return e
		}
		for range rapid.IntRange(1, 24).Draw(t, "steps") {
			// Runs of pushes or pops, so that the length crosses chunkLen and toFlatAt.
			run := rapid.IntRange(1, 2*chunkLen).Draw(t, "run")
			switch op := rapid.IntRange(0, 5).Draw(t, "op"); op {
			case 0, 1:
				var front []entry // pushed to the front, last first
				for range run {
					e := newEntry()
					if op == 0 {
						r.pushBack(e)
						model = append(model, e)
					} else {
						r.pushFront(e)
						front = append(front, e)
					}
				}
				slices.Reverse(front)
				model = append(front, model...)
			case 2, 3:
				for ; run > 0 && len(model) > 0; run-- {
					var got, want entry
					if op == 2 {
						got, want, model = r.popFront(), model[0], model[1:]
					} else {
						got, want = r.popBack(), model[len(model)-1]
						model = model[:len(model)-1]
					}
					if !sameEntry(got, want) {
						t.Fatalf("pop = %+v, want %+v", got, want)
					}
				}
			case 4:
				i := rapid.IntRange(0, len(model)).Draw(t, "insert at")
				e := newEntry()
				r.insertAt(i, e)
				model = append(model[:i], append([]entry{e}, model[i:]...)...)
			case 5:
				if len(model) == 0 {
					continue
				}
				i := rapid.IntRange(0, len(model)-1).Draw(t, "remove at")
				if got := r.removeAt(i); !sameEntry(got, model[i]) {
					t.Fatalf("removeAt(%d) = %+v, want %+v", i, got, model[i])
				}
				model = append(model[:i], model[i+1:]...)
			}
			checkRing(t, &r, model)
		}
	})
}

func checkRing(t *rapid.T, r *ring, model []entry) {
	if r.len() != len(model) {
		t.Fatalf("len = %d, want %d", r.len(), len(model))
	}
	if r.chunked() && r.len() <= toFlatAt {
		t.Fatalf("chunked with %d entries, want flat at %d or less", r.len(), toFlatAt)
	}
	for i, want := range model {
		if got := r.at(i); !sameEntry(got, want) {
			t.Fatalf("at(%d) = %+v, want %+v", i, got, want)
		}
	}
}
