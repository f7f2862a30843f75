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
// # Reliable work queues
//
// Get is an at-most-once take: a message whose consumer dies before it is done is
// lost. Reserve takes messages under a lease instead; Ack removes one when the work is
// done, Nack gives it back (at once or after a delay), Touch keeps it longer. A
// message not acked in time, or held when the Client's connection closes, is
// delivered again, with a higher Delivery.Count:
//
//	for {
//		ds, err := c.Reserve(ctx, []string{"jobs"},
//			client.ReserveOptions{Wait: time.Minute, Lease: 30 * time.Second})
//		if errors.Is(err, client.ErrEmpty) {
//			continue
//		}
//		if err != nil {
//			return err
//		}
//		if err := work(ds[0].Data); err != nil {
//			c.Nack(ctx, ds[0].DeliveryID, 10*time.Second)
//			continue
//		}
//		c.Ack(ctx, ds[0].DeliveryID)
//	}
//
// Get and Reserve can wait for a message (the Wait option, GetWait); PutBatch and
// GetBatch move many messages in one request; Put's Delay and TTL options schedule
// and expire messages; SetQueue and QueueInfo manage a queue's limits, default lease
// and time to live, and dead-letter queue.
//
// # Concurrency
//
// A Client may be shared by any number of goroutines. Their requests are pipelined:
// each call appends its request to the connection's write buffer, in the order the
// calls were made, and writes the buffer itself when no write is in progress (a
// writer goroutine takes over the writes that queue up meanwhile, so a burst of
// calls leaves in few writes); a reader goroutine hands each reply to its caller by
// request id. One Client per process is usually enough: a call that waits for a
// message holds up no other call, since the server answers it whenever it is done.
//
// To send many requests at once without a goroutine each, queue them on a Pipeline
// (Client.Pipeline) and call its Exec: the round leaves in one write and its replies
// are read together, each into its typed Result.
//
// Every call takes a context. A call whose context ends returns at once with the
// context's error; a request not yet written is then never sent, and the late reply
// of one already sent is discarded (see Get for what that means for a message).
// That holds too when the server has stopped reading: a call writes its request
// itself only within its context's deadline, and leaves the rest to the writer.
//
// # Errors
//
// An empty queue is ErrEmpty (errors.Is(err, client.ErrEmpty)), not an *Error. A
// refusal by the server is an *Error with the protocol's status code and a text that
// names the rule broken; its Fatal field tells whether the connection died with it.
// The Client does not reconnect: once the connection is dead, every call fails at
// once with an error matching ErrConnectionLost (or ErrClosed after Close).
package client
