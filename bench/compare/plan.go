package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyq/keyq/internal/bench"
)

// workload is one shape of load, run at each depth and in each mode.
type workload struct {
	Name      string `json:"name"`
	Producers int    `json:"producers"`
	Consumers int    `json:"consumers"`
	Queues    int    `json:"queues"`
	Bytes     int    `json:"bytes"`
}

var allWorkloads = []workload{
	{Name: "1x1-100B", Producers: 1, Consumers: 1, Queues: 1, Bytes: 100},
	{Name: "8x8-100B", Producers: 8, Consumers: 8, Queues: 8, Bytes: 100},
	{Name: "8x8-4KiB", Producers: 8, Consumers: 8, Queues: 8, Bytes: 4096},
}

func workloadNames() string {
	var names []string
	for _, w := range allWorkloads {
		names = append(names, w.Name)
	}
	return strings.Join(names, ",")
}

// plan is what one comparison runs.
type plan struct {
	servers   []*server
	modes     []string
	depths    []int
	workloads []workload
	duration  time.Duration
	install   bool
}

func newPlan(o options) (*plan, error) {
	p := &plan{duration: o.duration, install: o.install}
	for _, name := range splitList(o.systems) {
		i := slices.IndexFunc(servers(o.keyqBin), func(s *server) bool { return s.name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown system %q", name)
		}
		p.servers = append(p.servers, servers(o.keyqBin)[i])
	}
	for _, m := range splitList(o.modes) {
		if m != "memory" && m != "durable" {
			return nil, fmt.Errorf("unknown mode %q (want memory or durable)", m)
		}
		p.modes = append(p.modes, m)
	}
	for _, d := range splitList(o.depths) {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad depth %q", d)
		}
		p.depths = append(p.depths, n)
	}
	want := splitList(o.workloads)
	for _, w := range allWorkloads {
		if len(want) == 0 || slices.Contains(want, w.Name) {
			p.workloads = append(p.workloads, w)
		}
	}
	return p, nil
}

// run starts each server once per mode, runs every cell against it and stops it.
func (p *plan) run(ctx context.Context, work string, log *slog.Logger) *report {
	rep := &report{
		Started:  time.Now().UTC(),
		Duration: p.duration.String(),
		Machine:  machine(),
		Skipped:  ensureInstalled(p.servers, p.install, log),
	}
	for _, s := range p.servers {
		rep.Servers = append(rep.Servers, serverInfo{Name: s.name, Durable: s.durable,
			Version: version(s)})
	}
	for _, mode := range p.modes {
		for _, s := range p.servers {
			if ctx.Err() != nil {
				return rep
			}
			if why, ok := rep.Skipped[s.name]; ok {
				rep.addMissing(p, s.name, mode, why)
				continue
			}
			p.runServer(ctx, s, mode, filepath.Join(work, s.name+"-"+mode), rep, log)
		}
	}
	return rep
}

// runServer runs every cell of one mode against one fresh instance of s.
func (p *plan) runServer(ctx context.Context, s *server, mode, dir string, rep *report,
	log *slog.Logger) {
	log = log.With("server", s.name, "mode", mode)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		rep.addMissing(p, s.name, mode, err.Error())
		return
	}
	in, err := s.start(ctx, dir, mode == "durable")
	if err != nil {
		log.Warn("server did not start", "err", err)
		why := "did not start: " + err.Error()
		var pending *pendingError
		if errors.As(err, &pending) {
			why = "pending: " + pending.why
		}
		rep.addMissing(p, s.name, mode, why)
		return
	}
	defer in.stop()
	for _, w := range p.workloads {
		for _, depth := range p.depths {
			c := p.runCell(ctx, in, s.name, mode, w, depth)
			log.Info("cell done", "workload", w.Name, "depth", depth,
				"msgs_per_sec", int(c.MsgsPerSec), "err", c.Error)
			rep.Cells = append(rep.Cells, c)
		}
	}
}

func (p *plan) runCell(ctx context.Context, in *instance, name, mode string, w workload,
	depth int) cell {
	c := cell{Server: name, Mode: mode, Workload: w.Name, Depth: depth}
	cfg := bench.Config{
		Producers:    w.Producers,
		Consumers:    w.Consumers,
		Queues:       w.Queues,
		MessageBytes: w.Bytes,
		Depth:        depth,
		Duration:     p.duration,
		DrainTimeout: max(10*time.Second, p.duration),
		QueuePrefix:  fmt.Sprintf("%s-d%d-", w.Name, depth),
	}
	res, err := bench.Run(ctx, cfg, in.driver(depth))
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Result = res
	c.MsgsPerSec = res.MsgsPerSec
	if res.Errors > 0 {
		c.Error = fmt.Sprintf("%d errors: %s", res.Errors, strings.Join(res.ErrorSample, "; "))
	}
	return c
}
