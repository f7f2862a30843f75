package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/linger"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/warnlimit"
)

// Defaults for the Config fields left zero.
const (
	DefaultMaxOutputBytes   = 4 << 20
	DefaultWriteTimeout     = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultKeepAlive        = 15 * time.Second
	DefaultMaxWait          = 15 * time.Minute
)

// Version is what STATS reports as the server's version when Config.Version is empty.
const Version = "0.1.0"

// bufferSize is the size of each connection's read and write buffers.
const bufferSize = 32 << 10

// Config holds what a Server is built with. Broker is required.
type Config struct {
	// Broker executes the requests. The Server does not close it.
	Broker *broker.Broker

	// MaxConns bounds the open connections; one more is answered TooManyConnections
	// and closed. 0 means no limit.
	MaxConns int

	// IdleTimeout closes a connection that sends no byte for that long while it has
	// no request in progress; a connection with a request in progress (a blocked GET,
	// a put waiting for the disk, a reply not yet written) is never idle. 0 means never.
	IdleTimeout time.Duration

	// MaxOutputBytes bounds the replies queued for a connection's writer goroutine,
	// which carries only those the reader sends after it stopped reading (a
	// shutdown, a fatal error); other replies are written directly, and a blocked
	// write stops the reader (see the package doc). 0 means DefaultMaxOutputBytes.
	MaxOutputBytes int

	// WriteTimeout drops a connection whose writes make no progress for that long
	// (up to a quarter longer: see armWriteDeadline).
	// 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration

	// HandshakeTimeout bounds the wait for a client's hello. 0 means the idle
	// timeout if set, else DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// KeepAlive is the TCP keep-alive period set on every accepted connection, so a
	// peer that vanished is detected even when the idle timeout is off. 0 means
	// DefaultKeepAlive; negative disables keep-alive.
	KeepAlive time.Duration

	// MaxWait bounds how long a GET, GETBATCH or RESERVE waits for a message: a
	// longer wait asked for is cut to it (and then answered Empty, as any wait that
	// runs out). 0 means DefaultMaxWait; negative means no bound.
	MaxWait time.Duration

	// Version is reported by STATS; empty means Version.
	Version string

	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger

	// Observer hears of each connection and request, for metrics; nil is none.
	Observer Observer
}

// Server serves the native protocol on any number of listeners. Create one with New;
// its methods may be called from any goroutine.
type Server struct {
	cfg      Config
	broker   *broker.Broker
	log      *slog.Logger
	maxFrame int
	warn     *warnlimit.Limiter

	mu        sync.Mutex // protects the fields below
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	addr      net.Addr
	closing   bool // Shutdown or Close began: accept nothing more
	nextConn  uint64

	active atomic.Int64 // open connections, as STATS reports them
	ctx    context.Context
	cancel context.CancelFunc // ends every request in progress; called by Close
	wg     sync.WaitGroup     // one per connection (and per refused one)

	recorders recorders // the Observer's, by opcode

	// testHookExecute, when set, runs before each request is executed.
	testHookExecute func(proto.Frame)
}

// New returns a Server for cfg. It does not listen: call Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Broker == nil {
		return nil, errors.New("server: config has no broker")
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
		if cfg.IdleTimeout > 0 {
			cfg.HandshakeTimeout = cfg.IdleTimeout
		}
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	switch {
	case cfg.MaxWait == 0:
		cfg.MaxWait = DefaultMaxWait
	case cfg.MaxWait < 0:
		cfg.MaxWait = broker.Forever
	}
	if cfg.Version == "" {
		cfg.Version = Version
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	s := &Server{
		cfg:       cfg,
		broker:    cfg.Broker,
		log:       cfg.Logger.With("component", "server"),
		maxFrame:  proto.MaxFrameFor(cfg.Broker.MaxMessageBytes()),
		warn:      warnlimit.New(warnlimit.Interval),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Addr returns the address of the listener Serve was first given, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Connections returns the number of open connections.
func (s *Server) Connections() int64 { return s.active.Load() }

// Serve accepts connections on ln and serves each on its own goroutines, until
// Shutdown or Close, when it returns ErrServerClosed; any other accept error ends it
// too. Serve closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrackListener(ln)

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if isTransient(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "took", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		s.accept(nc)
	}
}

// isTransient reports whether an accept error may go away on its own (a timeout, a
// shortage of file descriptors, a connection aborted before it was accepted).
func isTransient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// accept sets up nc and starts serving it, or refuses it over the connection limit.
func (s *Server) accept(nc net.Conn) {
	s.setKeepAlive(nc)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		nc.Close()
		return
	}
	s.nextConn++
	if s.cfg.MaxConns > 0 && len(s.conns) >= s.cfg.MaxConns {
		s.connRefused()
		s.wg.Go(func() { s.refuse(nc, s.nextConn) })
		return
	}

	c := newConn(s, nc, s.nextConn)
	s.conns[c] = struct{}{}
	s.active.Add(1)
	s.wg.Go(c.serve)
}

// refuseTimeout bounds the handshake with a connection refused over the limit.
const refuseTimeout = 2 * time.Second

// refuse answers a connection over the limit: it reads the client hello, answers it,
// sends a TooManyConnections error frame and closes.
func (s *Server) refuse(nc net.Conn, id uint64) {
	defer nc.Close()
	log := s.log.With("conn", id, "remote", nc.RemoteAddr().String())

	nc.SetDeadline(time.Now().Add(min(s.cfg.HandshakeTimeout, refuseTimeout)))
	h, err := proto.ReadClientHello(nc)
	if err != nil {
		log.Debug("handshake failed", "err", err)
		return
	}
	text := fmt.Sprintf("server is at its limit of %d connections", s.cfg.MaxConns)
	hello := proto.ServerHello{
		Version:    proto.Negotiate(h.Version),
		MaxMessage: uint32(s.broker.MaxMessageBytes()),
		MaxFrame:   uint32(s.maxFrame),
	}
	buf := hello.Append(nil)
	buf = proto.AppendFrame(buf, proto.OpNone, uint8(proto.StatusTooManyConnections), 0,
		[]byte(text))
	if _, err := nc.Write(buf); err != nil {
		log.Debug("write failed", "err", err)
		return
	}

	if s.warn.Allow(warnlimit.Host(nc.RemoteAddr())) {
		log.Warn("connection refused over the limit", "max_conns", s.cfg.MaxConns)
	}
	linger.Close(nc)
}

// setKeepAlive enables TCP keep-alive on an accepted connection explicitly rather
// than trusting the listener's defaults (C28).
func (s *Server) setKeepAlive(nc net.Conn) {
	tc, ok := nc.(*net.TCPConn)
	if !ok || s.cfg.KeepAlive < 0 {
		return
	}
	err := tc.SetKeepAliveConfig(net.KeepAliveConfig{
		Enable:   true,
		Idle:     s.cfg.KeepAlive,
		Interval: s.cfg.KeepAlive,
		Count:    4,
	})
	if err != nil {
		s.log.Debug("keep-alive not set", "remote", nc.RemoteAddr(), "err", err)
	}
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.active.Add(-1)
}

func (s *Server) trackListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[ln] = struct{}{}
	if s.addr == nil {
		s.addr = ln.Addr()
	}
	return true
}

func (s *Server) untrackListener(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.listeners[ln]; ok {
		delete(s.listeners, ln)
		ln.Close()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops the server gracefully: it closes the listeners, stops reading
// requests, lets the requests already read finish and their replies flush, closes
// the connections and waits for their goroutines. If ctx ends first, it closes
// everything at once (as Close does) and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.closeListenersLocked()
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	s.log.Info("shutting down", "connections", s.active.Load())

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.Close()
		return fmt.Errorf("shut down server: %w", ctx.Err())
	}
}

// Close stops the server at once: it closes the listeners and every connection,
// cancels the requests in progress and waits for the connections' goroutines. Close
// is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	s.closeListenersLocked()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()

	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Server) closeListenersLocked() {
	for ln := range s.listeners {
		ln.Close()
		delete(s.listeners, ln)
	}
}
