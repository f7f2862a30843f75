package server

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
)

// handleQueueSet changes the settings that the request's options name and leaves
// the others as they were; it answers with the queue's document, as QUEUE_SHOW.
func (c *conn) handleQueueSet(rp *reply, d *proto.Body) {
	key, err := d.Key()
	if err != nil {
		rp.failErr(err)
		return
	}
	opts, err := d.Options()
	if err == nil {
		err = d.End()
	}
	if err != nil {
		rp.failErr(err)
		return
	}

	// Applied under the queue's lock: two admins changing one queue at once both
	// get their changes in.
	_, err = c.s.broker.UpdateQueue(c.ctx, key, func(s *broker.QueueSettings) error {
		return applySettings(s, opts)
	})
	if err != nil {
		rp.failErr(err)
		return
	}
	c.queueDoc(rp, key)
}

func (c *conn) handleQueueShow(rp *reply, d *proto.Body) {
	key, err := keyAndOptions(rp.op, d)
	if err == nil {
		err = d.End()
	}
	if err == nil {
		err = broker.ValidateKey(key)
	}
	if err != nil {
		rp.failErr(err)
		return
	}
	c.queueDoc(rp, key)
}

// queueDoc answers with the JSON document of one queue: its counts and settings.
func (c *conn) queueDoc(rp *reply, key string) {
	settings, err := c.s.broker.QueueSettings(key)
	if err != nil {
		rp.failErr(err)
		return
	}
	qs, _ := c.s.broker.QueueStats(key)
	qs.Settings = settings

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(newQueueStatsDoc(qs, true)); err != nil {
		rp.failErr(fmt.Errorf("encode queue %q: %w", key, err))
		return
	}
	rp.status, rp.body = proto.StatusOK, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// applySettings changes s as each QUEUE_SET option says.
func applySettings(s *broker.QueueSettings, opts proto.Options) error {
	for tag, v := range opts.All() {
		if err := applySetting(s, tag, v); err != nil {
			return err
		}
	}
	return nil
}

func applySetting(s *broker.QueueSettings, tag uint8, v []byte) (err error) {
	switch tag {
	case proto.OptQueueMaxLength:
		s.MaxLength, err = intOption(tag, v, 1<<62)
	case proto.OptQueueMaxBytes:
		var n int
		n, err = intOption(tag, v, 1<<62)
		s.MaxBytes = int64(n)
	case proto.OptQueueOverflow:
		var o uint8
		if o, err = proto.OptionU8(tag, v); err == nil && o > proto.OverflowDropOldest {
			err = proto.Errorf(proto.StatusBadRequest, "overflow policy %d is not 0 or 1", o)
		}
		s.Overflow = broker.Overflow(o)
	case proto.OptQueueLease:
		s.DefaultLease, err = durationOption(tag, v)
	case proto.OptQueueMaxDeliveries:
		var n uint32
		n, err = proto.OptionU32(tag, v)
		s.MaxDeliveries = int(n)
	case proto.OptQueueDeadLetter:
		s.DeadLetter = string(v)
		if s.DeadLetter != "" {
			err = broker.ValidateKey(s.DeadLetter)
		}
	case proto.OptQueueTTL:
		s.DefaultTTL, err = durationOption(tag, v)
	case proto.OptQueueExpiredToDLQ:
		s.ExpiredToDLQ, err = boolOption(tag, v)
	default:
		err = unknownOption(proto.OpQueueSet, tag)
	}
	return err
}

// intOption decodes a u64 option that must be at most limit.
func intOption(tag uint8, v []byte, limit uint64) (int, error) {
	n, err := proto.OptionU64(tag, v)
	if err == nil && n > limit {
		err = proto.Errorf(proto.StatusBadRequest, "option %d: %d is over %d", tag, n, limit)
	}
	return int(n), err
}
