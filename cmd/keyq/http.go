package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/httpapi"
	"github.com/keyq/keyq/internal/metrics"
)

func init() {
	frontDoors = append(frontDoors, func() frontDoor { return &httpDoor{} })
}

// httpDoor is the HTTP API (internal/httpapi) on --http-addr, with /metrics, the
// health checks and, with --pprof, the profiler on the same listener.
type httpDoor struct {
	addr             string
	pprof            bool
	maxWait          time.Duration
	metricsMaxQueues int
}

func (h *httpDoor) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&h.addr, "http-addr", httpapi.DefaultAddr,
		"address of the HTTP API, /metrics and health checks; empty for none")
	fs.BoolVar(&h.pprof, "pprof", false,
		"serve Go's profiler under /debug/pprof/ on the HTTP listener")
	fs.DurationVar(&h.maxWait, "http-max-wait", httpapi.DefaultMaxWait,
		"longest wait an HTTP get may ask for")
	fs.IntVar(&h.metricsMaxQueues, "metrics-max-queues", metrics.DefaultMaxQueueSeries,
		`queues with series of their own in /metrics; the rest are summed as queue="_other"`)
}

func (h *httpDoor) start(b *broker.Broker, log *slog.Logger) (*runningDoor, error) {
	if h.addr == "" {
		return nil, nil
	}
	if h.maxWait <= 0 {
		return nil, fmt.Errorf("--http-max-wait must be positive, not %v", h.maxWait)
	}
	if h.metricsMaxQueues < 0 {
		return nil, fmt.Errorf("--metrics-max-queues must not be negative, not %d",
			h.metricsMaxQueues)
	}

	// TODO: share one Metrics with the native and RESP doors once they record requests.
	maxSeries := h.metricsMaxQueues
	if maxSeries == 0 {
		maxSeries = -1 // metrics.Config reads 0 as its default; the flag's 0 means none
	}
	m := metrics.New(metrics.Config{Broker: b, MaxQueueSeries: maxSeries})
	srv := httpapi.New(httpapi.Config{
		Broker:  b,
		Metrics: m,
		Logger:  log,
		Pprof:   h.pprof,
		MaxWait: h.maxWait,
	})
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("listen for http on %s: %w", h.addr, err)
	}

	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	return &runningDoor{
		attrs:    []any{"http_addr", ln.Addr().String(), "pprof", h.pprof},
		done:     done,
		shutdown: srv.Shutdown,
	}, nil
}
