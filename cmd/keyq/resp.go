package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/pflag"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/metrics"
	"github.com/keyq/keyq/internal/resp"
)

func init() {
	frontDoors = append(frontDoors, func() frontDoor { return &respDoor{} })
}

// respDoor is the Redis protocol (internal/resp) on --resp-addr.
type respDoor struct {
	addr     string
	limits   connLimits    // serve's --max-conns and --idle-timeout
	observer resp.Observer // serve's metrics
}

func (r *respDoor) useMetrics(m *metrics.Metrics) { r.observer = m }

func (r *respDoor) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&r.addr, "resp-addr", resp.DefaultAddr,
		"address of the Redis protocol (RESP) listener; empty for none")
}

func (r *respDoor) useLimits(l connLimits) { r.limits = l }

func (r *respDoor) start(b *broker.Broker, log *slog.Logger) (*runningDoor, error) {
	if r.addr == "" {
		return nil, nil
	}
	srv := resp.New(resp.Config{
		Observer:    r.observer,
		Broker:      b,
		Logger:      log,
		Version:     keyqVersion(),
		IdleTimeout: r.limits.idleTimeout,
		MaxConns:    r.limits.maxConns,
	})
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		return nil, fmt.Errorf("listen for resp on %s: %w", r.addr, err)
	}

	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, resp.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	return &runningDoor{
		attrs:    []any{"resp_addr", ln.Addr().String()},
		done:     done,
		shutdown: srv.Shutdown,
		name:     "resp",
		conns:    srv.Connections,
	}, nil
}
