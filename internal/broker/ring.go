package broker

import "github.com/keyq/keyq/internal/storage"

// entry is one queued message as the queue hands it around. payload is nil when the
// store holds the only copy (the cache was full); size then says how long it is.
// The ring keeps it in two parts, a slot and a storeRef, see ring.
type entry struct {
	id      uint64
	payload []byte
	size    int
	loc     storage.Location
	meta    *meta // nil for a message with no delivery state (most)
}

// slot is the part of an entry every queued message needs: 40 bytes on 64-bit
// machines, which is most of what a queued message costs beyond its payload.
type slot struct {
	id      uint64
	payload []byte
	meta    *meta
}

// storeRef is the part of an entry only a durable store gives it: where its put record
// lies, and its size when the cache dropped its payload.
type storeRef struct {
	loc  storage.Location
	size int
	set  bool // the entry has a stored part; its size need not be len(payload)
}

// ringInline is how many entries a ring holds in itself, before its first heap
// buffer: a queue that never holds more costs no buffer, and its entries share the
// queue's cache lines.
const ringInline = 2

// minRing is the smallest heap buffer a ring keeps once it has outgrown its inline
// slots; it never goes back to them.
const minRing = 8

// keepRing is the largest buffer a ring keeps however few entries it holds: a queue
// that batches or pipelines of up to 64 messages fill and drain keeps its buffer
// instead of halving it on the way down and doubling it again on the way up. It costs
// at most 2.5 KB per queue, until the sweeper drops the queue once idle.
const keepRing = 64

// ring is a double-ended queue of entries in a circular buffer whose length is a power
// of two. It doubles when full and, above keepRing, halves when a quarter full, so put
// and take are O(1) amortized and a drained queue gives most of its memory back.
//
// Each entry lives in buf; its stored part, if it has one, lives at the same index in
// side, which stays nil until an entry needs it. In memory mode no entry does, so a
// queued message costs a slot and nothing more.
//
// A ring must not be copied once used: buf may point into its own inline slots.
type ring struct {
	buf    []slot
	side   []storeRef // nil, or as long as buf
	head   int        // index of the first entry
	n      int        // number of entries
	inline [ringInline]slot
}

func (r *ring) len() int { return r.n }

func (r *ring) mask(i int) int { return i & (len(r.buf) - 1) }

// set writes e at buffer index i.
func (r *ring) set(i int, e entry) {
	r.buf[i] = slot{id: e.id, payload: e.payload, meta: e.meta}
	needSide := !e.loc.IsZero() || e.size != len(e.payload)
	if needSide && r.side == nil {
		r.side = make([]storeRef, len(r.buf))
	}
	if r.side != nil {
		r.side[i] = storeRef{loc: e.loc, size: e.size, set: needSide}
	}
}

// get returns the entry at buffer index i.
func (r *ring) get(i int) entry {
	s := &r.buf[i]
	e := entry{id: s.id, payload: s.payload, size: len(s.payload), meta: s.meta}
	if r.side != nil && r.side[i].set {
		e.loc, e.size = r.side[i].loc, r.side[i].size
	}
	return e
}

// clear drops buffer index i's references for the GC.
func (r *ring) clear(i int) {
	r.buf[i] = slot{}
	if r.side != nil {
		r.side[i] = storeRef{}
	}
}

func (r *ring) pushBack(e entry) {
	r.growIfFull()
	r.set(r.mask(r.head+r.n), e)
	r.n++
}

func (r *ring) pushFront(e entry) {
	r.growIfFull()
	r.head = r.mask(r.head - 1 + len(r.buf))
	r.set(r.head, e)
	r.n++
}

// popFront removes and returns the first entry; the ring must not be empty.
func (r *ring) popFront() entry {
	e := r.get(r.head)
	r.clear(r.head)
	r.head = r.mask(r.head + 1)
	r.n--
	r.shrinkIfSparse()
	return e
}

// popBack removes and returns the last entry; the ring must not be empty.
func (r *ring) popBack() entry {
	i := r.mask(r.head + r.n - 1)
	e := r.get(i)
	r.clear(i)
	r.n--
	r.shrinkIfSparse()
	return e
}

// at returns a copy of the i-th entry from the front, 0 <= i < len.
func (r *ring) at(i int) entry { return r.get(r.mask(r.head + i)) }

// move copies the entry at the i-th place from the front to the j-th.
func (r *ring) move(j, i int) {
	from, to := r.mask(r.head+i), r.mask(r.head+j)
	r.buf[to] = r.buf[from]
	if r.side != nil {
		r.side[to] = r.side[from]
	}
}

// removeAt removes the i-th entry from the front, shifting the shorter side. O(n).
func (r *ring) removeAt(i int) entry {
	e := r.at(i)
	if i < r.n/2 {
		for j := i; j > 0; j-- {
			r.move(j, j-1)
		}
		r.clear(r.head)
		r.head = r.mask(r.head + 1)
	} else {
		for j := i; j < r.n-1; j++ {
			r.move(j, j+1)
		}
		r.clear(r.mask(r.head + r.n - 1))
	}
	r.n--
	r.shrinkIfSparse()
	return e
}

// insertAt inserts e as the i-th entry from the front, 0 <= i <= len, shifting the
// shorter side: O(min(i, len-i)), so O(1) at either end.
func (r *ring) insertAt(i int, e entry) {
	r.growIfFull()
	if i < r.n/2 {
		r.head = r.mask(r.head - 1 + len(r.buf))
		for j := 0; j < i; j++ {
			r.move(j, j+1)
		}
	} else {
		for j := r.n; j > i; j-- {
			r.move(j, j-1)
		}
	}
	r.set(r.mask(r.head+i), e)
	r.n++
}

// metaAt returns the meta of the i-th entry from the front, 0 <= i < len.
func (r *ring) metaAt(i int) *meta { return r.buf[r.mask(r.head+i)].meta }

// idAt returns the message ID of the i-th entry from the front, 0 <= i < len.
func (r *ring) idAt(i int) uint64 { return r.buf[r.mask(r.head+i)].id }

func (r *ring) growIfFull() {
	switch {
	case r.n < len(r.buf):
		return
	case r.buf == nil:
		r.buf = r.inline[:]
		return
	}
	r.resize(max(minRing, 2*len(r.buf)))
}

// shrinkIfSparse halves the buffer when it is at most a quarter full, down to
// keepRing. A buffer of keepRing or less is kept even when empty, so a queue that
// producers and consumers keep near empty does not allocate per message or per batch;
// an idle queue leaves the table and takes its buffer with it.
func (r *ring) shrinkIfSparse() {
	if len(r.buf) > keepRing && r.n <= len(r.buf)/4 {
		r.resize(max(keepRing, len(r.buf)/2))
	}
}

// resize copies the entries, in order, to the start of new buffers of size n.
func (r *ring) resize(n int) {
	wasInline := len(r.buf) == ringInline && &r.buf[0] == &r.inline[0]
	r.buf = resized(r.buf, r.head, r.n, n)
	if r.side != nil {
		r.side = resized(r.side, r.head, r.n, n)
	}
	r.head = 0
	if wasInline {
		r.inline = [ringInline]slot{} // its entries moved: drop them for the GC
	}
}

// resized returns a new buffer of size n holding the count elements of the circular
// buffer old that start at head, in order.
func resized[T any](old []T, head, count, n int) []T {
	buf := make([]T, n)
	if count == 0 {
		return buf
	}
	end := head + count
	if end <= len(old) {
		copy(buf, old[head:end])
	} else {
		k := copy(buf, old[head:])
		copy(buf[k:], old[:count-k])
	}
	return buf
}
