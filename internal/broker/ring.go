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

// chunkShift sets chunkLen, the number of slots in one chunk of a long ring: 1024
// slots, 40 KiB.
const (
	chunkShift = 10
	chunkLen   = 1 << chunkShift
)

// toFlatAt is the length at or below which a chunked ring goes back to one buffer.
// It is well below chunkLen, so that a queue whose length hovers near chunkLen does
// not copy its entries back and forth.
const toFlatAt = chunkLen / 4

// ring is a double-ended queue of entries, in one of two layouts:
//
//   - flat, up to chunkLen entries: a circular buffer whose length is a power of
//     two. It doubles when full and, above keepRing, halves when a quarter full, so
//     put and take are O(1) amortized and a drained queue gives its memory back.
//   - chunked, beyond that: a circular list of chunks of chunkLen slots each. A put
//     that fills the last chunk adds one, a take that empties the first drops it, so
//     no operation copies more than one chunk: a queue of ten million messages grows
//     and drains without the 400 MB copies (and the pause under the queue's lock,
//     and the collector stalled behind a copy it cannot preempt) that doubling one
//     buffer costs.
//
// Each entry's stored part, if it has one, lives at the same index in a side array
// (flat) or side chunk (chunked), which stays nil until an entry needs it. In memory
// mode no entry does, so a queued message costs a slot and nothing more.
//
// A ring must not be copied once used: buf may point into its own inline slots.
type ring struct {
	buf    []slot   // flat: the circular buffer; nil when chunked
	head   int      // flat: buf's index of the first entry; chunked: its index in the first chunk
	n      int      // number of entries
	ext    *ringExt // nil until the ring needs a side array or chunks
	inline [ringInline]slot
}

// ringExt is the part of a ring most queues never need, kept out of the queue's
// cache lines.
type ringExt struct {
	side []storeRef // flat: nil, or as long as buf

	// chunked: chunks is a circular buffer (its length a power of two) whose count
	// chunks from first hold the entries; sides is parallel to it, nil where no entry
	// of the chunk has a stored part. spare is the last chunk dropped, kept for the
	// next one needed, so that a queue whose length stays put allocates nothing.
	chunks    []*[chunkLen]slot
	sides     []*[chunkLen]storeRef
	first     int
	count     int
	spare     *[chunkLen]slot
	spareSide *[chunkLen]storeRef
}

func (r *ring) len() int { return r.n }

func (r *ring) chunked() bool { return r.ext != nil && r.ext.chunks != nil }

func (r *ring) mask(i int) int { return i & (len(r.buf) - 1) }

// chunkOf returns the index in x.chunks of the chunk holding the i-th entry, and the
// entry's index in that chunk.
func (r *ring) chunkOf(i int) (int, int) {
	x := r.ext
	p := r.head + i
	return (x.first + p>>chunkShift) & (len(x.chunks) - 1), p & (chunkLen - 1)
}

// slotAt returns the slot of the i-th entry from the front, 0 <= i < len (or i == len
// once a push made room for it).
func (r *ring) slotAt(i int) *slot {
	if !r.chunked() {
		return &r.buf[r.mask(r.head+i)]
	}
	c, k := r.chunkOf(i)
	return &r.ext.chunks[c][k]
}

// sideAt returns the stored part of the i-th entry from the front, or nil when no
// entry near it has one; with create it makes the side array or chunk first.
func (r *ring) sideAt(i int, create bool) *storeRef {
	x := r.ext
	if x == nil {
		if !create {
			return nil
		}
		x = &ringExt{}
		r.ext = x
	}
	if x.chunks == nil {
		if x.side == nil {
			if !create {
				return nil
			}
			x.side = make([]storeRef, len(r.buf))
		}
		return &x.side[r.mask(r.head+i)]
	}
	c, k := r.chunkOf(i)
	if x.sides[c] == nil {
		if !create {
			return nil
		}
		x.sides[c] = x.takeSpareSide()
	}
	return &x.sides[c][k]
}

// set writes e as the i-th entry from the front.
func (r *ring) set(i int, e entry) {
	*r.slotAt(i) = slot{id: e.id, payload: e.payload, meta: e.meta}
	needSide := !e.loc.IsZero() || e.size != len(e.payload)
	if ref := r.sideAt(i, needSide); ref != nil {
		*ref = storeRef{loc: e.loc, size: e.size, set: needSide}
	}
}

// at returns a copy of the i-th entry from the front, 0 <= i < len.
func (r *ring) at(i int) entry {
	s := r.slotAt(i)
	e := entry{id: s.id, payload: s.payload, size: len(s.payload), meta: s.meta}
	if ref := r.sideAt(i, false); ref != nil && ref.set {
		e.loc, e.size = ref.loc, ref.size
	}
	return e
}

// clear drops the i-th entry's references for the GC.
func (r *ring) clear(i int) {
	*r.slotAt(i) = slot{}
	if ref := r.sideAt(i, false); ref != nil {
		*ref = storeRef{}
	}
}

// move copies the entry at the i-th place from the front to the j-th.
func (r *ring) move(j, i int) {
	*r.slotAt(j) = *r.slotAt(i)
	from := r.sideAt(i, false)
	switch to := r.sideAt(j, from != nil && from.set); {
	case to == nil:
	case from == nil:
		*to = storeRef{}
	default:
		*to = *from
	}
}

// metaAt returns the meta of the i-th entry from the front, 0 <= i < len.
func (r *ring) metaAt(i int) *meta { return r.slotAt(i).meta }

// idAt returns the message ID of the i-th entry from the front, 0 <= i < len.
func (r *ring) idAt(i int) uint64 { return r.slotAt(i).id }

func (r *ring) pushBack(e entry) {
	r.roomAtBack()
	r.n++
	r.set(r.n-1, e)
}

func (r *ring) pushFront(e entry) {
	r.roomAtFront()
	r.n++
	r.set(0, e)
}

// popFront removes and returns the first entry; the ring must not be empty.
func (r *ring) popFront() entry {
	e := r.at(0)
	r.clear(0)
	r.n--
	if r.chunked() {
		r.head++
		if r.head == chunkLen {
			r.ext.dropFront()
			r.head = 0
		}
	} else {
		r.head = r.mask(r.head + 1)
	}
	r.shrinkIfSparse()
	return e
}

// popBack removes and returns the last entry; the ring must not be empty.
func (r *ring) popBack() entry {
	e := r.at(r.n - 1)
	r.clear(r.n - 1)
	r.n--
	if r.chunked() && r.ext.count > 1 && r.head+r.n <= (r.ext.count-1)<<chunkShift {
		r.ext.dropBack()
	}
	r.shrinkIfSparse()
	return e
}

// removeAt removes the i-th entry from the front, shifting the shorter side. O(n).
func (r *ring) removeAt(i int) entry {
	e := r.at(i)
	if i < r.n/2 {
		for j := i; j > 0; j-- {
			r.move(j, j-1)
		}
		r.popFront()
	} else {
		for j := i; j < r.n-1; j++ {
			r.move(j, j+1)
		}
		r.popBack()
	}
	return e
}

// insertAt inserts e as the i-th entry from the front, 0 <= i <= len, shifting the
// shorter side: O(min(i, len-i)), so O(1) at either end.
func (r *ring) insertAt(i int, e entry) {
	if i < r.n/2 {
		r.roomAtFront()
		r.n++
		for j := 0; j < i; j++ {
			r.move(j, j+1)
		}
	} else {
		r.roomAtBack()
		r.n++
		for j := r.n - 1; j > i; j-- {
			r.move(j, j-1)
		}
	}
	r.set(i, e)
}

// roomAtBack makes room for one more entry after the last.
func (r *ring) roomAtBack() {
	if !r.chunked() {
		if r.n < len(r.buf) {
			return
		}
		if !r.growFlat() {
			return
		}
	}
	if r.head+r.n == r.ext.count<<chunkShift {
		r.ext.addBack()
	}
}

// roomAtFront makes room for one more entry before the first.
func (r *ring) roomAtFront() {
	if !r.chunked() {
		if r.n == len(r.buf) && r.growFlat() {
			r.roomAtFront()
			return
		}
		r.head = r.mask(r.head - 1 + len(r.buf))
		return
	}
	if r.head == 0 {
		r.ext.addFront()
		r.head = chunkLen
	}
	r.head--
}

// growFlat makes room in a full flat ring: it doubles the buffer or, at chunkLen,
// turns the ring into chunks. It reports whether the ring is chunked now.
func (r *ring) growFlat() bool {
	switch {
	case r.buf == nil:
		r.buf = r.inline[:]
		return false
	case len(r.buf) < chunkLen:
		r.resize(max(minRing, 2*len(r.buf)))
		return false
	}
	r.toChunks()
	return true
}

// shrinkIfSparse gives memory back as the ring drains. A flat buffer halves when at
// most a quarter full, down to keepRing; a buffer of keepRing or less is kept even
// when empty, so a queue that producers and consumers keep near empty does not
// allocate per message or per batch (an idle queue leaves the table and takes its
// buffer with it). A chunked ring goes back to one buffer at toFlatAt entries.
func (r *ring) shrinkIfSparse() {
	switch {
	case r.chunked():
		if r.n <= toFlatAt {
			r.toFlat()
		}
	case len(r.buf) > keepRing && r.n <= len(r.buf)/4:
		r.resize(max(keepRing, len(r.buf)/2))
	}
}

// resize copies the entries of a flat ring, in order, to the start of new buffers of
// size n.
func (r *ring) resize(n int) {
	wasInline := len(r.buf) == ringInline && &r.buf[0] == &r.inline[0]
	r.buf = resized(r.buf, r.head, r.n, n)
	if r.ext != nil && r.ext.side != nil {
		r.ext.side = resized(r.ext.side, r.head, r.n, n)
	}
	r.head = 0
	if wasInline {
		r.inline = [ringInline]slot{} // its entries moved: drop them for the GC
	}
}

// toChunks turns a full flat ring of chunkLen entries into one chunk.
func (r *ring) toChunks() {
	if r.ext == nil {
		r.ext = &ringExt{}
	}
	x := r.ext
	x.chunks = make([]*[chunkLen]slot, 4)
	x.sides = make([]*[chunkLen]storeRef, 4)
	x.chunks[0] = (*[chunkLen]slot)(resized(r.buf, r.head, r.n, chunkLen))
	if x.side != nil {
		x.sides[0] = (*[chunkLen]storeRef)(resized(x.side, r.head, r.n, chunkLen))
	}
	x.first, x.count = 0, 1
	r.buf, x.side, r.head = nil, nil, 0
}

// toFlat copies the entries of a chunked ring into one buffer, twice their number
// rounded up to a power of two and at least keepRing.
func (r *ring) toFlat() {
	size := keepRing
	for size < 2*r.n {
		size *= 2
	}
	buf := make([]slot, size)
	var side []storeRef
	for i := range r.n {
		buf[i] = *r.slotAt(i)
		if ref := r.sideAt(i, false); ref != nil && ref.set {
			if side == nil {
				side = make([]storeRef, size)
			}
			side[i] = *ref
		}
	}
	r.ext.chunks, r.ext.sides, r.ext.spare, r.ext.spareSide = nil, nil, nil, nil
	r.ext.first, r.ext.count = 0, 0
	r.ext.side = side
	r.buf, r.head = buf, 0
}

// addBack appends an empty chunk after the last.
func (x *ringExt) addBack() {
	x.makeRoom()
	i := (x.first + x.count) & (len(x.chunks) - 1)
	x.chunks[i] = x.takeSpare()
	x.count++
}

// addFront adds an empty chunk before the first.
func (x *ringExt) addFront() {
	x.makeRoom()
	x.first = (x.first - 1) & (len(x.chunks) - 1)
	x.chunks[x.first] = x.takeSpare()
	x.count++
}

// dropFront drops the first chunk, which its entries have all left.
func (x *ringExt) dropFront() {
	x.keep(x.first)
	x.first = (x.first + 1) & (len(x.chunks) - 1)
	x.count--
}

// dropBack drops the last chunk, which its entries have all left.
func (x *ringExt) dropBack() {
	x.keep((x.first + x.count - 1) & (len(x.chunks) - 1))
	x.count--
}

// keep takes chunk i (and its side chunk) out of the list, keeping them as the spares.
// A chunk's slots are all cleared by the time it is dropped.
func (x *ringExt) keep(i int) {
	x.spare, x.chunks[i] = x.chunks[i], nil
	if x.sides[i] != nil {
		x.spareSide, x.sides[i] = x.sides[i], nil
	}
}

func (x *ringExt) takeSpare() *[chunkLen]slot { return takeSpare(&x.spare) }

func (x *ringExt) takeSpareSide() *[chunkLen]storeRef { return takeSpare(&x.spareSide) }

// takeSpare returns the spare chunk *spare and clears it, or a new chunk if none.
func takeSpare[T any](spare **T) *T {
	c := *spare
	*spare = nil
	if c == nil {
		c = new(T)
	}
	return c
}

// makeRoom doubles the list of chunks when every place in it is taken.
func (x *ringExt) makeRoom() {
	if x.count < len(x.chunks) {
		return
	}
	n := 2 * len(x.chunks)
	x.chunks = resized(x.chunks, x.first, x.count, n)
	x.sides = resized(x.sides, x.first, x.count, n)
	x.first = 0
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
