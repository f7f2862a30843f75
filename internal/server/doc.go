// Package server is keyq's native-protocol front door: it accepts TCP connections,
// speaks the wire protocol of docs/PROTOCOL.md (codec in internal/proto) and calls the
// broker for each request.
//
// # Connections
//
// Each connection runs two goroutines. The reader decodes requests, executes them in
// order and queues their replies on the connection's outbox; the writer owns the
// bufio.Writer, writes the replies in the order they were queued and flushes only when
// no further request is already waiting, so a pipelining client gets one write for
// many replies. A request that may block (a GET with a wait, in a later version) keeps
// this shape: its reply takes its place in the outbox order while the reader goes on.
//
// The reader stops reading while the replies queued and not yet written are over
// Config.MaxOutputBytes (backpressure), and the writer drops a peer whose writes make
// no progress for Config.WriteTimeout, so a client that pipelines and never reads
// cannot grow the server's memory without bound.
//
// # Lifecycle
//
// Serve accepts until Shutdown or Close. Shutdown stops accepting, stops each
// connection's reader, lets the requests it already read finish (requests received
// but not started are answered ShuttingDown), flushes the replies and closes; Close
// does the same without waiting for anything.
package server
