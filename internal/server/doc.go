// Package server is keyq's native-protocol front door: it accepts TCP connections,
// speaks the wire protocol of docs/PROTOCOL.md (codec in internal/proto) and calls the
// broker for each request.
//
// # Connections
//
// Each connection has a reader goroutine that decodes requests and executes them in
// order. A goroutine with a reply (the reader, a wait's, the durable waiter) writes it
// itself into the connection's bufio.Writer, under a mutex, and flushes only when no
// further request is already waiting, so a pipelining client gets one write for many
// replies. A writer goroutine carries only the replies the reader sends after it
// stopped reading (a shutdown, a fatal error), queued on the connection's outbox. A
// request that waits for a message (GET, GETBATCH or RESERVE with a wait) and finds
// none runs on a goroutine of its own, so that the reader goes on with the requests
// behind it; its reply is written when it is done, possibly after the replies of
// later requests (clients match replies by request id). A connection has at most
// maxBlocked such requests at once. When the connection ends, its waits are
// cancelled, so a waiter whose client left never takes a message with it (C01).
//
// On a durable store a request that changes the log (a put, an ack or nack, a take
// that found a message) is made and appended on the reader, and its reply waits for
// the log on the connection's durable waiter, one goroutine that waits once for all
// that is queued and replies in order (durable.go), so pipelined requests share
// fsyncs. A put, ack or nack refused meanwhile is queued behind them, to keep the
// order PROTOCOL.md promises. Takes still waiting when the connection ends go back
// to their queues.
//
// Backpressure: a goroutine whose write is blocked (the client does not read) holds
// the write mutex, so the reader, at its next reply, stops reading requests; the
// replies in flight are bounded by the socket buffers and by the waits and durable
// requests a connection may have. A peer whose writes make no progress for
// Config.WriteTimeout is dropped, so a client that pipelines and never reads cannot
// grow the server's memory without bound.
//
// # Lifecycle
//
// Serve accepts until Shutdown or Close. Shutdown stops accepting, stops each
// connection's reader, lets the requests it already read finish (requests received
// but not started are answered ShuttingDown), flushes the replies and closes; Close
// does the same without waiting for anything.
package server
