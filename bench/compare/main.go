// Command compare runs the same workloads against keyq and the servers people would
// pick instead (Redis, beanstalkd, NATS JetStream, RabbitMQ), one after the other on
// this machine, and writes the table and chart of docs/BENCHMARKS.md.
//
// Each server is installed from Debian's packages when missing, started on loopback
// with its data under a temporary folder, driven through its own Go client by the
// generator of internal/bench, and stopped. Run it from the repository root:
//
//	go run ./bench/compare -duration 5s
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type options struct {
	duration  time.Duration
	systems   string
	modes     string
	levels    string
	workloads string
	install   bool
	keyqBin   string
	mdPath    string
	svgPath   string
	jsonPath  string
	fromJSON  string
	pacedRate float64
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long producers put in each cell")
	flag.StringVar(&o.systems, "systems",
		"keyq,keyq-wire,redis,beanstalkd,nats-jetstream,rabbitmq",
		"servers to run, comma-separated")
	flag.StringVar(&o.modes, "modes", "memory,durable", "modes to run: memory, durable")
	flag.StringVar(&o.levels, "levels", "1,p64,b64",
		"messages in flight per worker: 1, pN (N requests pipelined), bN (batches of N)")
	flag.StringVar(&o.workloads, "workloads", "", "workload names to run (default all): "+
		workloadNames())
	flag.Float64Var(&o.pacedRate, "paced-rate", 0, "put rate of the paced latency cells "+
		"(default: half of keyq's peak in this run)")
	noInstall := flag.Bool("no-install", false, "do not apt-get install missing servers")
	flag.StringVar(&o.keyqBin, "keyq", "", "keyq binary (default: go build ./cmd/keyq)")
	flag.StringVar(&o.mdPath, "md", "docs/BENCHMARKS.md", "markdown file whose table to replace")
	flag.StringVar(&o.svgPath, "svg", "docs/benchmarks.svg", "chart to write")
	flag.StringVar(&o.jsonPath, "json", "docs/benchmarks.json", "raw results to write")
	flag.StringVar(&o.fromJSON, "from-json", "", "render the docs from this results file "+
		"instead of running")
	flag.Parse()
	o.install = !*noInstall

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runCompare(ctx, o, log); err != nil {
		log.Error("compare failed", "err", err)
		os.Exit(1)
	}
}

func runCompare(ctx context.Context, o options, log *slog.Logger) error {
	if o.fromJSON != "" {
		rep, err := loadReport(o.fromJSON)
		if err != nil {
			return err
		}
		return rep.write(o)
	}
	work, err := os.MkdirTemp("", "keyq-compare-")
	if err != nil {
		return fmt.Errorf("make work folder: %w", err)
	}
	defer os.RemoveAll(work)
	if o.keyqBin == "" && slices.ContainsFunc(splitList(o.systems), func(s string) bool {
		return strings.HasPrefix(s, "keyq")
	}) {
		if o.keyqBin, err = buildKeyq(work); err != nil {
			return err
		}
	}
	plan, err := newPlan(o)
	if err != nil {
		return err
	}
	rep := plan.run(ctx, work, log)
	return rep.write(o)
}

// buildKeyq builds the keyq binary of this checkout into dir.
func buildKeyq(dir string) (string, error) {
	bin := filepath.Join(dir, "keyq")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/keyq")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/keyq: %w", err)
	}
	return bin, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
