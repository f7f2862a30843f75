package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// Stats is the server's STATS document (docs/PROTOCOL.md): totals since the server
// started and one entry per queue. Counters are read while traffic goes on, so the
// totals may be off by the operations in flight.
type Stats struct {
	// Version is the server's version, such as "0.1.0".
	Version string `json:"version"`
	// UptimeSeconds is how long the server has been running.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Connections is the number of client connections open now.
	Connections int64 `json:"connections"`
	// Queues is the number of queues in the server's table.
	Queues int64 `json:"queues"`
	// Messages and Bytes count what is waiting in all queues.
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
	// Puts, Gets and EmptyGets count operations since the server started.
	Puts      uint64 `json:"puts"`
	Gets      uint64 `json:"gets"`
	EmptyGets uint64 `json:"empty_gets"`
	// Waiting is the number of blocked gets and reserves waiting for a message.
	Waiting int64 `json:"waiting"`
	// HeldBytes is what counts toward the server's memory limit (payloads, 64 bytes
	// per message, room reserved by busy queues), and MaxMemory that limit; both are
	// 0 when the server has none.
	HeldBytes int64 `json:"held_bytes"`
	MaxMemory int64 `json:"max_memory"`
	// QueueStats has one entry per queue, sorted by name. A server may list only
	// some of its queues when it has very many.
	QueueStats []QueueStats `json:"queue_stats"`

	// Raw is the document exactly as the server sent it, with any field that this
	// version of the client does not know.
	Raw json.RawMessage `json:"-"`
}

// QueueStats describes one queue in Stats.
type QueueStats struct {
	// Name is the queue's name (its key).
	Name string `json:"name"`
	// Messages and Bytes count what is waiting in the queue.
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
	// Puts and Gets count operations since the queue was created.
	Puts uint64 `json:"puts"`
	Gets uint64 `json:"gets"`
	// Waiting is the number of blocked gets and reserves waiting on the queue.
	Waiting int64 `json:"waiting"`
	// Inflight counts messages under a lease; Deferred those waiting for their delay.
	Inflight int64 `json:"inflight"`
	Deferred int64 `json:"deferred"`
	// Expired, DeadLettered and Dropped count messages that ran out of time to live,
	// went to the dead-letter queue, or were dropped by the drop-oldest overflow
	// policy, since the server started.
	Expired      uint64 `json:"expired"`
	DeadLettered uint64 `json:"dead_lettered"`
	Dropped      uint64 `json:"dropped"`
}

// Uptime returns UptimeSeconds as a Duration.
func (s *Stats) Uptime() time.Duration {
	return time.Duration(s.UptimeSeconds * float64(time.Second))
}

// Stats asks the server for its totals and per-queue counts.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	cl := getCall(proto.OpStats)
	cl.frame = endFrame(beginFrame(cl.frame, proto.OpStats), 0)
	return do(c, ctx, cl, decodeStats)
}

// decodeStats decodes the STATS document.
func decodeStats(cl *call) (*Stats, error) {
	body := cl.takeBody()
	s := &Stats{Raw: json.RawMessage(body)}
	if err := json.Unmarshal(body, s); err != nil {
		return nil, fmt.Errorf("keyq stats: decode the server's document: %w", err)
	}
	return s, nil
}
