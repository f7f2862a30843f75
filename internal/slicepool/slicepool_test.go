package slicepool

import "testing"

func TestPoolReusesAndClears(t *testing.T) {
	var p Pool[*int]
	s := p.Get(8)
	if len(s) != 0 || cap(s) < 8 {
		t.Fatalf("Get(8) = len %d cap %d, want an empty slice with room for 8", len(s),
			cap(s))
	}
	v := 1
	s = append(s, &v, &v)
	p.Put(s)

	// sync.Pool may drop what it holds at any time (and does so on purpose under
	// the race detector), so reuse is only checked as far as it can be promised.
	got := p.Get(4)
	if len(got) != 0 || cap(got) < 4 {
		t.Fatalf("Get(4) = len %d cap %d", len(got), cap(got))
	}
	for i, e := range got[:cap(got)] {
		if e != nil {
			t.Fatalf("element %d of a recycled slice still points somewhere", i)
		}
	}

	big := p.Get(64)
	if cap(big) < 64 {
		t.Fatalf("Get(64) after a Put of a smaller slice: cap %d", cap(big))
	}
}

func TestPoolDropsHugeSlices(t *testing.T) {
	var p Pool[byte]
	p.Put(make([]byte, 0, MaxCap+1))
	if s := p.Get(1); cap(s) > MaxCap {
		t.Fatalf("Get returned a slice of cap %d, over MaxCap", cap(s))
	}
}

func TestPoolSteadyStateAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items on purpose under the race detector")
	}
	var p Pool[int]
	p.Put(p.Get(64))
	allocs := testing.AllocsPerRun(1000, func() {
		s := p.Get(64)
		s = append(s, 1, 2, 3)
		p.Put(s)
	})
	if allocs != 0 {
		t.Fatalf("Get and Put allocate %v times per round, want 0", allocs)
	}
}

func TestPoolMax(t *testing.T) {
	p := Pool[byte]{Max: 16}
	p.Put(make([]byte, 0, 17))
	if s := p.Get(1); cap(s) > 16 {
		t.Fatalf("Get returned a slice of cap %d, over Max", cap(s))
	}
}
