package main

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spf13/pflag"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/storage"
)

// failingBackend is serve's storage for a test: a store that keeps nothing, as
// storage.Memory, but is durable to the broker, and whose appends fail once fail is set.
type failingBackend struct{ store *appendFailStore }

func (failingBackend) addFlags(*pflag.FlagSet) {}

func (f failingBackend) configure(cfg *broker.Config, _ *slog.Logger) ([]any, error) {
	cfg.Store = f.store
	return []any{"storage", "failing"}, nil
}

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

// TestGetOnFullDiskSaysWhatFailed: keyq get on a server whose disk is full says what
// failed in the user's terms, then the store's cause, and neither the broker's record
// ("store lease of 1") nor the protocol operation ("keyq reserve: ").
func TestGetOnFullDiskSaysWhatFailed(t *testing.T) {
	store := &appendFailStore{}
	old := newStorageBackend
	newStorageBackend = func() storageBackend { return failingBackend{store} }
	t.Cleanup(func() { newStorageBackend = old })
	addr, _, _ := startServe(t, "--addr", "127.0.0.1:0")

	runCLI(t, "job", "put", "q", "--addr", addr).want(t, exitOK)
	full := fmt.Errorf("%w: write segment 1 at offset 4096: no space left on device",
		storage.ErrDiskFull)
	store.fail.Store(&full)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "q"}, `keyq get: get from queue "q": ` + full.Error() + "\n"},
		{[]string{"reserve", "q", "-o", t.TempDir() + "/m"},
			`keyq reserve: reserve from queue "q": ` + full.Error() + "\n"},
	} {
		r := runCLI(t, "", append(c.args, "--addr", addr)...).want(t, exitError)
		if r.stderr != c.want {
			t.Errorf("keyq %s on a full disk: stderr %q, want %q",
				strings.Join(c.args, " "), r.stderr, c.want)
		}
	}
}
