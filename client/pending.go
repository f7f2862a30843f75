package client

// initialPending is the number of slots a callTable starts with.
const initialPending = 256

// callTable holds the calls waiting for a reply, indexed by request id. The Client
// chooses the ids, so instead of hashing it takes the next id whose slot is free:
// slot id&mask holds the call with that id, and a lookup is one index and one compare.
// A call that waits long (a blocking GET) only makes the ids that share its slot be
// skipped. The table doubles when it is half full. It is guarded by Client.mu.
type callTable struct {
	slots  []*call // len is a power of two
	n      int     // calls in slots
	lastID uint32  // the id given last
}

// add gives cl an id not in use and records it.
func (t *callTable) add(cl *call) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := uint32(len(t.slots) - 1)
	for {
		t.lastID++
		// Id 0 is what the server uses for errors that answer no request.
		if s := &t.slots[t.lastID&mask]; t.lastID != 0 && *s == nil {
			*s = cl
			cl.id = t.lastID
			t.n++
			return
		}
	}
}

// grow doubles the slots. Ids in distinct slots modulo n stay distinct modulo 2n.
func (t *callTable) grow() {
	old := t.slots
	t.slots = make([]*call, max(2*len(old), initialPending))
	mask := uint32(len(t.slots) - 1)
	for _, cl := range old {
		if cl != nil {
			t.slots[cl.id&mask] = cl
		}
	}
}

// remove takes out and returns the call with id, or nil if none waits for it.
func (t *callTable) remove(id uint32) *call {
	if len(t.slots) == 0 {
		return nil
	}
	s := &t.slots[id&uint32(len(t.slots)-1)]
	cl := *s
	if cl == nil || cl.id != id {
		return nil
	}
	*s = nil
	t.n--
	return cl
}

// removeCall takes out cl and reports whether it was there (not yet answered).
func (t *callTable) removeCall(cl *call) bool {
	if len(t.slots) == 0 {
		return false
	}
	s := &t.slots[cl.id&uint32(len(t.slots)-1)]
	if *s != cl {
		return false
	}
	*s = nil
	t.n--
	return true
}

// drain takes out and returns every call.
func (t *callTable) drain() []*call {
	out := make([]*call, 0, t.n)
	for i, cl := range t.slots {
		if cl != nil {
			out = append(out, cl)
			t.slots[i] = nil
		}
	}
	t.n = 0
	return out
}
