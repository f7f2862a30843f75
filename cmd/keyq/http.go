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
	addr    string
	pprof   bool
	maxWait time.Duration
	metrics *metrics.Metrics // serve's, shared with the other doors
	limits  connLimits       // serve's --max-conns and --idle-timeout
}

func (h *httpDoor) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&h.addr, "http-addr", httpapi.DefaultAddr,
		"address of the HTTP API, /metrics and health checks; empty for none")
	fs.BoolVar(&h.pprof, "pprof", false,
		"serve Go's profiler under /debug/pprof/ on the HTTP listener")
	// 0 or a negative wait is refused while the command line is parsed: a usage error.
	h.maxWait = httpapi.DefaultMaxWait
	fs.Var(&durationValue{d: &h.maxWait, pos: true}, "http-max-wait",
		"longest wait an HTTP get may ask for")
}

func (h *httpDoor) useMetrics(m *metrics.Metrics) { h.metrics = m }

func (h *httpDoor) useLimits(l connLimits) { h.limits = l }

func (h *httpDoor) start(b *broker.Broker, log *slog.Logger) (*runningDoor, error) {
	if h.addr == "" {
		return nil, nil
	}
	srv := httpapi.New(httpapi.Config{
		Broker:  b,
		Metrics: h.metrics,
		Logger:  log,
		Pprof:   h.pprof,
		MaxWait: h.maxWait,

		IdleTimeout: h.limits.idleTimeout,
		MaxConns:    h.limits.maxConns,
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
		attrs: []any{
			"http_addr", ln.Addr().String(), "http_max_wait", h.maxWait, "pprof", h.pprof,
		},
		done:     done,
		shutdown: srv.Shutdown,
		name:     "http",
		conns:    srv.Connections,
	}, nil
}
