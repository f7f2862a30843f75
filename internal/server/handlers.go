package server

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/keyq/keyq/internal/proto"
)

// execute runs one request and returns its reply. It runs on the reader goroutine,
// so requests of one connection run in the order they came.
//
// TODO: let pipelined puts on one connection share an fsync (append in order here, wait
// for durability off the reader); today each waits for its own before the next is read.
func (c *conn) execute(f proto.Frame) reply {
	if c.s.testHookExecute != nil {
		c.s.testHookExecute(f)
	}
	rp := reply{op: f.Op, id: f.ID}
	switch {
	case !known(f.Op):
		rp.fail(proto.StatusUnknownOp, fmt.Sprintf("unknown opcode %#02x", uint8(f.Op)))
		return rp
	case c.stopping.Load():
		rp.fail(proto.StatusShuttingDown, "server is shutting down; request not run")
		return rp
	case f.Flags != 0:
		rp.fail(proto.StatusBadRequest,
			fmt.Sprintf("flags %#02x are not defined in version 1", f.Flags))
		return rp
	}

	// Direct calls, not a table of funcs: through a func value rp and d would escape
	// to the heap on every request.
	d := proto.NewBody(f.Body)
	switch f.Op {
	case proto.OpPut:
		c.handlePut(&rp, &d)
	case proto.OpGet:
		c.handleGet(&rp, &d)
	case proto.OpLen:
		c.handleLen(&rp, &d)
	case proto.OpPing:
		c.handlePing(&rp, &d)
	case proto.OpStats:
		c.handleStats(&rp, &d)
	}
	return rp
}

// known reports whether op is an operation of version 1.
func known(op proto.Op) bool {
	return op >= proto.OpPut && op <= proto.OpStats
}

func (c *conn) handlePut(rp *reply, d *proto.Body) {
	key, err := keyAndOptions(rp.op, d)
	if err != nil {
		rp.failErr(err)
		return
	}
	id, err := c.s.broker.Put(c.ctx, key, d.Rest())
	if err != nil {
		rp.failErr(err)
		return
	}
	rp.ok(id, nil)
}

func (c *conn) handleGet(rp *reply, d *proto.Body) {
	key, err := keyAndOptions(rp.op, d)
	if err == nil {
		err = d.End()
	}
	if err != nil {
		rp.failErr(err)
		return
	}
	msg, err := c.s.broker.Get(c.ctx, key, 0)
	if err != nil {
		rp.failErr(err)
		return
	}
	rp.ok(msg.ID, msg.Payload)
}

func (c *conn) handleLen(rp *reply, d *proto.Body) {
	key, err := d.Key()
	if err == nil {
		err = d.End()
	}
	if err != nil {
		rp.failErr(err)
		return
	}
	n, err := c.s.broker.Len(key)
	if err != nil {
		rp.failErr(err)
		return
	}
	rp.ok(uint64(n), nil)
}

func (c *conn) handlePing(rp *reply, d *proto.Body) {
	if d.Len() > proto.MaxPingBytes {
		rp.fail(proto.StatusBadRequest, fmt.Sprintf("ping body of %d bytes is over %d",
			d.Len(), proto.MaxPingBytes))
		return
	}
	rp.status, rp.body = proto.StatusOK, bytes.Clone(d.Rest())
}

func (c *conn) handleStats(rp *reply, d *proto.Body) {
	if err := d.End(); err != nil {
		rp.failErr(err)
		return
	}
	doc, err := c.s.statsJSON(c.s.maxFrame - proto.HeaderSize)
	if err != nil {
		rp.failErr(err)
		return
	}
	rp.status, rp.body = proto.StatusOK, doc
}

// keyAndOptions decodes the key and options block that start PUT and GET bodies.
// Version 1 defines no option, so any tag is refused rather than ignored.
func keyAndOptions(op proto.Op, d *proto.Body) (string, error) {
	key, err := d.Key()
	if err != nil {
		return "", err
	}
	opts, err := d.Options()
	if err != nil {
		return "", err
	}
	for tag := range opts.All() {
		return "", proto.Errorf(proto.StatusBadRequest, "unknown option tag %d for %s", tag, op)
	}
	return key, nil
}

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
	QueueStats    []queueStatsDoc `json:"queue_stats"`
}

// queueStatsDoc mirrors broker.QueueStats field for field, with JSON names.
type queueStatsDoc struct {
	Name     string `json:"name"`
	Messages int64  `json:"messages"`
	Bytes    int64  `json:"bytes"`
	Puts     uint64 `json:"puts"`
	Gets     uint64 `json:"gets"`
	Waiting  int    `json:"waiting"`
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
		QueueStats:    make([]queueStatsDoc, 0, len(bs.QueueStats)),
	}
	for _, q := range bs.QueueStats {
		doc.QueueStats = append(doc.QueueStats, queueStatsDoc(q))
	}
	return doc
}
