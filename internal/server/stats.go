package server

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/keyq/keyq/internal/broker"
)

// maxStatsQueues bounds the queues listed in a STATS reply; the totals cover every
// queue.
const maxStatsQueues = 1000

// statsDoc is the JSON document of a STATS reply (see docs/PROTOCOL.md).
type statsDoc struct {
	Version       string          `json:"version"`
	UptimeSeconds float64         `json:"uptime_seconds"`
	Connections   int64           `json:"connections"`
	Queues        int             `json:"queues"`
	Messages      int64           `json:"messages"`
	Bytes         int64           `json:"bytes"`
	Puts          uint64          `json:"puts"`
	Gets          uint64          `json:"gets"`
	EmptyGets     uint64          `json:"empty_gets"`
	Waiting       int64           `json:"waiting"`
	HeldBytes     int64           `json:"held_bytes"`
	MaxMemory     int64           `json:"max_memory"`
	QueueStats    []queueStatsDoc `json:"queue_stats"`
}

// queueStatsDoc is one queue in STATS, and the QUEUE_SHOW document. Settings are
// left out of STATS for a queue that has none.
type queueStatsDoc struct {
	Name         string       `json:"name"`
	Messages     int64        `json:"messages"`
	Bytes        int64        `json:"bytes"`
	Puts         uint64       `json:"puts"`
	Gets         uint64       `json:"gets"`
	Waiting      int          `json:"waiting"`
	Inflight     int64        `json:"inflight"`
	Deferred     int64        `json:"deferred"`
	Expired      uint64       `json:"expired"`
	DeadLettered uint64       `json:"dead_lettered"`
	Dropped      uint64       `json:"dropped"`
	Settings     *settingsDoc `json:"settings,omitempty"`
}

// settingsDoc is broker.QueueSettings with JSON names; durations in milliseconds,
// and the dead-letter queue's actual name.
type settingsDoc struct {
	MaxLength      int    `json:"max_length"`
	MaxBytes       int64  `json:"max_bytes"`
	Overflow       string `json:"overflow"`
	DefaultLeaseMS int64  `json:"default_lease_ms"`
	MaxDeliveries  int    `json:"max_deliveries"`
	DeadLetter     string `json:"dead_letter"`
	DefaultTTLMS   int64  `json:"default_ttl_ms"`
	ExpiredToDLQ   bool   `json:"expired_to_dlq"`
}

func newQueueStatsDoc(q broker.QueueStats, always bool) queueStatsDoc {
	doc := queueStatsDoc{
		Name: q.Name, Messages: q.Messages, Bytes: q.Bytes, Puts: q.Puts, Gets: q.Gets,
		Waiting: q.Waiting, Inflight: q.Inflight, Deferred: q.Deferred, Expired: q.Expired,
		DeadLettered: q.DeadLettered, Dropped: q.Dropped,
	}
	if always || q.Settings != (broker.QueueSettings{}) {
		doc.Settings = newSettingsDoc(q.Name, q.Settings)
	}
	return doc
}

func newSettingsDoc(queue string, s broker.QueueSettings) *settingsDoc {
	dlq := s.DeadLetter
	if dlq == "" {
		dlq = queue + ".dlq"
	}
	return &settingsDoc{
		MaxLength:      s.MaxLength,
		MaxBytes:       s.MaxBytes,
		Overflow:       s.Overflow.String(),
		DefaultLeaseMS: s.DefaultLease.Milliseconds(),
		MaxDeliveries:  s.MaxDeliveries,
		DeadLetter:     dlq,
		DefaultTTLMS:   s.DefaultTTL.Milliseconds(),
		ExpiredToDLQ:   s.ExpiredToDLQ,
	}
}

// statsJSON encodes the STATS document in at most limit bytes, listing fewer queues
// if all of them would not fit (a small max message makes a small max frame).
func (s *Server) statsJSON(limit int) ([]byte, error) {
	doc := s.stats()
	for {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			return nil, fmt.Errorf("encode stats: %w", err)
		}
		b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if len(b) <= limit || len(doc.QueueStats) == 0 {
			return b, nil
		}
		doc.QueueStats = doc.QueueStats[:len(doc.QueueStats)/2]
	}
}

func (s *Server) stats() statsDoc {
	bs := s.broker.Stats(maxStatsQueues)
	doc := statsDoc{
		Version:       s.cfg.Version,
		UptimeSeconds: bs.Uptime.Seconds(),
		Connections:   s.active.Load(),
		Queues:        bs.Queues,
		Messages:      bs.Messages,
		Bytes:         bs.Bytes,
		Puts:          bs.Puts,
		Gets:          bs.Gets,
		EmptyGets:     bs.EmptyGets,
		Waiting:       bs.Waiting,
		HeldBytes:     bs.HeldBytes,
		MaxMemory:     bs.MaxHeld,
		QueueStats:    make([]queueStatsDoc, 0, len(bs.QueueStats)),
	}
	for _, q := range bs.QueueStats {
		doc.QueueStats = append(doc.QueueStats, newQueueStatsDoc(q, false))
	}
	return doc
}
