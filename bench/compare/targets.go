package main

import (
	"fmt"
	"strings"
)

// target is one ratio issue 6 asks keyq to reach against an anchor in the same run:
// keyq at one level against the anchor at another (batches against pipelining).
type target struct {
	mode, workload string
	keyq, at       level // keyq's level and the anchor's
	anchor         string
	ratio          float64
}

var (
	one        = level{Depth: 1, Batch: 1}
	pipelined  = level{Depth: 64, Batch: 1}
	batched    = level{Depth: 1, Batch: 64}
	targetLoad = "8x8-100B"
)

// targets lists issue 6's ratios; each durable one is checked unbatched, pipelined
// and with keyq's batches against the anchor's pipelining.
func targets() []target {
	ts := []target{
		{"memory", targetLoad, batched, pipelined, "redis", 1.5},
		{"memory", targetLoad, pipelined, pipelined, "redis", 1.5},
		{"memory", targetLoad, one, one, "redis", 2},
	}
	for _, a := range []struct {
		name  string
		ratio float64
	}{{"redis", 1}, {"rabbitmq", 5}, {"nats-jetstream", 3}} {
		for _, pair := range [][2]level{{one, one}, {pipelined, pipelined}, {batched, pipelined}} {
			ts = append(ts, target{"durable", targetLoad, pair[0], pair[1], a.name, a.ratio})
		}
	}
	return ts
}

// targetList says for each target whether this run met it.
func (r *report) targetList(b *strings.Builder) {
	b.WriteString("Targets (keyq's throughput over the anchor's, same run):\n\n")
	for _, t := range targets() {
		k, kok := r.find("keyq", t.mode, t.workload, t.keyq)
		a, aok := r.find(t.anchor, t.mode, t.workload, t.at)
		if !kok || !aok {
			continue
		}
		fmt.Fprintf(b, "- %s, %s, keyq %s vs %s %s, at least %gx: %s\n", modeShort[t.mode],
			t.workload, t.keyq, t.anchor, t.at, t.ratio, verdict(t, k, a))
	}
	r.latencyTarget(b)
	b.WriteString("\n")
}

// latencyTarget checks issue 6's latency target: p99 put latency under 1 ms at half
// of keyq's peak in memory, one message per put.
func (r *report) latencyTarget(b *strings.Builder) {
	for _, c := range r.Cells {
		if c.Server != "keyq" || c.Mode != "memory" || c.Rate == 0 || c.level != one {
			continue
		}
		word := "**met**"
		if !c.usable() || c.Result.PutLatency.P99 >= 1000 {
			word = "**not met**"
		}
		p99 := "failed"
		if c.Result != nil {
			p99 = fmtMicros(c.Result.PutLatency.P99)
		}
		if c.Result != nil && c.Result.PaceLag != nil && c.Result.PutService != nil {
			p99 += fmt.Sprintf(" (pace lag p99 %s, p99 from send %s)",
				fmtMicros(c.Result.PaceLag.P99), fmtMicros(c.Result.PutService.P99))
		}
		fmt.Fprintf(b, "- in memory, %s, one message per put at %s msgs/s (half of keyq's "+
			"peak at that level), p99 put latency under 1 ms: %s, %s\n", c.Workload,
			fmtRate(c.Rate), p99, word)
	}
}

var modeShort = map[string]string{"memory": "in memory", "durable": "durable"}

func verdict(t target, k, a cell) string {
	switch {
	case k.Missing != "":
		return k.Missing
	case !k.usable() || !a.usable() || a.MsgsPerSec == 0:
		return "not measured cleanly (see the notes)"
	}
	got := k.MsgsPerSec / a.MsgsPerSec
	word := "**met**"
	if got < t.ratio {
		word = "**not met**"
	}
	return fmt.Sprintf("%s vs %s = %.2fx, %s", fmtRate(k.MsgsPerSec), fmtRate(a.MsgsPerSec),
		got, word)
}
