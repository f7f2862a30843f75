package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// TestHTTPShutdownErrorsSayServerIsShuttingDown: a request refused because the
// broker closed, or ended by the shutdown, says "server is shutting down" after what
// it was doing, never the broker's "broker: closed".
func TestHTTPShutdownErrorsSayServerIsShuttingDown(t *testing.T) {
	a := startAPI(t)
	done := make(chan string, 1)
	go func() {
		resp, err := a.client.Post(a.url+"/v1/queues/q/get?wait=1m", "", nil)
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		done <- string(body)
	}()
	waitFor(t, 10*time.Second, "the get to block", func() bool {
		return a.broker.Stats(0).Waiting == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if body := <-done; !strings.Contains(body,
		`"message":"get from queue \"q\": server is shutting down"`) {
		t.Errorf("blocked get at shutdown answered %s", body)
	}

	b := startAPI(t)
	b.broker.Close()
	resp, body := b.do("POST", "/v1/queues/q/messages", strings.NewReader("x"))
	if e := wantError(t, resp, body, http.StatusServiceUnavailable, "shutting_down", 22); e.
		Message != "server is shutting down" {
		t.Errorf("put after the broker closed: message %q", e.Message)
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

// TestHTTPStoreErrorsSayWhatTheStoreSaid: a get that the store cannot record says
// what the store said (a full disk), not which record the broker was writing.
func TestHTTPStoreErrorsSayWhatTheStoreSaid(t *testing.T) {
	store := &appendFailStore{}
	a := startAPI(t, func(s *apiSetup) { s.broker.Store = store })
	if resp, body := a.do("POST", "/v1/queues/q/messages", strings.NewReader("x")); resp.
		StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("put = %d %s", resp.StatusCode, body)
	}
	full := fmt.Errorf("%w: write segment 1 at offset 4096: no space left on device",
		storage.ErrDiskFull)
	store.fail.Store(&full)

	resp, body := a.do("POST", "/v1/queues/q/get", nil)
	e := wantError(t, resp, body, http.StatusInsufficientStorage, "disk_full", 24)
	if e.Message != full.Error() || bytes.Contains(body, []byte("store take")) {
		t.Errorf("get on a full disk: message %q, want %q", e.Message, full.Error())
	}
}
