package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to an hour, to 3 digits.
const (
	histMinMicros = 1
	histMaxMicros = int64(time.Hour / time.Microsecond)
	histDigits    = 3
)

// worker is one producer or consumer with its own connection. Its fields are
// written only by its goroutine and read by Run after the goroutine ended.
type worker struct {
	run   *run
	index int // among the workers of its role
	of    int // number of workers of its role
	conn  Conn

	latency  *hdrhistogram.Histogram // put: round trip; consume: end to end
	lag      *hdrhistogram.Histogram // paced producer: how late each round was sent
	service  *hdrhistogram.Histogram // paced producer: from each send to its ack
	acked    seqSet                  // producer: sequence numbers acknowledged
	seen     *tracker                // consumer: what it took
	corrupt  int64                   // consumer: messages that failed to decode
	lastTake time.Duration           // consumer: when it last took a message
	drained  bool                    // consumer: it stopped because its queues were empty
}

func newWorker(r *run, index, of int, conn Conn) *worker {
	return &worker{
		run:     r,
		index:   index,
		of:      of,
		conn:    conn,
		latency: hdrhistogram.New(histMinMicros, histMaxMicros, histDigits),
		lag:     hdrhistogram.New(histMinMicros, histMaxMicros, histDigits),
		service: hdrhistogram.New(histMinMicros, histMaxMicros, histDigits),
		seen:    newTracker(r.cfg.Producers),
	}
}

// owned returns the queues worker index of n works on: every queue q with
// q mod n == index, or queue index mod len(queues) when workers outnumber queues.
func owned(index, n int, queues []string) []string {
	if n >= len(queues) {
		return []string{queues[index%len(queues)]}
	}
	var out []string
	for q := index; q < len(queues); q += n {
		out = append(out, queues[q])
	}
	return out
}

// produce puts rounds of Depth messages until budget (-1: no limit) is spent, the
// run's duration is over, or a request fails.
func (w *worker) produce(ctx context.Context, budget int64) {
	defer w.doneProducing()
	queues := owned(w.index, w.of, w.run.queues)
	bufs := make([][]byte, w.run.cfg.Depth*w.run.cfg.Batch)
	for i := range bufs {
		bufs[i] = newPayload(w.run.cfg.MessageBytes)
	}

	var p *pacer
	if w.run.cfg.Rate > 0 {
		p = newPacer()
		defer p.close()
	}
	var seq uint64
	for round := 0; ctx.Err() == nil && time.Now().Before(w.run.stop); round++ {
		n := len(bufs)
		if budget >= 0 {
			n = int(min(int64(n), budget-int64(seq)))
		}
		if n <= 0 {
			return
		}
		queue := queues[round%len(queues)]
		sent, ok := w.pace(ctx, p, seq)
		if !ok {
			return
		}
		if err := w.putRound(ctx, queue, bufs[:n], seq, sent); err != nil {
			w.run.errs.add(fmt.Errorf("put to %s: %w", queue, err))
			return
		}
		seq += uint64(n)
	}
}

// pace returns when message seq is due. Without a pacer (no rate) that is now; with
// one, it sleeps until the message's place in an even schedule and returns that
// place, so a stalled server is charged for the wait of the messages queued behind
// it (the latency is not "coordinated" away). How late the producer woke is
// recorded apart, as the pace lag. ok is false when the run ended meanwhile.
func (w *worker) pace(ctx context.Context, p *pacer, seq uint64) (due time.Time, ok bool) {
	if p == nil {
		return time.Now(), true
	}
	perProducer := w.run.cfg.Rate / float64(w.run.cfg.Producers)
	due = w.run.start.Add(time.Duration(float64(seq) / perProducer * float64(time.Second)))
	if !p.waitUntil(ctx, due) {
		return due, false
	}
	now := time.Now()
	_ = w.lag.RecordValue(clampMicros(now.Sub(due).Microseconds()))
	return due, now.Before(w.run.stop)
}

// putRound stamps and puts one round sent at sent, then records its latency and
// acknowledgements.
func (w *worker) putRound(ctx context.Context, queue string, msgs [][]byte, seq uint64,
	sent time.Time) error {
	for i, m := range msgs {
		stamp(m, header{producer: uint32(w.index), seq: seq + uint64(i), sentNano: sent.UnixNano()})
	}
	began := time.Now()
	if err := w.conn.Put(ctx, queue, msgs); err != nil {
		return err
	}
	acked := time.Now()
	for i := range msgs {
		w.acked.add(seq + uint64(i))
	}
	// Every message of a pipelined round waited for the whole round.
	n := int64(len(msgs))
	_ = w.latency.RecordValues(clampMicros(acked.Sub(sent).Microseconds()), n)
	if w.run.cfg.Rate > 0 {
		_ = w.service.RecordValues(clampMicros(acked.Sub(began).Microseconds()), n)
	}
	w.run.put.Add(int64(len(msgs)))
	return nil
}

// doneProducing marks this producer finished and stamps the time if it was the last.
func (w *worker) doneProducing() {
	if w.run.producing.Add(-1) == 0 {
		w.run.putDoneAt.Store(int64(time.Since(w.run.start)))
	}
}

// consume takes messages from its queues until the run is drained or a request fails.
func (w *worker) consume(ctx context.Context) {
	queues := owned(w.index, w.of, w.run.queues)
	empty := 0 // gets in a row that found nothing
	for i := 0; ctx.Err() == nil; i++ {
		complete, expired := w.run.drainState()
		if complete && empty >= len(queues) {
			w.drained = true
			return
		}
		if expired {
			return
		}
		queue := queues[i%len(queues)]
		msgs, err := w.conn.Get(ctx, queue, w.run.cfg.Depth*w.run.cfg.Batch, w.run.cfg.GetWait)
		if err != nil {
			w.run.errs.add(fmt.Errorf("get from %s: %w", queue, err))
			return
		}
		empty++
		if len(msgs) > 0 {
			empty = 0
			w.took(msgs)
		}
	}
}

// took checks and records messages a get returned.
func (w *worker) took(msgs [][]byte) {
	now := time.Now()
	w.lastTake = now.Sub(w.run.start)
	for _, m := range msgs {
		h, err := decode(m, w.run.cfg.MessageBytes)
		if err == nil && int(h.producer) >= w.run.cfg.Producers {
			err = fmt.Errorf("producer id %d out of range", h.producer)
		}
		if err != nil {
			w.corrupt++
			continue
		}
		w.seen.add(h.producer, h.seq)
		e2e := now.Sub(time.Unix(0, h.sentNano)).Microseconds()
		_ = w.latency.RecordValue(clampMicros(e2e))
	}
	w.run.delivered.Add(int64(len(msgs)))
}

// clampMicros keeps a latency inside the histogram's range, so that a clock step or
// a stalled run is recorded at the edge rather than dropped.
func clampMicros(us int64) int64 {
	return min(max(us, histMinMicros), histMaxMicros)
}
