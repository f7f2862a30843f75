package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// reserve reserves from queue with query q and returns the response and body.
func (a *testAPI) reserve(queue, q string) (*http.Response, []byte) {
	a.t.Helper()
	return a.do("POST", queuePath(queue)+"/reserve"+q, nil)
}

func TestHTTPReserveAckNackTouch(t *testing.T) {
	a := startAPI(t)
	id := a.put("jobs", "resize")

	resp, body := a.reserve("jobs", "?lease=30s")
	if resp.StatusCode != http.StatusOK || string(body) != "resize" {
		t.Fatalf("reserve = %d %q", resp.StatusCode, body)
	}
	h := resp.Header
	dID := h.Get(DeliveryIDHeader)
	deadline, err := time.Parse(time.RFC3339Nano, h.Get(LeaseExpiresHeader))
	if h.Get(MessageIDHeader) != strconv.FormatUint(id, 10) || dID == "" ||
		h.Get(DeliveryCountHeader) != "1" || err != nil || time.Until(deadline) < 20*time.Second {
		t.Fatalf("reserve headers %v (%v)", h, err)
	}
	if resp, _ := a.reserve("jobs", ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("second reserve = %d, want 204: the message is leased", resp.StatusCode)
	}

	resp, body = a.do("POST", "/v1/deliveries/"+dID+"/touch?lease=1h", nil)
	var tr touchReply
	decode(t, body, &tr)
	if resp.StatusCode != http.StatusOK || time.Until(tr.Deadline) < 50*time.Minute ||
		tr.DeadlineUnixMS != tr.Deadline.UnixMilli() {
		t.Fatalf("touch = %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.do("POST", "/v1/deliveries/"+dID+"/nack", nil); resp.StatusCode != 204 {
		t.Fatalf("nack = %d", resp.StatusCode)
	}
	resp, body = a.do("POST", "/v1/deliveries/"+dID+"/ack", nil)
	wantError(t, resp, body, http.StatusNotFound, "not_found", 26)

	resp, _ = a.reserve("jobs", "?wait=5s")
	if resp.Header.Get(DeliveryCountHeader) != "2" {
		t.Fatalf("redelivery count %q", resp.Header.Get(DeliveryCountHeader))
	}
	again := resp.Header.Get(DeliveryIDHeader)
	if resp, _ := a.do("POST", "/v1/deliveries/"+again+"/ack", nil); resp.StatusCode != 204 {
		t.Fatalf("ack = %d", resp.StatusCode)
	}
	_, body = a.do("GET", queuePath("jobs"), nil)
	var q queueReply
	decode(t, body, &q)
	if q.Messages != 0 || q.Inflight != 0 {
		t.Fatalf("queue after ack: %s", body)
	}
}

func TestHTTPLeaseRequestsRefused(t *testing.T) {
	a := startAPI(t)
	resp, body := a.do("POST", "/v1/deliveries/abc/ack", nil)
	wantError(t, resp, body, http.StatusBadRequest, "bad_request", 19)
	resp, body = a.do("POST", "/v1/deliveries/99/touch", nil)
	wantError(t, resp, body, http.StatusNotFound, "not_found", 26)
	resp, body = a.reserve("q", "?lease=forever")
	wantError(t, resp, body, http.StatusBadRequest, "bad_request", 19)
	resp, body = a.reserve("q", "?lease=-1s")
	wantError(t, resp, body, http.StatusBadRequest, "bad_request", 19)
	resp, body = a.do("POST", "/v1/deliveries/1/nack?delay=1000000h", nil)
	wantError(t, resp, body, http.StatusBadRequest, "bad_request", 19)
	resp, body = a.do("GET", "/v1/deliveries/1/ack", nil)
	wantError(t, resp, body, http.StatusMethodNotAllowed, "unknown_op", 18)
}

func TestHTTPPutDelayAndQueueFull(t *testing.T) {
	a := startAPI(t)
	start := time.Now()
	resp, body := a.do("POST", queuePath("later")+"/messages?delay=300ms&ttl=1h",
		strings.NewReader("d"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put = %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.do("POST", queuePath("later")+"/get", nil); resp.StatusCode != 204 {
		t.Fatalf("a delayed message was delivered at once: %d", resp.StatusCode)
	}
	resp, body = a.do("POST", queuePath("later")+"/get?wait=10s", nil)
	if resp.StatusCode != http.StatusOK || string(body) != "d" ||
		time.Since(start) < 300*time.Millisecond {
		t.Fatalf("get = %d %q after %v", resp.StatusCode, body, time.Since(start))
	}

	if err := a.broker.SetQueue(t.Context(), "full", queueSettingsMaxLength(1)); err != nil {
		t.Fatal(err)
	}
	a.put("full", "one")
	resp, body = a.do("POST", queuePath("full")+"/messages", strings.NewReader("two"))
	wantError(t, resp, body, http.StatusConflict, "queue_full", 25)
}

// TestHTTPReserveLeaseOutlivesRequest: a lease taken over HTTP is not bound to its
// connection; it lasts until it runs out, then the message comes back.
func TestHTTPReserveLeaseOutlivesRequest(t *testing.T) {
	a := startAPI(t)
	a.put("q", "x")
	resp, _ := a.reserve("q", "?lease=300ms")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reserve = %d", resp.StatusCode)
	}
	a.client.CloseIdleConnections()
	if resp, _ := a.reserve("q", ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the lease ended with its connection: %d", resp.StatusCode)
	}
	resp, body := a.reserve("q", "?wait=10s")
	if resp.StatusCode != http.StatusOK || string(body) != "x" ||
		resp.Header.Get(DeliveryCountHeader) != "2" {
		t.Fatalf("after the lease ran out: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func queueSettingsMaxLength(n int) broker.QueueSettings {
	return broker.QueueSettings{MaxLength: n}
}

// TestHTTPDeadLetterHeaders: a message taken from a dead-letter queue, by reserve or
// by get, says where it came from and why, as the native protocol does.
func TestHTTPDeadLetterHeaders(t *testing.T) {
	a := startAPI(t)
	err := a.broker.SetQueue(t.Context(), "jobs", broker.QueueSettings{MaxDeliveries: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, take := range []string{"/reserve?wait=5s", "/get?wait=5s"} {
		id := a.put("jobs", "poison")
		resp, _ := a.reserve("jobs", "")
		dID := resp.Header.Get(DeliveryIDHeader)
		if resp, _ := a.do("POST", "/v1/deliveries/"+dID+"/nack", nil); resp.StatusCode != 204 {
			t.Fatalf("nack = %d", resp.StatusCode)
		}
		// The next delivery would be its second: it goes to jobs.dlq instead.
		if resp, _ := a.reserve("jobs", ""); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("jobs still delivers after max-deliveries: %d", resp.StatusCode)
		}

		resp, body := a.do("POST", queuePath("jobs.dlq")+take, nil)
		h := resp.Header
		if resp.StatusCode != http.StatusOK || string(body) != "poison" {
			t.Fatalf("take %d from the dead-letter queue = %d %q", i, resp.StatusCode, body)
		}
		if h.Get(DeadLetterQueueHeader) != "jobs" ||
			h.Get(DeadLetterIDHeader) != strconv.FormatUint(id, 10) ||
			h.Get(DeadLetterReasonHeader) != broker.ReasonMaxDeliveries ||
			h.Get(DeadLetterCountHeader) != "1" {
			t.Fatalf("%s on the dead-letter queue: headers %v", take, h)
		}
		if take == "/reserve?wait=5s" {
			dID := h.Get(DeliveryIDHeader)
			a.do("POST", "/v1/deliveries/"+dID+"/ack", nil)
		}
	}

	// A message that was never dead-lettered has none of them.
	a.put("plain", "x")
	resp, _ := a.do("POST", queuePath("plain")+"/get", nil)
	if v := resp.Header.Get(DeadLetterQueueHeader); v != "" {
		t.Fatalf("an ordinary message has %s %q", DeadLetterQueueHeader, v)
	}
}
