package main

import (
	"fmt"
	"strings"
)

// target is one ratio issue 6 asks keyq to reach against an anchor in the same run.
type target struct {
	mode, workload string
	depth          int
	anchor         string
	ratio          float64
}

var targets = []target{
	{"memory", "8x8-100B", 64, "redis", 1.5},
	{"memory", "8x8-100B", 1, "redis", 2},
	{"durable", "8x8-100B", 1, "redis", 1},
	{"durable", "8x8-100B", 64, "redis", 1},
	{"durable", "8x8-100B", 1, "rabbitmq", 5},
	{"durable", "8x8-100B", 64, "rabbitmq", 5},
	{"durable", "8x8-100B", 1, "nats-jetstream", 3},
	{"durable", "8x8-100B", 64, "nats-jetstream", 3},
}

// targetList says for each target whether this run met it.
func (r *report) targetList(b *strings.Builder) {
	b.WriteString("Targets (keyq's throughput over the anchor's, same run):\n\n")
	for _, t := range targets {
		k, kok := r.find("keyq", t.mode, t.workload, t.depth)
		a, aok := r.find(t.anchor, t.mode, t.workload, t.depth)
		if !kok || !aok {
			continue
		}
		fmt.Fprintf(b, "- %s, %s, depth %d, at least %gx %s: %s\n", modeShort[t.mode],
			t.workload, t.depth, t.ratio, t.anchor, verdict(t, k, a))
	}
	b.WriteString("\n")
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
