package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// Headers of a reserved message, besides MessageIDHeader.
const (
	DeliveryIDHeader    = "Keyq-Delivery-Id"
	DeliveryCountHeader = "Keyq-Delivery-Count"
	LeaseExpiresHeader  = "Keyq-Lease-Expires"
)

// maxDuration bounds a delay, time to live or lease in a query: a longer one is
// refused rather than cut, since cutting it would change what becomes of a message.
const maxDuration = 100 * 365 * 24 * time.Hour

type touchReply struct {
	Deadline       time.Time `json:"deadline"`
	DeadlineUnixMS int64     `json:"deadline_unix_ms"`
}

// handleReserve takes the head message under a lease: 200 with the raw message and
// its delivery in headers, 204 if none came. The lease is not bound to the HTTP
// connection: it lasts until acked, nacked or expired.
func (s *Server) handleReserve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	d, err := s.reserve(r)
	s.metrics.ObserveRequest(Door, "reserve", time.Since(start), err)
	switch {
	case errors.Is(err, broker.ErrEmpty):
		w.WriteHeader(http.StatusNoContent)
	case err != nil:
		s.writeError(w, r, err)
	default:
		h := w.Header()
		setMessageHeaders(h, d.Message)
		h.Set(DeliveryIDHeader, strconv.FormatUint(d.DeliveryID, 10))
		h.Set(DeliveryCountHeader, strconv.Itoa(d.Count))
		h.Set(LeaseExpiresHeader, d.Deadline.UTC().Format(time.RFC3339Nano))
		w.WriteHeader(http.StatusOK)
		w.Write(d.Payload) // a write error means the client left; the lease will run out
		d.Release()        // written out: the buffer may serve a later put
	}
}

func (s *Server) reserve(r *http.Request) (broker.Delivery, error) {
	q := r.URL.Query()
	wait, err := parseDuration("wait", q.Get("wait"), s.maxWait)
	if err != nil {
		return broker.Delivery{}, err
	}
	lease, err := parseDuration("lease", q.Get("lease"), maxDuration)
	if err != nil {
		return broker.Delivery{}, err
	}

	// The wait ends when the client goes away or the server shuts down.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.stopping, cancel)
	defer stop()

	queue := r.PathValue("queue")
	ds, err := s.broker.Reserve(ctx, []string{queue},
		broker.ReserveOptions{Wait: wait, Lease: lease})
	s.noteErr(err)
	if len(ds) == 0 {
		if err == nil {
			err = broker.ErrEmpty
		}
		if errors.Is(err, context.Canceled) && s.stopping.Err() != nil {
			err = fmt.Errorf("reserve from queue %q: %w", queue, broker.ErrClosed)
		}
		return broker.Delivery{}, err
	}
	if ctx.Err() != nil {
		// Leased just as the client left: nobody will read it, so it goes back now
		// rather than when the lease runs out.
		s.giveBack(ds[0])
		return broker.Delivery{}, ctx.Err()
	}
	return ds[0], nil
}

func (s *Server) giveBack(d broker.Delivery) {
	if err := s.broker.Nack(context.Background(), d.DeliveryID, 0); err != nil {
		s.log.Warn("cannot give back a delivery whose client left", "queue", d.Queue,
			"msg_id", d.ID, "err", err)
	}
}

// handleAck ends a delivery for good: 204.
func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	s.deliveryOp(w, r, "ack", func(ctx context.Context, id uint64) error {
		return s.broker.Ack(ctx, id)
	})
}

// handleNack gives a delivery's message back, after ?delay= if given: 204.
func (s *Server) handleNack(w http.ResponseWriter, r *http.Request) {
	s.deliveryOp(w, r, "nack", func(ctx context.Context, id uint64) error {
		delay, err := parseDuration("delay", r.URL.Query().Get("delay"), maxDuration)
		if err != nil {
			return err
		}
		return s.broker.Nack(ctx, id, delay)
	})
}

// handleTouch extends a lease to ?lease= from now (default: its length): 200 with
// the new deadline.
func (s *Server) handleTouch(w http.ResponseWriter, r *http.Request) {
	var deadline time.Time
	ok := s.deliveryOp(w, r, "touch", func(ctx context.Context, id uint64) error {
		lease, err := parseDuration("lease", r.URL.Query().Get("lease"), maxDuration)
		if err != nil {
			return err
		}
		deadline, err = s.broker.Touch(ctx, id, lease)
		return err
	})
	if ok {
		writeJSON(w, http.StatusOK, touchReply{
			Deadline: deadline.UTC(), DeadlineUnixMS: deadline.UnixMilli()})
	}
}

// deliveryOp runs fn on the delivery id of the path. On success it answers 204,
// except for touch, whose caller answers; it reports whether fn succeeded.
func (s *Server) deliveryOp(
	w http.ResponseWriter, r *http.Request, op string,
	fn func(ctx context.Context, id uint64) error,
) bool {
	start := time.Now()
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		err = fmt.Errorf("%w: delivery id %q is not a number", errBadRequest, r.PathValue("id"))
	} else {
		err = fn(r.Context(), id)
	}
	s.noteErr(err)
	s.metrics.ObserveRequest(Door, op, time.Since(start), err)
	if err != nil {
		s.writeError(w, r, err)
		return false
	}
	if op != "touch" {
		w.WriteHeader(http.StatusNoContent)
	}
	return true
}
