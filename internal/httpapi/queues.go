package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// queuesPrefix is the path under which every segment names a queue.
const queuesPrefix = "/v1/queues/"

// queueReply describes one queue, with the field names of the protocol's STATS.
type queueReply struct {
	Name     string `json:"name"`
	Messages int64  `json:"messages"`
	Bytes    int64  `json:"bytes"`
	Puts     uint64 `json:"puts"`
	Gets     uint64 `json:"gets"`
	Waiting  int    `json:"waiting"`

	Inflight     int64  `json:"inflight"`
	Deferred     int64  `json:"deferred"`
	Expired      uint64 `json:"expired"`
	DeadLettered uint64 `json:"dead_lettered"`
	Dropped      uint64 `json:"dropped"`
}

// listReply is the server's totals and its queues, as the protocol's STATS has them.
type listReply struct {
	UptimeSeconds float64      `json:"uptime_seconds"`
	Queues        int          `json:"queues"`
	Messages      int64        `json:"messages"`
	Bytes         int64        `json:"bytes"`
	Puts          uint64       `json:"puts"`
	Gets          uint64       `json:"gets"`
	EmptyGets     uint64       `json:"empty_gets"`
	Waiting       int64        `json:"waiting"`
	HeldBytes     int64        `json:"held_bytes"`
	MaxMemory     int64        `json:"max_memory"`
	QueueStats    []queueReply `json:"queue_stats"`
}

type putReply struct {
	ID uint64 `json:"id"`
}

type deleteReply struct {
	Deleted int `json:"deleted"`
}

// handlePut appends the request body to the queue: 201 with the message id.
func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id, err := s.put(w, r)
	s.metrics.ObserveRequest(Door, "put", time.Since(start), err)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set(MessageIDHeader, strconv.FormatUint(id, 10))
	writeJSON(w, http.StatusCreated, putReply{ID: id})
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) (uint64, error) {
	queue := r.PathValue("queue")
	// Refuse a bad name before reading a body that would be thrown away.
	if err := broker.ValidateKey(queue); err != nil {
		return 0, err
	}
	var o broker.PutOptions
	var err error
	if o.Delay, err = parseDuration("delay", r.URL.Query().Get("delay"), maxDuration); err != nil {
		return 0, err
	}
	if o.TTL, err = parseDuration("ttl", r.URL.Query().Get("ttl"), maxDuration); err != nil {
		return 0, err
	}
	buf, err := s.readMessage(w, r)
	if err != nil {
		return 0, err
	}
	defer putBuffer(buf)

	var id uint64
	if o == (broker.PutOptions{}) {
		id, err = s.broker.Put(r.Context(), queue, buf.Bytes())
	} else {
		id, err = s.broker.PutWith(r.Context(), queue, buf.Bytes(), o)
	}
	s.noteErr(err)
	return id, err
}

// readMessage reads the body, refusing one over the broker's message limit without
// reading it whole. The buffer goes back with putBuffer once the broker copied it.
func (s *Server) readMessage(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, error) {
	limit := s.broker.MaxMessageBytes()
	if r.ContentLength > int64(limit) {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d",
			broker.ErrMessageTooLarge, r.ContentLength, limit)
	}

	buf := getBuffer()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err == nil {
		return buf, nil
	}
	putBuffer(buf)

	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, fmt.Errorf("%w: over the limit of %d", broker.ErrMessageTooLarge, limit)
	}
	return nil, fmt.Errorf("%w: read message body: %w", errBadRequest, err)
}

// handleGet takes the head message: 200 with the raw message, 204 if none came.
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	msg, op, err := s.get(r)
	s.metrics.ObserveRequest(Door, op, time.Since(start), err)
	switch {
	case errors.Is(err, broker.ErrEmpty):
		w.WriteHeader(http.StatusNoContent)
	case err != nil:
		s.writeError(w, r, err)
	default:
		setMessageHeaders(w.Header(), msg)
		w.WriteHeader(http.StatusOK)
		w.Write(msg.Payload) // a write error means the client left; nothing to tell
		msg.Release()        // written out: the buffer may serve a later put
	}
}

// Headers of a message taken from a dead-letter queue: where it came from and why it
// was set aside, as the native protocol's DEADLETTER option carries them.
const (
	DeadLetterQueueHeader  = "Keyq-Dead-Letter-Queue"
	DeadLetterIDHeader     = "Keyq-Dead-Letter-Id"
	DeadLetterReasonHeader = "Keyq-Dead-Letter-Reason"
	DeadLetterCountHeader  = "Keyq-Dead-Letter-Count"
)

// setMessageHeaders sets the headers of a 200 answer whose body is msg's payload.
func setMessageHeaders(h http.Header, msg broker.Message) {
	h.Set(MessageIDHeader, strconv.FormatUint(msg.ID, 10))
	if dl := msg.DeadLetter; dl != nil {
		h.Set(DeadLetterQueueHeader, dl.Queue)
		h.Set(DeadLetterIDHeader, strconv.FormatUint(dl.ID, 10))
		h.Set(DeadLetterReasonHeader, dl.Reason)
		h.Set(DeadLetterCountHeader, strconv.Itoa(dl.Count))
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(msg.Payload)))
	h.Set("Cache-Control", "no-store")
}

// get takes a message, waiting as the query asks. Its op is "get", or "get_wait" when
// a wait was asked, so that blocked time stays out of the plain get's latency.
func (s *Server) get(r *http.Request) (broker.Message, string, error) {
	wait, err := parseDuration("wait", r.URL.Query().Get("wait"), s.maxWait)
	if err != nil {
		return broker.Message{}, "get", err
	}
	op := "get"
	if wait > 0 {
		op = "get_wait"
	}

	// The wait ends when the client goes away or the server shuts down.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.stopping, cancel)
	defer stop()

	queue := r.PathValue("queue")
	msg, err := s.broker.Get(ctx, queue, wait)
	s.noteErr(err)
	if err == nil && ctx.Err() != nil {
		// Taken just as the client left: nobody will read it, so it goes back.
		s.putBack(msg)
		err = ctx.Err()
	}
	if errors.Is(err, context.Canceled) && s.stopping.Err() != nil {
		err = fmt.Errorf("get from queue %q: %w", queue, broker.ErrClosed)
	}
	return msg, op, err
}

// putBack returns a message whose client left to the head of its queue, where the next
// get finds it. It comes back under a new id.
func (s *Server) putBack(msg broker.Message) {
	if _, err := s.broker.PutFront(context.Background(), msg.Queue, msg.Payload); err != nil {
		s.log.Error("message lost: cannot put it back", "queue", msg.Queue,
			"msg_id", msg.ID, "err", err)
	}
	msg.Release() // PutFront copied it
}

// handleQueue describes one queue; an unknown queue is described as empty, as LEN
// counts it.
func (s *Server) handleQueue(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reply, err := s.queue(r.PathValue("queue"))
	s.metrics.ObserveRequest(Door, "len", time.Since(start), err)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// queue reads the stats of one queue.
func (s *Server) queue(name string) (queueReply, error) {
	if err := broker.ValidateKey(name); err != nil {
		return queueReply{}, err
	}
	qs, found := s.broker.QueueStats(name)
	if !found {
		return queueReply{Name: name}, nil
	}
	return newQueueReply(qs), nil
}

// handleList lists the queues with their stats, up to ?limit= queues by name.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reply, err := s.list(r.URL.Query().Get("limit"))
	s.metrics.ObserveRequest(Door, "list", time.Since(start), err)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

func (s *Server) list(limitParam string) (listReply, error) {
	limit := 0
	if limitParam != "" {
		n, err := strconv.Atoi(limitParam)
		if err != nil || n < 0 {
			return listReply{}, fmt.Errorf("%w: limit %q is not a count", errBadRequest,
				limitParam)
		}
		limit = n
	}

	st := s.broker.Stats(limit)
	reply := listReply{
		UptimeSeconds: st.Uptime.Seconds(),
		Queues:        st.Queues,
		Messages:      st.Messages,
		Bytes:         st.Bytes,
		Puts:          st.Puts,
		Gets:          st.Gets,
		EmptyGets:     st.EmptyGets,
		Waiting:       st.Waiting,
		HeldBytes:     st.HeldBytes,
		MaxMemory:     st.MaxHeld,
		QueueStats:    make([]queueReply, 0, len(st.QueueStats)),
	}
	for _, qs := range st.QueueStats {
		reply.QueueStats = append(reply.QueueStats, newQueueReply(qs))
	}
	return reply, nil
}

// handleDelete drops every message of a queue and says how many there were.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	n, err := s.delete(r.Context(), r.PathValue("queue"))
	s.metrics.ObserveRequest(Door, "delete", time.Since(start), err)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, deleteReply{Deleted: n})
}

func (s *Server) delete(ctx context.Context, queue string) (int, error) {
	n, err := s.broker.Delete(ctx, queue)
	s.noteErr(err)
	return n, err
}

// emptyNameGuard answers a request for the empty queue name (/v1/queues//get,
// DELETE /v1/queues/) with the broker's refusal of it. Without it the mux would
// redirect the doubled slash to another route.
func emptyNameGuard(s *Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.EscapedPath(), queuesPrefix)
		if ok && (rest == "" || rest[0] == '/') {
			s.writeError(w, r, broker.ValidateKey(""))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func newQueueReply(qs broker.QueueStats) queueReply {
	return queueReply{
		Name:     qs.Name,
		Messages: qs.Messages,
		Bytes:    qs.Bytes,
		Puts:     qs.Puts,
		Gets:     qs.Gets,
		Waiting:  qs.Waiting,

		Inflight:     qs.Inflight,
		Deferred:     qs.Deferred,
		Expired:      qs.Expired,
		DeadLettered: qs.DeadLettered,
		Dropped:      qs.Dropped,
	}
}

// writeJSON answers with v as JSON. Names are escaped per JSON's rules, with no HTML
// escaping.
func writeJSON(w http.ResponseWriter, code int, v any) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Our replies hold only strings and numbers: this cannot happen.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"code":"internal","status":23,"message":"encode reply"}}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(code)
	w.Write(body.Bytes())
}

// maxPooledBuffer is the largest body buffer kept for reuse.
const maxPooledBuffer = 64 << 10

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer {
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	return buf
}

func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuffer {
		bufferPool.Put(buf)
	}
}
