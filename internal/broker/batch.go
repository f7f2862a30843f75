package broker

import (
	"context"
	"time"
)

// PutOptions are the optional parts of a put.
type PutOptions struct {
	Delay time.Duration // not delivered before now+Delay (0: at once)
	TTL   time.Duration // expires after this long (0: the queue's default TTL, if any)
}

// PutWith is Put with options.
func (b *Broker) PutWith(
	ctx context.Context, queue string, payload []byte, o PutOptions,
) (uint64, error) {
	return 0, errNotYet
}

// PutBatch stores all payloads or none, under one hold of the queue's lock and one
// wait for the store, and returns their IDs in order.
func (b *Broker) PutBatch(
	ctx context.Context, queue string, payloads [][]byte, o PutOptions,
) ([]uint64, error) {
	return nil, errNotYet
}

// GetBatch takes up to max messages from the first non-empty queue among queues, in
// the order given, waiting as GetAny does when all are empty.
func (b *Broker) GetBatch(
	ctx context.Context, queues []string, max int, wait time.Duration,
) ([]Message, error) {
	return nil, errNotYet
}
