package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// DefaultReadHeaderTimeout bounds the wait for a request's headers when Config
// leaves IdleTimeout unset.
const DefaultReadHeaderTimeout = 10 * time.Second

// DefaultKeepAlive is how long an idle keep-alive connection stays open when Config
// leaves IdleTimeout unset.
const DefaultKeepAlive = 2 * time.Minute

// DefaultBodyTimeout is how long a request body may send nothing before the request
// fails, when Config leaves IdleTimeout unset.
const DefaultBodyTimeout = 30 * time.Second

// refuseTimeout bounds the write of the 503 that refuses a connection over the limit.
const refuseTimeout = time.Second

// timeouts are the http.Server timeouts derived from the idle timeout.
//
// ReadTimeout stays 0 on purpose: net/http keeps it as the connection's read deadline
// after the body is read, and its background read then cancels the request context,
// which would end every get that waits longer. The body gets its own deadline instead
// (bodyReader).
type timeouts struct {
	readHeader time.Duration // headers, from the first byte of a request
	keepAlive  time.Duration // between requests
	body       time.Duration // between two reads of a body that make progress
}

func newTimeouts(idle time.Duration) timeouts {
	if idle <= 0 {
		return timeouts{
			readHeader: DefaultReadHeaderTimeout,
			keepAlive:  DefaultKeepAlive,
			body:       DefaultBodyTimeout,
		}
	}
	return timeouts{
		readHeader: min(idle, DefaultReadHeaderTimeout),
		keepAlive:  idle,
		body:       idle,
	}
}

// lingerTimeout bounds how long, after a reply sent before its request's body was read
// to its end, the server goes on reading what the client sends before it closes the
// connection, so that the close does not reset the connection under the reply.
const lingerTimeout = time.Second

// bodyDeadline makes every request body be read under a read deadline renewed before
// each read, so that a client that stops sending its body (one byte short of its
// Content-Length, say) fails the request after s.timeouts.body instead of holding it
// forever. A request without a body gets no deadline: net/http watches such a
// connection for the client leaving, and a deadline would end a waiting get.
//
// A reply sent before the body was read to its end (a refused put, a get with a body)
// goes out at once and closes the connection: the response carries Connection: close
// until the body reaches EOF, so net/http neither reads what is left of the body before
// replying (up to 256 KiB, which would hold the reply until the client sends it) nor
// parses it as the next request. A request that asked for 100 Continue and is refused
// unread never gets it: only reading the body sends it.
func (s *Server) bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body := r.Body
		br := &bodyReader{
			body:    body,
			rc:      http.NewResponseController(w),
			header:  w.Header(),
			timeout: s.timeouts.body,
		}
		br.header.Set("Connection", "close")
		r.Body = br
		next.ServeHTTP(w, r)
		// Once the handler returns, net/http looks at the body it made (was 100 Continue
		// sent, is some left unread): give that back, not the wrapper.
		r.Body = body
		if !br.eof {
			// net/http reads what is left of the body after the reply is out, before
			// closing: bound that.
			br.rc.SetReadDeadline(time.Now().Add(min(br.timeout, lingerTimeout)))
		}
	})
}

// bodyReader is a request body read under a deadline renewed before each read.
type bodyReader struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	header  http.Header // the response's, which says Connection: close until EOF
	timeout time.Duration
	eof     bool
}

// Read implements io.Reader.
func (b *bodyReader) Read(p []byte) (int, error) {
	// An error means the connection cannot take deadlines (a test recorder): read
	// without one.
	_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		// The body is whole: no deadline may end the request while it goes on, and
		// the connection may serve the next request.
		b.eof = true
		b.header.Del("Connection")
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil && isTimeout(err):
		err = fmt.Errorf("no byte of the body for %v: %w", b.timeout, err)
	}
	return n, err
}

// Close implements io.Closer.
func (b *bodyReader) Close() error { return b.body.Close() }

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// limitListener accepts at most max connections at once. One over the limit is
// answered 503 with a too_many_connections error and closed, as the native protocol
// answers TooManyConnections, rather than left waiting in the accept backlog.
type limitListener struct {
	net.Listener
	max    int64
	open   atomic.Int64
	refuse func(nc net.Conn)
}

// Accept implements net.Listener.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitedConn{Conn: nc, l: l}, nil
		}
		l.open.Add(-1)
		go l.refuse(nc)
	}
}

// limitedConn gives its slot back when it closes, once.
type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

// Close implements net.Conn.
func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// refuseConn answers a connection over the limit with 503 and closes it.
func (s *Server) refuseConn(nc net.Conn) {
	defer nc.Close()
	s.metrics.ConnRefused(Door)
	if s.warnRefused() {
		s.log.Warn("connection refused over the limit", "remote", nc.RemoteAddr().String(),
			"max_conns", s.maxConns)
	}
	body, _ := json.Marshal(errorReply{Error: errorDetail{
		Code:    codeName(proto.StatusTooManyConnections),
		Status:  proto.StatusTooManyConnections,
		Message: fmt.Sprintf("server is at its limit of %d connections", s.maxConns),
	}})
	head := "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n" +
		"Connection: close\r\nRetry-After: 1\r\nContent-Length: " +
		strconv.Itoa(len(body)+1) + "\r\n\r\n"
	nc.SetWriteDeadline(time.Now().Add(refuseTimeout))
	if _, err := nc.Write(append(append([]byte(head), body...), '\n')); err != nil {
		return
	}
	// Read what the client sends meanwhile, so that the close does not reset the
	// connection before the client has read the answer.
	if tc, ok := nc.(*net.TCPConn); ok && tc.CloseWrite() == nil {
		nc.SetReadDeadline(time.Now().Add(refuseTimeout))
		io.Copy(io.Discard, io.LimitReader(nc, 64<<10))
	}
}

// warnRefused reports whether a refused connection should be logged: at most one a
// second, so that a flood does not flood the log too.
func (s *Server) warnRefused() bool {
	now := time.Now().UnixNano()
	last := s.lastRefusedWarn.Load()
	return now-last >= int64(time.Second) && s.lastRefusedWarn.CompareAndSwap(last, now)
}
