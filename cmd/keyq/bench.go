package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keyq/keyq/internal/bench"
)

// benchCountCap bounds a --count run whose --duration was not given.
const benchCountCap = 10 * time.Minute

// benchOptions are the flags of `keyq bench`.
type benchOptions struct {
	clientFlags
	cfg        bench.Config
	json       bool
	quiet      bool
	cpuProfile string
	traceFile  string
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a server with producers and consumers and report what it sustained",
		Long: `bench runs producers that put numbered messages and consumers that take them,
then prints messages and megabytes per second, put and end-to-end latency
percentiles, errors, and whether every acknowledged message arrived exactly once.

A run lasts --duration, or until --count messages were put (then --duration, if
given, is an upper bound; else ` + benchCountCap.String() + `). Queues are named bench-<random>-<n>.
A message is lost only if the consumers emptied their queues without finding it; one
they did not get to (a get failed, the run was interrupted, --drain-timeout ran out)
is "not taken" and may still be queued. Exit status 1 when requests failed, a message
was lost or duplicated, or messages were not taken.`,
		Example: `  keyq bench --producers 8 --consumers 8 --queues 8 --depth 64 --duration 10s
  keyq bench --count 100000 --size 4096 --json`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			cfg := o.cfg // a bad value is a usage error, found before any connection
			return cfg.Validate()
		},
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("count") && !cmd.Flags().Changed("duration") {
				o.cfg.Duration = benchCountCap
			}
			return runBench(cmd, o)
		}),
	}
	o.register(cmd)
	fs := cmd.Flags()
	fs.IntVarP(&o.cfg.Producers, "producers", "p", 1, "producer connections")
	fs.IntVarP(&o.cfg.Consumers, "consumers", "c", 1, "consumer connections")
	fs.IntVarP(&o.cfg.MessageBytes, "size", "s", 100,
		fmt.Sprintf("message size in bytes, at least %d", bench.HeaderBytes))
	fs.IntVarP(&o.cfg.Queues, "queues", "q", 1, "number of queues")
	fs.Int64VarP(&o.cfg.Count, "count", "n", 0, "messages to put in total (0: run for --duration)")
	fs.DurationVarP(&o.cfg.Duration, "duration", "d", 10*time.Second, "how long producers put")
	fs.IntVar(&o.cfg.Depth, "depth", 1, "requests in flight per connection (pipelining)")
	fs.Float64Var(&o.cfg.Rate, "rate", 0,
		"messages per second to put, all producers together (0: as fast as possible)")
	fs.IntVar(&o.cfg.Batch, "batch", 1, "messages per request (PUTBATCH and GETBATCH above 1)")
	fs.StringVar(&o.cfg.Mix, "mix", bench.MixPutGet, "operation mix: "+bench.MixPutGet+
		" (get removes) or "+bench.MixPutReserveAck+" (reserve, then ack each)")
	fs.DurationVar(&o.cfg.DrainTimeout, "drain-timeout", 30*time.Second,
		"how long consumers may drain after producers stop")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "",
		"write a CPU profile of the generator to this file (go tool pprof reads it)")
	fs.StringVar(&o.traceFile, "trace", "",
		"write an execution trace of the generator to this file (go tool trace reads it)")
	return cmd
}

func runBench(cmd *cobra.Command, o benchOptions) error {
	cfg := o.cfg
	if err := cfg.Validate(); err != nil {
		return err
	}
	if !o.quiet && isTerminal(cmd.ErrOrStderr()) {
		bar := newBenchBar(cmd.ErrOrStderr(), cfg)
		cfg.Progress = bar.update
		defer bar.finish()
	}
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	stopTrace, err := startTrace(o.traceFile)
	if err != nil {
		_ = stopProfile() // the trace's error is the one to report
		return err
	}
	driver := &bench.KeyqDriver{Addr: o.address()}
	res, err := bench.Run(cmd.Context(), cfg, driver)
	err = errors.Join(err, stopTrace(), stopProfile())
	if err != nil {
		return err
	}
	if o.json {
		err = res.WriteJSON(cmd.OutOrStdout())
	} else {
		err = res.WriteText(cmd.OutOrStdout())
	}
	if err != nil {
		return err
	}
	return benchVerdict(res)
}

// benchVerdict turns failed requests and broken or unverified delivery into an error
// for the exit status; the numbers were already printed. run prefixes the command's
// name, so the texts do not.
func benchVerdict(res *bench.Result) error {
	switch {
	case res.Errors > 0:
		return fmt.Errorf("%d requests failed", res.Errors)
	case res.Duplicates > 0 || res.Lost > 0 || res.Corrupt > 0:
		return fmt.Errorf("delivery broken: %d lost, %d duplicates, %d corrupt",
			res.Lost, res.Duplicates, res.Corrupt)
	case res.DrainTimedOut:
		return fmt.Errorf("%d messages not taken before --drain-timeout ran out",
			res.NotTaken)
	case !res.ExactlyOnce:
		return fmt.Errorf("%d messages not taken: the consumers stopped before draining",
			res.NotTaken)
	}
	return nil
}

// startCPUProfile starts profiling the process's CPU into path, if not empty, and
// returns what stops it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("close cpu profile: %w", err)
		}
		return nil
	}, nil
}

// startTrace starts an execution trace of the process into path, if not empty, and
// returns what stops it and closes the file.
func startTrace(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create trace: %w", err)
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start trace: %w", err)
	}
	return func() error {
		trace.Stop()
		if err := f.Close(); err != nil {
			return fmt.Errorf("close trace: %w", err)
		}
		return nil
	}, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// benchBar shows delivered messages against --count, or elapsed time against
// --duration.
type benchBar struct {
	bar     *progressbar.ProgressBar
	byCount bool
}

func newBenchBar(w io.Writer, cfg bench.Config) *benchBar {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetDescription("bench"),
	}
	if cfg.Count > 0 {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msgs"))
		return &benchBar{bar: progressbar.NewOptions64(cfg.Count, opts...), byCount: true}
	}
	opts = append(opts, progressbar.OptionSetPredictTime(false))
	return &benchBar{bar: progressbar.NewOptions64(cfg.Duration.Milliseconds(), opts...)}
}

func (b *benchBar) update(p bench.Progress) {
	b.bar.Describe(fmt.Sprintf("%d put, %d delivered", p.Put, p.Delivered))
	if b.byCount {
		_ = b.bar.Set64(p.Delivered) // writes to the terminal; nothing to do on error
		return
	}
	_ = b.bar.Set64(min(p.Elapsed.Milliseconds(), b.bar.GetMax64()))
}

func (b *benchBar) finish() {
	_ = b.bar.Finish() // the bar is cosmetic; the result follows on stdout
}
