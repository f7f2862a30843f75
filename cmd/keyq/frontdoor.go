package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/metrics"
	"github.com/keyq/keyq/internal/server"
)

// frontDoor is a protocol that serve offers on the broker: the native protocol, and
// any other (HTTP, RESP) that a file of this package adds by appending its
// constructor to frontDoors in an init function.
type frontDoor interface {
	// addFlags registers the door's flags on the serve command.
	addFlags(fs *pflag.FlagSet)

	// start listens and begins serving b in the background. It returns nil, nil
	// when the door's flags turned it off.
	start(b *broker.Broker, log *slog.Logger) (*runningDoor, error)
}

// frontDoors builds the front doors that serve runs besides the native protocol.
var frontDoors []func() frontDoor

// runningDoor is a front door that started.
type runningDoor struct {
	// attrs describe the door in serve's start line, such as its bound address.
	attrs []any
	// done receives, once, the error that ended serving: nil after shutdown.
	done <-chan error
	// shutdown stops the door gracefully, or at once when ctx ends.
	shutdown func(ctx context.Context) error
	// name labels the door in the log line of a shutdown that timed out.
	name string
	// conns counts the door's open connections.
	conns func() int64
}

// startDoors starts each door in turn; if one fails, those started are shut down.
func startDoors(doors []frontDoor, b *broker.Broker, log *slog.Logger) ([]*runningDoor, error) {
	var running []*runningDoor
	for _, d := range doors {
		r, err := d.start(b, log)
		if err != nil {
			shutdownDoors(running, time.Second, log)
			for _, r := range running {
				<-r.done
			}
			return nil, err
		}
		if r != nil {
			running = append(running, r)
		}
	}
	return running, nil
}

// shutdownDoors shuts every running door down at once, giving requests in progress
// up to timeout to finish. A door still busy at the timeout has its connections
// closed forcibly: that is logged as a warning, not returned, since the server did
// stop as asked.
func shutdownDoors(running []*runningDoor, timeout time.Duration, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	errs := make([]error, len(running))
	var wg sync.WaitGroup
	for i, r := range running {
		wg.Go(func() { errs[i] = r.shutdownWithin(ctx, log) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// shutdownWithin shuts the door down gracefully until ctx ends, then forcibly. It
// counts the connections still open when ctx ends, before the door closes them.
func (r *runningDoor) shutdownWithin(ctx context.Context, log *slog.Logger) error {
	inner, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var cut atomic.Int64
	stop := context.AfterFunc(ctx, func() {
		if r.conns != nil {
			cut.Store(r.conns())
		}
		cancel()
	})
	defer stop()

	err := r.shutdown(inner)
	if err == nil || ctx.Err() == nil || !errors.Is(err, context.Canceled) {
		return err
	}
	log.Warn("shutdown timed out, connections closed forcibly",
		"door", r.name, "connections", cut.Load(), "err", ctx.Err())
	return nil
}

// connLimits are serve's --max-conns and --idle-timeout. Every door applies them to
// its own connections: the limit counts each door's connections separately.
type connLimits struct {
	maxConns    int
	idleTimeout time.Duration
}

// limitsUser is a front door besides the native one that applies connLimits. serve
// hands them over before it starts the door.
type limitsUser interface {
	useLimits(l connLimits)
}

// shareLimits hands the native door's connection limits to every other door.
func shareLimits(native *nativeDoor, doors []frontDoor) {
	l := connLimits{maxConns: native.maxConns, idleTimeout: native.idleTimeout}
	for _, d := range doors {
		if u, ok := d.(limitsUser); ok {
			u.useLimits(l)
		}
	}
}

// nativeDoor is the native protocol (internal/server) on --addr.
type nativeDoor struct {
	addr        string
	maxConns    int
	idleTimeout time.Duration
	maxWait     time.Duration
	observer    server.Observer // serve's metrics
}

func (n *nativeDoor) useMetrics(m *metrics.Metrics) { n.observer = m }

func (n *nativeDoor) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&n.addr, "addr", defaultAddr, "address to listen on, host:port")
	fs.IntVar(&n.maxConns, "max-conns", 10000,
		"most client connections open at once on each door (native, RESP and HTTP are "+
			"counted separately); one more is refused; 0 for no limit. HTTP health "+
			"probes and /metrics scrapes count too: leave them room over the clients")
	fs.DurationVar(&n.idleTimeout, "idle-timeout", 0,
		"on every door, close a connection idle for this long (see above); 0 for never")
	fs.DurationVar(&n.maxWait, "max-wait", server.DefaultMaxWait,
		"longest wait of a native blocking get or reserve; longer ones are cut to it; "+
			"0 for no limit (HTTP has --http-max-wait; RESP waits as long as asked, as Redis)")
}

func (n *nativeDoor) start(b *broker.Broker, log *slog.Logger) (*runningDoor, error) {
	maxWait := n.maxWait
	if maxWait == 0 {
		maxWait = -1 // the server's "no bound"
	}
	srv, err := server.New(server.Config{
		Observer:    n.observer,
		Broker:      b,
		MaxConns:    n.maxConns,
		IdleTimeout: n.idleTimeout,
		MaxWait:     maxWait,
		Version:     keyqVersion(),
		Logger:      log,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", n.addr)
	if err != nil {
		return nil, err // *net.OpError names the address
	}

	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, server.ErrServerClosed) {
			err = nil
		} else {
			err = fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
		done <- err
	}()
	return &runningDoor{
		attrs: []any{
			"addr", ln.Addr().String(),
			"max_conns", n.maxConns,
			"idle_timeout", n.idleTimeout,
			"max_wait", n.maxWait,
		},
		done:     done,
		shutdown: srv.Shutdown,
		name:     "native",
		conns:    srv.Connections,
	}, nil
}
