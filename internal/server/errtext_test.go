package server_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/storage"
	"github.com/keyq/keyq/internal/testutil"
)

// TestServerErrorTextsSpeakToClients: a request refused because the broker closed
// says "server is shutting down", not "closed"; one the store could not record says
// what the store said, not which record the broker was writing.
func TestServerErrorTextsSpeakToClients(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	s.Broker.Close()
	f := c.Do(proto.OpPut, 1, testutil.KeyBody(t, "q", []byte("m")))
	if f.Status() != proto.StatusShuttingDown || string(f.Body) != "server is shutting down" {
		t.Errorf("put after the broker closed: %v %q, want ShuttingDown "+
			"\"server is shutting down\"", f.Status(), f.Body)
	}

	store := &appendFailStore{}
	s = testutil.StartServer(t, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.Store = store
	}))
	c = testutil.Dial(t, s.Addr)
	want(t, c.Do(proto.OpPut, 1, testutil.KeyBody(t, "q", []byte("m"))), proto.StatusOK, "")
	full := fmt.Errorf("%w: write segment 1 at offset 4096: no space left on device",
		storage.ErrDiskFull)
	store.fail.Store(&full)
	f = c.Do(proto.OpGet, 2, testutil.KeyBody(t, "q", nil))
	if f.Status() != proto.StatusDiskFull || string(f.Body) != full.Error() {
		t.Errorf("get on a full disk: %v %q, want DiskFull %q", f.Status(), f.Body,
			full.Error())
	}
}

// appendFailStore is a store that keeps nothing, as storage.Memory, but is durable to
// the broker, and whose appends fail with fail once it is set.
type appendFailStore struct {
	storage.Memory
	fail atomic.Pointer[error]
}

func (s *appendFailStore) Append(rec *storage.Record) (storage.Location, storage.Ticket,
	error) {
	if err := s.fail.Load(); err != nil {
		return storage.Location{}, 0, *err
	}
	return s.Memory.Append(rec)
}
