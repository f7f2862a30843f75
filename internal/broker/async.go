package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// PutAppend is the first half of Put (or, with options, of PutWith): it checks the
// put and appends the message under the queue's lock, as they do, and returns its ID
// and the ticket to pass to WaitDurable. It does not wait for the store: the caller
// must not acknowledge the put before WaitDurable(ticket) returned nil. The message
// may be taken by a consumer meanwhile, as it may be during Put's own wait.
//
// A front door uses it to append a connection's puts in the order they came while
// many of them wait for one fsync together.
func (b *Broker) PutAppend(
	queue string, payload []byte, o PutOptions,
) (uint64, storage.Ticket, error) {
	if o != (PutOptions{}) {
		ids, ticket, err := b.PutBatchAppend(queue, [][]byte{payload}, o)
		if err != nil {
			return 0, 0, err
		}
		return ids[0], ticket, nil
	}
	return b.appendPutCopy(queue, payload, false)
}

// PutBatchAppend is the first half of PutBatch: it stores all payloads or none under
// one hold of the queue's lock and returns their IDs in order and the ticket to pass
// to WaitDurable before acknowledging them.
func (b *Broker) PutBatchAppend(
	queue string, payloads [][]byte, o PutOptions,
) ([]uint64, storage.Ticket, error) {
	if err := b.checkBatch(queue, payloads, o); err != nil {
		return nil, 0, err
	}
	es := entries.Get(len(payloads))
	var size int64
	for _, p := range payloads {
		es = append(es, entry{payload: copyPayload(p), size: len(p)})
		size += int64(len(p))
	}

	q := b.lockLive(queue)
	ticket, err := b.putBatchLocked(q, es, size, o, time.Now())
	q.mu.Unlock()
	var ids []uint64
	if err == nil {
		ids = make([]uint64, len(es))
		for i, e := range es {
			ids[i] = e.id
		}
	}
	entries.Put(es) // the queue keeps copies of the entries, not es
	return ids, ticket, err
}

// WaitDurable blocks until everything appended up to ticket is as durable as the
// store's policy promises (on disk, under fsync=always), ctx ends, or the log fails.
// Many waiters share one fsync.
func (b *Broker) WaitDurable(ctx context.Context, ticket storage.Ticket) error {
	if err := b.store.Wait(ctx, ticket); err != nil {
		return fmt.Errorf("wait for the log: %w", err)
	}
	return nil
}

// Durable reports whether the broker's store keeps records, so that a ticket may
// need WaitDurable. With the memory store every ticket is durable at once.
func (b *Broker) Durable() bool { return b.durable }
