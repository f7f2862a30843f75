package resp

import (
	"context"
	"fmt"
	"testing"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/storage"
)

// diskFullStore is the memory store whose appends on one queue fail for a full disk.
type diskFullStore struct {
	storage.Memory
	queue string
}

var errDiskFull = fmt.Errorf("%w: write segment 1 at offset 4096: no space left on device",
	storage.ErrDiskFull)

func (f diskFullStore) Append(rec *storage.Record) (storage.Location, storage.Ticket, error) {
	if rec.Queue == f.queue {
		return storage.Location{}, 0, errDiskFull
	}
	return f.Memory.Append(rec)
}

// TestRESPDiskFullSaysWhatTheStoreSaid: a push the store cannot record answers what
// the store said, once, not which record the broker was writing.
func TestRESPDiskFullSaysWhatTheStoreSaid(t *testing.T) {
	ts := startServer(t, broker.Config{Store: diskFullStore{queue: "full"}})
	rc := ts.client(t, 2)
	err := rc.RPush(context.Background(), "full", "x").Err()
	if want := "ERR " + errDiskFull.Error(); err == nil || err.Error() != want {
		t.Fatalf("RPUSH on a full disk: %v, want %q", err, want)
	}
}
