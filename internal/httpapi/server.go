// Package httpapi is keyq's HTTP front door: puts, gets, leases (reserve, ack, nack,
// touch), lengths, queue listings and deletes over plain HTTP, with message bodies as
// raw bytes and everything else as JSON, and the operator's endpoints (/metrics,
// /healthz, /readyz, and pprof when asked) on the same listener. docs/HTTP.md is its
// reference.
//
// Config.IdleTimeout and Config.MaxConns bound what clients may hold: idle and
// half-sent connections are closed, a body that stalls fails its request, and a
// connection over the limit is answered 503 (limits.go).
//
// Queue names travel percent-encoded in one path segment and are checked by the
// broker's rules (broker.ValidateKey), as on every other front door. Errors carry the
// binary protocol's status codes.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/metrics"
)

// Door is the front-door label of the HTTP API in metrics.
const Door = "http"

// DefaultAddr is where the HTTP API listens unless told otherwise.
const DefaultAddr = "127.0.0.1:7480"

// DefaultMaxWait is the longest wait a get may ask for when Config leaves MaxWait unset.
const DefaultMaxWait = 5 * time.Minute

// MessageIDHeader carries the message id of a put's or a get's message.
const MessageIDHeader = "Keyq-Message-Id"

// Broker is what the HTTP API needs of the broker; *broker.Broker implements it.
type Broker interface {
	Put(ctx context.Context, queue string, payload []byte) (uint64, error)
	PutFront(ctx context.Context, queue string, payload []byte) (uint64, error)
	PutWith(ctx context.Context, queue string, payload []byte, o broker.PutOptions) (uint64, error)
	Get(ctx context.Context, queue string, wait time.Duration) (broker.Message, error)
	Reserve(ctx context.Context, queues []string, o broker.ReserveOptions) (
		[]broker.Delivery, error)
	Ack(ctx context.Context, deliveryID uint64) error
	Nack(ctx context.Context, deliveryID uint64, delay time.Duration) error
	Touch(ctx context.Context, deliveryID uint64, lease time.Duration) (time.Time, error)
	Len(queue string) (int, error)
	Delete(ctx context.Context, queue string) (int, error)
	Stats(limit int) broker.Stats
	QueueStats(name string) (broker.QueueStats, bool)
	Ready() error
	MaxMessageBytes() int
}

// Config holds what a Server is built with.
type Config struct {
	// Broker serves every queue operation. Required.
	Broker Broker

	// Metrics receives the API's request and connection counts and is served on
	// /metrics; nil serves no /metrics and records nothing.
	Metrics *metrics.Metrics

	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger

	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool

	// MaxWait bounds the wait a get may ask for; 0 means DefaultMaxWait.
	MaxWait time.Duration

	// IdleTimeout closes a keep-alive connection idle for that long, bounds the wait
	// for a request's headers (to at most DefaultReadHeaderTimeout), and fails a
	// request whose body sends nothing for that long. 0 means DefaultKeepAlive,
	// DefaultReadHeaderTimeout and DefaultBodyTimeout.
	IdleTimeout time.Duration

	// MaxConns bounds the open connections; one more is answered 503
	// too_many_connections and closed. 0 means no limit.
	MaxConns int
}

// Server is the HTTP API. Create one with New, run it with Serve and stop it with
// Shutdown; its methods may be called from any goroutine.
type Server struct {
	broker  Broker
	metrics *metrics.Metrics
	log     *slog.Logger
	maxWait time.Duration
	handler http.Handler

	timeouts        timeouts
	maxConns        int
	lastRefusedWarn atomic.Int64 // unix ns of the last refused connection logged

	srv *http.Server

	draining atomic.Bool  // set once shutdown begins: /readyz answers 503
	conns    atomic.Int64 // open connections, counted by trackConn

	// stopping ends when Shutdown begins; blocked gets end with it.
	stopping context.Context
	stop     context.CancelFunc
}

// New builds a Server from cfg.
func New(cfg Config) *Server {
	s := &Server{
		broker:   cfg.Broker,
		metrics:  cfg.Metrics,
		log:      cfg.Logger,
		maxWait:  cfg.MaxWait,
		timeouts: newTimeouts(cfg.IdleTimeout),
		maxConns: cfg.MaxConns,
	}
	s.stopping, s.stop = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "http")
	if s.maxWait <= 0 {
		s.maxWait = DefaultMaxWait
	}

	s.handler = s.routes(cfg.Pprof)
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.timeouts.readHeader,
		IdleTimeout:       s.timeouts.keepAlive,
		ConnState:         s.trackConn,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s
}

// Handler returns the API's handler, for tests and for callers that run their own
// http.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on ln until Shutdown, then returns http.ErrServerClosed. The
// caller logs the address: cmd/keyq puts every front door's in one start line.
func (s *Server) Serve(ln net.Listener) error {
	if s.maxConns > 0 {
		ln = &limitListener{Listener: ln, max: int64(s.maxConns), refuse: s.refuseConn}
	}
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
}

// Drain makes /readyz answer 503 while the API keeps serving, so that a load balancer
// stops sending work before Shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown stops the API: /readyz turns 503, the listener closes, blocked gets end
// with 503 ShuttingDown (their messages stay queued), and it waits for requests in
// flight until ctx ends; then it closes the connections still open.
func (s *Server) Shutdown(ctx context.Context) error {
	s.log.Info("shutting down")
	s.Drain()
	s.stop()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}

// Connections returns how many connections the API has open.
func (s *Server) Connections() int64 { return s.conns.Load() }

func (s *Server) trackConn(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.conns.Add(1)
		s.metrics.ConnOpened(Door)
	case http.StateClosed, http.StateHijacked:
		s.conns.Add(-1)
		s.metrics.ConnClosed(Door)
	}
}

// routes builds the mux. Every path answers errors in JSON, including unknown
// paths and methods.
func (s *Server) routes(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	// Each route with the query parameters it takes; it refuses any other.
	mux.Handle("POST /v1/queues/{queue}/messages", s.takes(s.handlePut, "delay", "ttl"))
	mux.Handle("POST /v1/queues/{queue}/get", s.takes(s.handleGet, "wait"))
	mux.Handle("GET /v1/queues/{queue}", s.takes(s.handleQueue))
	mux.Handle("DELETE /v1/queues/{queue}", s.takes(s.handleDelete))
	mux.Handle("GET /v1/queues", s.takes(s.handleList, "limit"))
	mux.Handle("POST /v1/queues/{queue}/reserve", s.takes(s.handleReserve, "wait", "lease"))
	mux.Handle("POST /v1/deliveries/{id}/ack", s.takes(s.handleAck))
	mux.Handle("POST /v1/deliveries/{id}/nack", s.takes(s.handleNack, "delay"))
	mux.Handle("POST /v1/deliveries/{id}/touch", s.takes(s.handleTouch, "lease"))

	mux.Handle("/v1/queues/{queue}/messages", s.methodNotAllowed("POST"))
	mux.Handle("/v1/queues/{queue}/get", s.methodNotAllowed("POST"))
	mux.Handle("/v1/queues/{queue}", s.methodNotAllowed("GET, HEAD, DELETE"))
	mux.Handle("/v1/queues", s.methodNotAllowed("GET, HEAD"))
	mux.Handle("/v1/queues/{queue}/reserve", s.methodNotAllowed("POST"))
	for _, op := range []string{"ack", "nack", "touch"} {
		mux.Handle("/v1/deliveries/{id}/"+op, s.methodNotAllowed("POST"))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fmt.Errorf("%w: %s", errNoRoute, r.URL.Path))
	})

	mux.Handle("GET /healthz", s.takes(s.handleHealth))
	mux.Handle("GET /readyz", s.takes(s.handleReady))
	// /metrics and pprof are others' handlers, with parameters of their own (pprof's
	// seconds and debug, a scraper's params): they are not checked here.
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	if withPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return s.bodyDeadline(strictQuery(s, emptyNameGuard(s, mux)))
}

func (s *Server) methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.writeError(w, r, fmt.Errorf("%w: %s %s", errMethod, r.Method, r.URL.Path))
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady answers 200 while the broker takes work, and 503 once shutdown began,
// the broker closed, its durable log failed (it then refuses writes until keyq
// restarts) or while the log refuses puts for a full disk (gets are still served),
// so that a load balancer sends clients elsewhere.
func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	err := s.broker.Ready()
	switch {
	case s.draining.Load() || errors.Is(err, broker.ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	case errors.Is(err, broker.ErrDiskFull):
		writeJSON(w, http.StatusServiceUnavailable,
			map[string]string{"status": "disk full", "error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable,
			map[string]string{"status": "failed", "error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// noteErr marks the server as draining when the broker says it is closed, so
// /readyz reports it even if Shutdown has not been called yet.
func (s *Server) noteErr(err error) {
	if err != nil && errors.Is(err, broker.ErrClosed) {
		s.draining.Store(true)
	}
}
