package bench

import "math/bits"

// seqSet is a growable bitset of sequence numbers.
type seqSet []uint64

// add sets seq and reports whether it was already set.
func (s *seqSet) add(seq uint64) (dup bool) {
	word, bit := seq/64, uint64(1)<<(seq%64)
	if word >= uint64(len(*s)) {
		grown := make(seqSet, max(word+1, uint64(2*len(*s))))
		copy(grown, *s)
		*s = grown
	}
	dup = (*s)[word]&bit != 0
	(*s)[word] |= bit
	return dup
}

// count returns how many sequence numbers are set.
func (s seqSet) count() int64 {
	var n int
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return int64(n)
}

// tracker records what one worker saw, one seqSet per producer. It is owned by its
// worker while the run lasts and read by Run afterwards, so it needs no lock.
type tracker struct {
	seen       []seqSet
	duplicates int64
}

func newTracker(producers int) *tracker {
	return &tracker{seen: make([]seqSet, producers)}
}

// add records seq from producer and counts it if this worker saw it before.
func (t *tracker) add(producer uint32, seq uint64) {
	if t.seen[producer].add(seq) {
		t.duplicates++
	}
}

// delivery is the exactly-once verdict of a run.
type delivery struct {
	received   int64 // distinct messages taken by consumers
	duplicates int64 // messages taken more than once
	missing    int64 // acknowledged puts no consumer took
	unexpected int64 // messages taken whose put was not acknowledged
}

// verify merges the consumers' trackers and compares them with acked, the sequence
// numbers each producer had acknowledged.
func verify(acked []seqSet, consumers []*tracker) delivery {
	var d delivery
	for _, c := range consumers {
		d.duplicates += c.duplicates
	}
	for p := range acked {
		var got seqSet
		for _, c := range consumers {
			d.duplicates += mergeInto(&got, c.seen[p])
		}
		d.received += got.count()
		d.missing += andNotCount(acked[p], got)
		d.unexpected += andNotCount(got, acked[p])
	}
	return d
}

// mergeInto ORs src into dst and returns how many bits were set in both.
func mergeInto(dst *seqSet, src seqSet) int64 {
	if len(src) > len(*dst) {
		grown := make(seqSet, len(src))
		copy(grown, *dst)
		*dst = grown
	}
	var both int
	for i, w := range src {
		both += bits.OnesCount64((*dst)[i] & w)
		(*dst)[i] |= w
	}
	return int64(both)
}

// andNotCount returns how many bits are set in a but not in b.
func andNotCount(a, b seqSet) int64 {
	var n int
	for i, w := range a {
		if i < len(b) {
			w &^= b[i]
		}
		n += bits.OnesCount64(w)
	}
	return int64(n)
}
