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
// many replies. A request that waits for a message (GET, GETBATCH or RESERVE with a
// wait) runs on a goroutine of its own, so that the reader goes on with the requests
// behind it; its reply joins the outbox when it is done, possibly after the replies
// of later requests (clients match replies by request id). A connection has at most
// maxBlocked such requests at once. When the connection ends, its waits are
// cancelled, so a waiter whose client left never takes a message with it (C01).
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
