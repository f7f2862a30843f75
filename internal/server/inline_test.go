package server_test

import (
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

// TestServerWaitingRequestServedOnReaderWhenMessageThere: a GET, GETBATCH or
// RESERVE with a wait that finds a message is served on the reader, in order with
// the requests around it, and never goes off to wait; one that finds its queue empty
// still waits for a put.
func TestServerWaitingRequestServedOnReaderWhenMessageThere(t *testing.T) {
	obs := &recordingObserver{requests: map[string]int{}}
	s := testutil.StartServer(t, testutil.WithServer(func(cfg *server.Config) {
		cfg.Observer = obs
	}))
	c := testutil.Dial(t, s.Addr)
	for i := range 3 {
		put(t, c, uint32(i), "q", []byte("m"))
	}
	ch := replies(c)

	const wait = 60_000
	reserve, err := proto.AppendKeys(nil, []string{"q"})
	if err != nil {
		t.Fatal(err)
	}
	reserve, _ = proto.AppendOptions(reserve, proto.U64Option(proto.OptGetWait, wait))
	reqs := []struct {
		op   proto.Op
		body []byte
	}{
		{proto.OpGet, getWaitBody(t, "q", wait)},
		{proto.OpPing, nil},
		{proto.OpGetBatch, reserve}, // GETBATCH and RESERVE share the layout
		{proto.OpPing, nil},
		{proto.OpReserve, reserve},
		{proto.OpPing, nil},
	}
	for i, r := range reqs {
		if err := c.Send(r.op, uint32(10+i), r.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		f := next(t, ch, 10*time.Second)
		if f.ID != uint32(10+i) || f.Op != r.op {
			t.Fatalf("reply %d is to %s id %d, want %s id %d", i, f.Op, f.ID, r.op, 10+i)
		}
		want(t, f, proto.StatusOK, "")
	}
	for _, key := range []string{"native get ok", "native getbatch ok", "native reserve ok"} {
		if got := obs.count(key); got != 1 {
			t.Errorf("%q observed %d times, want 1 (%v)", key, got, obs.requests)
		}
	}

	// On an empty queue the wait still waits, off the reader, until a put.
	sendGets(t, c, "empty", 20, 1, wait)
	testutil.WaitFor(t, 10*time.Second, func() bool { return s.Broker.Stats(0).Waiting == 1 })
	c2 := testutil.Dial(t, s.Addr)
	put(t, c2, 0, "empty", []byte("late"))
	f := next(t, ch, 10*time.Second)
	want(t, f, proto.StatusOK, "")
	if f.ID != 20 || string(f.Body[8:]) != "late" {
		t.Fatalf("reply id %d with %q, want id 20 with the late put", f.ID, f.Body[8:])
	}
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return obs.count("native get_wait ok") == 1
	})
}
