package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/metrics"
	"github.com/keyq/keyq/internal/storage"
)

func TestHTTPHealthAndReadiness(t *testing.T) {
	a := startAPI(t)

	resp, body := a.do("GET", "/healthz", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz = %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("GET", "/readyz", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz = %d %s", resp.StatusCode, body)
	}

	a.server.Drain()
	resp, body = a.do("GET", "/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz while draining = %d %s, want 503", resp.StatusCode, body)
	}
	resp, _ = a.do("GET", "/healthz", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz while draining = %d, want 200", resp.StatusCode)
	}
}

func TestHTTPReadinessFailsOnceTheBrokerCloses(t *testing.T) {
	a := startAPI(t)
	a.broker.Close()

	resp, body := a.do("POST", "/v1/queues/q/messages", strings.NewReader("x"))
	wantError(t, resp, body, http.StatusServiceUnavailable, "shutting_down", 22)
	resp, _ = a.do("GET", "/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz after the broker closed = %d, want 503", resp.StatusCode)
	}
}

// failingStore is a memory store whose Err reports a failure once failed is set, as
// a durable log does after a write or fsync error.
type failingStore struct {
	storage.Memory
	failed atomic.Bool
}

func (f *failingStore) Err() error {
	if f.failed.Load() {
		return errors.New("sync segment 3: input/output error")
	}
	return nil
}

// TestHTTPReadinessFailsWhenTheLogFails: once the store stops taking writes, /readyz
// answers 503 with the reason, so a load balancer sends clients elsewhere, while
// /healthz stays 200 (the process runs; restarting it is what helps).
func TestHTTPReadinessFailsWhenTheLogFails(t *testing.T) {
	store := &failingStore{}
	a := startAPI(t, func(s *apiSetup) { s.broker.Store = store })
	if resp, body := a.do("GET", "/readyz", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz = %d %s", resp.StatusCode, body)
	}

	store.failed.Store(true)
	resp, body := a.do("GET", "/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), "input/output error") {
		t.Fatalf("readyz with the log failed = %d %s, want 503 naming the failure",
			resp.StatusCode, body)
	}
	if resp, _ := a.do("GET", "/healthz", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz with the log failed = %d, want 200", resp.StatusCode)
	}
}

// fullStore is a memory store whose DiskFull reports a full disk once full is set,
// as a durable log does while it refuses puts for lack of space.
type fullStore struct {
	storage.Memory
	full atomic.Bool
}

func (f *fullStore) DiskFull() error {
	if f.full.Load() {
		return fmt.Errorf("%w in /data: refusing puts; gets and acks still served",
			storage.ErrDiskFull)
	}
	return nil
}

// TestHTTPReadinessFailsWhileTheDiskIsFull: while the log refuses puts for a full
// disk, /readyz answers 503 with status "disk full" and the reason, and turns 200
// again once space is back.
func TestHTTPReadinessFailsWhileTheDiskIsFull(t *testing.T) {
	store := &fullStore{}
	a := startAPI(t, func(s *apiSetup) { s.broker.Store = store })
	store.full.Store(true)
	resp, body := a.do("GET", "/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), `"status":"disk full"`) ||
		!strings.Contains(string(body), "gets and acks still served") {
		t.Fatalf("readyz with the disk full = %d %s, want 503 disk full with the reason",
			resp.StatusCode, body)
	}
	store.full.Store(false)
	if resp, body := a.do("GET", "/readyz", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz once space is back = %d %s, want 200", resp.StatusCode, body)
	}
}

func TestHTTPPprofOnlyWhenAsked(t *testing.T) {
	off := startAPI(t)
	resp, body := off.do("GET", "/debug/pprof/", nil)
	wantError(t, resp, body, http.StatusNotFound, "unknown_op", 18)

	on := startAPI(t, withPprof())
	resp, body = on.do("GET", "/debug/pprof/", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("goroutine")) {
		t.Fatalf("pprof index = %d, want 200 listing goroutine", resp.StatusCode)
	}
	resp, _ = on.do("GET", "/debug/pprof/goroutine?debug=1", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pprof goroutine = %d", resp.StatusCode)
	}
}

// scrape reads /metrics from the API and parses it as Prometheus' text format.
func (a *testAPI) scrape() map[string]*dto.MetricFamily {
	a.t.Helper()
	resp, body := a.do("GET", "/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("metrics = %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		a.t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

func series(mfs map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	for _, m := range mfs[name].GetMetric() {
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
			}
			ok = ok && found
		}
		if ok {
			return m
		}
	}
	return nil
}

func seriesValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string,
	labels ...string) float64 {
	t.Helper()
	m := series(mfs, name, labels...)
	if m == nil {
		t.Fatalf("no series %s%v", name, labels)
	}
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

func TestHTTPMetricsAfterPutsAndGets(t *testing.T) {
	a := startAPI(t)
	for range 3 {
		a.put("jobs", "12345")
	}
	a.do("POST", "/v1/queues/jobs/get", nil)
	a.do("POST", "/v1/queues/none/get", nil)
	a.do("POST", "/v1/queues/none/get?wait=1ms", nil)
	// Without a body: one left unread would close the connection and open another.
	a.do("POST", "/v1/queues/a%00/messages", nil)

	mfs := a.scrape()
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"keyq_queue_messages", []string{"queue", "jobs"}, 2},
		{"keyq_queue_bytes", []string{"queue", "jobs"}, 10},
		{"keyq_queue_puts_total", []string{"queue", "jobs"}, 3},
		{"keyq_queue_gets_total", []string{"queue", "jobs"}, 1},
		{"keyq_empty_gets_total", nil, 2},
		{"keyq_connections_accepted_total", []string{"door", Door}, 1},
		{"keyq_connections", []string{"door", Door}, 1},
	}
	for _, c := range checks {
		if got := seriesValue(t, mfs, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	counts := []struct {
		op, result string
		want       uint64
	}{
		{"put", "ok", 3},
		{"put", "error", 1},
		{"get", "ok", 1},
		{"get", "empty", 1},
		{"get_wait", "empty", 1},
	}
	for _, c := range counts {
		m := series(mfs, "keyq_request_duration_seconds",
			"door", Door, "op", c.op, "result", c.result)
		if got := m.GetHistogram().GetSampleCount(); got != c.want {
			t.Errorf("requests %s/%s = %d, want %d", c.op, c.result, got, c.want)
		}
	}
	if mfs["go_goroutines"] == nil || mfs["process_cpu_seconds_total"] == nil {
		t.Errorf("runtime or process collector missing from /metrics")
	}
}

func TestHTTPMetricsQueueCap(t *testing.T) {
	a := startAPI(t, withMaxQueueSeries(2))
	for _, name := range []string{"q1", "q2", "q3", "q4"} {
		a.put(name, "ab")
	}

	mfs := a.scrape()
	if got := len(mfs["keyq_queue_messages"].GetMetric()); got != 3 {
		t.Fatalf("keyq_queue_messages has %d series, want 2 queues and _other", got)
	}
	if got := seriesValue(t, mfs, "keyq_queue_messages", "queue", metrics.OtherQueue); got != 2 {
		t.Errorf("messages{_other} = %v, want 2", got)
	}
	if series(mfs, "keyq_queue_messages", "queue", "q3") != nil {
		t.Errorf("q3 has its own series over the cap")
	}
}

func TestHTTPServeAndShutdown(t *testing.T) {
	b, err := broker.New(broker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := New(Config{Broker: b})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	url := "http://" + ln.Addr().String()
	resp, err := http.Post(url+"/v1/queues/q/messages", "", strings.NewReader("hi"))
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put = %d", resp.StatusCode)
	}
	resp, err = http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics without Metrics = %d, want 404", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("serve returned %v, want http.ErrServerClosed", err)
	}
	if n, _ := b.Len("q"); n != 1 {
		t.Errorf("len = %d, want 1", n)
	}
}

func TestHTTPShutdownPastItsDeadlineClosesConnections(t *testing.T) {
	a := startAPI(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A put whose body never finishes keeps its request in flight.
	_, err = conn.Write([]byte("POST /v1/queues/slow/messages HTTP/1.1\r\n" +
		"Host: keyq\r\nContent-Length: 100\r\n\r\nonly ten.."))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the connection to be counted", func() bool {
		m := series(a.scrape(), "keyq_connections", "door", Door)
		return m != nil && m.GetGauge().GetValue() >= 1
	})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.server.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown = %v, want the deadline exceeded", err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [512]byte
	for {
		_, err := conn.Read(buf[:])
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection still open after shutdown gave up")
		}
		break
	}
	if n, _ := a.broker.Len("slow"); n != 0 {
		t.Errorf("len = %d, want 0: a half-sent put was stored", n)
	}
}
