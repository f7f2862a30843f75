package httpapi

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

// httpPayloads returns one payload of each size the broker's pools and the
// response's buffer treat apart, each of a byte of its own, so that a body that
// shows another's bytes, or the poison of a released buffer (0xA5, under the race
// detector), is told from its own.
func httpPayloads() []string {
	sizes := []int{1, 16, 17, 1000, 9000, 70 << 10}
	ps := make([]string, len(sizes))
	for i, n := range sizes {
		ps[i] = string(bytes.Repeat([]byte{'a' + byte(i)}, n))
	}
	return ps
}

func wantBody(t *testing.T, what string, resp *http.Response, got []byte, want string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || string(got) != want {
		t.Fatalf("%s = %d, %d bytes starting %.8q; want 200, %d of %q (0xa5 is the "+
			"poison of a released buffer)", what, resp.StatusCode, len(got), got, len(want),
			want[:1])
	}
}

// TestHTTPBodiesNeverCarryAReleasedPayload: a get or reserve gives the message's
// buffer back to the broker once the body is written, and the next put may reuse it
// at once; under the race detector a released buffer is poisoned. Bodies written
// from one after its release, or a leased message whose buffer went back while the
// broker kept it for redelivery, show here.
func TestHTTPBodiesNeverCarryAReleasedPayload(t *testing.T) {
	a := startAPI(t)
	ps := httpPayloads()
	for range 3 {
		for _, p := range ps {
			a.put("jobs", p)
			resp, body := a.do("POST", queuePath("jobs")+"/get", nil)
			wantBody(t, "get", resp, body, p)
		}
	}

	for _, p := range ps {
		a.put("leased", p)
		for round := range 3 {
			resp, body := a.reserve("leased", "?lease=1m")
			wantBody(t, "reserve", resp, body, p)
			a.put("other", p) // may reuse the buffer the reserve released
			dID := resp.Header.Get(DeliveryIDHeader)
			action := "/nack"
			if round == 2 {
				action = "/ack"
			}
			if resp, _ := a.do("POST", "/v1/deliveries/"+dID+action, nil); resp.StatusCode !=
				http.StatusNoContent {
				t.Fatalf("%s = %d", action, resp.StatusCode)
			}
		}
	}

	// A get that waits is handed the message by the put.
	for _, p := range ps {
		got := make(chan string, 1)
		go func() {
			req, _ := http.NewRequest("POST", a.url+queuePath("waited")+"/get?wait=1m", nil)
			resp, err := a.client.Do(req)
			if err != nil {
				got <- err.Error()
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			buf.ReadFrom(resp.Body)
			got <- buf.String()
		}()
		waitFor(t, 10*time.Second, "a waiting get", func() bool {
			return a.broker.Stats(0).Waiting == 1
		})
		a.put("waited", p)
		if body := <-got; body != p {
			t.Fatalf("waiting get: %d bytes starting %.8q, want %d of %q", len(body), body,
				len(p), p[:1])
		}
	}
}
