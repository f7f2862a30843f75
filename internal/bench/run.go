package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// hangGrace is how long past the drain timeout a run waits for requests in flight
// before it cancels them.
const hangGrace = 30 * time.Second

// run is the state shared by the workers of one benchmark.
type run struct {
	cfg    Config
	driver Driver
	queues []string
	start  time.Time
	stop   time.Time // producers put nothing after this

	put       atomic.Int64 // acknowledged puts
	delivered atomic.Int64 // messages taken, duplicates included
	producing atomic.Int32 // producers still running
	putDoneAt atomic.Int64 // nanoseconds after start when the last producer stopped
	timedOut  atomic.Bool  // consumers stopped at the drain timeout, not drained
	errs      errorLog
}

// Run drives one benchmark against d and returns its result. The context ends the run
// early; the result then covers what happened until then.
func Run(ctx context.Context, cfg Config, d Driver) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench config: %w", err)
	}
	if err := configure(cfg, d); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, driver: d, queues: queueNames(cfg)}
	if err := d.Setup(ctx, r.queues); err != nil {
		return nil, fmt.Errorf("set up %s queues: %w", d.Name(), err)
	}
	producers, consumers, err := r.dialAll(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll(producers, consumers)
	return r.execute(ctx, producers, consumers), nil
}

func queueNames(cfg Config) []string {
	prefix := cfg.QueuePrefix
	if prefix == "" {
		var id [4]byte
		_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
		prefix = "bench-" + hex.EncodeToString(id[:]) + "-"
	}
	names := make([]string, cfg.Queues)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return names
}

// dialAll opens every worker's connection before the clock starts.
func (r *run) dialAll(ctx context.Context) (producers, consumers []*worker, err error) {
	dial := func(role string, n int) ([]*worker, error) {
		ws := make([]*worker, n)
		for i := range ws {
			conn, err := r.driver.Dial(ctx)
			if err != nil {
				closeAll(ws)
				return nil, fmt.Errorf("dial %s %s %d: %w", r.driver.Name(), role, i, err)
			}
			ws[i] = newWorker(r, i, n, conn)
		}
		return ws, nil
	}
	if producers, err = dial("producer", r.cfg.Producers); err != nil {
		return nil, nil, err
	}
	if consumers, err = dial("consumer", r.cfg.Consumers); err != nil {
		closeAll(producers)
		return nil, nil, err
	}
	return producers, consumers, nil
}

func closeAll(groups ...[]*worker) {
	for _, ws := range groups {
		for _, w := range ws {
			if w != nil {
				_ = w.conn.Close() // the run is over; a close error changes no number
			}
		}
	}
}

// execute runs the workers to the end and collects their numbers.
func (r *run) execute(ctx context.Context, producers, consumers []*worker) *Result {
	r.start = time.Now()
	r.stop = r.start.Add(r.cfg.Duration)
	if r.cfg.Duration == 0 {
		r.stop = r.start.Add(365 * 24 * time.Hour)
	}
	// A request that hangs (a stuck server) must not hold the run past its bounds.
	ctx, cancel := context.WithDeadline(ctx, r.stop.Add(r.cfg.DrainTimeout+hangGrace))
	defer cancel()
	r.producing.Store(int32(len(producers)))

	var wg sync.WaitGroup
	budgets := splitCount(r.cfg.Count, len(producers))
	for i, w := range producers {
		wg.Go(func() { w.produce(ctx, budgets[i]) })
	}
	for _, w := range consumers {
		wg.Go(func() { w.consume(ctx) })
	}
	var reporter sync.WaitGroup
	done := make(chan struct{})
	if r.cfg.Progress != nil {
		reporter.Go(func() { r.report(done) })
	}
	wg.Wait()
	close(done)
	// The callback is not called once Run returned.
	reporter.Wait()
	return r.result(producers, consumers)
}

// splitCount divides count among n producers; a count of 0 (run for a duration)
// gives each producer -1, no limit.
func splitCount(count int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		if count == 0 {
			out[i] = -1
			continue
		}
		out[i] = count / int64(n)
		if int64(i) < count%int64(n) {
			out[i]++
		}
	}
	return out
}

// report calls the Progress callback until done is closed.
func (r *run) report(done <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			r.cfg.Progress(Progress{
				Put:       r.put.Load(),
				Delivered: r.delivered.Load(),
				Elapsed:   time.Since(r.start),
			})
		}
	}
}

// drainState tells consumers whether to go on: they stop once producers are done and
// as many messages were taken as puts acknowledged (duplicates count, so consumers
// then also empty their queues), or at once when the drain timeout ran out.
func (r *run) drainState() (complete, expired bool) {
	if r.producing.Load() > 0 {
		return false, false
	}
	doneAt := time.Duration(r.putDoneAt.Load())
	complete = r.delivered.Load() >= r.put.Load()
	expired = time.Since(r.start) > doneAt+r.cfg.DrainTimeout
	if expired && !complete {
		r.timedOut.Store(true)
	}
	return complete, expired
}

// errorLog counts failed requests and keeps the first few distinct messages.
type errorLog struct {
	mu      sync.Mutex
	count   int64
	samples []string
}

const maxErrorSamples = 5

func (l *errorLog) add(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	msg := err.Error()
	for _, s := range l.samples {
		if s == msg {
			return
		}
	}
	if len(l.samples) < maxErrorSamples {
		l.samples = append(l.samples, msg)
	}
}
