// Package client is the Go client of keyq, a server of named FIFO queues. It speaks
// the native wire protocol (docs/PROTOCOL.md) over one TCP connection.
//
// Dial connects and does the handshake; Put appends a message to a queue, Get takes
// the one at its head, Len counts a queue's messages, Stats reads the server's
// counters and Ping checks that the server answers:
//
//	c, err := client.Dial(ctx, "127.0.0.1:7470")
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//
//	id, err := c.Put(ctx, "images", photo)
//	...
//	msg, err := c.Get(ctx, "images")
//	if errors.Is(err, client.ErrEmpty) {
//		// nothing waiting
//	}
//
// # Concurrency
//
// A Client may be shared by any number of goroutines. Their requests are pipelined:
// a writer goroutine sends them in the order they were made, coalescing those that
// wait into one write, and a reader goroutine hands each reply to its caller by
// request id. One Client per process is usually enough.
//
// Every call takes a context. A call whose context ends returns at once with the
// context's error; a request not yet written is then never sent, and the late reply
// of one already sent is discarded (see Get for what that means for a message).
//
// # Errors
//
// An empty queue is ErrEmpty (errors.Is(err, client.ErrEmpty)), not an *Error. A
// refusal by the server is an *Error with the protocol's status code and a text that
// names the rule broken; its Fatal field tells whether the connection died with it.
// The Client does not reconnect: once the connection is dead, every call fails at
// once with an error matching ErrConnectionLost (or ErrClosed after Close).
//
// # Later versions
//
// The protocol reserves operations for blocking gets, leases with ack and nack, and
// batches (docs/PROTOCOL.md); they will be added as methods and options of Client
// without changing the calls above.
package client
