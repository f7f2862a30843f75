package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/metrics"
)

func TestHTTPPutThenGetReturnsTheSameBytes(t *testing.T) {
	a := startAPI(t)
	payload := make([]byte, 256*3)
	for i := range payload {
		payload[i] = byte(i)
	}

	resp, body := a.do("POST", "/v1/queues/jobs/messages", bytes.NewReader(payload))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put status = %d, body %s", resp.StatusCode, body)
	}
	var put putReply
	decode(t, body, &put)
	if got := resp.Header.Get(MessageIDHeader); got != strconv.FormatUint(put.ID, 10) {
		t.Errorf("put id header = %q, body id %d", got, put.ID)
	}

	resp, body = a.do("POST", "/v1/queues/jobs/get", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get status = %d, body %s", resp.StatusCode, body)
	}
	if !bytes.Equal(body, payload) {
		t.Fatalf("get body differs from the put (%d bytes vs %d)", len(body), len(payload))
	}
	if got := resp.Header.Get(MessageIDHeader); got != strconv.FormatUint(put.ID, 10) {
		t.Errorf("get id header = %q, want %d", got, put.ID)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("get Content-Type = %q", ct)
	}
	if n, _ := a.broker.Len("jobs"); n != 0 {
		t.Errorf("len after get = %d, want 0", n)
	}
}

func TestHTTPGetsInPutOrder(t *testing.T) {
	a := startAPI(t)
	for i := range 5 {
		a.put("fifo", "m"+strconv.Itoa(i))
	}
	for i := range 5 {
		resp, body := a.do("POST", "/v1/queues/fifo/get", nil)
		if resp.StatusCode != http.StatusOK || string(body) != "m"+strconv.Itoa(i) {
			t.Fatalf("get %d: status %d body %q", i, resp.StatusCode, body)
		}
	}
}

func TestHTTPGetOfEmptyQueueIs204(t *testing.T) {
	a := startAPI(t)
	resp, body := a.do("POST", "/v1/queues/nothing/get", nil)
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("status = %d body %q, want 204 and no body", resp.StatusCode, body)
	}
	if resp.Header.Get(MessageIDHeader) != "" {
		t.Errorf("204 carries a message id")
	}
}

func TestHTTPZeroLengthMessageIs200NotEmpty(t *testing.T) {
	a := startAPI(t)
	id := a.put("zero", "")

	resp, body := a.do("POST", "/v1/queues/zero/get", nil)
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("status = %d body %q, want 200 and no body", resp.StatusCode, body)
	}
	if got := resp.Header.Get(MessageIDHeader); got != strconv.FormatUint(id, 10) {
		t.Errorf("id header = %q, want %d", got, id)
	}
}

func TestHTTPGetWaitTimesOutWith204(t *testing.T) {
	a := startAPI(t)
	for _, wait := range []string{"30ms", "0.03"} {
		resp, _ := a.do("POST", "/v1/queues/slow/get?wait="+wait, nil)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("wait=%s: status = %d, want 204", wait, resp.StatusCode)
		}
	}
	if got := a.broker.Stats(0).Waiting; got != 0 {
		t.Errorf("waiting after timeouts = %d, want 0", got)
	}
}

func TestHTTPGetWaitReceivesALaterPut(t *testing.T) {
	a := startAPI(t)
	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", a.url+"/v1/queues/later/get?wait=30s", nil)
		resp, err := a.client.Do(req)
		if err != nil {
			done <- result{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(body)}
	}()

	waitFor(t, 10*time.Second, "the get to block", func() bool {
		return a.broker.Stats(0).Waiting == 1
	})
	a.put("later", "wake up")

	r := <-done
	if r.status != http.StatusOK || r.body != "wake up" {
		t.Fatalf("blocked get = %d %q, want 200 \"wake up\"", r.status, r.body)
	}
}

func TestHTTPClientGoneDuringWaitTakesNoMessage(t *testing.T) {
	a := startAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST",
			a.url+"/v1/queues/orphan/get?wait=1m", nil)
		resp, err := a.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()

	waitFor(t, 10*time.Second, "the get to block", func() bool {
		return a.broker.Stats(0).Waiting == 1
	})
	cancel()
	if err := <-errc; err == nil {
		t.Fatalf("cancelled request returned no error")
	}
	// The server sees the connection close and its wait ends.
	waitFor(t, 10*time.Second, "the server to drop the wait", func() bool {
		return a.broker.Stats(0).Waiting == 0
	})

	a.put("orphan", "keep me")
	if n, _ := a.broker.Len("orphan"); n != 1 {
		t.Fatalf("len after put = %d, want 1: the gone client took it", n)
	}
	resp, body := a.do("POST", "/v1/queues/orphan/get", nil)
	if resp.StatusCode != http.StatusOK || string(body) != "keep me" {
		t.Fatalf("get = %d %q, want the message", resp.StatusCode, body)
	}
}

func TestHTTPGetWaitParameter(t *testing.T) {
	a := startAPI(t)
	cases := []struct {
		wait   string
		status int
		code   string
	}{
		{"soon", http.StatusBadRequest, "bad_request"},
		{"-1s", http.StatusBadRequest, "bad_request"},
		{"NaN", http.StatusBadRequest, "bad_request"},
		{"6m", http.StatusBadRequest, "bad_request"},
		{"0", http.StatusNoContent, ""},
		{"1ms", http.StatusNoContent, ""},
	}
	for _, c := range cases {
		t.Run(c.wait, func(t *testing.T) {
			resp, body := a.do("POST", "/v1/queues/w/get?wait="+c.wait, nil)
			if c.code == "" {
				if resp.StatusCode != c.status {
					t.Fatalf("status = %d, want %d", resp.StatusCode, c.status)
				}
				return
			}
			wantError(t, resp, body, c.status, c.code, 19)
		})
	}
}

func TestHTTPPutOverTheLimitIs413(t *testing.T) {
	a := startAPI(t, withMaxMessage(1024))

	resp, body := a.do("POST", "/v1/queues/big/messages", bytes.NewReader(make([]byte, 1024)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put of exactly the limit: status %d, body %s", resp.StatusCode, body)
	}

	// With a Content-Length, refused before reading.
	resp, body = a.do("POST", "/v1/queues/big/messages", bytes.NewReader(make([]byte, 1025)))
	wantError(t, resp, body, http.StatusRequestEntityTooLarge, "message_too_large", 21)

	// Chunked, with no length up front: refused once the reader passes the limit.
	half := make([]byte, 600)
	chunked := io.MultiReader(bytes.NewReader(half), bytes.NewReader(half))
	resp, body = a.do("POST", "/v1/queues/big/messages", chunked)
	wantError(t, resp, body, http.StatusRequestEntityTooLarge, "message_too_large", 21)

	if n, _ := a.broker.Len("big"); n != 1 {
		t.Errorf("len = %d, want 1: a refused put was stored", n)
	}
}

func TestHTTPQueueDescribesOneQueue(t *testing.T) {
	a := startAPI(t)
	a.put("jobs", "abc")
	a.put("jobs", "de")
	a.put("jobs", "f")
	a.do("POST", "/v1/queues/jobs/get", nil)

	resp, body := a.do("GET", "/v1/queues/jobs", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, body %s", resp.StatusCode, body)
	}
	var q queueReply
	decode(t, body, &q)
	want := queueReply{Name: "jobs", Messages: 2, Bytes: 3, Puts: 3, Gets: 1}
	if q != want {
		t.Fatalf("queue = %+v, want %+v", q, want)
	}

	resp, body = a.do("GET", "/v1/queues/unknown", nil)
	decode(t, body, &q)
	if resp.StatusCode != http.StatusOK || q != (queueReply{Name: "unknown"}) {
		t.Fatalf("unknown queue = %d %+v, want 200 and zeros", resp.StatusCode, q)
	}
}

func TestHTTPListQueuesWithStats(t *testing.T) {
	a := startAPI(t)
	a.put("b", "22")
	a.put("a", "1")
	a.put("b", "333")
	a.do("POST", "/v1/queues/empty/get", nil)

	resp, body := a.do("GET", "/v1/queues", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, body %s", resp.StatusCode, body)
	}
	var l listReply
	decode(t, body, &l)
	if l.Queues != 2 || l.Messages != 3 || l.Bytes != 6 || l.Puts != 3 || l.EmptyGets != 1 {
		t.Errorf("totals = %+v", l)
	}
	if len(l.QueueStats) != 2 || l.QueueStats[0].Name != "a" || l.QueueStats[1].Name != "b" {
		t.Fatalf("queue_stats = %+v, want a then b", l.QueueStats)
	}
	if l.QueueStats[1].Messages != 2 || l.QueueStats[1].Bytes != 5 {
		t.Errorf("b = %+v, want 2 messages of 5 bytes", l.QueueStats[1])
	}

	resp, body = a.do("GET", "/v1/queues?limit=1", nil)
	l = listReply{}
	decode(t, body, &l)
	if resp.StatusCode != http.StatusOK || len(l.QueueStats) != 1 || l.Queues != 2 {
		t.Errorf("limit=1: %d entries of %d queues, want 1 of 2", len(l.QueueStats), l.Queues)
	}

	resp, body = a.do("GET", "/v1/queues?limit=many", nil)
	wantError(t, resp, body, http.StatusBadRequest, "bad_request", 19)
}

func TestHTTPDeleteDropsEveryMessage(t *testing.T) {
	a := startAPI(t)
	a.put("doomed", "1")
	a.put("doomed", "2")
	a.put("kept", "3")

	resp, body := a.do("DELETE", "/v1/queues/doomed", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delete status = %d, body %s", resp.StatusCode, body)
	}
	var d deleteReply
	decode(t, body, &d)
	if d.Deleted != 2 {
		t.Errorf("deleted = %d, want 2", d.Deleted)
	}
	if n, _ := a.broker.Len("doomed"); n != 0 {
		t.Errorf("len after delete = %d", n)
	}
	if n, _ := a.broker.Len("kept"); n != 1 {
		t.Errorf("len of the other queue = %d, want 1", n)
	}

	resp, body = a.do("DELETE", "/v1/queues/never", nil)
	decode(t, body, &d)
	if resp.StatusCode != http.StatusOK || d.Deleted != 0 {
		t.Errorf("delete of unknown queue = %d %+v, want 200 and 0", resp.StatusCode, d)
	}
}

func TestHTTPErrorsAreJSONWithProtocolCodes(t *testing.T) {
	a := startAPI(t)

	resp, body := a.do("GET", "/v2/nothing", nil)
	wantError(t, resp, body, http.StatusNotFound, "unknown_op", 18)

	resp, body = a.do("GET", "/v1/queues/jobs/messages", nil)
	wantError(t, resp, body, http.StatusMethodNotAllowed, "unknown_op", 18)
	if got := resp.Header.Get("Allow"); got != "POST" {
		t.Errorf("Allow = %q, want POST", got)
	}

	resp, body = a.do("PUT", "/v1/queues/jobs", nil)
	wantError(t, resp, body, http.StatusMethodNotAllowed, "unknown_op", 18)

	resp, body = a.do("POST", "/v1/queues", nil)
	wantError(t, resp, body, http.StatusMethodNotAllowed, "unknown_op", 18)

	resp, body = a.do("POST", "/v1/queues/a%0Ab/messages", strings.NewReader("x"))
	e := wantError(t, resp, body, http.StatusBadRequest, "invalid_key", 20)
	if want := "invalid key: contains control character 0x0a at byte 1"; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}
}

func TestHTTPShutdownEndsBlockedGets(t *testing.T) {
	a := startAPI(t)
	type result struct {
		status int
		body   []byte
	}
	done := make(chan result, 1)
	go func() {
		resp, err := a.client.Post(a.url+"/v1/queues/q/get?wait=1m", "", nil)
		if err != nil {
			done <- result{-1, []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, body}
	}()
	waitFor(t, 10*time.Second, "the get to block", func() bool {
		return a.broker.Stats(0).Waiting == 1
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	r := <-done
	if r.status != http.StatusServiceUnavailable || !bytes.Contains(r.body, []byte(`"status":22`)) {
		t.Fatalf("blocked get at shutdown = %d %s, want 503 shutting_down", r.status, r.body)
	}
	if got := a.broker.Stats(0).Waiting; got != 0 {
		t.Errorf("waiting after shutdown = %d", got)
	}
}

func BenchmarkHTTPPutThenGet(b *testing.B) {
	bk, err := broker.New(broker.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	s := New(Config{Broker: bk, Metrics: metrics.New(metrics.Config{Broker: bk})})
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = s.srv
	ts.Start()
	defer ts.Close()

	payload := bytes.Repeat([]byte("m"), 1024)
	client := ts.Client()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Post(ts.URL+"/v1/queues/bench/messages", "", bytes.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()

		resp, err = client.Post(ts.URL+"/v1/queues/bench/get", "", nil)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != int64(len(payload)) {
			b.Fatalf("get = %d, %d bytes", resp.StatusCode, n)
		}
	}
}
