package broker

import (
	"context"
	"errors"
	"time"
)

// DefaultLease is the lease of a reserve when neither the request nor the queue's
// settings give one.
const DefaultLease = 30 * time.Second

// errNotYet marks the API of issue 4 while its bodies are written.
var errNotYet = errors.New("broker: not implemented yet")

// ReserveOptions say how a reserve waits and leases. Wait is as for GetAny; Lease 0
// means the queue's default lease (or DefaultLease); Max is the batch size (0 or 1:
// one); Owner nil means the leases live until acked or expired (HTTP, CLI).
type ReserveOptions struct {
	Wait  time.Duration
	Lease time.Duration
	Max   int
	Owner *Owner
}

// Delivery is one message handed out under a lease.
type Delivery struct {
	Message
	DeliveryID uint64    // unique across the server and across restarts; never reused
	Count      int       // 1 on the first delivery, then +1 per redelivery
	Deadline   time.Time // when the lease runs out (for display; timing is monotonic)
}

// Owner groups the leases bound to one consumer connection: ReleaseOwner returns
// all of them to their queues at once, when the connection closes.
type Owner struct{}

// NewOwner returns an Owner to bind leases to.
func (b *Broker) NewOwner() *Owner { return &Owner{} }

// ReleaseOwner returns every lease of o still outstanding to the head of its queue,
// as if it had expired, and makes o refuse new leases.
func (b *Broker) ReleaseOwner(o *Owner) {}

// Reserve takes up to o.Max messages from the first non-empty queue among queues,
// in the order given, under a lease each; if all are empty it waits as GetAny does.
// It returns ErrEmpty when the wait runs out.
func (b *Broker) Reserve(
	ctx context.Context, queues []string, o ReserveOptions,
) ([]Delivery, error) {
	return nil, errNotYet
}

// Ack ends the delivery: its message is gone for good. It returns ErrNoDelivery if
// the delivery is unknown, already acked or nacked, or its lease ran out.
func (b *Broker) Ack(ctx context.Context, deliveryID uint64) error { return errNotYet }

// Nack ends the delivery and returns its message to the head of its queue (delay 0)
// or makes it ready again after delay. Errors as for Ack.
func (b *Broker) Nack(ctx context.Context, deliveryID uint64, delay time.Duration) error {
	return errNotYet
}

// Touch extends the delivery's lease to lease from now (0: the lease it was given)
// and returns the new deadline. Errors as for Ack.
func (b *Broker) Touch(
	ctx context.Context, deliveryID uint64, lease time.Duration,
) (time.Time, error) {
	return time.Time{}, errNotYet
}
