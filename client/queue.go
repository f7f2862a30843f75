package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// Overflow is what a put into a full queue does.
type Overflow uint8

// The overflow policies of a queue.
const (
	// OverflowReject refuses the put with an *Error of CodeQueueFull.
	OverflowReject Overflow = Overflow(proto.OverflowReject)
	// OverflowDropOldest drops the message at the head to make room.
	OverflowDropOldest Overflow = Overflow(proto.OverflowDropOldest)
)

// String returns "reject" or "drop-oldest".
func (o Overflow) String() string {
	if o == OverflowDropOldest {
		return "drop-oldest"
	}
	return "reject"
}

// QueueSettings are a queue's settings, as QueueInfo shows them. Zero values mean
// "no limit" or "the server's default".
type QueueSettings struct {
	MaxLength     int64         // most messages ready or delayed
	MaxBytes      int64         // most payload bytes ready or delayed
	Overflow      Overflow      // what a put into a full queue does
	DefaultLease  time.Duration // the lease of a Reserve that asks for none
	MaxDeliveries int           // deliveries before a message is dead-lettered
	DeadLetter    string        // the dead-letter queue ("<queue>.dlq" by default)
	DefaultTTL    time.Duration // the TTL of a Put that asks for none
	ExpiredToDLQ  bool          // expired messages are dead-lettered, not dropped
}

// QueueInfo is a queue's counts and settings.
type QueueInfo struct {
	Name         string
	Messages     int64  // ready to be taken
	Bytes        int64  // their payload bytes
	Puts, Gets   uint64 // since the queue was created
	Waiting      int64  // blocked gets and reserves
	Inflight     int64  // under a lease
	Deferred     int64  // waiting for their delay
	Expired      uint64 // ran out of time to live
	DeadLettered uint64 // moved to the dead-letter queue
	Dropped      uint64 // dropped from the head by OverflowDropOldest
	Settings     QueueSettings

	// Raw is the document exactly as the server sent it.
	Raw json.RawMessage
}

// A QueueSetting is one change made by SetQueue.
type QueueSetting struct {
	opt proto.Option
	err string
}

// SetMaxLength limits the queue to n messages (0: no limit).
func SetMaxLength(n int64) QueueSetting {
	return nonNegative("max length", n, proto.U64Option(proto.OptQueueMaxLength, uint64(n)))
}

// SetMaxBytes limits the payload bytes of the queue's messages (0: no limit).
func SetMaxBytes(n int64) QueueSetting {
	return nonNegative("max bytes", n, proto.U64Option(proto.OptQueueMaxBytes, uint64(n)))
}

// SetOverflow sets what a put into the full queue does.
func SetOverflow(o Overflow) QueueSetting {
	return QueueSetting{opt: proto.U8Option(proto.OptQueueOverflow, uint8(o))}
}

// SetDefaultLease sets the lease of a Reserve that asks for none (0: the server's).
func SetDefaultLease(d time.Duration) QueueSetting {
	return nonNegative("default lease", int64(d), proto.DurationOption(proto.OptQueueLease, d))
}

// SetMaxDeliveries dead-letters a message once it has been delivered n times
// without an ack (0: never).
func SetMaxDeliveries(n int) QueueSetting {
	if n > int(^uint32(0)) {
		return QueueSetting{err: fmt.Sprintf("max deliveries %d is over %d", n, ^uint32(0))}
	}
	return nonNegative("max deliveries", int64(n),
		proto.U32Option(proto.OptQueueMaxDeliveries, uint32(n)))
}

// SetDeadLetter names the queue's dead-letter queue ("": "<queue>.dlq").
func SetDeadLetter(queue string) QueueSetting {
	return QueueSetting{opt: proto.Option{Tag: proto.OptQueueDeadLetter, Value: []byte(queue)}}
}

// SetDefaultTTL sets the time to live of a Put that asks for none (0: none).
func SetDefaultTTL(d time.Duration) QueueSetting {
	return nonNegative("default ttl", int64(d), proto.DurationOption(proto.OptQueueTTL, d))
}

// SetExpiredToDLQ makes expired messages go to the dead-letter queue (true) or be
// dropped (false).
func SetExpiredToDLQ(on bool) QueueSetting {
	var v uint8
	if on {
		v = 1
	}
	return QueueSetting{opt: proto.U8Option(proto.OptQueueExpiredToDLQ, v)}
}

func nonNegative(name string, v int64, opt proto.Option) QueueSetting {
	if v < 0 {
		return QueueSetting{err: fmt.Sprintf("%s of %d is negative", name, v)}
	}
	return QueueSetting{opt: opt}
}

// SetQueue changes the settings of queue that changes name, leaving the others as
// they are, and returns the queue's info afterwards. Settings are kept durably.
func (c *Client) SetQueue(
	ctx context.Context, queue string, changes ...QueueSetting,
) (*QueueInfo, error) {
	opts := make([]proto.Option, 0, len(changes))
	for _, ch := range changes {
		if ch.err != "" {
			return nil, &Error{Op: "queue_set", Code: CodeBadRequest, Text: ch.err}
		}
		opts = append(opts, ch.opt)
	}
	return c.queueCall(ctx, proto.OpQueueSet, queue, opts)
}

// QueueInfo returns a queue's counts and settings. A queue that does not exist has
// zero counts and default settings.
func (c *Client) QueueInfo(ctx context.Context, queue string) (*QueueInfo, error) {
	return c.queueCall(ctx, proto.OpQueueShow, queue, nil)
}

// queueDoc is the JSON document of QUEUE_SHOW and QUEUE_SET replies.
type queueDoc struct {
	Name         string `json:"name"`
	Messages     int64  `json:"messages"`
	Bytes        int64  `json:"bytes"`
	Puts         uint64 `json:"puts"`
	Gets         uint64 `json:"gets"`
	Waiting      int64  `json:"waiting"`
	Inflight     int64  `json:"inflight"`
	Deferred     int64  `json:"deferred"`
	Expired      uint64 `json:"expired"`
	DeadLettered uint64 `json:"dead_lettered"`
	Dropped      uint64 `json:"dropped"`
	Settings     struct {
		MaxLength      int64  `json:"max_length"`
		MaxBytes       int64  `json:"max_bytes"`
		Overflow       string `json:"overflow"`
		DefaultLeaseMS int64  `json:"default_lease_ms"`
		MaxDeliveries  int    `json:"max_deliveries"`
		DeadLetter     string `json:"dead_letter"`
		DefaultTTLMS   int64  `json:"default_ttl_ms"`
		ExpiredToDLQ   bool   `json:"expired_to_dlq"`
	} `json:"settings"`
}

// queueCall sends a QUEUE_SET or QUEUE_SHOW of queue with opts.
func (c *Client) queueCall(
	ctx context.Context, op proto.Op, queue string, opts []proto.Option,
) (*QueueInfo, error) {
	cl := getCall(op)
	start := len(cl.frame)
	frame, err := appendKeyAndOptions(beginFrame(cl.frame, op), opName(op), queue, opts...)
	if err != nil {
		putCall(cl)
		return nil, err
	}
	cl.frame = endFrame(frame, start)
	return do(c, ctx, cl, decodeQueueInfo)
}

// decodeQueueInfo decodes the queue document of QUEUE_SET and QUEUE_SHOW.
func decodeQueueInfo(cl *call) (*QueueInfo, error) {
	if err := cl.expectOK(); err != nil {
		return nil, err
	}
	body := cl.takeBody()
	var doc queueDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, cl.badReply(fmt.Errorf("decode the queue document: %w", err))
	}

	s := doc.Settings
	info := &QueueInfo{
		Name: doc.Name, Messages: doc.Messages, Bytes: doc.Bytes, Puts: doc.Puts,
		Gets: doc.Gets, Waiting: doc.Waiting, Inflight: doc.Inflight, Deferred: doc.Deferred,
		Expired: doc.Expired, DeadLettered: doc.DeadLettered, Dropped: doc.Dropped,
		Settings: QueueSettings{
			MaxLength:     s.MaxLength,
			MaxBytes:      s.MaxBytes,
			DefaultLease:  time.Duration(s.DefaultLeaseMS) * time.Millisecond,
			MaxDeliveries: s.MaxDeliveries,
			DeadLetter:    s.DeadLetter,
			DefaultTTL:    time.Duration(s.DefaultTTLMS) * time.Millisecond,
			ExpiredToDLQ:  s.ExpiredToDLQ,
		},
		Raw: json.RawMessage(body),
	}
	if s.Overflow == "drop-oldest" {
		info.Settings.Overflow = OverflowDropOldest
	}
	return info, nil
}
