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

// workload is one shape of load, run at each level and in each mode.
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
	levels    []level
	workloads []workload
	duration  time.Duration
	install   bool
	pacedRate float64 // the paced cells' rate; 0: half of keyq's peak
}

func newPlan(o options) (*plan, error) {
	p := &plan{duration: o.duration, install: o.install, pacedRate: o.pacedRate}
	// A name given twice is refused: each server is started once per mode under
	// its name, so a second one would be started and never stopped.
	for _, flag := range []struct{ name, list string }{
		{"-systems", o.systems}, {"-modes", o.modes}, {"-workloads", o.workloads},
	} {
		if dup := firstDuplicate(splitList(flag.list)); dup != "" {
			return nil, fmt.Errorf("%s names %q twice", flag.name, dup)
		}
	}
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
	for _, text := range splitList(o.levels) {
		l, err := parseLevel(text)
		if err != nil {
			return nil, err
		}
		if slices.Contains(p.levels, l) {
			return nil, fmt.Errorf("-levels names %q twice", l)
		}
		p.levels = append(p.levels, l)
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
		if ctx.Err() != nil {
			return rep
		}
		p.runMode(ctx, mode, work, rep, log)
	}
	return rep
}

// runMode starts a fresh instance of every server for one mode, then runs each cell
// against the servers back to back, so that load from elsewhere on the machine
// weighs on the servers of a cell alike. It stops them all at the end.
func (p *plan) runMode(ctx context.Context, mode, work string, rep *report, log *slog.Logger) {
	running := map[string]*instance{}
	defer func() {
		for _, in := range running {
			in.stop()
		}
	}()
	for _, s := range p.servers {
		if why, ok := rep.Skipped[s.name]; ok {
			rep.addMissing(p, s.name, mode, why)
			continue
		}
		in, why := p.start(ctx, s, mode, filepath.Join(work, s.name+"-"+mode), log)
		if in == nil {
			rep.addMissing(p, s.name, mode, why)
			continue
		}
		running[s.name] = in
	}
	for _, w := range p.workloads {
		for _, l := range p.levels {
			for _, s := range p.servers {
				in, ok := running[s.name]
				if !ok || ctx.Err() != nil {
					continue
				}
				c := p.runCell(ctx, in, s.name, mode, w, l)
				log.Info("cell done", "server", s.name, "mode", mode, "workload", w.Name,
					"level", l.String(), "msgs_per_sec", int(c.MsgsPerSec), "load", c.Load,
					"err", c.Error, "missing", c.Missing)
				rep.Cells = append(rep.Cells, c)
			}
		}
	}
	if mode == "memory" {
		p.runPaced(ctx, running, rep, log)
	}
}

// noBatches is why a cell did not run at a batch level.
const noBatches = "no batch requests"

// pacedWorkload is where issue 6 asks for keyq's put latency at half its peak.
const pacedWorkload = "8x8-100B"

// runPaced reruns pacedWorkload against keyq and Redis with producers paced at half
// of keyq's best rate there (or at -paced-rate, to compare runs at one rate): once
// one message at a time (so a put's latency is one message's) and once at the level
// that reached keyq's peak. Latency at full speed is mostly queueing; this is the
// load the latency target is set at.
func (p *plan) runPaced(ctx context.Context, running map[string]*instance, rep *report,
	log *slog.Logger) {
	i := slices.IndexFunc(p.workloads, func(w workload) bool { return w.Name == pacedWorkload })
	if i < 0 {
		return
	}
	single := keyqPeak(rep, func(l level) bool { return l == one })
	best := keyqPeak(rep, func(level) bool { return true })
	peaks := []cell{single}
	if best.level != single.level {
		peaks = append(peaks, best)
	}
	for _, peak := range peaks {
		if peak.MsgsPerSec == 0 {
			continue
		}
		for _, name := range []string{"keyq", "redis"} {
			in, ok := running[name]
			if !ok || ctx.Err() != nil {
				continue
			}
			rate := peak.MsgsPerSec / 2
			if p.pacedRate > 0 {
				rate = p.pacedRate
			}
			c := p.runCellAt(ctx, in, name, "memory", p.workloads[i], peak.level, rate)
			log.Info("paced cell done", "server", name, "level", c.level.String(),
				"rate", int(c.Rate), "put_p99_us", c.putP99(), "err", c.Error)
			rep.Cells = append(rep.Cells, c)
		}
	}
}

// keyqPeak returns keyq's fastest clean in-memory pacedWorkload cell at a level that
// matches, or a zero cell.
func keyqPeak(rep *report, match func(level) bool) cell {
	var peak cell
	for _, c := range rep.Cells {
		if c.Server == "keyq" && c.Mode == "memory" && c.Workload == pacedWorkload &&
			c.Rate == 0 && match(c.level) && c.usable() && c.MsgsPerSec > peak.MsgsPerSec {
			peak = c
		}
	}
	return peak
}

// start starts one server, or says why it could not.
func (p *plan) start(ctx context.Context, s *server, mode, dir string, log *slog.Logger) (
	*instance, string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err.Error()
	}
	in, err := s.start(ctx, dir, mode == "durable")
	if err != nil {
		log.Warn("server did not start", "server", s.name, "mode", mode, "err", err)
		var pending *pendingError
		if errors.As(err, &pending) {
			return nil, "pending: " + pending.why
		}
		return nil, "did not start: " + err.Error()
	}
	return in, ""
}

func (p *plan) runCell(ctx context.Context, in *instance, name, mode string, w workload,
	l level) cell {
	return p.runCellAt(ctx, in, name, mode, w, l, 0)
}

// runCellAt runs one cell with producers paced at rate (0: as fast as they can).
func (p *plan) runCellAt(ctx context.Context, in *instance, name, mode string, w workload,
	l level, rate float64) cell {
	c := cell{Server: name, Mode: mode, Workload: w.Name, level: l, Rate: rate}
	cfg := bench.Config{
		Producers:    w.Producers,
		Consumers:    w.Consumers,
		Queues:       w.Queues,
		MessageBytes: w.Bytes,
		Depth:        l.Depth,
		Batch:        l.Batch,
		Duration:     p.duration,
		Rate:         rate,
		DrainTimeout: max(10*time.Second, p.duration),
		QueuePrefix:  fmt.Sprintf("%s-d%d-b%d-r%d-", w.Name, l.Depth, l.Batch, int(rate)),
	}
	res, err := bench.Run(ctx, cfg, in.driver(l.Depth))
	c.Load = loadAverage()
	switch {
	case errors.Is(err, bench.ErrNotSupported):
		c.Missing = noBatches
		return c
	case err != nil:
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

// loadAverage returns the machine's one-minute load average, or -1 if unknown. The
// comparison shares the machine; the load says how much else was running.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var load float64
	if _, err := fmt.Sscan(string(b), &load); err != nil {
		return -1
	}
	return load
}

// level is how much a worker has in flight: Depth requests of Batch messages each.
type level struct {
	Depth int `json:"depth"`
	Batch int `json:"batch"`
}

// parseLevel reads "1" (one message per request, one in flight), "pN" (N requests
// pipelined) or "bN" (one request of N messages).
func parseLevel(text string) (level, error) {
	l := level{Depth: 1, Batch: 1}
	var n *int
	switch {
	case strings.HasPrefix(text, "p"):
		n = &l.Depth
	case strings.HasPrefix(text, "b"):
		n = &l.Batch
	case text == "1":
		return l, nil
	default:
		return l, fmt.Errorf("bad level %q (want 1, pN or bN)", text)
	}
	v, err := strconv.Atoi(text[1:])
	if err != nil || v < 1 {
		return l, fmt.Errorf("bad level %q (want 1, pN or bN)", text)
	}
	*n = v
	return l, nil
}

// String names the level in tables: "1", "pipelined 64" or "batch 64".
func (l level) String() string {
	switch {
	case l.Batch > 1:
		return fmt.Sprintf("batch %d", l.Batch)
	case l.Depth > 1:
		return fmt.Sprintf("pipelined %d", l.Depth)
	}
	return "1"
}

// firstDuplicate returns the first name that occurs twice in names, or "".
func firstDuplicate(names []string) string {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return n
		}
		seen[n] = true
	}
	return ""
}
