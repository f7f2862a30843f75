package broker

import "hash/maphash"

// table is the broker's index of queues by name: open addressing with linear
// probing over a power-of-two array of {hash, queue} slots, at most half full. A
// lookup of a queue that is out of the CPU cache then reads one 16-byte slot and the
// queue's first cache line (which holds its name), where a Go map reads a control
// word and a slot in a group of 200 bytes. The broker guards it with Broker.mu.
type table struct {
	slots []tableSlot
	n     int // queues in the table
	seed  maphash.Seed
}

// tableSlot is one place in a table; q is nil in an empty one.
type tableSlot struct {
	hash uint64
	q    *Queue
}

const minTableSlots = 16

func newTable() table {
	return table{slots: make([]tableSlot, minTableSlots), seed: maphash.MakeSeed()}
}

func (t *table) len() int { return t.n }

// get returns the queue named name, or nil.
func (t *table) get(name string) *Queue {
	h := maphash.String(t.seed, name)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.q == nil {
			return nil
		}
		if s.hash == h && s.q.name == name {
			return s.q
		}
	}
}

// add puts q in the table; no queue of its name may be there.
func (t *table) add(q *Queue) {
	if 2*(t.n+1) > len(t.slots) {
		t.resize(2 * len(t.slots))
	}
	t.place(tableSlot{hash: maphash.String(t.seed, q.name), q: q})
	t.n++
}

// place puts s in the first empty slot from its home.
func (t *table) place(s tableSlot) {
	mask := uint64(len(t.slots) - 1)
	i := s.hash & mask
	for t.slots[i].q != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = s
}

// remove takes q out of the table if it is there. The slots after it that could not
// sit in their home shift back, so probes never meet a hole they should not stop at.
func (t *table) remove(q *Queue) {
	h := maphash.String(t.seed, q.name)
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i].q != q {
		if t.slots[i].q == nil {
			return
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; t.slots[j].q != nil; j = (j + 1) & mask {
		home := t.slots[j].hash & mask
		// The slot at j stays if its home lies cyclically in (i, j].
		if (i <= j && i < home && home <= j) || (i > j && (i < home || home <= j)) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = tableSlot{}
	t.n--
	if len(t.slots) > minTableSlots && 8*t.n < len(t.slots) {
		t.resize(len(t.slots) / 2)
	}
}

func (t *table) resize(n int) {
	old := t.slots
	t.slots = make([]tableSlot, n)
	for _, s := range old {
		if s.q != nil {
			t.place(s)
		}
	}
}

// all calls fn with each queue in the table, in no particular order.
func (t *table) all(fn func(q *Queue)) {
	for _, s := range t.slots {
		if s.q != nil {
			fn(s.q)
		}
	}
}
