package broker

import "github.com/keyq/keyq/internal/storage"

// entry is one queued message as the queue keeps it. payload is nil when the store
// holds the only copy (the cache was full); size then says how long it is.
type entry struct {
	id      uint64
	payload []byte
	size    int
	loc     storage.Location
	meta    *meta // nil for a message with no delivery state (most)
}

// minRing is the smallest buffer a ring keeps once it has held an entry.
const minRing = 8

// ring is a double-ended queue of entries in a circular buffer whose length is a power
// of two. It doubles when full and halves when a quarter full, so put and take are O(1)
// amortized and a drained queue gives its memory back.
type ring struct {
	buf  []entry
	head int // index of the first entry
	n    int // number of entries
}

func (r *ring) len() int { return r.n }

func (r *ring) mask(i int) int { return i & (len(r.buf) - 1) }

func (r *ring) pushBack(e entry) {
	r.growIfFull()
	r.buf[r.mask(r.head+r.n)] = e
	r.n++
}

func (r *ring) pushFront(e entry) {
	r.growIfFull()
	r.head = r.mask(r.head - 1 + len(r.buf))
	r.buf[r.head] = e
	r.n++
}

// popFront removes and returns the first entry; the ring must not be empty.
func (r *ring) popFront() entry {
	e := r.buf[r.head]
	r.buf[r.head] = entry{} // drop the payload reference for the GC
	r.head = r.mask(r.head + 1)
	r.n--
	r.shrinkIfSparse()
	return e
}

// popBack removes and returns the last entry; the ring must not be empty.
func (r *ring) popBack() entry {
	i := r.mask(r.head + r.n - 1)
	e := r.buf[i]
	r.buf[i] = entry{}
	r.n--
	r.shrinkIfSparse()
	return e
}

// at returns a pointer to the i-th entry from the front, 0 <= i < len.
func (r *ring) at(i int) *entry { return &r.buf[r.mask(r.head+i)] }

// removeAt removes the i-th entry from the front, shifting the shorter side. O(n).
func (r *ring) removeAt(i int) entry {
	e := *r.at(i)
	if i < r.n/2 {
		for j := i; j > 0; j-- {
			*r.at(j) = *r.at(j - 1)
		}
		*r.at(0) = entry{}
		r.head = r.mask(r.head + 1)
	} else {
		for j := i; j < r.n-1; j++ {
			*r.at(j) = *r.at(j + 1)
		}
		*r.at(r.n - 1) = entry{}
	}
	r.n--
	r.shrinkIfSparse()
	return e
}

func (r *ring) growIfFull() {
	if r.n < len(r.buf) {
		return
	}
	r.resize(max(minRing, 2*len(r.buf)))
}

// shrinkIfSparse halves the buffer when it is at most a quarter full, down to minRing.
// A small buffer is kept even when empty, so a queue that a producer and a consumer
// keep near empty does not allocate per message; an idle queue leaves the table and
// takes its buffer with it.
func (r *ring) shrinkIfSparse() {
	if len(r.buf) > minRing && r.n <= len(r.buf)/4 {
		r.resize(max(minRing, len(r.buf)/2))
	}
}

// resize copies the entries, in order, to the start of a new buffer of size n.
func (r *ring) resize(n int) {
	buf := make([]entry, n)
	if r.n > 0 {
		end := r.head + r.n
		if end <= len(r.buf) {
			copy(buf, r.buf[r.head:end])
		} else {
			k := copy(buf, r.buf[r.head:])
			copy(buf[k:], r.buf[:r.n-k])
		}
	}
	r.buf, r.head = buf, 0
}
