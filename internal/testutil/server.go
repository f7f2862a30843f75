package testutil

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/server"
)

// Server is a running broker and native-protocol server, stopped by t.Cleanup.
type Server struct {
	Addr   string // host:port the server listens on
	Broker *broker.Broker
	Server *server.Server
}

// options collects what Option functions set.
type options struct {
	broker   broker.Config
	server   server.Config
	listener func(net.Listener) net.Listener
	level    slog.Level
}

// Option changes how StartServer builds the server.
type Option func(*options)

// WithBroker lets f change the broker's config (memory store unless f sets one).
func WithBroker(f func(*broker.Config)) Option {
	return func(o *options) { f(&o.broker) }
}

// WithServer lets f change the server's config; Broker and Logger are set after.
func WithServer(f func(*server.Config)) Option {
	return func(o *options) { f(&o.server) }
}

// WithListener wraps the server's listener, for tests that watch accepted sockets.
func WithListener(wrap func(net.Listener) net.Listener) Option {
	return func(o *options) { o.listener = wrap }
}

// WithLogLevel sets the level of the logs sent to the test's output (default Info).
func WithLogLevel(level slog.Level) Option {
	return func(o *options) { o.level = level }
}

// StartServer starts a broker and a server listening on 127.0.0.1:0 in this process,
// logging to t.Output(). t.Cleanup shuts the server down (failing the test if that
// takes over 10 seconds) and closes the broker.
func StartServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: o.level}))

	o.broker.Logger = log
	b, err := broker.New(o.broker)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	o.server.Broker, o.server.Logger = b, log
	srv, err := server.New(o.server)
	if err != nil {
		b.Close()
		t.Fatalf("start server: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if o.listener != nil {
		ln = o.listener(ln)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	t.Cleanup(func() { stopServer(t, srv, b, served) })
	return &Server{Addr: addr, Broker: b, Server: srv}
}

func stopServer(t testing.TB, srv *server.Server, b *broker.Broker, served chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shut down server: %v", err)
	}
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("close broker: %v", err)
	}
}

// WaitFor calls fn every few milliseconds until it returns true, and fails the test
// if that has not happened within timeout.
func WaitFor(t testing.TB, timeout time.Duration, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if fn() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(delay)
	}
}
