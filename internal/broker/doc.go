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
//
// # Locking
//
// Broker.mu guards the table of queues and is taken exclusively only to create or
// drop a queue; puts and gets on existing queues take it shared. Queue.mu guards
// one queue. The lock order is Broker.mu, then Queue.mu, then the store's own lock
// (taken inside Store.Append); never the reverse. No network or disk wait happens
// under Queue.mu: the broker appends under the lock, so that records reach the store
// in the queue's order, and waits for the fsync after releasing it.
package broker
