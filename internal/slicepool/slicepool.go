// Package slicepool recycles the slices that batches build and drop, so that a
// batch of messages costs no allocation for its own lists once the pools are warm.
package slicepool

import "sync"

// MaxCap is the largest capacity a Pool keeps unless its Max says otherwise: a slice
// grown for a rare huge batch goes to the garbage collector rather than staying in a
// pool.
const MaxCap = 1024

// Pool holds slices of T for reuse. The zero Pool is ready; its methods may be called
// from any goroutine. Like sync.Pool, which it is built on, it may drop what it
// holds at any garbage collection.
//
// A slice travels in a box (a *[]T), since sync.Pool takes pointers: putting a bare
// slice in would allocate one box per Put. Empty boxes wait in a pool of their own
// between a Get and the next Put, so that in steady state neither allocates.
type Pool[T any] struct {
	// Max is the largest capacity the pool keeps; 0 means MaxCap.
	Max int

	full  sync.Pool // *[]T holding an empty slice with room
	boxes sync.Pool // *[]T holding nothing
}

// Get returns an empty slice with room for at least n elements.
func (p *Pool[T]) Get(n int) []T {
	if b, _ := p.full.Get().(*[]T); b != nil {
		s := *b
		*b = nil
		p.boxes.Put(b)
		if cap(s) >= n {
			return s
		}
	}
	return make([]T, 0, n)
}

// Put gives s back for a later Get. It clears s's elements first, so that what they
// point to can be collected; the caller must not use s, or any slice of it, again.
func (p *Pool[T]) Put(s []T) {
	limit := p.Max
	if limit == 0 {
		limit = MaxCap
	}
	if cap(s) == 0 || cap(s) > limit {
		return
	}
	s = s[:cap(s)]
	clear(s)
	b, _ := p.boxes.Get().(*[]T)
	if b == nil {
		b = new([]T)
	}
	*b = s[:0]
	p.full.Put(b)
}
