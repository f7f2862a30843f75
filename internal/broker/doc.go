// Package broker is keyq's core: the table of named queues, the messages in them, and
// the consumers waiting for them. It knows no wire protocol; front doors (the native
// protocol server, RESP, HTTP) decode requests and call a *Broker.
//
// # Glossary
//
//   - queue: a named FIFO of messages, created by the first put and dropped from the
//     table once it has been empty and idle for a sweep interval.
//   - message: the bytes a producer put, with an ID unique across the server.
//   - waiter: a blocked get, parked on one or more queues until a message, its
//     timeout, or the end of its context.
//   - store: where the broker records each change (storage.Store): nothing in
//     memory mode, the durable log otherwise.
//   - delivery: one attempt to hand a message to a consumer under a lease; its ID is
//     drawn from the message ID counter, so it is never reused, even after restarts.
//   - lease: a delivery waiting for its ack; the table of them is inflight
//     (Broker.leases). Ack ends it and the message; nack and expiry requeue the
//     message at the head of its queue (or defer it), where messages that came back
//     stand in their put order, ahead of those never delivered; touch moves the
//     deadline.
//   - owner: the consumer connection leases may be bound to; ReleaseOwner returns
//     them all at once.
//   - deferred: a message not visible until a time (a delayed put, a nack with a
//     delay); it waits in the timer heap, not in its queue.
//   - dead letter: a message set aside in its queue's dead-letter queue after
//     MaxDeliveries deliveries or when its TTL ran out (per the queue's settings),
//     with a note of where it came from and why (Message.DeadLetter).
//   - state record: a store record (lease, defer, return, dead-letter, settings)
//     that says where a message stands or what a queue's settings are; at most one
//     per message is live, and recovery replays them.
//
// # Locking
//
// Broker.mu guards the table of queues and is taken exclusively only to create or
// drop a queue; puts and gets on existing queues take it shared. Queue.mu guards
// one queue, its leases and its deferred messages. The lock order is Broker.mu,
// then Queue.mu, then the short leaf locks (a lease table shard, the timer heap's
// lock, an Owner's lock, drainMu, the store's own lock inside Store.Append); never
// the reverse, and never two queues' locks at once except through lockPair's name
// order. One goroutine (timerLoop) serves every lease deadline, due time and TTL from
// a min-heap; it takes a queue's lock only after releasing the heap's, and it is
// also the one that moves messages to dead-letter queues, one queue at a time.
//
// No network or disk wait happens under Queue.mu: the broker appends under the
// lock, so that records reach the store in the queue's order, and waits for the
// fsync after releasing it.
package broker
