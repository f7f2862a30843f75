package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/metrics"
)

// testAPI is an HTTP API in front of an in-memory broker, served by httptest.
type testAPI struct {
	t       *testing.T
	broker  *broker.Broker
	server  *Server
	metrics *metrics.Metrics
	url     string
	client  *http.Client
}

// apiSetup collects what the options of startAPI change.
type apiSetup struct {
	broker         broker.Config
	pprof          bool
	maxQueueSeries int
}

type apiOption func(*apiSetup)

func withMaxMessage(n int) apiOption {
	return func(s *apiSetup) { s.broker.MaxMessageBytes = n }
}

func withPprof() apiOption { return func(s *apiSetup) { s.pprof = true } }

func withMaxQueueSeries(n int) apiOption {
	return func(s *apiSetup) { s.maxQueueSeries = n }
}

// startAPI builds a broker and serves the API on it.
func startAPI(t *testing.T, opts ...apiOption) *testAPI {
	t.Helper()
	setup := apiSetup{broker: broker.Config{SweepInterval: time.Hour}}
	for _, o := range opts {
		o(&setup)
	}
	b, err := broker.New(setup.broker)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return serveAPI(t, b, setup)
}

// serveAPI serves the API on b at 127.0.0.1:0 with the Server's own http.Server, so
// connection tracking and shutdown run as in production. It stops at the test's end.
func serveAPI(t *testing.T, b *broker.Broker, setup apiSetup) *testAPI {
	t.Helper()
	m := metrics.New(metrics.Config{Broker: b, MaxQueueSeries: setup.maxQueueSeries})
	s := New(Config{
		Broker:  b,
		Metrics: m,
		Logger:  slog.New(slog.NewTextHandler(t.Output(), nil)),
		Pprof:   setup.pprof,
	})

	ts := httptest.NewUnstartedServer(nil)
	ts.Config = s.srv
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		ts.Close()
	})

	return &testAPI{
		t: t, broker: b, server: s, metrics: m, url: ts.URL,
		client: ts.Client(),
	}
}

// do sends a request and returns the response with its body read.
func (a *testAPI) do(method, path string, body io.Reader) (*http.Response, []byte) {
	a.t.Helper()
	return a.doContext(context.Background(), method, path, body)
}

func (a *testAPI) doContext(
	ctx context.Context, method, path string, body io.Reader,
) (*http.Response, []byte) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, body)
	if err != nil {
		a.t.Fatalf("new request %s %s: %v", method, path, err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("read body of %s %s: %v", method, path, err)
	}
	return resp, data
}

// put puts payload on queue and returns the message id.
func (a *testAPI) put(queue, payload string) uint64 {
	a.t.Helper()
	resp, body := a.do("POST", queuePath(queue)+"/messages", strings.NewReader(payload))
	if resp.StatusCode != http.StatusCreated {
		a.t.Fatalf("put on %q: status %d, body %s", queue, resp.StatusCode, body)
	}
	var reply putReply
	decode(a.t, body, &reply)
	return reply.ID
}

// queuePath is the path of a queue, its name escaped as a client must: one segment,
// with the dot names spelled %2E so that nothing cleans them away.
func queuePath(name string) string {
	seg := url.PathEscape(name)
	if strings.Trim(name, ".") == "" {
		seg = strings.ReplaceAll(name, ".", "%2E")
	}
	return "/v1/queues/" + seg
}

func decode(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

// wantError checks an error reply: its HTTP status, protocol status and code name.
func wantError(t *testing.T, resp *http.Response, body []byte, httpStatus int,
	code string, status int) errorDetail {
	t.Helper()
	if resp.StatusCode != httpStatus {
		t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, httpStatus, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var reply errorReply
	decode(t, body, &reply)
	if reply.Error.Code != code || int(reply.Error.Status) != status {
		t.Fatalf("error = %+v, want code %s status %d", reply.Error, code, status)
	}
	if reply.Error.Message == "" {
		t.Errorf("error has no message")
	}
	return reply.Error
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
