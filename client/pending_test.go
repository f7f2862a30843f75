package client

import (
	"math"
	"testing"
)

func TestCallTableSkipsBusyIDsAndGrows(t *testing.T) {
	var tab callTable
	waiting := &call{}
	tab.add(waiting) // a call that waits long, say a blocking GET
	if waiting.id != 1 {
		t.Fatalf("first id = %d, want 1", waiting.id)
	}

	// Many more calls come and go: none may take the waiting call's id.
	for range 10 * initialPending {
		cl := &call{}
		tab.add(cl)
		if cl.id == waiting.id || cl.id == 0 {
			t.Fatalf("id %d given while id %d waits", cl.id, waiting.id)
		}
		if got := tab.remove(cl.id); got != cl {
			t.Fatalf("remove(%d) = %p, want %p", cl.id, got, cl)
		}
	}

	// Half full, the table doubles; every call stays findable by its id.
	calls := []*call{waiting}
	for range initialPending {
		cl := &call{}
		tab.add(cl)
		calls = append(calls, cl)
	}
	if len(tab.slots) <= initialPending || tab.n != len(calls) {
		t.Fatalf("%d slots for %d calls (n = %d)", len(tab.slots), len(calls), tab.n)
	}
	if tab.remove(waiting.id+1<<30) != nil {
		t.Fatal("remove of an id never given found a call")
	}
	for _, cl := range calls {
		if got := tab.remove(cl.id); got != cl {
			t.Fatalf("remove(%d) after growing = %p, want %p", cl.id, got, cl)
		}
	}
	if tab.n != 0 || len(tab.drain()) != 0 {
		t.Fatalf("table not empty: n = %d", tab.n)
	}
}

func TestCallTableWrapsAroundPastZero(t *testing.T) {
	tab := callTable{lastID: math.MaxUint32 - 1}
	a, b := &call{}, &call{}
	tab.add(a)
	tab.add(b)
	if a.id != math.MaxUint32 || b.id != 1 {
		t.Fatalf("ids across the wrap = %d, %d; want %d, 1 (0 is the server's)",
			a.id, b.id, uint32(math.MaxUint32))
	}
	if !tab.removeCall(a) || tab.removeCall(a) {
		t.Fatal("removeCall found the call twice")
	}
	if got := tab.drain(); len(got) != 1 || got[0] != b {
		t.Fatalf("drain = %v, want the one call left", got)
	}
}
