// Package resp is keyq's Redis front door: it speaks RESP2 and RESP3 (after HELLO 3)
// and maps Redis' list commands onto the broker's queues, so that redis-cli and Redis
// client libraries reach keyq as they would reach a Redis holding list-based queues.
//
// A queue is a deque here: RPUSH puts at the tail (as a native Put does), LPOP takes
// the head (as a native Get does), and LPUSH and RPOP reach the other ends. Keys are
// queue names and obey broker.ValidateKey; a key exists while its queue holds a
// message, as a Redis list exists while it is not empty.
//
// Each connection runs on one goroutine: it reads what the client sent, parses the
// commands in place (reader.go; inline commands with github.com/tidwall/redcon),
// runs them in order and writes all their replies at once before it reads again, so
// that a pipeline costs one read and one write. A blocking command waits under a
// context that ends when the client disconnects, which a watcher goroutine notices
// by reading on while it waits.
//
// A guard between the connection and redcon's reader (limit.go) bounds each request:
// its element count, each bulk string, its total bytes and an inline line. A request
// over a limit gets Redis' "-ERR Protocol error: ..." and its connection closes. A
// client that does not read its replies stops its connection, which reads nothing
// more, and is dropped after Config.WriteTimeout. Config.IdleTimeout closes a connection that
// completes no command for that long (a blocked one is not idle), and Config.MaxConns
// refuses connections past a limit.
package resp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/linger"
	"github.com/keyq/keyq/internal/warnlimit"
)

// DefaultAddr is where the RESP listener listens unless told otherwise.
const DefaultAddr = "127.0.0.1:7479"

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("resp: server closed")

// Config holds what a Server is built with.
type Config struct {
	// Broker holds the queues; required.
	Broker *broker.Broker

	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger

	// Version is reported by HELLO and INFO as keyq's version; empty means "dev".
	Version string

	// MaxBulkBytes bounds one bulk string of a request (a key or a value): a longer
	// one gets "-ERR Protocol error: invalid bulk length" and the connection closes.
	// 0 means the broker's largest message plus 64 KiB.
	MaxBulkBytes int

	// MaxRequestBytes bounds one request, headers included, enforced the same way.
	// 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int

	// WriteTimeout drops a connection whose replies make no progress for that long,
	// or up to a quarter longer (a client that pipelines and never reads). 0 means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration

	// IdleTimeout closes a connection that completes no command for that long: an
	// idle one, and one that sent part of a request and stopped. A connection whose
	// commands are still running (a blocking command waiting included) is not idle.
	// 0 means never.
	IdleTimeout time.Duration

	// MaxConns bounds the open connections: one more is answered "-ERR max number of
	// clients reached", as Redis answers past maxclients, and closed. 0 means no limit.
	MaxConns int

	// Observer hears of each connection and command, for metrics; nil is none.
	Observer Observer
}

// DefaultWriteTimeout is Config.WriteTimeout when left zero.
const DefaultWriteTimeout = 30 * time.Second

// Server serves RESP connections on any number of listeners. Create it with New,
// start it with Serve and stop it with Shutdown or Close. Its methods may be called
// from any goroutine.
type Server struct {
	broker  *broker.Broker
	log     *slog.Logger
	version string
	started time.Time

	limits       limits             // what a request may hold
	warn         *warnlimit.Limiter // warnings about clients, per host
	observer     Observer           // nil: none
	recorders    recorders          // the observer's, by command
	writeTimeout time.Duration
	idleTimeout  time.Duration
	maxConns     int

	mu        sync.Mutex // protects listeners, conns and closing
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool

	// ctx ends when the server stops; every connection's context derives from it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	nextConnID      atomic.Int64
	blocked         atomic.Int64 // connections inside a blocking command
	lastRefusedWarn atomic.Int64 // unix ns of the last refused connection logged
	port            atomic.Int64 // of the first listener, for INFO
}

// New builds a Server over cfg.Broker.
func New(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	version := cfg.Version
	if version == "" {
		version = "dev"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		broker:       cfg.Broker,
		log:          log.With("component", "resp"),
		version:      version,
		started:      time.Now(),
		limits:       configLimits(cfg),
		warn:         warnlimit.New(warnlimit.Interval),
		writeTimeout: cmp.Or(cfg.WriteTimeout, DefaultWriteTimeout),
		observer:     cfg.Observer,
		recorders:    make(recorders, len(commands)+1),
		idleTimeout:  max(cfg.IdleTimeout, 0),
		maxConns:     max(cfg.MaxConns, 0),
		listeners:    make(map[net.Listener]struct{}),
		conns:        make(map[*conn]struct{}),
		ctx:          ctx,
		cancel:       cancel,
	}
}

// configLimits returns the request limits cfg asks for, with defaults for the fields
// left zero.
func configLimits(cfg Config) limits {
	bulk := cfg.MaxBulkBytes
	if bulk <= 0 {
		bulk = broker.DefaultMaxMessageBytes + bulkSlack
		if cfg.Broker != nil {
			bulk = cfg.Broker.MaxMessageBytes() + bulkSlack
		}
	}
	request := cfg.MaxRequestBytes
	if request <= 0 {
		request = DefaultMaxRequestBytes
	}
	return limits{
		elements: maxMultibulk,
		bulk:     int64(bulk),
		request:  int64(request),
		line:     maxInline,
		fresh:    bigRequest,
	}
}

// Serve accepts connections on ln until Shutdown or Close, which make it return
// ErrServerClosed; any other accept error is returned as is. Serve closes ln.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	if addr, ok := ln.Addr().(*net.TCPAddr); ok {
		s.port.CompareAndSwap(0, int64(addr.Port))
	}

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "took", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		delay = 0
		if !s.startConn(nc) {
			nc.Close()
			return ErrServerClosed
		}
	}
}

// Shutdown stops accepting connections, ends every blocking command, lets each
// connection finish the commands it has read, and waits for the connections to close
// until ctx ends; it then closes what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	s.mu.Lock()
	for c := range s.conns {
		c.closeRead()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.log.Info("connections closed")
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close stops accepting connections, closes every connection at once and waits for
// their goroutines. It is idempotent.
func (s *Server) Close() error {
	s.stopAccepting()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// stopAccepting marks the server closing, closes its listeners and cancels the
// connections' context, so blocked commands return.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		s.closing = true
		s.log.Info("shutting down")
	}
	for ln := range s.listeners {
		ln.Close()
		delete(s.listeners, ln)
	}
	s.cancel()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.listeners[ln]; ok {
		ln.Close()
		delete(s.listeners, ln)
	}
}

// startConn registers a connection and starts its goroutines, unless the server is
// closing. A connection over MaxConns is refused instead.
func (s *Server) startConn(nc net.Conn) bool {
	c := newConn(s, nc)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.maxConns > 0 && len(s.conns) >= s.maxConns {
		if s.observer != nil {
			s.observer.ConnRefused(Door)
		}
		s.wg.Go(func() { s.refuse(nc) })
		return true
	}
	s.conns[c] = struct{}{}
	s.wg.Go(c.serve)
	return true
}

// refuse answers a connection over MaxConns with Redis' error and closes it.
func (s *Server) refuse(nc net.Conn) {
	if s.warnRefused() {
		s.log.Warn("connection refused over the limit", "remote", nc.RemoteAddr().String(),
			"max_conns", s.maxConns)
	}
	nc.SetWriteDeadline(time.Now().Add(refuseTimeout))
	if _, err := nc.Write([]byte("-ERR max number of clients reached\r\n")); err != nil {
		nc.Close()
		return
	}
	linger.Close(nc)
}

// refuseTimeout bounds the write of the error that refuses a connection.
const refuseTimeout = time.Second

// warnRefused reports whether a refused connection should be logged: at most one a
// second, so that a flood of them does not flood the log.
func (s *Server) warnRefused() bool {
	now := time.Now().UnixNano()
	last := s.lastRefusedWarn.Load()
	return now-last >= int64(time.Second) && s.lastRefusedWarn.CompareAndSwap(last, now)
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Connections returns how many connections are open.
func (s *Server) Connections() int64 { return int64(s.connCount()) }

// connCount returns how many connections are open, for INFO.
func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
