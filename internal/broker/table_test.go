package broker

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestTableMatchesMap adds and removes queues at random, so that the table grows,
// shrinks and shifts slots back after removals, and checks it against a map.
func TestTableMatchesMap(t *testing.T) {
	tb := newTable()
	want := make(map[string]*Queue)
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 20000 {
		name := fmt.Sprintf("queue-%d", rng.IntN(2000))
		if q, ok := want[name]; ok && rng.IntN(2) == 0 {
			tb.remove(q)
			delete(want, name)
		} else if !ok {
			q := newQueue(name)
			tb.add(q)
			want[name] = q
		}
		if step%500 == 0 || step == 19999 {
			checkTable(t, &tb, want)
		}
	}
	for _, q := range want {
		tb.remove(q)
	}
	checkTable(t, &tb, nil)
	if len(tb.slots) != minTableSlots {
		t.Fatalf("empty table keeps %d slots, want %d", len(tb.slots), minTableSlots)
	}
}

func checkTable(t *testing.T, tb *table, want map[string]*Queue) {
	t.Helper()
	if tb.len() != len(want) {
		t.Fatalf("table holds %d queues, want %d", tb.len(), len(want))
	}
	for i := range 2000 {
		name := fmt.Sprintf("queue-%d", i)
		if got := tb.get(name); got != want[name] {
			t.Fatalf("get(%q) = %p, want %p", name, got, want[name])
		}
	}
	seen := 0
	tb.all(func(q *Queue) {
		if want[q.name] != q {
			t.Fatalf("all yields %q, which is not in the table", q.name)
		}
		seen++
	})
	if seen != len(want) {
		t.Fatalf("all yields %d queues, want %d", seen, len(want))
	}
}
