package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/keyq/keyq/internal/bench"
)

// report is everything one comparison measured; docs/benchmarks.json keeps it so the
// docs can be rendered again without running (-from-json).
type report struct {
	Started  time.Time         `json:"started"`
	Duration string            `json:"duration_per_cell"`
	Machine  string            `json:"machine"`
	Servers  []serverInfo      `json:"servers"`
	Skipped  map[string]string `json:"skipped,omitempty"` // server: why it did not run
	Cells    []cell            `json:"cells"`
}

type serverInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Durable string `json:"durable"`
}

// cell is one server, mode, workload and depth.
type cell struct {
	Server   string `json:"server"`
	Mode     string `json:"mode"`
	Workload string `json:"workload"`
	level
	MsgsPerSec float64       `json:"msgs_per_sec"`
	Load       float64       `json:"load_average"`      // one-minute load when the cell ended
	Rate       float64       `json:"rate,omitempty"`    // put rate asked; 0: as fast as possible
	Error      string        `json:"error,omitempty"`   // the run failed or had errors
	Missing    string        `json:"missing,omitempty"` // not run, and why
	Result     *bench.Result `json:"result,omitempty"`
}

// addMissing records every cell of a server and mode that did not run.
func (r *report) addMissing(p *plan, server, mode, why string) {
	for _, w := range p.workloads {
		for _, l := range p.levels {
			r.Cells = append(r.Cells, cell{Server: server, Mode: mode, Workload: w.Name,
				level: l, Missing: why})
		}
	}
}

func (r *report) find(server, mode, workload string, l level) (cell, bool) {
	for _, c := range r.Cells {
		if c.Server == server && c.Mode == mode && c.Workload == workload &&
			c.level == l && c.Rate == 0 {
			return c, true
		}
	}
	return cell{}, false
}

func loadReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse results %s: %w", path, err)
	}
	return &r, nil
}

// write saves the raw results, the chart and the markdown section.
func (r *report) write(o options) error {
	if o.jsonPath != "" && o.fromJSON == "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("encode results: %w", err)
		}
		if err := os.WriteFile(o.jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	if o.svgPath != "" {
		if err := os.WriteFile(o.svgPath, r.chart(), 0o644); err != nil {
			return fmt.Errorf("write chart: %w", err)
		}
	}
	if o.mdPath != "" {
		return replaceSection(o.mdPath, r.markdown(chartLink(o.mdPath, o.svgPath)))
	}
	return nil
}

// chartLink returns the path of the chart svg as the markdown file md links it:
// relative to md's folder when it can be, else as given.
func chartLink(md, svg string) string {
	if svg == "" {
		return ""
	}
	mdDir, err1 := filepath.Abs(filepath.Dir(md))
	abs, err2 := filepath.Abs(svg)
	if err1 != nil || err2 != nil {
		return filepath.ToSlash(svg)
	}
	rel, err := filepath.Rel(mdDir, abs)
	if err != nil {
		return filepath.ToSlash(abs)
	}
	return filepath.ToSlash(rel)
}

// machine describes the CPU the run had.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s, %s", model, runtime.NumCPU(), runtime.GOOS,
		runtime.GOARCH, runtime.Version())
}

// version asks a server binary for its version.
func version(s *server) string {
	args := map[string][]string{
		"keyq":           {s.binary, "version"},
		"keyq-wire":      {s.binary, "version"},
		"redis":          {"redis-server", "--version"},
		"beanstalkd":     {"beanstalkd", "-v"},
		"nats-jetstream": {"nats-server", "--version"},
	}[s.name]
	if s.name == "rabbitmq" {
		out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", s.pkg).Output()
		if err != nil {
			return "unknown"
		}
		return "rabbitmq-server " + string(out)
	}
	if len(args) == 0 {
		return "unknown"
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(bytes.TrimSpace(out)), "\n")
	return line
}

// putP99 is the cell's p99 put latency in microseconds, or -1 if it has no result.
func (c cell) putP99() float64 {
	if c.Result == nil {
		return -1
	}
	return c.Result.PutLatency.P99
}
