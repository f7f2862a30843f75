package testutil

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

func TestStartServerServesDial(t *testing.T) {
	s := StartServer(t)
	c := Dial(t, s.Addr)
	f := c.Do(proto.OpPut, 1, KeyBody(t, "q", []byte("m")))
	if f.Status() != proto.StatusOK {
		t.Fatalf("put: %v %q", f.Status(), f.Body)
	}
	if n, err := s.Broker.Len("q"); err != nil || n != 1 {
		t.Fatalf("broker len = %d, %v", n, err)
	}
	WaitFor(t, 5*time.Second, func() bool { return s.Server.Connections() == 1 })
}

func TestWaitForPollsUntilTrue(t *testing.T) {
	var calls atomic.Int32
	WaitFor(t, 5*time.Second, func() bool { return calls.Add(1) == 5 })
	if calls.Load() != 5 {
		t.Fatalf("fn called %d times, want 5", calls.Load())
	}
}
