package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyq/keyq/internal/broker"
)

func newBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.New(broker.Config{SweepInterval: time.Hour})
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// scrape fetches m's handler over HTTP in the text format and parses it.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape status = %d", resp.StatusCode)
	}

	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return mfs
}

// findMetric returns the metric of family name whose labels include all of labels
// (name, value pairs), or nil.
func findMetric(mfs map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		if hasLabels(m, labels) {
			return m
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// value returns the value of a gauge or counter series, failing if it is missing.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := findMetric(mfs, name, labels...)
	if m == nil {
		t.Fatalf("no series %s%v", name, labels)
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

func TestMetricsQueueSeriesAfterPutsAndGets(t *testing.T) {
	b := newBroker(t)
	m := New(Config{Broker: b, NoRuntime: true})
	ctx := context.Background()

	for i := range 5 {
		if _, err := b.Put(ctx, "jobs", []byte(fmt.Sprintf("job-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Put(ctx, "mail", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := b.Get(ctx, "jobs", 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Get(ctx, "none", 0); !errors.Is(err, broker.ErrEmpty) {
		t.Fatalf("get of unknown queue: %v, want ErrEmpty", err)
	}

	mfs := scrape(t, m)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"keyq_queue_messages", []string{"queue", "jobs"}, 3},
		{"keyq_queue_bytes", []string{"queue", "jobs"}, 15},
		{"keyq_queue_puts_total", []string{"queue", "jobs"}, 5},
		{"keyq_queue_gets_total", []string{"queue", "jobs"}, 2},
		{"keyq_queue_messages", []string{"queue", "mail"}, 1},
		{"keyq_queue_bytes", []string{"queue", "mail"}, 5},
		{"keyq_queues", nil, 2},
		{"keyq_queues_other", nil, 0},
		{"keyq_messages", nil, 4},
		{"keyq_bytes", nil, 20},
		{"keyq_puts_total", nil, 6},
		{"keyq_gets_total", nil, 2},
		{"keyq_empty_gets_total", nil, 1},
	}
	for _, c := range checks {
		if got := value(t, mfs, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if findMetric(mfs, "keyq_queue_messages", "queue", OtherQueue) != nil {
		t.Errorf("queue=%q series present with no queue over the cap", OtherQueue)
	}
}

func TestMetricsQueueCapSumsTheRestUnderOther(t *testing.T) {
	b := newBroker(t)
	m := New(Config{Broker: b, MaxQueueSeries: 2, NoRuntime: true})
	ctx := context.Background()

	// "_other" is a valid queue name: it must fold into the aggregate, not clash.
	names := []string{"a", "b", "c", "d", OtherQueue}
	for i, name := range names {
		for range i + 1 {
			if _, err := b.Put(ctx, name, []byte("xy")); err != nil {
				t.Fatal(err)
			}
		}
	}

	mfs := scrape(t, m)
	// Sorted by name: "_other" < "a" < "b" < ...; "_other" never gets its own series,
	// so a and b are the two with their own, and c, d and "_other" are summed.
	if got := value(t, mfs, "keyq_queue_messages", "queue", "a"); got != 1 {
		t.Errorf("messages{a} = %v, want 1", got)
	}
	if got := value(t, mfs, "keyq_queue_messages", "queue", "b"); got != 2 {
		t.Errorf("messages{b} = %v, want 2", got)
	}
	for _, name := range []string{"c", "d"} {
		if findMetric(mfs, "keyq_queue_messages", "queue", name) != nil {
			t.Errorf("queue %q has its own series over the cap of 2", name)
		}
	}
	if got := value(t, mfs, "keyq_queue_messages", "queue", OtherQueue); got != 3+4+5 {
		t.Errorf("messages{_other} = %v, want 12", got)
	}
	if got := value(t, mfs, "keyq_queue_bytes", "queue", OtherQueue); got != 24 {
		t.Errorf("bytes{_other} = %v, want 24", got)
	}
	if got := value(t, mfs, "keyq_queue_puts_total", "queue", OtherQueue); got != 12 {
		t.Errorf("puts{_other} = %v, want 12", got)
	}
	if got := value(t, mfs, "keyq_queues_other", nil...); got != 3 {
		t.Errorf("queues_other = %v, want 3", got)
	}
	if got := len(mfs["keyq_queue_messages"].GetMetric()); got != 3 {
		t.Errorf("keyq_queue_messages has %d series, want 3", got)
	}
}

func TestMetricsNegativeCapSumsEveryQueue(t *testing.T) {
	b := newBroker(t)
	m := New(Config{Broker: b, MaxQueueSeries: -1, NoRuntime: true})
	for _, name := range []string{"a", "b"} {
		if _, err := b.Put(context.Background(), name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}

	mfs := scrape(t, m)
	if got := len(mfs["keyq_queue_messages"].GetMetric()); got != 1 {
		t.Fatalf("keyq_queue_messages has %d series, want only _other", got)
	}
	if got := value(t, mfs, "keyq_queue_messages", "queue", OtherQueue); got != 2 {
		t.Errorf("messages{_other} = %v, want 2", got)
	}
}

func TestMetricsObserveRequestCountsByResult(t *testing.T) {
	m := New(Config{NoRuntime: true})
	m.ObserveRequest("native", "put", time.Millisecond, nil)
	m.ObserveRequest("native", "put", 2*time.Millisecond, nil)
	m.ObserveRequest("native", "get", time.Millisecond, broker.ErrEmpty)
	m.ObserveRequest("native", "get", time.Millisecond,
		fmt.Errorf("get: %w", context.Canceled))
	m.ObserveRequest("http", "put", time.Millisecond, broker.ErrInvalidKey)

	mfs := scrape(t, m)
	checks := []struct {
		door, op, result string
		count            uint64
	}{
		{"native", "put", "ok", 2},
		{"native", "get", "empty", 1},
		{"native", "get", "cancelled", 1},
		{"native", "get", "ok", 0},
		{"http", "put", "error", 1},
	}
	for _, c := range checks {
		s := findMetric(mfs, "keyq_request_duration_seconds",
			"door", c.door, "op", c.op, "result", c.result)
		if s == nil {
			t.Fatalf("no histogram for %s %s %s", c.door, c.op, c.result)
		}
		if got := s.GetHistogram().GetSampleCount(); got != c.count {
			t.Errorf("%s %s %s: count = %d, want %d", c.door, c.op, c.result, got, c.count)
		}
	}

	s := findMetric(mfs, "keyq_request_duration_seconds",
		"door", "native", "op", "put", "result", "ok")
	if got := s.GetHistogram().GetSampleSum(); got < 0.0029 || got > 0.0031 {
		t.Errorf("native put sum = %v s, want 0.003", got)
	}
}

func TestMetricsRequestRecorderSharesObserveRequestsSeries(t *testing.T) {
	m := New(Config{NoRuntime: true})
	put := m.RequestRecorder("native", "put")
	m.ObserveRequest("native", "put", time.Millisecond, nil)
	put(1, 2*time.Millisecond, nil)
	put(2, time.Millisecond, broker.ErrInvalidKey)
	m.RequestRecorder("resp", "rpop")(7, time.Millisecond, fmt.Errorf("x: %w", broker.ErrEmpty))

	mfs := scrape(t, m)
	checks := []struct {
		door, op, result string
		count            uint64
	}{
		{"native", "put", "ok", 2},
		{"native", "put", "error", 1},
		{"resp", "rpop", "empty", 1},
	}
	for _, c := range checks {
		s := findMetric(mfs, "keyq_request_duration_seconds",
			"door", c.door, "op", c.op, "result", c.result)
		if s == nil {
			t.Fatalf("no histogram for %s %s %s", c.door, c.op, c.result)
		}
		if got := s.GetHistogram().GetSampleCount(); got != c.count {
			t.Errorf("%s %s %s: count = %d, want %d", c.door, c.op, c.result, got, c.count)
		}
	}

	allocs := testing.AllocsPerRun(1000, func() { put(3, time.Millisecond, nil) })
	if allocs != 0 {
		t.Errorf("a resolved recorder allocates %v times per call, want 0", allocs)
	}
	var none *Metrics
	none.RequestRecorder("native", "put")(0, time.Millisecond, nil) // records nothing, no panic
}

func TestMetricsConnectionsPerDoor(t *testing.T) {
	m := New(Config{NoRuntime: true})
	m.ConnOpened("native")
	m.ConnOpened("native")
	m.ConnOpened("resp")
	m.ConnClosed("native")

	mfs := scrape(t, m)
	if got := value(t, mfs, "keyq_connections", "door", "native"); got != 1 {
		t.Errorf("connections{native} = %v, want 1", got)
	}
	if got := value(t, mfs, "keyq_connections", "door", "resp"); got != 1 {
		t.Errorf("connections{resp} = %v, want 1", got)
	}
	if got := value(t, mfs, "keyq_connections_accepted_total", "door", "native"); got != 2 {
		t.Errorf("accepted{native} = %v, want 2", got)
	}
}

func TestMetricsObserveFsync(t *testing.T) {
	m := New(Config{NoRuntime: true})
	var hook func(time.Duration, error) = m.ObserveFsync // the log's hook type
	hook(3*time.Millisecond, nil)
	hook(time.Second, errors.New("input/output error"))

	mfs := scrape(t, m)
	h := findMetric(mfs, "keyq_fsync_duration_seconds").GetHistogram()
	if h.GetSampleCount() != 2 {
		t.Errorf("fsync count = %d, want 2", h.GetSampleCount())
	}
	if got := value(t, mfs, "keyq_fsync_errors_total"); got != 1 {
		t.Errorf("fsync errors = %v, want 1", got)
	}
}

func TestMetricsRecorderDoesNotAllocate(t *testing.T) {
	m := New(Config{NoRuntime: true})
	errEmpty := fmt.Errorf("get: %w", broker.ErrEmpty)
	m.ObserveRequest("native", "get", time.Millisecond, nil) // first sight resolves series
	m.ConnOpened("native")

	allocs := testing.AllocsPerRun(1000, func() {
		m.ObserveRequest("native", "get", 150*time.Microsecond, nil)
		m.ObserveRequest("native", "get", 150*time.Microsecond, errEmpty)
		m.ConnOpened("native")
		m.ConnClosed("native")
		m.ObserveFsync(time.Millisecond, nil)
	})
	if allocs != 0 {
		t.Fatalf("recorder calls allocate %v times per run, want 0", allocs)
	}
}

func TestMetricsNilRecordsNothing(t *testing.T) {
	var m *Metrics
	m.ObserveRequest("native", "put", time.Millisecond, nil)
	m.ConnOpened("native")
	m.ConnClosed("native")
	m.ObserveFsync(time.Millisecond, nil)
}

func TestMetricsRuntimeCollectors(t *testing.T) {
	mfs := scrape(t, New(Config{}))
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if mfs[name] == nil {
			t.Errorf("scrape lacks %s", name)
		}
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New(Config{NoRuntime: true})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("native", "put", 100*time.Microsecond, nil)
		}
	})
}

// BenchmarkRequestRecorder: goroutines with shards of their own, as connections are.
func BenchmarkRequestRecorder(b *testing.B) {
	put := New(Config{NoRuntime: true}).RequestRecorder("native", "put")
	var shards atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		shard := shards.Add(1)
		for pb.Next() {
			put(shard, 100*time.Microsecond, nil)
		}
	})
}
