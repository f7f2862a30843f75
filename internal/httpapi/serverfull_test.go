package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyq/keyq/internal/broker"
)

// A put over the server's memory limit is answered 507 server_full; a get makes
// room again.
func TestHTTPPutOverMemoryLimitIsServerFull(t *testing.T) {
	a := startAPI(t, func(s *apiSetup) {
		s.broker.MaxHeldBytes = 2 * (1 + broker.MessageOverhead)
	})
	a.put("q", "a")
	a.put("q", "b")
	resp, body := a.do("POST", queuePath("q")+"/messages", strings.NewReader("c"))
	wantError(t, resp, body, http.StatusInsufficientStorage, "server_full", 28)

	if resp, body := a.do("POST", queuePath("q")+"/get", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("get = %d %s", resp.StatusCode, body)
	}
	a.put("q", "c")
}
