package metrics

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyq/keyq/internal/broker"
)

// The result label of a request: how it ended, in a handful of values.
const (
	resultOK        = iota // done
	resultEmpty            // a get found no message (not an error)
	resultCancelled        // the client went away or its deadline passed
	resultError            // anything else
	numResults
)

var resultNames = [numResults]string{"ok", "empty", "cancelled", "error"}

// seriesCache holds the children of the labelled vectors already asked for. It is
// never changed once published; addRequest and addDoor publish a grown copy.
type seriesCache struct {
	requests map[requestKey]*[numResults]*requestSeries
	doors    map[string]*doorSeries
}

type requestKey struct{ door, op string }

type doorSeries struct {
	open     prometheus.Gauge
	accepted prometheus.Counter
	refused  prometheus.Counter
}

// ObserveRequest records that door (e.g. "native", "resp", "http") served one request
// of operation op (e.g. "put", "get") in d, ending with err. An empty get
// (broker.ErrEmpty) and a cancelled context are results of their own, not errors. It
// does not allocate once the pair of door and op has been seen. A door that serves
// many requests a second keeps a RequestRecorder instead.
func (m *Metrics) ObserveRequest(door, op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	obs := m.series.Load().requests[requestKey{door, op}]
	if obs == nil {
		obs = m.addRequest(door, op)
	}
	obs[resultOf(err)].observe(0, d)
}

// RequestRecorder returns a function that records, as ObserveRequest does, one
// request of door and op. Its series are resolved once here, so a front door that
// keeps the function spares ObserveRequest's lookup on every request. shard is any
// number that stays the same for the requests of one connection (its id will do):
// requests of connections with different shards count into different copies of the
// counters, summed at each scrape, so that connections served at once on different
// cores do not contend for the same cache lines.
func (m *Metrics) RequestRecorder(door, op string) func(shard uint64, d time.Duration,
	err error) {
	if m == nil {
		return func(uint64, time.Duration, error) {}
	}
	obs := m.series.Load().requests[requestKey{door, op}]
	if obs == nil {
		obs = m.addRequest(door, op)
	}
	return func(shard uint64, d time.Duration, err error) {
		obs[resultOf(err)].observe(shard, d)
	}
}

// ConnOpened records a client connection accepted by door.
func (m *Metrics) ConnOpened(door string) {
	if m == nil {
		return
	}
	ds := m.door(door)
	ds.open.Inc()
	ds.accepted.Inc()
}

// ConnClosed records the end of a connection that ConnOpened counted.
func (m *Metrics) ConnClosed(door string) {
	if m == nil {
		return
	}
	m.door(door).open.Dec()
}

// ConnRefused records a client connection that door refused over its connection limit;
// ConnOpened does not count it.
func (m *Metrics) ConnRefused(door string) {
	if m == nil {
		return
	}
	m.door(door).refused.Inc()
}

// ObserveFsync records one fsync of the durable log that took d and ended with err.
// Its signature fits a plain func hook, so the log need not import this package:
// pass m.ObserveFsync where the log takes a func(time.Duration, error).
func (m *Metrics) ObserveFsync(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.fsync.Observe(d.Seconds())
	if err != nil {
		m.fsyncErrors.Inc()
	}
}

func resultOf(err error) int {
	switch {
	case err == nil:
		return resultOK
	case errors.Is(err, broker.ErrEmpty):
		return resultEmpty
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return resultCancelled
	default:
		return resultError
	}
}

func (m *Metrics) door(door string) *doorSeries {
	if ds := m.series.Load().doors[door]; ds != nil {
		return ds
	}
	return m.addDoor(door)
}

// addRequest resolves the series of door and op and publishes them.
func (m *Metrics) addRequest(door, op string) *[numResults]*requestSeries {
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()

	old := m.series.Load()
	key := requestKey{door, op}
	if obs := old.requests[key]; obs != nil {
		return obs
	}
	obs := new([numResults]*requestSeries)
	for i, result := range resultNames {
		obs[i] = m.requests.add(door, op, result)
	}

	next := &seriesCache{requests: maps.Clone(old.requests), doors: old.doors}
	if next.requests == nil {
		next.requests = make(map[requestKey]*[numResults]*requestSeries)
	}
	next.requests[key] = obs
	m.series.Store(next)
	return obs
}

// addDoor resolves the connection series of door and publishes them.
func (m *Metrics) addDoor(door string) *doorSeries {
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()

	old := m.series.Load()
	if ds := old.doors[door]; ds != nil {
		return ds
	}
	ds := &doorSeries{
		open:     m.connections.WithLabelValues(door),
		accepted: m.accepted.WithLabelValues(door),
		refused:  m.refused.WithLabelValues(door),
	}

	next := &seriesCache{requests: old.requests, doors: maps.Clone(old.doors)}
	if next.doors == nil {
		next.doors = make(map[string]*doorSeries)
	}
	next.doors[door] = ds
	m.series.Store(next)
	return ds
}
