package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what a run measured. Its JSON form is what `keyq bench --json` prints.
type Result struct {
	Server       string  `json:"server"`
	Producers    int     `json:"producers"`
	Consumers    int     `json:"consumers"`
	Queues       int     `json:"queues"`
	MessageBytes int     `json:"message_bytes"`
	Depth        int     `json:"depth"`
	Batch        int     `json:"batch"`
	Mix          string  `json:"mix"`
	Rate         float64 `json:"rate,omitempty"` // the put rate asked for; 0: no limit
	Seconds      float64 `json:"seconds"`        // from the first put to the last take

	Put         int64    `json:"put"`       // acknowledged puts
	Delivered   int64    `json:"delivered"` // distinct messages taken
	MsgsPerSec  float64  `json:"msgs_per_sec"`
	MBPerSec    float64  `json:"mb_per_sec"`
	PutPerSec   float64  `json:"put_per_sec"` // acknowledged puts over the put phase
	Errors      int64    `json:"errors"`
	ErrorSample []string `json:"error_samples,omitempty"`

	Duplicates int64 `json:"duplicates"`
	// Lost counts acknowledged puts that no consumer took although every consumer
	// emptied its queues: the server lost them.
	Lost int64 `json:"lost"`
	// NotTaken counts acknowledged puts that no consumer took when the consumers
	// stopped before emptying their queues (a failed get, such as from a server that
	// stopped, the run cut short, or the drain timeout): they may still be queued.
	NotTaken    int64 `json:"not_taken"`
	Unexpected  int64 `json:"unexpected"` // taken, but its put was not acknowledged
	Corrupt     int64 `json:"corrupt"`
	ExactlyOnce bool  `json:"exactly_once"` // false too while messages are not taken
	// DrainTimedOut says consumers stopped at the drain timeout with messages not yet
	// taken: those count in NotTaken.
	DrainTimedOut bool `json:"drain_timed_out"`

	PutLatency      Latency `json:"put_latency"`
	EndToEndLatency Latency `json:"end_to_end_latency"`
	// PaceLag is, with a rate, how late producers sent each round after it was due:
	// the generator's own share of PutLatency (timer wake-ups, waiting for a CPU).
	PaceLag *Latency `json:"pace_lag,omitempty"`
	// PutService is, with a rate, each put's time from when it was sent (not due)
	// to its ack: PutLatency without the pace lag, as a server is usually timed.
	PutService *Latency `json:"put_service,omitempty"`
}

// Latency summarises one histogram, in microseconds.
type Latency struct {
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p99_9_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
}

// result merges the workers' numbers into a Result.
func (r *run) result(producers, consumers []*worker) *Result {
	acked := make([]seqSet, len(producers))
	putHist := hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)
	lagHist := hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)
	serviceHist := hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)
	for i, w := range producers {
		acked[i] = w.acked
		putHist.Merge(w.latency)
		lagHist.Merge(w.lag)
		serviceHist.Merge(w.service)
	}
	seen := make([]*tracker, len(consumers))
	e2eHist := hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)
	var lastTake time.Duration
	var corrupt int64
	drained := true
	for i, w := range consumers {
		seen[i] = w.seen
		e2eHist.Merge(w.latency)
		lastTake = max(lastTake, w.lastTake)
		corrupt += w.corrupt
		drained = drained && w.drained
	}
	d := verify(acked, seen)

	res := r.summary()
	res.Seconds = lastTake.Seconds()
	res.Put = r.put.Load()
	res.Delivered = d.received
	res.Duplicates, res.Unexpected = d.duplicates, d.unexpected
	// What no consumer took is missing only if the consumers looked for it to the end.
	if drained {
		res.Lost = d.missing
	} else {
		res.NotTaken = d.missing
	}
	res.Corrupt = corrupt
	res.DrainTimedOut = r.timedOut.Load()
	res.ExactlyOnce = d.duplicates == 0 && d.missing == 0 && corrupt == 0
	if res.Seconds > 0 {
		res.MsgsPerSec = float64(d.received) / res.Seconds
		res.MBPerSec = res.MsgsPerSec * float64(r.cfg.MessageBytes) / 1e6
	}
	if putSecs := time.Duration(r.putDoneAt.Load()).Seconds(); putSecs > 0 {
		res.PutPerSec = float64(res.Put) / putSecs
	}
	res.PutLatency, res.EndToEndLatency = summarize(putHist), summarize(e2eHist)
	if r.cfg.Rate > 0 {
		lag, service := summarize(lagHist), summarize(serviceHist)
		res.PaceLag, res.PutService = &lag, &service
	}
	res.Errors, res.ErrorSample = r.errs.count, r.errs.samples
	return res
}

// summary fills in the run's shape.
func (r *run) summary() *Result {
	return &Result{
		Server:       r.driver.Name(),
		Producers:    r.cfg.Producers,
		Consumers:    r.cfg.Consumers,
		Queues:       r.cfg.Queues,
		MessageBytes: r.cfg.MessageBytes,
		Depth:        r.cfg.Depth,
		Batch:        r.cfg.Batch,
		Mix:          r.cfg.Mix,
		Rate:         r.cfg.Rate,
	}
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:  float64(h.ValueAtQuantile(50)),
		P90:  float64(h.ValueAtQuantile(90)),
		P99:  float64(h.ValueAtQuantile(99)),
		P999: float64(h.ValueAtQuantile(99.9)),
		Max:  float64(h.Max()),
		Mean: h.Mean(),
	}
}

// WriteJSON writes res as one indented JSON document.
func (res *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	return nil
}

// WriteText writes res for a person to read.
func (res *Result) WriteText(w io.Writer) error {
	verdict := "yes"
	switch {
	case res.Duplicates > 0 || res.Lost > 0 || res.Corrupt > 0:
		verdict = "NO"
	case res.DrainTimedOut:
		verdict = "not known (the drain timeout ran out; messages not taken may still " +
			"be queued)"
	case res.NotTaken > 0:
		verdict = "not known (consumers stopped before draining; messages not taken " +
			"may still be queued)"
	}
	shape := fmt.Sprintf("server      %s, %d producers, %d consumers, %d queues, "+
		"%d-byte messages, depth %d", res.Server, res.Producers, res.Consumers,
		res.Queues, res.MessageBytes, res.Depth)
	if res.Batch > 1 {
		shape += fmt.Sprintf(", batch %d", res.Batch)
	}
	if res.Mix != MixPutGet {
		shape += ", " + res.Mix
	}
	if res.Rate > 0 {
		shape += fmt.Sprintf(", rate %.0f/s", res.Rate)
	}
	lines := []string{
		shape,
		fmt.Sprintf("throughput  %.0f msgs/s, %.2f MB/s (%d messages in %.2fs; puts %.0f/s)",
			res.MsgsPerSec, res.MBPerSec, res.Delivered, res.Seconds, res.PutPerSec),
		"put latency " + res.PutLatency.String(),
		"end to end  " + res.EndToEndLatency.String(),
	}
	if res.PaceLag != nil && res.PutService != nil {
		lines = append(lines,
			"pace lag    "+res.PaceLag.String()+" (how late producers sent)",
			"put service "+res.PutService.String()+" (from send, not from due)")
	}
	lines = append(lines,
		fmt.Sprintf("errors      %d%s", res.Errors, errorSuffix(res.ErrorSample)),
		fmt.Sprintf("exactly once %s: %d put, %d delivered, %d duplicates, %d lost, "+
			"%s%d corrupt, %d taken without an acknowledged put", verdict, res.Put,
			res.Delivered, res.Duplicates, res.Lost, notTakenText(res.NotTaken),
			res.Corrupt, res.Unexpected),
	)
	if _, err := io.WriteString(w, strings.Join(lines, "\n")+"\n"); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// notTakenText is the count of messages not taken, shown only when there are some.
func notTakenText(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d not taken, ", n)
}

func errorSuffix(samples []string) string {
	if len(samples) == 0 {
		return ""
	}
	return fmt.Sprintf(" (first: %s)", samples[0])
}

// String formats l on one line.
func (l Latency) String() string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s",
		micros(l.P50), micros(l.P90), micros(l.P99), micros(l.P999), micros(l.Max))
}

func micros(us float64) string {
	return time.Duration(us * float64(time.Microsecond)).Round(time.Microsecond).String()
}
