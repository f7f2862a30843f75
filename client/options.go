package client

import (
	"context"
	"net"
)

// An Option changes how Dial connects.
type Option func(*config)

// DialFunc opens a connection, as (*net.Dialer).DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

type config struct {
	dial DialFunc
}

func newConfig(opts []Option) config {
	var d net.Dialer // keep-alive on, at Go's default period
	cfg := config{dial: d.DialContext}
	for _, opt := range opts {
		opt(&cfg)
	}
	return cfg
}

// WithDialFunc makes Dial open its connection with dial instead of a zero
// net.Dialer: to set a local address, keep-alive or a proxy, or to wrap the
// connection (TLS, fault injection in tests).
func WithDialFunc(dial DialFunc) Option {
	return func(cfg *config) { cfg.dial = dial }
}
